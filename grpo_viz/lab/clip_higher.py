"""DAPO's clip-higher: a larger epsilon_high lets a low-probability word rise faster.

The clip keeps pi_theta(w) / pi_old(w) <= 1 + eps_high for a word with positive advantage, so one update can
raise pi_old = 0.01 only to 0.012 (eps 0.2) and pi_old = 0.9 to 1.08, which the simplex caps at 1. On the toy
the best word starts at probability 0.05; small SGD steps (lr 0.15) over mu = 8 inner updates let the ratio
reach the clip edge gradually, so the edge, not the step size, stops it.
"""

from __future__ import annotations

import torch

from .. import charts
from ..config import TOY_WORDS, Settings
from .toy_batch import mean_and_se, table_rewards, train_seeds
from . import Experiment, LabResult, row

START = (0.05, 0.15, 0.8)  # the best word ("sat") is the rare one
REWARDS = (1.0, 0.0, 0.0)
SETTINGS = Settings(beta=0.0, mu=8, lr=0.15, group_size=8)
EPSILONS_HIGH = (0.2, 0.28)


def one_update_ceiling(p_old: float, epsilon_high: float) -> float:
    r"""The most one clipped update can give a word with A > 0: min(1, (1 + eps_high) pi_old(w))."""
    return min(1.0, (1 + epsilon_high) * p_old)


def curves_chart(runs: dict[str, dict[str, torch.Tensor]], column: str, title: str, y_title: str) -> "charts.go.Figure":
    """Seed-mean of one quantity over iterations, one line per eps_high, with a ±1 s.e. band."""
    colors = ("#d62728", "#2ca02c")
    data = []
    for (label, series), color in zip(runs.items(), colors):
        y = series[column]
        mean, se = y.mean(dim=1), y.std(dim=1) / y.shape[1] ** 0.5
        x = list(range(len(mean)))
        data += [dict(type="scatter", name=label, x=x, y=mean.tolist(), mode="lines", line=dict(color=color, width=3),
                      error_y=dict(type="data", array=se.tolist(), visible=True, thickness=1))]
    return charts._figure(data, title, height=340, legend_below=True, xaxis=dict(title="iteration"),
                          yaxis=dict(title=y_title))


def run(seeds: int = 8, iterations: int = 15, at: int = 10) -> LabResult:
    """eps_high 0.2 vs 0.28 from the same seeds: p(best, rare word) and entropy over training, compared at ``at``."""
    runs = {}
    for eps in EPSILONS_HIGH:
        out = train_seeds(START, table_rewards(REWARDS), Settings(**{**SETTINGS.__dict__, "epsilon_high": eps}),
                          list(range(seeds)), iterations)
        runs[f"ε_high = {eps:g}"] = {"p": out["probs"][:, :, 0], "entropy": out["entropy"], "clip": out["clip_high"]}
    low, high = runs.values()
    gain, gain_se = mean_and_se(high["p"][at] - low["p"][at])
    dh, dh_se = mean_and_se(high["entropy"][at] - low["entropy"][at])
    table = [row(f"one update's ceiling from π_old = {p:g}, ε = 0.2", paper, one_update_ceiling(p, 0.2), "exact")
             for p, paper in ((0.01, 0.012), (0.9, 1.08))]
    table[-1]["quantity"] += " (1.08 before the cap at 1)"
    table += [row(f"π(sat) at iteration {at}, ε_high 0.28 − 0.2 ({seeds} paired seeds)", "> 0", round(gain, 4),
                  f"s.e. {gain_se:.4f}"),
              row(f"entropy at iteration {at}, ε_high 0.28 − 0.2 (nats)", "> 0", round(dh, 4), f"s.e. {dh_se:.4f}")]
    p_low, p_high = float(low["p"][at].mean()), float(high["p"][at].mean())
    text = [
        f"From π = ({', '.join(f'{p:g}' for p in START)}) with “sat” the only rewarded word, after {at} iterations "
        f"(μ = {SETTINGS.mu}, η = {SETTINGS.lr:g}) π(sat) averages {p_low:.3f} with ε_high = 0.2 and {p_high:.3f} with 0.28 "
        f"over {seeds} seeds: {gain:+.3f} ± {gain_se:.3f} (s.e. of the paired difference).",
        f"Entropy at iteration {at}: {float(low['entropy'][at].mean()):.3f} vs {float(high['entropy'][at].mean()):.3f} nats "
        f"({dh:+.3f} ± {dh_se:.3f}). On three words, moving mass to the rare best word first raises the entropy and then, "
        "as it takes over, lowers it: clip-higher gets there sooner, so later it is the one with less entropy.",
        f"High-side clip fraction, mean over the run: {float(low['clip'].mean()):.3f} (0.2) vs {float(high['clip'].mean()):.3f} (0.28).",
    ]
    figures = [curves_chart(runs, "p", "π(sat), the rare best word (mean over seeds ± s.e.)", "probability"),
               curves_chart(runs, "entropy", "Entropy of π_θ (mean over seeds ± s.e.)", "nats")]
    return LabResult(figures=figures, table=table, text=text)


EXPERIMENT = Experiment(
    key="clip_higher",
    title="4. Clip-higher (DAPO)",
    claim="With ε = 0.2 a word at π_old = 0.01 can rise only to 0.012 in one update while one at 0.9 can reach 1.08 (capped "
          "at 1); raising ε_high to 0.28 lets low-probability words grow faster and keeps exploration alive.",
    source="Yu et al. 2025, DAPO (section 3.1, clip-higher)",
    link="https://arxiv.org/abs/2503.14476",
    run=run,
    seconds=3.0,
)
