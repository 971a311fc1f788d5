"""Step through one GRPO iteration of the three-word toy, stage by stage."""

import streamlit as st

from grpo_viz import charts, deck, explain, export
from grpo_viz.toy_view import toy_stage_figure
from grpo_viz.config import TOY_STATE, TOY_WORDS
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.predict import PREDICTING_STAGES, prediction
from grpo_viz.stages import GRPO_STAGES
from grpo_viz.stepper import STAGES, StepRun
from grpo_viz.tasks import word_reward
from grpo_viz.ui import (
    autoplay_controls,
    autoplay_due,
    chart_style,
    compact_page,
    deferred,
    export_row,
    latex_lines,
    PRESENT_CHART_PX,
    presentation_on,
    presentation_toggle,
    replay_from_url,
    settings_notices,
    settings_sidebar,
    stage_cursor,
    tour_card,
)
from grpo_viz.ui.stepping import stage_tabs

GLOSSARY = "\n".join(f"- **{symbol}**: {meaning}" for symbol, meaning in explain.SYMBOLS.items())

compact_page()
settings = settings_sidebar(wait_for_first_chart=True)
reward_fn = word_reward(TOY_WORDS, settings.rewards)

if "toy_run" not in st.session_state:
    st.session_state.toy_run = StepRun(
        ToyPolicy(), describe=lambda p: {f"p({w})": float(q) for w, q in zip(p.words, p.probs(settings.temperature))}
    )
run: StepRun = st.session_state.toy_run
policy: ToyPolicy = run.policy
replay_from_url(run, settings, reward_fn)

# room for "Presentation mode", and presenting, for Autoplay and its speed (the title is not shown)
title, play, switch = st.columns([2, 4, 2.6] if presentation_on() else [5, 2.4, 2.6], vertical_alignment="center")
presenting = presentation_toggle(switch)
if presenting:
    with play:
        autoplay_seconds = autoplay_controls()
else:
    title.markdown("## Step through one GRPO iteration")
    autoplay_seconds = None
(title if presenting else play).toggle(
    "🤔 Predict first", key="predict", bind="query-params",
    help="At Advantages, Clip and Update a question comes before the numbers: answer it, then Next reveals the "
         "answer and scores it. Presenting, it is a question to the room, answered by the next key press.")
settings_notices(settings)
predicting = bool(st.session_state.get("predict"))


def show_more_updates() -> None:
    st.session_state.mu = explain.SHOW_MU


def question_key(stage: int) -> tuple:
    """One question per stage of one drawn group."""
    return run.iteration, run.draw, stage


def hold_for_prediction() -> bool:
    """Next on a stage whose question is still open reveals and scores the answer instead of moving on."""
    asked = st.session_state.get("open_question")
    stage = st.session_state.get("stage", 0)
    if not st.session_state.get("predict") or asked is None or asked[0] != question_key(stage):
        return False
    key, question = asked
    guess = st.session_state.get(f"guess_{'_'.join(map(str, key))}")
    right, sentence = question.score(guess)
    st.session_state.setdefault("answers", {})[key] = (right if guess else None, sentence)
    st.session_state.open_question = None
    return True


