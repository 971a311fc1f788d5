"""The same sampled group under PPO and under GRPO, stage by stage, side by side."""

import streamlit as st
import torch

from grpo_viz import charts, explain, export
from grpo_viz.config import TOY_STATE, TOY_WORDS
from grpo_viz.explain_ppo import COMPARE_STAGES, GRPO_STAGE, PPO_TOUR, compare_table, ppo_latex, what_differs
from grpo_viz.policies.toy import ToyPolicy, probs_from_logits
from grpo_viz.ppo import CompareRun
from grpo_viz.stages import COMPARE_STAGES as COMPARE_STAGE_RECORDS, CompareStage
from grpo_viz.tasks import word_reward
from grpo_viz.ui import (
    chart_style, compact_page, deferred, export_row, latex_lines, ppo_sidebar, presentation_toggle, settings_notices,
    settings_sidebar, tour_card,
)
from grpo_viz.ui.stepping import stage_tabs

compact_page()
PRESENT_COMPARE_CHART_PX = 290  # presenting: two charts under the stage's sentence, at 720 px
settings = ppo_sidebar(settings_sidebar(wait_for_first_chart=True))

if "compare_run" not in st.session_state:
    st.session_state.compare_run = CompareRun(ToyPolicy())
run: CompareRun = st.session_state.compare_run
policy: ToyPolicy = run.policy

title, switch = st.columns([5, 2.6], vertical_alignment="center")  # room for "Presentation mode"
presenting = presentation_toggle(switch)
chart_style(presenting, figure_px=480)  # two charts side by side, each about half the page
if not presenting:
    title.markdown("## PPO vs GRPO on the same group")
    st.caption(
        f"State **“{TOY_STATE} …”**, next word among " + ", ".join(f"**{w}**" for w in TOY_WORDS)
        + f". Iteration {run.iteration + 1}, group draw {run.draw + 1}. Both algorithms start from the same π_θ and "
        "see the same samples; PPO also has a critic V(s). Shared settings: β, ε (PPO clips at ε_low), η, G, T, seed; "
        "PPO's own knobs are under *PPO options* in the sidebar."
    )
settings_notices(settings)

reward_fn = word_reward(TOY_WORDS, settings.rewards)
try:
    grpo, ppo = run.traces(settings, reward_fn)
except ValueError as problem:  # settings the widgets allow are valid; this guards a hand-edited state
    st.warning(f"These settings cannot be used: {problem}", icon="⚠️")
    st.stop()

texts = grpo.group.texts
T = settings.temperature
toy = explain.toy_numbers(grpo, policy)
probs_ref = probs_from_logits(policy.ref_logits, T).tolist()
probs_old = toy.probs_old.tolist()
ppo_after = probs_from_logits(ppo.state_after[0], T).tolist()
p_last = ppo.epochs[-1].trace
grpo_adv = grpo.advantages.tolist()
ppo_adv = ppo.advantages[:, 0].tolist()


def same_range(*figs, pad=1.3, floor=0.5):
    """Give side-by-side figures one y range, so equal bars look equal."""
    top = max([abs(float(v)) for f in figs for d in f.data if d.type == "bar" for v in (d.y or [])] + [floor]) * pad
    for f in figs:
        f.update_yaxes(range=[-top, top])


