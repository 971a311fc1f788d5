"""The toy's chart for each stage: the picture beside the formula on every page that steps the toy."""

from __future__ import annotations

import plotly.graph_objects as go

from . import charts
from .objectives import kl_estimate
from .stepper import STAGES, IterationTrace


def toy_stage_figure(trace: IterationTrace, toy, stage: int, step_index: int, words, state: str,
                     narrow: bool = False) -> go.Figure:
    """The toy's chart for ``stage`` of ``trace`` at inner step ``step_index`` (``toy``: explain.toy_numbers).

    ``narrow``: drawn in a half-width column, where the ratios' value labels would run into each other and a
    legend above the plot would cover the title.
    """
    name = STAGES[stage]
    texts = trace.group.texts
    t = trace.steps[step_index].trace
    advantages = trace.advantages.tolist()
    clipped = (t.is_low_clipped | t.is_high_clipped)[:, 0].tolist()
    if name == "Sample group":
        counts = [texts.count(w) / len(texts) for w in words]
        return charts.distribution_chart(words, {"π_θ": toy.probs_old.tolist(), "π_ref": toy.probs_ref.tolist(),
                                                 "group": counts}, title=f"Next word after “{state}”",
                                       subtitle="orange: the words the group drew", legend_below=narrow)
    if name == "Score":
        return charts.group_reward_chart(texts, trace.rewards.tolist(), float(trace.group_mean[0]),
                                         float(trace.group_std[0]), words)
    if name == "Advantages":
        return charts.advantage_chart(texts, advantages)
    if name == "Ratios":
        return charts.ratio_chart(texts, t.ratio[:, 0].tolist(), advantages, clipped, t.epsilon_low, t.epsilon_high,
                                  value_labels=not narrow)
    if name == "Clip":
        return charts.surrogate_chart(texts, t.ratio[:, 0].tolist(), advantages, clipped, t.epsilon_low,
                                      t.epsilon_high)
    if name == "KL":
        kl = t.kl if t.kl is not None else kl_estimate(trace.steps[step_index].logp, trace.ref_logp, "k3")
        return charts.kl_chart(texts, kl[:, 0].tolist(), t.beta)
    if name == "Loss & gradient":
        return charts.gradient_chart(words, toy.grad_logits[step_index].tolist(),
                                     title="Which words the update pushes up or down",
                                     subtitle=f"inner step {step_index + 1} of μ = {trace.mu}")
    return charts.distribution_chart(words, {"π_old": toy.probs_old.tolist(), "after update": toy.probs_after.tolist(),
                                             "π_ref": toy.probs_ref.tolist()}, title="Before and after this iteration's update",
                                   legend_below=narrow)
