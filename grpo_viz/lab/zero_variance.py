"""Zero-variance groups on the built-in model's sums, and DAPO's dynamic sampling with its cost in samples.

With a binary reward and success rate p on a prompt, the G rewards of a group are G independent Bernoulli(p)
draws, so all of them are equal (and every advantage is 0: no policy gradient) with probability
p^G + (1 - p)^G. Prompts differ in p, so over a batch of prompts the share of such groups is the average of
that over prompts, E_q[p_q^G + (1 - p_q)^G], not (E_q p_q)^G + (1 - E_q p_q)^G.

DAPO (Yu et al. 2025) keeps sampling until a prompt's group has spread ("dynamic sampling"); capped at K draws
of G, a prompt costs sum_{k<K} P^k = (1 - P^K) / (1 - P) draws, 1 / (1 - P) without a cap, with
P = p^G + (1 - p)^G.

The measurement: for each prompt, ``samples_for_p`` completions estimate p, and ``pool`` other completions,
cut into disjoint groups of G in the order they were drawn, are the groups counted (and the redraws that
dynamic sampling walks through: draws from one prompt are independent, so the next group of the pool is a
fresh draw).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import charts
from ..policies.loading import load_builtin, make_policy
from ..stepper import make_generator
from ..tasks import ARITHMETIC, Task
from . import Experiment, LabResult, row

GROUP_SIZES = (4, 8, 16)
Z = 3.0  # the tolerance: |measured - formula| within Z combined standard errors
G_COLORS = {4: "#1f77b4", 8: "#ff7f0e", 16: "#2ca02c"}


# ----------------------------------------------------------------- the formulas


def all_equal_probability(p, group_size: int):
    r"""Chance that G Bernoulli(p) rewards are all equal.

    .. math:: P_{=}(p, G) = p^G + (1 - p)^G
    """
    p = np.asarray(p, dtype=np.float64)
    return p ** group_size + (1.0 - p) ** group_size


def expected_draws(p_equal, max_draws: int | None = None):
    r"""Expected group draws per prompt under dynamic sampling (redraw while all rewards are equal, at most K draws).

    .. math:: E[D] = \sum_{k=0}^{K-1} P_{=}^k = \frac{1 - P_{=}^K}{1 - P_{=}}, \qquad
              E[D] = \frac{1}{1 - P_{=}}\ \text{without a cap}
    """
    q = np.asarray(p_equal, dtype=np.float64)
    if max_draws is None:
        return 1.0 / (1.0 - q)
    return np.sum([q ** k for k in range(int(max_draws))], axis=0)


def draws_variance(p_equal: float, max_draws: int) -> float:
    r"""Variance of the number of draws D (a geometric count truncated at K).

    .. math:: P(D = k) = P_{=}^{k-1}(1 - P_{=})\ (k < K),\quad P(D = K) = P_{=}^{K-1};\quad
              \mathrm{Var}\,D = E[D^2] - E[D]^2
    """
    ks = np.arange(1, max_draws + 1, dtype=np.float64)
    probs = p_equal ** (ks - 1) * (1.0 - p_equal)
    probs[-1] = p_equal ** (max_draws - 1)
    mean = float((ks * probs).sum())
    return max(float((ks * ks * probs).sum()) - mean * mean, 0.0)


def formula_standard_error(p_hat: np.ndarray, group_size: int, samples_for_p: int) -> float:
    r"""Standard error of the prompt-averaged formula from the noise in each estimated p (delta method).

    .. math:: \mathrm{se} = \frac{1}{Q}\sqrt{\sum_q \Big(G\,(p_q^{G-1} - (1 - p_q)^{G-1})\Big)^2 \frac{p_q(1 - p_q)}{n}}
    """
    p = np.asarray(p_hat, dtype=np.float64)
    slope = group_size * (p ** (group_size - 1) - (1 - p) ** (group_size - 1))
    return float(math.sqrt(float((slope ** 2 * p * (1 - p) / samples_for_p).sum())) / len(p))


# ----------------------------------------------------------------- the measurement


def sum_prompts(n: int, seed: int = 0, task: Task = ARITHMETIC) -> list[str]:
    """``n`` distinct sums a+b (a, b in 0..9), in an order fixed by ``seed``."""
    pairs = [(a, b) for a in range(10) for b in range(10)]
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    return [task.prompt(*pairs[i], chat=False) for i in order[: min(n, len(pairs))]]


def sample_rewards(policy, prompts: list[str], per_prompt: int, seed: int = 0, temperature: float = 1.0,
                   task: Task = ARITHMETIC) -> np.ndarray:
    """[prompts, per_prompt] exact-match rewards of independent completions, in the order they were drawn."""
    group = policy.sample_group(prompts, per_prompt, make_generator(seed, 3), temperature)
    return task.reward(group).numpy().reshape(len(prompts), per_prompt)


def dynamic_sampling(groups: np.ndarray, max_draws: int) -> list[int]:
    """Walk one prompt's groups in order: each episode draws until a group has spread, at most ``max_draws``
    groups; returns the draws of each complete episode (an episode the pool ran out in is dropped)."""
    spread = groups.max(axis=1) != groups.min(axis=1)
    episodes, draws = [], 0
    for has_spread in spread:
        draws += 1
        if has_spread or draws == max_draws:
            episodes.append(draws)
            draws = 0
    return episodes


def measure(rewards: np.ndarray, samples_for_p: int, group_sizes=GROUP_SIZES, max_draws: int = 8) -> dict:
    """From [prompts, samples_for_p + pool] rewards: p per prompt (first ``samples_for_p`` columns) and, for each G,
    the all-equal share of the pool's disjoint groups beside the formula, and dynamic sampling's draws."""
    p_hat = rewards[:, :samples_for_p].mean(axis=1)
    pool = rewards[:, samples_for_p:]
    out = {"p_hat": p_hat, "p_mean": float(p_hat.mean()), "samples_for_p": samples_for_p,
           "pool": pool.shape[1], "prompts": len(p_hat), "max_draws": max_draws, "G": {}}
    for G in group_sizes:
        usable = pool.shape[1] // G * G
        groups = pool[:, :usable].reshape(len(p_hat), -1, G)  # [prompts, groups, G]
        equal = groups.max(axis=2) == groups.min(axis=2)
        per_prompt_formula = all_equal_probability(p_hat, G)
        formula = float(per_prompt_formula.mean())
        n_groups = int(equal.size)
        se_measured = math.sqrt(formula * (1 - formula) / n_groups)  # binomial, at the predicted rate
        se_formula = formula_standard_error(p_hat, G, samples_for_p)
        episodes = [dynamic_sampling(groups[q], max_draws) for q in range(len(p_hat))]
        per_prompt_draws = [np.mean(e) for e in episodes if e]
        draws_formula = float(expected_draws(per_prompt_formula, max_draws).mean())
        # the per-prompt mean of n_q episodes has variance Var D_q / n_q; the prompts' means are averaged
        draws_se = math.sqrt(sum(draws_variance(float(pq), max_draws) / len(e)
                                 for pq, e in zip(per_prompt_formula, episodes) if e)) / max(len(per_prompt_draws), 1)
        out["G"][G] = {
            "groups": n_groups,
            "all_equal": int(equal.sum()),
            "measured": float(equal.mean()),
            "formula": formula,
            "naive": float(all_equal_probability(p_hat.mean(), G)),
            "se": math.sqrt(se_measured ** 2 + se_formula ** 2),
            "se_measured": se_measured,
            "se_formula": se_formula,
            "episodes": int(sum(len(e) for e in episodes)),
            "draws_measured": float(np.mean(per_prompt_draws)),
            "draws_formula": draws_formula,
            "draws_uncapped": float(expected_draws(per_prompt_formula).mean()),
            "draws_se": draws_se,
            "still_equal_after_cap": float((per_prompt_formula ** max_draws).mean()),
        }
    return out


# ----------------------------------------------------------------- figures


def measured_vs_formula_chart(m: dict) -> "charts.go.Figure":
    """Share of all-equal groups against G: measured (± 2 s.e.) beside E_q[p^G + (1-p)^G] and the (mean p) version."""
    Gs = list(m["G"])
    grid = list(range(2, max(Gs) + 1))
    p = m["p_hat"]
    data = [
        dict(type="scatter", name="E_q[p^G + (1−p)^G] (each prompt's p)", x=grid,
             y=[float(all_equal_probability(p, g).mean()) for g in grid], mode="lines",
             line=dict(color="black", width=2)),
        dict(type="scatter", name="p̄^G + (1−p̄)^G (mean p, wrong)", x=grid,
             y=[float(all_equal_probability(p.mean(), g)) for g in grid], mode="lines",
             line=dict(color=charts.GUIDE, dash="dash", width=2)),
        dict(type="scatter", name="measured (± 2 s.e.)", x=Gs, y=[m["G"][g]["measured"] for g in Gs], mode="markers",
             marker=dict(color=charts.NEGATIVE, size=11),
             error_y=dict(type="data", array=[2 * m["G"][g]["se_measured"] for g in Gs], visible=True, thickness=1.5),
             text=[f"{m['G'][g]['all_equal']} of {m['G'][g]['groups']} groups" for g in Gs],
             hovertemplate="G = %{x}: %{y:.4f} (%{text})<extra>measured</extra>"),
    ]
    return charts._figure(data, "Groups whose G rewards are all equal: measured against the formula",
                          subtitle=f"built-in tiny GPT, {m['prompts']} sums, p from {m['samples_for_p']} samples each "
                                   f"(mean p = {m['p_mean']:.3f})",
                          height=400, legend_below=True, xaxis=dict(title="group size G", dtick=2),
                          yaxis=dict(title="share of groups with σ = 0"))


def dynamic_sampling_chart(m: dict) -> "charts.go.Figure":
    """Dynamic sampling's draws per kept group against G: measured beside (1 − P^K)/(1 − P), averaged over prompts."""
    Gs = [str(g) for g in m["G"]]
    rows = list(m["G"].values())
    data = [
        charts._bar("formula (1 − P^K)/(1 − P)", Gs, [r["draws_formula"] for r in rows], "#7f7f7f",
                    [f"{r['draws_formula']:.3f}" for r in rows]),
        charts._bar("measured", Gs, [r["draws_measured"] for r in rows], charts.NEGATIVE,
                    [f"{r['draws_measured']:.3f}" for r in rows],
                    error_y=dict(type="data", array=[2 * r["draws_se"] for r in rows], visible=True)),
    ]
    return charts._figure(data, "DAPO's dynamic sampling: group draws per prompt until the rewards differ",
                          subtitle=f"at most K = {m['max_draws']} draws; each draw costs G completions",
                          barmode="group", xaxis=dict(title="group size G", type="category"),
                          yaxis=dict(title="draws per kept group", rangemode="tozero"))