def stage_view(stage: int, trace, toy) -> None:
    """One stage: its objective, chart and card (its question first, with Predict first), and its tour and table."""
    record = GRPO_STAGES[stage]
    name = record.name
    with st.container(key=f"objective_{stage}"):  # its size follows the page's width (ui.compact_page)
        st.latex(explain.objective_latex(stage))
    # presenting: a narrower chart and a wider card, whose equations take its full width at projector size
    left, right = st.columns([2, 3] if presenting else [5, 4], gap="medium")

    step_index = trace.mu - 1
    stepped = trace.mu > 1 and record.per_inner_step
    if stepped:
        step_index = (left if presenting else right).slider(
            "Inner update shown (of μ)", 1, trace.mu, trace.mu, key=f"inner_step_{stage}", on_change=same_inner_step,
            args=(stage,), help="μ gradient steps are taken on this one group; step 1 always has w = 1.",
        ) - 1

    question = (prediction(name, trace, step_index, TOY_WORDS, toy.probs_old, toy.probs_after)
                if predicting and name in PREDICTING_STAGES else None)
    answers = st.session_state.setdefault("answers", {})
    if question is not None and question_key(stage) not in answers:
        st.session_state.open_question = (question_key(stage), question)
        with st.container(border=True, key="card_predict"):
            st.markdown(f"#### {stage + 1}. {name}: predict first")
            st.pills(question.question, question.options, selection_mode="multi" if question.multiple else "single",
                     key=f"guess_{'_'.join(map(str, question_key(stage)))}")
            st.caption("A question to the room: the next key press reveals the answer." if presenting else
                       "Choose, then press **Next** (→) to reveal the answer and your score.")
        return
    if predicting:
        st.session_state.open_question = None

    fig = toy_stage_figure(trace, toy, stage, step_index, TOY_WORDS, TOY_STATE)
    trajectory = name == "Update" and trace.mu > 1
    if presenting:  # less the inner-step slider above it; half each when the trajectory shares the column
        fig.update_layout(height=(PRESENT_CHART_PX - (75 if stepped else 0)) // (2 if trajectory else 1))

    with left:
        st.plotly_chart(fig, key=f"stage_chart_{stage}")
        if trajectory:
            trajectory_fig = charts.trajectory_chart(TOY_WORDS, [p.tolist() for p in toy.probs_per_step],
                                                     toy.probs_ref.tolist())
            if presenting:
                trajectory_fig.update_layout(height=PRESENT_CHART_PX // 2)
            st.plotly_chart(trajectory_fig, key=f"trajectory_chart_{stage}")
    with right, st.container(border=True, key=f"card_stage_{stage}"):
        st.markdown(f"#### {stage + 1}. {name}")
        if question is not None:
            right_answer, sentence = answers[question_key(stage)]
            scored = [r for r in answers.values() if r[0] is not None]
            tally = f" Your predictions: {sum(r for r, _ in scored)} of {len(scored)} right." if scored else ""
            st.markdown(("✅ " if right_answer else "❌ " if right_answer is False else "") + sentence + tally)
        latex_lines(explain.stage_latex(stage, trace, step_index, toy))
        st.markdown(explain.stage_text(stage, trace, step_index, toy))
        if explain.empty_until_more_updates(stage, trace, step_index) and st.button(
                explain.SHOW_MU_LABEL, key=f"show_mu_{stage}", on_click=show_more_updates,
                help="Sets μ in the sidebar: the second update on this same group moves the ratios, the clip and "
                     "the KL."):
            st.rerun()  # μ is drawn in the sidebar, outside this fragment: the whole page takes the new value
        if trace.all_rewards_equal and stage >= STAGES.index("Advantages"):
            st.warning("All rewards in this group are equal (σ = 0): every advantage is 0, so this group gives no "
                       "policy gradient. Only the KL term can move the policy.", icon="⚖️")
    if presenting:
        return
    tour_card(explain.TOUR[name])
    table = explain.sample_columns(trace, step_index, stage, toy.probs_after if name == "Update" else None)
    # Plain Markdown, scrolling past ~12 rows: lighter per click than an interactive grid.
    with st.container(height=min(trace.group.batch_size, 12) * 28 + 48, border=False, key=f"sample_table_{stage}"):
        st.markdown(explain.table_markdown(table))


def same_inner_step(stage: int) -> None:
    """The inner-step sliders of the stages that have one move together, as one slider did."""
    value = st.session_state[f"inner_step_{stage}"]
    for k, record in enumerate(GRPO_STAGES):
        if record.per_inner_step:
            st.session_state[f"inner_step_{k}"] = value


@st.fragment(run_every=autoplay_seconds if predicting else None)
def step_through() -> None:
    """Everything a stage changes: every stage of this group, one tab each, stepped in the browser (with Predict
    first, one stage at a time: Next waits for the server to score the guess). Reruns alone, so New group does not
    redraw the sidebar."""
    chart_style(presenting)  # a fragment's rerun is a new thread: its charts' text sizes are set here
    if predicting and autoplay_due(autoplay_seconds):
        st.session_state.stage = (st.session_state.stage + 1) % len(STAGES)
        if st.session_state.stage == 0:
            run.advance()
        st.session_state.stage_picker = st.session_state.stage
    if not presenting:
        st.caption(
            f"The state is **“{TOY_STATE} …”** and the policy chooses the next word among "
            + ", ".join(f"**{w}**" for w in TOY_WORDS)
            + f". Iteration {run.iteration + 1}, group draw {run.draw + 1}. Every number below can be checked by hand."
        )
    trace = run.trace(settings, reward_fn)
    toy = explain.toy_numbers(trace, policy)

    cursor = dict(key="stage", on_new_group=run.new_group, on_reset=run.reset, last_actions=(
        ("Next iteration ▶", run.advance, "Keep the updated policy and sample a new group from it (→ key)"),))
    if predicting:
        stage_view(stage_cursor(STAGES, hold_next=hold_for_prediction, **cursor), trace, toy)
    else:
        views, _ = stage_tabs(STAGES, autoplay_seconds=autoplay_seconds, **cursor)
        for stage, view in enumerate(views):
            if view is not None:
                with view:
                    stage_view(stage, trace, toy)
    st.query_params["iteration"] = str(run.iteration + 1)
    st.query_params["draw"] = str(run.draw + 1)
    if presenting:
        return
    with st.expander("What every symbol means"):
        st.markdown(GLOSSARY)
    # the page kept while the session lives: the download holds it weakly and builds the file only when clicked
    st.session_state.deck_view = deck.IterationView(trace, toy, run.iteration, run.draw)
    export_row(
        [("⬇ Download as a page", deferred(deck.iteration_page, st.session_state.deck_view), "grpo_iteration.html",
          True),
         ("⬇ This iteration (CSV)", deferred(export.trace_csv, trace), "grpo_iteration.csv", True),
         ("⬇ Iteration history (CSV)", deferred(export.history_csv, run, "history"), "grpo_history.csv",
          bool(run.history))],
        export.trl_script(settings),
    )


step_through()
