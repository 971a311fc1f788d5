"""Dr. GRPO's two biases of GRPO: the length of wrong answers, and the 1/sigma weight of too-easy and too-hard prompts.

Liu et al. 2025 ("Understanding R1-Zero-Like Training: A Critical Perspective") point at two terms of GRPO's loss:

- Length: ``loss_type="grpo"`` divides each completion's summed token loss by its own length |o_i|, so a token of a
  long completion weighs 1/|o_i| of the completion's advantage. A wrong answer (A < 0) is pushed down less per token
  the longer it is, so wrong answers drift longer; a right one (A > 0) is pushed up more the shorter it is.
  ``"dr_grpo"`` divides every token by the same constant B x max_completion_length.
- Difficulty: ``scale_rewards="group"`` divides a group's advantages by its reward std. With binary rewards and k
  of G right (p = k / G), sigma = sqrt(G/(G-1) p(1-p)) (Bessel), so prompts with p near 0 or 1, where sigma is
  small, are weighted up by 1/sigma. Dr. GRPO drops the division (``"none"``).

Here the built-in model trains on its sums with each of the two (GRPO: grpo + group; Dr. GRPO: dr_grpo + none;
beta = 0 in both, so only these terms differ), on the same seeds: the same prompts and, at iteration 0, the same
sampled completions, so each seed is a paired comparison. The built-in model has a long "hedging" style
("3+4=6 or 7 or 9", the last number counts) that is often wrong, so the length of wrong answers can move.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from .. import charts
from ..config import Settings
from ..objectives import STD_EPS, group_advantages
from ..policies.loading import load_builtin, make_policy
from ..stepper import StepRun
from ..tasks import ARITHMETIC, Task
from . import Experiment, LabResult, row

# The two objectives compared; everything else is the same Settings.
ARMS: dict[str, dict] = {
    "GRPO": dict(loss_type="grpo", scale_rewards="group"),
    "Dr. GRPO": dict(loss_type="dr_grpo", scale_rewards="none"),
}
ARM_COLORS = {"GRPO": "#d62728", "Dr. GRPO": "#1f77b4"}
BASE = Settings(beta=0.0, group_size=8, lm_lr=3e-4, max_new_tokens=24)


# ----------------------------------------------------------------- the 1/sigma weight, analytically


def group_sigma(p, group_size: int | None = None):
    r"""The reward std of a group of binary rewards with a share p of ones.

    .. math:: \sigma = \sqrt{\tfrac{G}{G-1}\,p(1-p)}\ \ \text{(Bessel, as the advantages use)},\qquad
              \sigma = \sqrt{p(1-p)}\ \ (G \to \infty,\ \texttt{group\_size=None})
    """
    p = np.asarray(p, dtype=np.float64)
    factor = 1.0 if group_size is None else group_size / (group_size - 1)
    return np.sqrt(factor * p * (1 - p))


def sigma_weight(p, group_size: int | None = None):
    r"""How much ``scale_rewards="group"`` multiplies a group's advantages relative to Dr. GRPO's r - mean.

    .. math:: w(p) = \frac{1}{\sigma(p) + 10^{-4}}

    (0 < p < 1; at p = 0 or 1 every advantage is 0 whatever the weight).
    """
    return 1.0 / (group_sigma(p, group_size) + STD_EPS)


def code_weight(k: int, group_size: int) -> float:
    """What ``group_advantages`` actually does to a group with k of G right: A("group") / A("none") of its members."""
    rewards = torch.tensor([1.0] * k + [0.0] * (group_size - k), dtype=torch.float64)
    return float(group_advantages(rewards, group_size, "group")[0] / group_advantages(rewards, group_size, "none")[0])


def total_push(p, group_size: int, scaled: bool):
    r"""Sum of |A_i| over a group with k = pG right: the total advantage a prompt contributes.

    .. math:: \sum_i |A_i| = 2G\,p(1-p)\ \text{unscaled};\qquad \frac{2G\,p(1-p)}{\sigma(p) + 10^{-4}}\ \text{scaled}
    """
    p = np.asarray(p, dtype=np.float64)
    unscaled = 2 * group_size * p * (1 - p)
    return unscaled / (group_sigma(p, group_size) + STD_EPS) if scaled else unscaled


# ----------------------------------------------------------------- training with each objective


def length_run(settings: Settings, iterations: int, prompts_per_iteration: int = 4, loaded=None,
               task: Task = ARITHMETIC) -> dict[str, np.ndarray]:
    """Train a fresh built-in policy with ``settings`` (the LMTraining loop: the task's prompts for (seed, iteration),
    G completions each, one StepRun iteration, advance) and record, per iteration, the summed length and the count
    of wrong (r = 0) and of right (r > 0) completions, and the mean reward."""
    policy = make_policy(loaded or load_builtin(), max_new_tokens=settings.max_new_tokens)
    run = StepRun(policy)
    keys = ("wrong_tokens", "wrong", "right_tokens", "right", "reward")
    out = {k: np.zeros(iterations) for k in keys}
    for it in range(iterations):
        prompts = task.prompts(settings.seed, it, n=prompts_per_iteration)
        trace = run.trace(settings, task.reward, prompts)
        lengths = trace.group.mask.sum(-1).double().numpy()
        right = trace.rewards.numpy() > 0
        out["wrong_tokens"][it], out["wrong"][it] = lengths[~right].sum(), (~right).sum()
        out["right_tokens"][it], out["right"][it] = lengths[right].sum(), right.sum()
        out["reward"][it] = float(trace.rewards.mean())
        run.advance()
    return out


def window_length(run: dict[str, np.ndarray], which: str, start: int, stop: int | None = None) -> float:
    """Mean length of the ``which`` ("wrong" or "right") completions sampled in iterations [start, stop), pooled."""
    count = run[which][start:stop].sum()
    return float(run[f"{which}_tokens"][start:stop].sum() / count) if count else float("nan")


def per_iteration_length(run: dict[str, np.ndarray], which: str) -> list[float | None]:
    return [float(t / n) if n else None for t, n in zip(run[f"{which}_tokens"], run[which])]


def compare(seeds=(0, 1, 2), iterations: int = 40, lr: float = 3e-4, window: int = 10, prompts_per_iteration: int = 4,
            loaded=None) -> dict:
    """Both objectives on each seed; the headline is, per seed, the mean wrong-answer length of the last ``window``
    iterations under GRPO minus under Dr. GRPO. Iteration 0 is the same for both arms (same prompts, same draw),
    so this is also the difference of their growth from the common start."""
    loaded = loaded or load_builtin()
    runs = {arm: {} for arm in ARMS}
    for seed in seeds:
        for arm, knobs in ARMS.items():
            settings = replace(BASE, seed=seed, lm_lr=lr, **knobs)
            runs[arm][seed] = length_run(settings, iterations, prompts_per_iteration, loaded)
    last = slice(iterations - window, None)
    summary = {arm: {seed: {
        "start_wrong": window_length(r, "wrong", 0, 1), "start_right": window_length(r, "right", 0, 1),
        "end_wrong": window_length(r, "wrong", last.start), "end_right": window_length(r, "right", last.start),
        "start_reward": float(r["reward"][0]), "end_reward": float(r["reward"][last].mean()),
    } for seed, r in by_seed.items()} for arm, by_seed in runs.items()}
    wrong_gap = {s: summary["GRPO"][s]["end_wrong"] - summary["Dr. GRPO"][s]["end_wrong"] for s in seeds}
    right_gap = {s: summary["GRPO"][s]["end_right"] - summary["Dr. GRPO"][s]["end_right"] for s in seeds}
    return {"runs": runs, "summary": summary, "wrong_gap": wrong_gap, "right_gap": right_gap, "seeds": tuple(seeds),
            "iterations": iterations, "window": window, "lr": lr, "prompts_per_iteration": prompts_per_iteration}


def runaway_sentence(c: dict) -> str:
    """Which runs' wrong answers at least doubled in length from the common start (a runaway hedge)."""
    s = c["summary"]
    runaways = [f"{arm} on seed {seed} ({s[arm][seed]['start_wrong']:.1f} → {s[arm][seed]['end_wrong']:.1f} tokens)"
                for arm in c["runs"] for seed in c["seeds"]
                if s[arm][seed]["end_wrong"] >= 2 * s[arm][seed]["start_wrong"]]
    if not runaways:
        return "No run's wrong answers doubled in length."
    return ("Wrong answers at least doubled in length under " + "; ".join(runaways) + ": the hedging style "
            "(\"6 or 7 or 9\", the last number counts) took over. One runaway can decide a seed's sign, so the "
            "verdict is the count over seeds, not any one run.")