def cost_against_p_chart(m: dict) -> "charts.go.Figure":
    """The analytic picture: 1/(1 − P) draws against p for each G, with the model's prompts marked."""
    p = np.linspace(0.0, 1.0, 201)
    data = []
    for g in m["G"]:
        draws = expected_draws(all_equal_probability(p, g), m["max_draws"])
        data.append(dict(type="scatter", name=f"G = {g}", x=p.tolist(), y=draws.tolist(), mode="lines",
                         line=dict(color=G_COLORS.get(g, "#7f7f7f"), width=2)))
    data.append(dict(type="scatter", name="the model's prompts (p̂)", x=m["p_hat"].tolist(),
                     y=[1.0] * len(m["p_hat"]), mode="markers",
                     marker=dict(color="black", symbol="line-ns-open", size=14)))
    return charts._figure(data, "Cost of dynamic sampling against a prompt's success rate p",
                          subtitle=f"(1 − P^K)/(1 − P) with P = p^G + (1−p)^G, K = {m['max_draws']}: "
                                   "cheap near p = 0.5, K draws at p = 0 or 1",
                          height=400, legend_below=True, xaxis=dict(title="success rate p"),
                          yaxis=dict(title="expected draws per kept group"))


# ----------------------------------------------------------------- the experiment


def measurement(prompts: int = 16, samples_for_p: int = 64, pool: int = 96, group_sizes=GROUP_SIZES,
                max_draws: int = 8, temperature: float = 1.0, seed: int = 0, loaded=None) -> dict:
    """Sample ``samples_for_p + pool`` completions of each of ``prompts`` sums from the built-in model (8 new
    tokens: its sums end within 6) and ``measure`` them."""
    if pool % max(group_sizes):
        raise ValueError(f"The pool ({pool}) must be a multiple of the largest G ({max(group_sizes)}).")
    policy = make_policy(loaded or load_builtin(), max_new_tokens=8)
    chosen = sum_prompts(prompts, seed)
    rewards = sample_rewards(policy, chosen, samples_for_p + pool, seed, temperature)
    return measure(rewards, samples_for_p, group_sizes, max_draws)


