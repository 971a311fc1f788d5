"""Reward-model over-optimization: the proxy reward keeps rising while the true (gold) reward rises, then falls.

Gao, Schulman and Hilton (2022) optimize policies against a proxy reward model and score them with a gold one:
measured against d = sqrt(KL(pi || pi_init)), the proxy rises monotonically while the gold reward peaks and then
declines, and a KL penalty mostly stops a run earlier on that same curve rather than changing its shape.
Here: the toy trained on the Training page's proxy (barked overrated by 1.5), GRPO and PPO at a weak and a strong
beta (the reward-hacking sweep, ``grpo_viz.training.hacking_sweep``), the gold reward being the toy's true one.
"""

from __future__ import annotations

from ..config import Settings
from ..hacking import overoptimization_chart
from ..training import DEFAULT_ITERATIONS, hacking_outcomes, hacking_sweep, proxy_rewards
from . import Experiment, LabResult, row

BETAS = {"GRPO": (0.04, 3.0), "PPO": (0.05, 1.5)}


def gold_peak(run) -> tuple[float, float, int]:
    """(the highest gold reward E_pi[r_true] along the run, sqrt(KL) there, its iteration)."""
    i = run["expected_reward"].idxmax()
    return float(run["expected_reward"][i]), float(run["sqrt_kl"][i]), int(run["iteration"][i])


def run(iterations: int = DEFAULT_ITERATIONS) -> LabResult:
    """Four proxy runs: per run, the gold reward's peak (height, sqrt KL, iteration) against its start and end."""
    settings = Settings()
    proxy = proxy_rewards(settings.rewards)
    sweep = hacking_sweep(settings, BETAS, iterations, proxy)
    outcomes = {(o.algorithm, o.beta): o for o in hacking_outcomes(sweep, settings.rewards, proxy)}
    table, text = [], []
    for (algorithm, beta), group in sweep.groupby(["algorithm", "beta"], sort=True):
        o = outcomes[(algorithm, beta)]
        peak, at_kl, at = gold_peak(group.reset_index(drop=True))
        table += [
            row(f"{algorithm}, β = {beta:g}: proxy reward, start → end", "rises", f"{o.proxy_start:.3f} → {o.proxy_end:.3f}",
                "sign"),
            row(f"{algorithm}, β = {beta:g}: gold reward, start → peak (√KL) → end", "rises, then falls",
                f"{o.true_start:.3f} → {peak:.3f} (√KL {at_kl:.3f}, iteration {at}) → {o.true_end:.3f}", "sign"),
        ]
        rises_then_falls = peak > o.true_start + 1e-6 and o.true_end < peak - 1e-6
        shape = "rises, then falls" if rises_then_falls else "only falls" if o.true_end < o.true_start else "does not fall"
        sentence = (f"{algorithm} with β = {beta:g}: the proxy goes {o.proxy_start:.3f} → {o.proxy_end:.3f}, while "
                    f"the gold reward {shape} ({o.true_start:.3f} → peak {peak:.3f} at √KL {at_kl:.3f} → "
                    f"{o.true_end:.3f} at √KL {o.kl_end ** 0.5:.3f}).")
        if rises_then_falls:
            first, top = group.iloc[0], group[group["iteration"] == at].iloc[0]
            sentence += (" On the way up the policy moves mass both rewards agree on: " + ", ".join(
                f"π({w}) {first[f'p_{w}']:.3f} → {top[f'p_{w}']:.3f}" for w in ("sat", "slept", "barked")) + ".")
        text.append(sentence)
    return LabResult(figures=[overoptimization_chart(sweep, title="Proxy and gold reward against √KL(π ‖ π_ref)")],
                     table=table, text=text)


EXPERIMENT = Experiment(
    key="over_optimization",
    title="8. Over-optimization",
    claim="Optimizing a proxy reward model, the proxy rises with √KL while the gold reward first rises, then falls; "
          "a KL penalty stops the run earlier on that curve.",
    source="Gao, Schulman and Hilton 2022, “Scaling Laws for Reward Model Overoptimization”",
    link="https://arxiv.org/abs/2210.10760",
    run=run,
    seconds=3.0,
)