# ----------------------------------------------------------------- figures


def _smooth(values: list[float | None], window: int) -> list[float | None]:
    return charts.running_mean(values, window)


def length_chart(c: dict) -> "charts.go.Figure":
    """Mean length of wrong (solid) and right (dotted) completions per iteration, pooled over seeds, smoothed."""
    x = list(range(1, c["iterations"] + 1))
    data = []
    for arm, by_seed in c["runs"].items():
        for which, dash in (("wrong", "solid"), ("right", "dot")):
            tokens = sum(r[f"{which}_tokens"] for r in by_seed.values())
            counts = sum(r[which] for r in by_seed.values())
            y = [float(t / n) if n else None for t, n in zip(tokens, counts)]
            data.append(dict(type="scatter", name=f"{arm}: {which} answers", x=x, y=_smooth(y, 5), mode="lines",
                             line=dict(color=ARM_COLORS[arm], dash=dash, width=2.5 if which == "wrong" else 2)))
    return charts._figure(data, "Length of wrong and of right completions as the built-in model trains",
                          subtitle=f"tokens (with end-of-sequence), pooled over seeds "
                                   f"{', '.join(map(str, c['seeds']))}, "
                                   f"running mean of 5 iterations; lr {c['lr']:g}, β = 0",
                          height=420, legend_below=True, xaxis=dict(title="iteration"),
                          yaxis=dict(title="mean completion length (tokens)"))