def run(prompts: int = 16, samples_for_p: int = 64, pool: int = 96, group_sizes=GROUP_SIZES, max_draws: int = 8,
        temperature: float = 1.0, seed: int = 0, loaded=None) -> LabResult:
    """The all-equal share of disjoint groups of the built-in model's completions against the formula, and
    dynamic sampling's draws, for each G (see ``measurement``)."""
    m = measurement(prompts, samples_for_p, pool, group_sizes, max_draws, temperature, seed, loaded)
    table = []
    for G, r in m["G"].items():
        table.append(row(f"P(all {G} rewards equal), averaged over prompts", round(r["formula"], 5),
                         round(r["measured"], 5), f"±{Z * r['se']:.4f} ({Z:g} s.e., {r['groups']} groups)"))
    for G, r in m["G"].items():
        table.append(row(f"dynamic sampling, G = {G}: draws per kept group (K = {max_draws})",
                         round(r["draws_formula"], 4), round(r["draws_measured"], 4),
                         f"±{Z * r['draws_se']:.4f} ({Z:g} s.e., {r['episodes']} episodes)"))
    g_small, g_mid = group_sizes[0], group_sizes[min(1, len(group_sizes) - 1)]
    a, b = m["G"][g_small], m["G"][g_mid]
    text = [
        f"{m['prompts']} sums, p estimated from {samples_for_p} completions each: p̂ from {m['p_hat'].min():.2f} to "
        f"{m['p_hat'].max():.2f}, mean {m['p_mean']:.3f}.",
        f"G = {g_small}: {a['all_equal']} of {a['groups']} groups had all rewards equal ({a['measured']:.3f}); "
        f"the formula averaged over prompts gives {a['formula']:.3f} ± {a['se']:.3f} (1 s.e.), and with the mean p "
        f"instead {a['naive']:.3f}. Those groups give no policy gradient.",
        f"G = {g_mid}: {b['all_equal']} of {b['groups']} ({b['measured']:.4f}) against {b['formula']:.4f}; "
        + "; ".join(f"G = {g}: {r['all_equal']} of {r['groups']} against {r['formula']:.5f}"
                    for g, r in m["G"].items() if g not in (g_small, g_mid)) + ".",
        f"Dynamic sampling (redraw a prompt's group until its rewards differ, at most {max_draws} draws) costs "
        + ", ".join(f"{r['draws_measured']:.3f} draws ({(r['draws_measured'] - 1) * 100:.1f}% more completions) "
                    f"at G = {g} against {r['draws_formula']:.3f} predicted" for g, r in m["G"].items())
        + ". With this model near p = 0.4 the cost is small; as training pushes a prompt's p toward 1 it grows "
          "as 1/(1 − p^G) (at p = 0.9 and G = 8, 1/(1 − P) = "
        f"{float(expected_draws(all_equal_probability(0.9, 8))):.2f} draws).",
    ]
    figures = [measured_vs_formula_chart(m), dynamic_sampling_chart(m), cost_against_p_chart(m)]
    return LabResult(figures=figures, table=table, text=text)


EXPERIMENT = Experiment(
    key="zero_variance",
    title="3. Zero-variance groups and dynamic sampling",
    claim="With binary rewards at success rate p, all G rewards of a group are equal (no gradient) with probability "
          "p^G + (1 − p)^G; DAPO's dynamic sampling redraws such groups at an expected 1/(1 − P) draws per prompt.",
    source="Yu et al. 2025, “DAPO: An Open-Source LLM Reinforcement Learning System at Scale”",
    link="https://arxiv.org/abs/2503.14476",
    run=run,
    seconds=4.0,
)