def chart_pair(record: CompareStage, g_trace):
    """The stage's charts: (one chart of the group both are given, None, None) or (None, GRPO's, PPO's)."""
    pair = record.charts
    if pair == "group":
        counts = [texts.count(w) / len(texts) for w in TOY_WORDS]
        shared_fig = charts.distribution_chart(
            TOY_WORDS, {"π_θ": probs_old, "π_ref": probs_ref, "group": counts},
            title=f"One group of G = {len(texts)} drawn from π_θ, given to both algorithms")
        if presenting:
            shared_fig.update_layout(height=PRESENT_COMPARE_CHART_PX)
        return shared_fig, None, None
    if pair == "rewards":
        grpo_fig = charts.group_reward_chart(texts, grpo.rewards.tolist(), float(grpo.group_mean[0]),
                                             float(grpo.group_std[0]), TOY_WORDS,
                                             title="GRPO: one scalar reward per completion")
        ppo_fig = charts.ppo_reward_chart(texts, ppo.rewards.tolist(), (-settings.beta * ppo.kl[:, 0]).tolist(),
                                          words=TOY_WORDS)
    elif pair == "kl":
        kl = g_trace.kl[:, 0].tolist() if g_trace.kl is not None else [0.0] * len(texts)
        grpo_fig = charts.kl_chart(texts, kl, settings.beta, title="GRPO: k3 per sample, β·k3 added to the loss")
        ppo_fig = charts.ppo_kl_chart(texts, ppo.kl[:, 0].tolist(), settings.beta, settings.kl_estimator)
    elif pair == "baseline":
        grpo_fig = charts.group_reward_chart(texts, grpo.rewards.tolist(), float(grpo.group_mean[0]),
                                             float(grpo.group_std[0]), TOY_WORDS,
                                             title="GRPO: baseline = the group's mean (± std)")
        ppo_fig = charts.ppo_reward_chart(texts, ppo.rewards.tolist(), (-settings.beta * ppo.kl[:, 0]).tolist(),
                                          value=float(ppo.values[0, 0]), words=TOY_WORDS,
                                          title="PPO: baseline = the critic's V(s)")
    elif pair == "advantages":
        grpo_fig = charts.advantage_chart(texts, grpo_adv, title="GRPO: A = (r − r̄) / σ")
        ppo_fig = charts.ppo_advantage_chart(texts, ppo.advantages_raw[:, 0].tolist(), ppo_adv, ppo.whitened)
        same_range(grpo_fig, ppo_fig)
    elif pair == "ratios":
        grpo_fig = charts.ratio_chart(texts, g_trace.ratio[:, 0].tolist(), grpo_adv,
                                      (g_trace.is_low_clipped | g_trace.is_high_clipped)[:, 0].tolist(),
                                      g_trace.epsilon_low, g_trace.epsilon_high,
                                      title=f"GRPO: ratios at step {grpo.mu} of μ = {grpo.mu}",
                                      value_labels=False)  # half-width: the values ran together; the table has them
        ppo_fig = charts.ratio_chart(texts, p_last.ratio[:, 0].tolist(), ppo_adv, p_last.is_clipped[:, 0].tolist(),
                                     p_last.epsilon, p_last.epsilon,
                                     title=f"PPO: ratios at epoch {ppo.num_epochs} of {ppo.num_epochs}",
                                     value_labels=False)
        lows = [min(f.layout.yaxis.range[0], 1 - settings.epsilon_low - 0.05) for f in (grpo_fig, ppo_fig)]
        highs = [max(f.layout.yaxis.range[1], 1 + settings.epsilon_high + 0.05) for f in (grpo_fig, ppo_fig)]
        for f in (grpo_fig, ppo_fig):
            f.update_yaxes(range=[min(lows), max(highs)])
    elif pair == "gradients":
        grpo_fig = charts.gradient_chart(TOY_WORDS, toy.grad_logits[0].tolist(), title="GRPO: −∂L/∂z, first step")
        ppo_fig = charts.gradient_chart(TOY_WORDS, ppo.epochs[0].grad_params[0].tolist(),
                                        title="PPO: −∂L/∂z, first epoch")
        same_range(grpo_fig, ppo_fig, floor=1e-3, pad=1.35)
    else:
        grpo_fig = charts.distribution_chart(
            TOY_WORDS, {"π_old": probs_old, "after update": toy.probs_after.tolist(), "π_ref": probs_ref},
            title=f"GRPO: after μ = {grpo.mu} step(s)")
        ppo_fig = charts.distribution_chart(
            TOY_WORDS, {"π_old": probs_old, "after update": ppo_after, "π_ref": probs_ref},
            title=f"PPO: after {ppo.num_epochs} epochs")
    for fig in (grpo_fig, ppo_fig):
        # equal heights, so equal y ranges look equal side by side
        fig.update_layout(height=PRESENT_COMPARE_CHART_PX if presenting else 400)
    return None, grpo_fig, ppo_fig


def sides(algorithm: str, fig):
    """Where one algorithm's chart and equations go: under its name; presenting, in two tabs (the chart shown), as a
    projector has no room for both under the stage's sentence."""
    if not presenting:
        st.markdown(f"##### {algorithm}")
        return st.container(), st.container()
    if fig is None:
        return None, st.expander(f"{algorithm}: the equations with these numbers")
    return st.tabs([algorithm, f"{algorithm}: equations"])