def seed_gap_chart(c: dict) -> "charts.go.Figure":
    """Per seed: wrong- and right-answer length at the end, GRPO minus Dr. GRPO."""
    seeds = [f"seed {s}" for s in c["seeds"]]
    data = [charts._bar("wrong answers", seeds, list(c["wrong_gap"].values()), charts.NEGATIVE,
                        [charts.signed(v) for v in c["wrong_gap"].values()]),
            charts._bar("right answers", seeds, list(c["right_gap"].values()), charts.POSITIVE,
                        [charts.signed(v) for v in c["right_gap"].values()])]
    return charts._figure(data, f"Length in the last {c['window']} iterations, GRPO minus Dr. GRPO, seed by seed",
                          barmode="group", xaxis=dict(type="category"), yaxis=dict(title="Δ tokens (GRPO − Dr. GRPO)"))


def sigma_weight_chart(group_size: int = 8) -> "charts.go.Figure":
    """1/sigma against p (G -> infinity and Bessel at G), and the total |advantage| per group with and without it."""
    p = np.linspace(0.01, 0.99, 197)
    k = np.arange(1, group_size)
    pk = k / group_size
    data = [
        dict(type="scatter", name="1/σ, σ = √(p(1−p))", x=p.tolist(), y=sigma_weight(p).tolist(), mode="lines",
             line=dict(color="black", width=2)),
        dict(type="scatter", name=f"1/σ of a group of G = {group_size} (k right, Bessel)", x=pk.tolist(),
             y=sigma_weight(pk, group_size).tolist(), mode="markers", marker=dict(color=ARM_COLORS["GRPO"], size=10)),
        dict(type="scatter", name=f"Σ|A_i| with 1/σ (GRPO), G = {group_size}", x=pk.tolist(),
             y=total_push(pk, group_size, True).tolist(), mode="lines+markers",
             line=dict(color=ARM_COLORS["GRPO"], dash="dash"), yaxis="y2"),
        dict(type="scatter", name=f"Σ|A_i| without (Dr. GRPO), G = {group_size}", x=pk.tolist(),
             y=total_push(pk, group_size, False).tolist(), mode="lines+markers",
             line=dict(color=ARM_COLORS["Dr. GRPO"], dash="dash"), yaxis="y2"),
    ]
    return charts._figure(data, "The weight scale_rewards=\"group\" gives a prompt: 1/σ against its success rate p",
                          subtitle="too easy (p → 1) and too hard (p → 0) prompts are weighted up; "
                                   "dashed: the total advantage a group hands out",
                          height=420, legend_below=True, xaxis=dict(title="success rate p (k / G)"),
                          yaxis=dict(title="1/σ", rangemode="tozero"),
                          yaxis2=dict(title="Σ|A_i| per group", overlaying="y", side="right", rangemode="tozero"),
                          margin=dict(r=70))


# ----------------------------------------------------------------- the experiment


