"""The reward-hacking sweep drawn and told: reward against KL for several beta, and sentences read off the runs.

Pure (no Streamlit, no torch): takes the stacked histories of ``training.hacking_sweep`` and the
``HackingOutcome`` records of ``training.hacking_outcomes``. The figure is the over-optimization picture of
Gao et al. 2022 ("Scaling laws for reward model overoptimization"): x = sqrt(KL(pi_theta || pi_ref)), y = the
proxy reward the policy is trained on and the true reward it earns, one pair of lines per beta, a marker along
the way every tenth of the run. Every sentence here is built from the numbers of the runs it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from .charts import GUIDE, SUBTITLE_ROOM, _figure, _in_panel, _panels
from .training import HACKED_KEEPS, HELD_KEEPS, HackingOutcome

# One colour per beta of a panel, smallest beta first (the same rank has the same colour in both panels).
BETA_COLORS = ("#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
MARKS_PER_RUN = 10  # markers along a run: one every tenth of its iterations, the last one larger
OVEROPTIMIZATION_TITLE = "Trained on the proxy: reward against √KL(π_θ ‖ π_ref)"


def _marker_sizes(iterations: Sequence[int]) -> list[int]:
    last = max(iterations) if len(iterations) else 0
    every = max(1, round(last / MARKS_PER_RUN))
    return [12 if it == last else 7 if it % every == 0 else 0 for it in iterations]


def overoptimization_chart(sweep: pd.DataFrame, title: str = OVEROPTIMIZATION_TITLE,
                           subtitle: str | None = None) -> go.Figure:
    """One panel per algorithm: for each beta, the proxy reward (solid) and the true reward (dotted) against
    sqrt(KL(pi_theta || pi_ref)) along training, with a marker every tenth of the run and a larger one at its end.

    A dashed line marks the true reward of pi_ref, where every run starts (at KL = 0).
    """
    algorithms = [a for a in ("GRPO", "PPO") if a in set(sweep["algorithm"])]
    iterations = int(sweep["iteration"].max()) if len(sweep) else 0
    subtitle = subtitle or (f"solid: proxy · dotted: true · dashed: true at π_ref · dots every "
                            f"{max(1, round(iterations / MARKS_PER_RUN))} iterations")
    data, shapes = [], []
    for col, algorithm in enumerate(algorithms, start=1):
        runs = sweep[sweep["algorithm"] == algorithm]
        for rank, (beta, run) in enumerate(runs.groupby("beta", sort=True)):
            color = BETA_COLORS[rank % len(BETA_COLORS)]
            label = f"{algorithm} · β = {beta:g}"
            x = [float(v) for v in run["sqrt_kl"]]
            its = [int(v) for v in run["iteration"]]
            sizes = _marker_sizes(its)
            for column, name, dash in (("expected_train_reward", "proxy", "solid"), ("expected_reward", "true", "dot")):
                data.append(_in_panel(dict(
                    type="scatter", name=label, legendgroup=label, showlegend=name == "proxy", mode="lines+markers",
                    x=x, y=[float(v) for v in run[column]], customdata=its,
                    line=dict(color=color, width=3, dash=dash), marker=dict(color=color, size=sizes),
                    hovertemplate=("iteration %{customdata}<br>√KL = %{x:.3f}<br>" + name
                                   + " E[r] = %{y:.3f}<extra>" + label + "</extra>")), col))
        start = float(runs["expected_reward"].iloc[0])
        suffix = "" if col == 1 else str(col)
        shapes.append(dict(type="line", xref=f"x{suffix} domain", x0=0, x1=1, yref=f"y{suffix}", y0=start, y1=start,
                           layer="below", line=dict(color=GUIDE, dash="dash", width=1.5)))
    top = float(sweep["sqrt_kl"].max()) if len(sweep) else 1.0
    layout = _panels(algorithms, 0.06, shared_yaxes=True, x_title="√KL(π_θ ‖ π_ref)", y_title="expected reward")
    for name in [k for k in layout if k.startswith("xaxis")]:
        layout[name]["range"] = [-0.02, max(top, 0.1) * 1.05]
    return _figure(data, title, height=420, legend_below=True, subtitle=subtitle, top_room=SUBTITLE_ROOM,
                   shapes=shapes, **layout)


def verdict(outcome: HackingOutcome) -> str:
    """What beta did to one proxy run, in words: held it, slowed the hack, did not stop it."""
    return {"held": "holds it", "partly held": "slows the hack but does not hold it",
            "hacked": "does not stop the hack", "nothing to hack": "has nothing to hold it against"}[outcome.regime]


def outcome_sentence(outcome: HackingOutcome, word: str) -> str:
    """"With β = X, GRPO's true reward ends at Y (start Z) and π(word) at W (start V): ..." from one run."""
    o = outcome
    kept = "" if o.kept is None else f", keeps {o.kept:.0%}"
    return (f"With **β = {o.beta:g}**, {o.algorithm}'s true E[r] ends at **{o.true_end:.3f}** (start "
            f"{o.true_start:.3f}{kept}) and π({word}) at **{o.p_end:.3f}** (start {o.p_start:.3f}), KL "
            f"{o.kl_end:.3f}: β {verdict(o)}.")


def regime_rule(outcomes: Sequence[HackingOutcome], word: str) -> str:
    """What "held" and "hacked" mean here, with the numbers of these runs."""
    o = outcomes[0]
    if o.kept is None:
        return (f"Here the proxy's favourite word is truly worth {o.floor:.3f}, no less than π_ref's "
                f"{o.true_start:.3f}: training on the proxy cannot lower the true reward.")
    return (f"*Keeps* is how much of the true reward it could lose a run still has: 100% at π_ref's "
            f"{o.true_start:.3f}, 0% at {o.floor:.3f}, the proxy's favourite word alone. β **holds** a run that keeps "
            f"at least {HELD_KEEPS:.0%}; a run that keeps less than {HACKED_KEEPS:.0%} is **hacked**.")


def smallest_holding(outcomes: Sequence[HackingOutcome], algorithm: str) -> HackingOutcome | None:
    held = [o for o in outcomes if o.algorithm == algorithm and o.regime == "held"]
    return min(held, key=lambda o: o.beta) if held else None


def comparison_sentence(outcomes: Sequence[HackingOutcome]) -> str:
    """The smallest beta of the sweep that holds, per algorithm, and any beta both ran that did different things
    to them (only what the runs show)."""
    parts = []
    for algorithm in ("GRPO", "PPO"):
        betas = sorted(o.beta for o in outcomes if o.algorithm == algorithm)
        if not betas:
            continue
        held = smallest_holding(outcomes, algorithm)
        parts.append(f"the smallest β that holds {algorithm} is **{held.beta:g}**" if held is not None
                     else f"no β of {algorithm}'s ({', '.join(f'{b:g}' for b in betas)}) holds the policy")
    text = ("In this sweep " + " and ".join(parts) + ".") if parts else ""
    by_run = {(o.algorithm, o.beta): o for o in outcomes}
    for beta in sorted({o.beta for o in outcomes}):
        grpo, ppo = by_run.get(("GRPO", beta)), by_run.get(("PPO", beta))
        if grpo is not None and ppo is not None and grpo.regime != ppo.regime:
            text += (f" The same β = {beta:g} leaves PPO {ppo.regime} (keeps {ppo.kept:.0%}) and GRPO "
                     f"{grpo.regime} (keeps {grpo.kept:.0%}).")
    return text


def scale_sentence(outcomes: Sequence[HackingOutcome]) -> str:
    """GRPO's KL weight in reward units, beta * sigma, for GRPO's largest beta of the sweep (empty without GRPO)."""
    grpo = [o for o in outcomes if o.algorithm == "GRPO" and o.beta > 0]
    if not grpo:
        return ""
    o = max(grpo, key=lambda o: o.beta)
    text = ("Why GRPO needs a larger β: it divides r − mean by the group's spread σ but adds β·KL to the loss "
            "unscaled, so measured against the reward its KL weight is β·σ; PPO puts −β·KL in the reward beside r, "
            "so its β is already in reward units. ")
    if o.spread_start <= 1e-9:
        return text + "Here the proxy gives every word the same reward (σ = 0): GRPO has no push to hold."
    change = ("fell" if o.spread_end < o.spread_start - 5e-4 else "rose" if o.spread_end > o.spread_start + 5e-4
              else "stayed")
    return text + (f"Under π_ref the proxy's spread is σ = {o.spread_start:.3f}: GRPO's β = {o.beta:g} weighs the "
                   f"KL like PPO's β ≈ {o.beta * o.spread_start:.2f}. Along that run σ {change} to "
                   f"{o.spread_end:.3f} (β·σ ≈ {o.beta * o.spread_end:.2f}).")


def outcome_table(outcomes: Sequence[HackingOutcome], word: str) -> pd.DataFrame:
    """One row per run: beta, the proxy and true expected rewards, pi(word) and KL at the end, the share of the
    true reward kept (in %) and the verdict."""
    return pd.DataFrame([{
        "algorithm": o.algorithm, "β": o.beta, "proxy E[r]": o.proxy_end, "true E[r]": o.true_end,
        f"π({word})": o.p_end, "KL": o.kl_end,
        "kept": None if o.kept is None else 100 * o.kept, "verdict": o.regime,
    } for o in outcomes])


__all__ = ["BETA_COLORS", "OVEROPTIMIZATION_TITLE", "comparison_sentence", "outcome_sentence", "outcome_table",
           "overoptimization_chart", "regime_rule", "scale_sentence", "smallest_holding"]