def stage_view(stage: int) -> None:
    """One stage: GRPO's objective with its term boxed, what differs, the chart pair and both sides' equations."""
    record = COMPARE_STAGE_RECORDS[stage]
    name = record.name
    if not presenting:  # on a projector the two charts need its height; the stage bar names the term
        with st.container(key=f"objective_{stage}"):  # its size follows the page's width (ui.compact_page)
            st.latex(explain.objective_latex(GRPO_STAGE[name]))  # GRPO's objective, the stage's term boxed
    st.markdown(f"#### {stage + 1}. {name}")
    st.info("**What differs here.** " + what_differs(stage, grpo, ppo, TOY_WORDS), icon="⚖️")
    # One click fills a stage that the defaults leave empty: GRPO's clip needs a second update on the group, and the
    # KL needs a policy that has left π_ref.
    if record.fill == "more_updates" and grpo.mu == 1:
        st.button(explain.SHOW_MU_LABEL, key="show_mu", on_click=lambda: st.session_state.update(mu=explain.SHOW_MU),
                  help="Sets μ in the sidebar: GRPO's second update on this same group moves its ratios past the clip.")
    elif record.fill == "next_iteration" and settings.beta > 0 and torch.equal(grpo.old_logp, grpo.ref_logp):
        st.button(f"Show iteration {run.iteration + 2} (keep GRPO's update)", key="show_next_iteration",
                  on_click=lambda: run.advance("GRPO"),
                  help="Keeps GRPO's update of this iteration and samples the next group: π_θ has then left π_ref.")

    grpo_step = grpo.mu - 1 if record.grpo_last_step else 0
    shared_fig, grpo_fig, ppo_fig = chart_pair(record, grpo.steps[grpo_step].trace)
    if shared_fig is not None:
        st.plotly_chart(shared_fig, key=f"shared_chart_{stage}")
    left, right = st.columns(2, gap="medium")
    all_lines = explain.stage_latex(GRPO_STAGE[name], grpo, grpo_step, toy)
    grpo_lines = [line for start, stop in record.grpo_lines for line in all_lines[start:stop]]
    with left:
        chart_box, card_box = sides("GRPO", grpo_fig)
        if grpo_fig is not None:
            chart_box.plotly_chart(grpo_fig, key=f"grpo_chart_{stage}")
        with card_box, st.container(border=True, key=f"card_grpo_{stage}"):
            latex_lines(grpo_lines[:9])  # all of the update's lines: its z and π, one word a line, and with μ > 1
            # which inner step the z lines are
    with right:
        chart_box, card_box = sides("PPO", ppo_fig)
        if ppo_fig is not None:
            chart_box.plotly_chart(ppo_fig, key=f"ppo_chart_{stage}")
        with card_box, st.container(border=True, key=f"card_ppo_{stage}"):
            latex_lines(ppo_latex(stage, ppo, TOY_WORDS, policy.ref_logits))

    if grpo.all_rewards_equal and stage >= COMPARE_STAGES.index("Advantages"):
        st.warning("All rewards in this group are equal: GRPO's advantages are all 0 (σ = 0), so GRPO gets no policy "
                   "gradient from it. PPO's advantages come from rew − V and whitening, so they can still differ "
                   "from 0 through the KL part of the reward.", icon="⚖️")
    if not presenting:
        tour_card(PPO_TOUR[name])


# Every stage of this group is on the page, each in its own container; Back, Next, the stage bar and the keys
# show one without asking the server (ui.stage_tabs).
views, _ = stage_tabs(
    COMPARE_STAGES, key="cmp_stage",
    last_actions=(
        ("Keep GRPO's update ▶", lambda: run.advance("GRPO"),
         "Keep GRPO's updated policy (and the critic's update) and sample a new group from it (→ key)"),
        ("Keep PPO's update ▶", lambda: run.advance("PPO"),
         "Keep PPO's updated policy and critic and sample a new group from it"),
    ),
    on_new_group=run.new_group,
    reset_help="Back to the starting policy (π_θ = π_ref) and a fresh critic (V = 0)", on_reset=run.reset,
)
for stage, view in enumerate(views):
    if view is not None:
        with view:
            stage_view(stage)

if presenting:
    st.stop()  # a projector shows the stepper, the charts and the equations only
# Built only while open: the table's Arrow conversion was a fifth of every click on this page, for a closed box.
table_box = st.expander("Every number per sample, under both algorithms", key="compare_table_open", on_change="rerun")
if table_box.open:
    table_box.dataframe(compare_table(grpo, ppo), hide_index=True, key="compare_table")
export_row([("⬇ This group under both (CSV)", deferred(export.compare_csv, run), "ppo_vs_grpo.csv", True)],
           export.trl_script(settings))