def run(seeds=(0, 1, 2, 3, 4), iterations: int = 40, lr: float = 3e-4, window: int = 10, prompts_per_iteration: int = 4,
        group_size: int = 8, loaded=None) -> LabResult:
    """GRPO against Dr. GRPO on the built-in model's sums (the lengths), and 1/sigma against p (analytic)."""
    c = compare(seeds, iterations, lr, window, prompts_per_iteration, loaded)
    n = len(c["seeds"])
    longer = sum(v > 0 for v in c["wrong_gap"].values())
    shorter_right = sum(v < 0 for v in c["right_gap"].values())
    s = c["summary"]
    mean_of = lambda arm, key: float(np.nanmean([s[arm][seed][key] for seed in c["seeds"]]))  # noqa: E731
    weights = {p: float(sigma_weight(p, group_size)) for p in (1 / group_size, 0.5, 1 - 1 / group_size)}
    measured = {p: code_weight(round(p * group_size), group_size) for p in (1 / group_size, 0.5)}
    table = [
        row("seeds where wrong answers end longer under GRPO than Dr. GRPO", "all (wrong answers grow longer)",
            f"{longer} of {n}", "sign over seeds"),
        *[row(f"seed {seed}: wrong-answer length at the end, GRPO vs Dr. GRPO (tokens)", "GRPO longer",
              f"{s['GRPO'][seed]['end_wrong']:.2f} vs {s['Dr. GRPO'][seed]['end_wrong']:.2f}", "sign")
          for seed in c["seeds"]],
        row("wrong-answer length at the end, GRPO − Dr. GRPO (median over seeds, tokens)", "> 0",
            round(float(np.median(list(c["wrong_gap"].values()))), 3), "sign"),
        row("right-answer length at the end, GRPO − Dr. GRPO (median over seeds, tokens)",
            "≤ 0 (short right answers favoured)",
            round(float(np.median(list(c["right_gap"].values()))), 3), "sign"),
        row(f"1/σ at p = 1/{group_size} (G = {group_size}, Bessel; ours: A_group / A_none in the code)",
            round(1 / (math.sqrt(group_size / (group_size - 1) * (1 / group_size) * (1 - 1 / group_size))
                       + STD_EPS), 6),
            round(measured[1 / group_size], 6), "1e-6"),
        row(f"1/σ at p = 1/2 (G = {group_size}; ours: A_group / A_none in the code)",
            round(1 / (math.sqrt(group_size / (group_size - 1) / 4) + STD_EPS), 6),
            round(measured[0.5], 6), "1e-6"),
    ]
    text = [
        f"{n} seeds × {c['iterations']} iterations × {c['prompts_per_iteration']} sums × G = {BASE.group_size}, lr "
        f"{c['lr']:g}, β = 0. Wrong answers start at {mean_of('GRPO', 'start_wrong'):.2f} tokens (iteration 1, the "
        f"same in both arms) and end (last {c['window']} iterations) at {mean_of('GRPO', 'end_wrong'):.2f} under GRPO "
        f"and {mean_of('Dr. GRPO', 'end_wrong'):.2f} under Dr. GRPO (means over seeds); right answers at "
        f"{mean_of('GRPO', 'end_right'):.2f} and {mean_of('Dr. GRPO', 'end_right'):.2f}.",
        f"Wrong answers end longer under GRPO on {longer} of {n} seeds (GRPO − Dr. GRPO: "
        + ", ".join(f"{v:+.2f}" for v in c["wrong_gap"].values()) + " tokens); right answers end shorter under GRPO on "
        f"{shorter_right} of {n} (" + ", ".join(f"{v:+.2f}" for v in c["right_gap"].values()) + ").",
        runaway_sentence(c),
        f"Mean reward over the last {c['window']} iterations: {mean_of('GRPO', 'end_reward'):.2f} (GRPO) and "
        f"{mean_of('Dr. GRPO', 'end_reward'):.2f} (Dr. GRPO), from {mean_of('GRPO', 'start_reward'):.2f}.",
        f"With scale_rewards=\"group\" a group of G = {group_size} with 1 right answer (p = 1/{group_size}) or "
        f"{group_size - 1} has its advantages multiplied by 1/σ = {weights[1 / group_size]:.3f}, one with half right "
        f"by {weights[0.5]:.3f}: too-hard and too-easy prompts weigh {weights[1 / group_size] / weights[0.5]:.2f}× as "
        "much per unit of reward difference. Dr. GRPO's r − mean leaves them as they are.",
    ]
    figures = [length_chart(c), seed_gap_chart(c), sigma_weight_chart(group_size)]
    return LabResult(figures=figures, table=table, text=text)


EXPERIMENT = Experiment(
    key="length_bias",
    title="5. Dr. GRPO: length bias and the 1/σ weight",
    claim="GRPO's per-completion length normalization penalizes long wrong answers less per token, so wrong answers "
          "grow longer than under Dr. GRPO's constant denominator; dividing by the group's σ weights too-easy and "
          "too-hard prompts (p near 0 or 1) up by 1/σ.",
    source="Liu et al. 2025, “Understanding R1-Zero-Like Training: A Critical Perspective” (Dr. GRPO)",
    link="https://arxiv.org/abs/2503.20783",
    run=run,
    seconds=80.0,
)
