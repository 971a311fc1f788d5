"""Spurious rewards: with random rewards and mu > 1, the clip pushes probability onto the word already preferred.

Shao et al. 2025 train Qwen2.5-Math with rewards that carry no information and still see gains; they trace it to
the clip: E[A] = 0 for a random reward, so the unclipped update has no direction, but clipping caps how far a
rare word's ratio can rise more tightly (in probability) than a likely word's, a bias toward the mode.
Here: the toy at its default start (0.3, 0.2, 0.5), rewards 0/1 by a fair coin independent of the word.
"""

from __future__ import annotations

import torch

from .. import charts
from ..config import TOY_START_PROBS, TOY_WORDS, Settings
from .toy_batch import coin_rewards, mean_and_se, train_seeds
from . import Experiment, LabResult, row

MUS = (1, 4)
SETTINGS = Settings(beta=0.0, lr=1.0, group_size=8)


def drift_chart(curves: dict[str, torch.Tensor], word: str, start: float) -> "charts.go.Figure":
    """Seed-mean probability of the preferred word over iterations, one line per mu, with a ±1 s.e. band."""
    colors = ("#7f7f7f", "#d62728")
    data = []
    for (label, p), color in zip(curves.items(), colors):
        mean, se = p.mean(dim=1), p.std(dim=1) / p.shape[1] ** 0.5
        x = list(range(len(mean)))
        data.append(dict(type="scatter", name=label, x=x, y=mean.tolist(), mode="lines", line=dict(color=color, width=3),
                         error_y=dict(type="data", array=se.tolist(), visible=True, thickness=1)))
    return charts._figure(data, f"π({word}) under random 0/1 rewards (mean over seeds ± s.e.)", height=360,
                          legend_below=True, shapes=[charts._hline(start, dash="dot")], xaxis=dict(title="iteration"),
                          yaxis=dict(title="probability"))


def run(seeds: int = 1024, iterations: int = 5) -> LabResult:
    """mu = 1 vs mu = 4 from the same seeds and coins: the change of the preferred word's probability."""
    preferred = max(range(3), key=lambda j: TOY_START_PROBS[j])
    word = TOY_WORDS[preferred]
    curves, stats = {}, {}
    for mu in MUS:
        out = train_seeds(TOY_START_PROBS, coin_rewards(0.5), Settings(**{**SETTINGS.__dict__, "mu": mu}),
                          list(range(seeds)), iterations)
        p = out["probs"][:, :, preferred]
        curves[f"μ = {mu}"] = p
        stats[mu] = (*mean_and_se(p[-1] - p[0]), float(out["clip_high"].mean()), float(out["clip_low"].mean()))
    up1, se1 = stats[1][:2]
    up4, se4 = stats[4][:2]
    # the same seeds draw the same first group and coins under both mu: the paired difference isolates the clip's push
    diff, diff_se = mean_and_se(curves["μ = 4"][-1] - curves["μ = 1"][-1])
    start = TOY_START_PROBS[preferred]
    table = [row(f"Δπ({word}) after {iterations} iterations, μ = 4 ({seeds} seeds)", "> 0", round(up4, 4),
                 f"s.e. {se4:.4f}"),
             row(f"Δπ({word}) after {iterations} iterations, μ = 1 (no clip)", "≈ 0 (no bias)", round(up1, 4),
                 f"s.e. {se1:.4f}"),
             row(f"Δπ({word}), μ = 4 minus μ = 1 (paired seeds)", "> 0", round(diff, 4), f"s.e. {diff_se:.4f}")]
    if diff - 2 * diff_se > 0:
        verdict = "reproduces on the toy: μ = 4 moves more probability onto the preferred word than μ = 1"
    elif diff + 2 * diff_se < 0:
        verdict = ("does not reproduce on the toy: μ = 4 moves probability away from the preferred word, more than two "
                   "standard errors below μ = 1 (a possible cause, not tested here: the low-side clip, which caps how fast a rare word "
                   "with A < 0 falls, outweighing the high-side cap on how fast it rises)")
    else:
        verdict = "is not resolved on the toy: the paired difference is within two standard errors of zero"
    text = [
        f"Random rewards, μ = 4: π({word}) moves from {start:g} by {up4:+.3f} ± {se4:.3f} on average over {seeds} seeds; "
        f"with μ = 1 (ratio 1, the clip never acts) by {up1:+.3f} ± {se1:.3f}; paired, μ = 4 minus μ = 1 is "
        f"{diff:+.4f} ± {diff_se:.4f}. The claim {verdict}.",
        f"Clipped fractions with μ = 4: {stats[4][2]:.3f} high side, {stats[4][3]:.3f} low side; with μ = 1: "
        f"{stats[1][2]:.3f} and {stats[1][3]:.3f}.",
    ]
    return LabResult(figures=[drift_chart(curves, word, start)], table=table, text=text)


EXPERIMENT = Experiment(
    key="spurious",
    title="7. Spurious rewards",
    claim="With random rewards and μ > 1 inner updates, the clip's asymmetry pushes probability onto the word the policy "
          "already prefers; with μ = 1 there is no clip and no such push.",
    source="Shao et al. 2025, “Spurious Rewards: Rethinking Training Signals in RLVR”",
    link="https://arxiv.org/abs/2506.10947",
    run=run,
    seconds=4.0,
)
