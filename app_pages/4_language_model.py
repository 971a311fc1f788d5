"""The toy (left) and a real language model (right) step through the same GRPO stages together."""

from dataclasses import replace

import streamlit as st

from grpo_viz import explain, export, lm_view
from grpo_viz.config import TOY_STATE, TOY_WORDS
from grpo_viz.policies.loading import make_policy
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.stages import GRPO_STAGES
from grpo_viz.stepper import STAGES, StepRun
from grpo_viz.tasks import TASKS, word_reward
from grpo_viz.toy_view import toy_stage_figure
from grpo_viz.ui import (
    chart_style, compact_page, deferred, export_row, latex_lines, lm_sidebar, load_chosen_model, presentation_toggle,
    settings_notices, settings_sidebar, sidebar_waiting, tour_card,
)
from grpo_viz.ui.stepping import stage_tabs

compact_page()
PRESENT_TOY_CHART_PX, PRESENT_LM_CHART_PX = 420, 330  # presenting: each column one screen high at 720 px
PRESENT_LM_MAX_PX, PRESENT_TABS_PX = 440, 45  # the token chart's most under the model's heading; a tab bar
PRESENT_NOTICE_PX = 110  # a notice under the chart, three lines of 18 px in a half-page column
settings = settings_sidebar(wait_for_first_chart=True)
choice = lm_sidebar({k: t.title for k, t in TASKS.items()})
lm_settings = replace(settings, lm_lr=choice["lm_lr"], lm_max_grad_norm=choice["lm_max_grad_norm"],
                      max_new_tokens=choice["max_new_tokens"], lm_precision=choice["lm_precision"])


# ---------------------------------------------------------------- the two runs of this session
if "lm_page_toy_run" not in st.session_state:
    st.session_state.lm_page_toy_run = StepRun(ToyPolicy())
toy_run: StepRun = st.session_state.lm_page_toy_run

loaded, load_error = load_chosen_model(choice)

lm_run: StepRun | None = None
if loaded is not None:
    key = (choice["kind"], choice["source"])
    if st.session_state.get("lm_page_run_key") != key:
        # This session's own trainable copy (tiny: deep copy; LoRA: own adapters on the shared base).
        st.session_state.lm_page_run = StepRun(make_policy(loaded, max_new_tokens=lm_settings.max_new_tokens,
                                                                 precision=lm_settings.lm_precision))
        st.session_state.lm_page_run_key = key
        st.session_state.pop("lm_topk_cache", None)
    lm_run = st.session_state.lm_page_run
    lm_run.policy.max_new_tokens = lm_settings.max_new_tokens
    lm_run.policy.adopt(lm_settings)  # the precision: a change applies from the next forward, no restart
    st.sidebar.caption(f"The language model computes in {lm_run.policy.precision}.")


def both(action: str):
    def run_both():
        getattr(toy_run, action)()
        if lm_run is not None:
            getattr(lm_run, action)()
    return run_both


title, switch = st.columns([5, 2.6], vertical_alignment="center")  # room for "Presentation mode"
presenting = presentation_toggle(switch)
if not presenting:
    title.markdown("## The toy and a language model, side by side")
settings_notices(settings)


def show_more_updates() -> None:
    st.session_state.mu = explain.SHOW_MU


def same_inner_step(stage: int) -> None:
    """The inner-step sliders of the stages that have one move together, as one slider did."""
    value = st.session_state[f"lm_inner_step_{stage}"]
    for k, record in enumerate(GRPO_STAGES):
        if record.per_inner_step:
            st.session_state[f"lm_inner_step_{k}"] = value


@st.fragment
def side_by_side() -> None:
    """Everything a stage click changes: every stage of this group, each in its own container, stepped in the browser
    (ui.stage_tabs). Reruns alone, so New group does not redraw the sidebar."""
    chart_style(presenting)  # a fragment's rerun is a new thread: its charts' text sizes are set here
    views, _ = stage_tabs(
        STAGES, key="lm_stage", on_new_group=both("new_group"), on_reset=both("reset"),
        last_actions=(("Next iteration ▶", both("advance"),
                       "Both keep their update and sample a new group (→ key)"),),
    )
    # A session's first run draws the toy's chart and card only: the browser loads each kind of element on its first
    # use, and draws the model's token chart after the toy's. The model's column, the table, the tour, the top-k
    # widgets and the downloads come with the run the browser asks for once that chart is drawn.
    first_run = sidebar_waiting()
    toy_trace = toy_run.trace(settings, word_reward(TOY_WORDS, settings.rewards))
    toy = explain.toy_numbers(toy_trace, toy_run.policy)
    task = TASKS[choice["task"]].with_word_rewards(TOY_WORDS, settings.rewards)
    trace = prompts = true_rewards = None
    lm_error = load_error
    if loaded is not None and not first_run:
        prompts = task.prompts(settings.seed, lm_run.iteration, lm_run.draw, chat=loaded.chat)
        try:
            trace = lm_run.trace(lm_settings, task.reward, prompts)
        except ValueError as err:
            lm_error = f"This model cannot run this step: {err}"
        else:
            true_rewards = task.true_reward(trace.group) if task.is_hackable else None

    def stage_view(stage: int) -> None:
        """One stage: the objective, the toy's chart and card beside the language model's tokens, its table and
        tour."""
        record = GRPO_STAGES[stage]
        name = record.name
        if not presenting:  # on a projector the charts need its height; the stage bar names the term
            with st.container(key=f"objective_{stage}"):  # its size follows the page's width (ui.compact_page)
                st.latex(explain.objective_latex(stage))
        step_index = settings.mu - 1
        if settings.mu > 1 and record.per_inner_step:
            step_index = st.slider("Inner update shown (of μ)", 1, settings.mu, settings.mu,
                                   key=f"lm_inner_step_{stage}", on_change=same_inner_step, args=(stage,),
                                   help="Both policies take μ steps on their group; step 1 always has w = 1.") - 1

        # presenting: half the width each, so the toy's card equations stay at projector size
        left, right = st.columns([1, 1] if presenting else [4, 6], gap="medium")
        with left:
            st.markdown(f"#### Toy: “{TOY_STATE} …” · iteration {toy_run.iteration + 1}")
            toy_fig = toy_stage_figure(toy_trace, toy, stage, step_index, TOY_WORDS, TOY_STATE, narrow=True)
            # presenting: the chart and the stage's card in two tabs, the chart shown, so both columns fit one screen
            chart_box, card_box = st.tabs(["Chart", "Explanation"]) if presenting else (st.container(), st.container())
            if presenting:
                toy_fig.update_layout(height=PRESENT_TOY_CHART_PX)
            chart_box.plotly_chart(toy_fig, key=f"toy_chart_{stage}")
            with card_box, st.container(border=True, key=f"card_toy_{stage}"):
                st.markdown(f"**{stage + 1}. {name}**")
                latex_lines(explain.stage_latex(stage, toy_trace, step_index, toy)[:3])
                st.markdown(explain.stage_text(stage, toy_trace, step_index, toy))
                if explain.empty_until_more_updates(stage, toy_trace, step_index) and st.button(
                        explain.SHOW_MU_LABEL, key=f"show_mu_{stage}", on_click=show_more_updates,
                        help="Sets μ in the sidebar: both policies take a second update on their group."):
                    st.rerun()  # μ is drawn in the sidebar, outside this fragment: the whole page takes the new value

        with right:
            if first_run and lm_run is not None:
                st.markdown(f"#### {lm_run.policy.name} · iteration {lm_run.iteration + 1}")
                st.caption("Sampling its group …")
                return
            if trace is None:
                st.markdown("#### Language model")
                st.error(lm_error, icon="🚫")
            else:
                policy = lm_run.policy
                st.markdown(f"#### {policy.name} · iteration {lm_run.iteration + 1}")
                if presenting:  # the task's full description would push the chart off the screen
                    st.caption(f"Prompt: **{prompts[0]}** · task: {task.title}")
                else:
                    st.caption(f"Prompt: **{prompts[0]}**" + (" (sent through the chat template)" if loaded.chat
                                                               else "") + f" · task: {task.title} — {task.description}")
                logp_after = None
                if name == "Update":
                    logp_after = policy.log_probs_under(trace.group, lm_settings.temperature, trace.state_after)
                # the notices under the chart, known first: presenting, the chart leaves them their room
                notices = []
                if trace.all_rewards_equal and stage >= STAGES.index("Advantages"):
                    notices.append((st.warning, "All rewards equal (σ = 0): every advantage is 0, so no policy "
                                    "gradient; only the KL term acts. Try 🎲 New group.", "⚖️"))
                norm_text = explain.gradient_norm_text(trace.steps[step_index])
                if name == "Loss & gradient" and norm_text is not None:
                    notices.append((st.info, norm_text, "📏"))
                if name == "Ratios" and step_index == 0:
                    notices.append((st.info, "At the first update on a fresh group π_θ is π_old, so every ratio is "
                                    "exactly 1 here too.", "ℹ️"))
                # presenting: one screen high at most (long completions show their first tokens); the summary in a tab
                token_fig = lm_view.token_figure(trace, stage, step_index, logp_after, max_height=(
                    PRESENT_LM_MAX_PX - (PRESENT_TABS_PX if name == "Advantages" else 0)
                    - PRESENT_NOTICE_PX * len(notices)) if presenting else None)
                tokens_box = summary_box = st.container()
                if presenting:
                    token_fig.update_layout(height=max(PRESENT_LM_CHART_PX - PRESENT_NOTICE_PX * len(notices),
                                                       token_fig.layout.height))
                    if name == "Advantages":
                        tokens_box, summary_box = st.tabs(["Tokens", "Reward, advantage, length"])
                tokens_box.plotly_chart(token_fig, key=f"lm_tokens_{stage}")
                if name == "Advantages":  # reward, advantage and length: shown once the advantages exist
                    summary_fig = lm_view.summary_figure(trace, true_rewards)
                    if presenting:
                        summary_fig.update_layout(height=PRESENT_LM_CHART_PX - PRESENT_NOTICE_PX * len(notices))
                    summary_box.plotly_chart(summary_fig, key=f"lm_summary_{stage}")
                for show, text, icon in notices:
                    show(text, icon=icon)
        if presenting:  # a projector shows the stepper and the two columns only
            return
        if trace is not None:
            st.dataframe(lm_view.completion_table(trace, step_index, true_rewards, stage), key=f"lm_table_{stage}")
        tour_card(lm_view.tour(name, TASKS[choice["task"]]))

    for stage, view in enumerate(views):
        if view is not None:
            with view:
                stage_view(stage)

    if presenting or trace is None:  # trace is None on the first run too
        return
    policy = lm_run.policy
    # below the stages, so it does not follow them: it shows the update this iteration's Update stage makes
    with st.expander("Next-token distribution at one position: π_old, π_ref, and π_θ after this iteration's update",
                     expanded=True):
        c1, c2, c3 = st.columns([1, 2, 1])
        row = c1.number_input("Completion", 1, trace.group.batch_size, 1, key="lm_row") - 1
        n_tokens = max(int(trace.group.mask[row].sum()), 1)
        position = c2.slider("Token position t", 1, max(n_tokens, 2), 1, key="lm_position",
                             disabled=n_tokens < 2) - 1
        position = min(position, n_tokens - 1)
        k = c3.slider("k", 3, 15, 8, key="lm_topk")
        cache = st.session_state.setdefault("lm_topk_cache", {})
        cache_key = (lm_run.trace_key, row)
        if cache_key not in cache:
            cache.clear()  # one completion's distributions at a time: a session's memory stays small
            T = lm_settings.temperature
            cache[cache_key] = {
                "π_θ": policy.next_token_probs(trace.group, row, T, state=trace.state_after),
                "π_old": policy.next_token_probs(trace.group, row, T, state=trace.state_before),
                "π_ref": policy.next_token_probs(trace.group, row, T, reference=True),
            }
        dists = {"after update" if n == "π_θ" else n: p[position] for n, p in cache[cache_key].items()}
        tokens, series = lm_view.top_k(dists, policy.tokenizer.token_text, k)
        sampled = trace.group.tokens[row][position]
        prefix = "".join(trace.group.tokens[row][:position])
        st.plotly_chart(lm_view.charts.top_k_chart(
            tokens, series, sampled, title=f"After “{prompts[0]}{prefix}”: sampled {sampled!r}"),
            key="lm_topk_chart")
    st.caption(f"Model: {loaded.name}, {loaded.num_parameters / 1e6:.2f}M parameters, "
               f"{sum(p.numel() for p in policy.parameters()):,} trainable in this session; loaded from "
               f"{loaded.source} in {loaded.load_seconds:.1f} s.")
    export_row([("⬇ This iteration of the LM (CSV)", deferred(export.trace_csv, trace), "lm_iteration.csv", True),
                ("⬇ The toy's iteration (CSV)", deferred(export.trace_csv, toy_trace), "toy_iteration.csv", True)],
               export.trl_script(lm_settings, choice["task"]))


side_by_side()
