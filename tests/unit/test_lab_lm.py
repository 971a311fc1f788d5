"""The Lab's experiments on the built-in language model: zero-variance groups (with DAPO's dynamic sampling) and
Dr. GRPO's length bias and 1/sigma weight. Formulas are checked against the code they describe to 1e-6, measured
numbers against the formula within their Monte Carlo error, and the length trend by its sign over seeds."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from grpo_viz.lab import EXPERIMENTS, LabResult
from grpo_viz.lab import length_bias as lb
from grpo_viz.lab import zero_variance as zv
from grpo_viz.objectives import group_advantages
from grpo_viz.policies.loading import load_builtin


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is faster on 2 busy cores


@pytest.fixture(scope="module")
def loaded():
    return load_builtin()


# ----------------------------------------------------------------- zero-variance groups: the formulas


@pytest.mark.parametrize("G", [2, 4, 8, 16])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.39, 0.5, 0.97, 1.0])
def test_all_equal_probability_is_the_binomial_ends(G, p):
    """P(k = 0) + P(k = G) of Binomial(G, p), summed term by term."""
    binomial = [math.comb(G, k) * p ** k * (1 - p) ** (G - k) for k in range(G + 1)]
    assert zv.all_equal_probability(p, G) == pytest.approx(binomial[0] + binomial[-1], abs=1e-12)


def test_all_equal_probability_against_group_advantages():
    """A group has sigma = 0 (all advantages 0) exactly when its rewards are all equal: enumerate every
    reward vector of G = 8 and add up the probability of those with all-zero advantages."""
    G, p = 8, 0.37
    total = 0.0
    for bits in range(2 ** G):
        rewards = torch.tensor([(bits >> i) & 1 for i in range(G)], dtype=torch.float64)
        if bool((group_advantages(rewards, G, "group") == 0).all()):
            k = int(rewards.sum())
            total += p ** k * (1 - p) ** (G - k)
    assert total == pytest.approx(float(zv.all_equal_probability(p, G)), abs=1e-12)


def test_expected_draws_and_its_variance():
    P = 0.3
    assert zv.expected_draws(P) == pytest.approx(1 / (1 - P), abs=1e-12)
    assert zv.expected_draws(P, 4) == pytest.approx(1 + P + P ** 2 + P ** 3, abs=1e-12)
    assert zv.expected_draws(P, 200) == pytest.approx(1 / (1 - P), abs=1e-12)
    assert zv.expected_draws(P, 1) == pytest.approx(1.0)
    # uncapped, D is geometric: Var D = P / (1 - P)^2
    assert zv.draws_variance(P, 400) == pytest.approx(P / (1 - P) ** 2, abs=1e-9)
    assert zv.draws_variance(P, 1) == 0.0


def test_dynamic_sampling_walks_the_pool():
    spread, flat = [0, 1, 0, 1], [1, 1, 1, 1]
    groups = np.array([flat, spread, spread, flat, flat, flat, flat, spread, flat])
    # episodes: flat,spread (2) | spread (1) | flat,flat,flat (cap 3) | flat,spread (2) | flat (pool ran out: dropped)
    assert zv.dynamic_sampling(groups, max_draws=3) == [2, 1, 3, 2]


def test_prompt_average_is_not_the_mean_p_formula():
    """p^G + (1 - p)^G is convex in p, so averaging over prompts gives at least the mean-p value (Jensen)."""
    p = np.array([0.1, 0.4, 0.9])
    for G in (4, 8, 16):
        assert zv.all_equal_probability(p, G).mean() > zv.all_equal_probability(p.mean(), G)


# ----------------------------------------------------------------- zero-variance groups: the measurement


@pytest.fixture(scope="module")
def measured(loaded):
    start = time.perf_counter()
    m = zv.measurement(loaded=loaded)  # run()'s defaults: 16 sums x (64 + 96) completions
    m["seconds"] = time.perf_counter() - start
    return m


@pytest.mark.parametrize("G", zv.GROUP_SIZES)
def test_all_equal_share_matches_the_formula(measured, G):
    r = measured["G"][G]
    assert r["groups"] == measured["prompts"] * measured["pool"] // G
    assert abs(r["measured"] - r["formula"]) <= zv.Z * r["se"], r


@pytest.mark.parametrize("G", zv.GROUP_SIZES)
def test_dynamic_sampling_cost_matches_the_formula(measured, G):
    r = measured["G"][G]
    assert r["draws_measured"] >= 1.0
    assert abs(r["draws_measured"] - r["draws_formula"]) <= zv.Z * r["draws_se"] + 1e-12, r


def test_the_model_has_spread_and_the_measurement_is_quick(measured):
    p = measured["p_hat"]
    assert 0.2 < measured["p_mean"] < 0.6  # the built-in model gets ~40% of its sums right
    # P(all 4 equal) is the one share large enough to resolve here; it is measured to a few hundredths
    assert measured["G"][4]["se"] < 0.03
    assert measured["G"][4]["formula"] >= measured["G"][4]["naive"] - 1e-12
    assert len(p) == 16
    assert measured["seconds"] < 30  # ~3 s with one free core; the suite's cores are shared


# ----------------------------------------------------------------- Dr. GRPO: the 1/sigma weight


@pytest.mark.parametrize("G", [4, 8, 16])
def test_sigma_weight_is_what_scale_rewards_group_multiplies_by(G):
    """For every k of G right, A("group") / A("none") = 1 / (sqrt(G/(G-1) p(1-p)) + 1e-4), p = k/G, to 1e-6."""
    for k in range(1, G):
        rewards = torch.tensor([1.0] * k + [0.0] * (G - k), dtype=torch.float64)
        ratio = group_advantages(rewards, G, "group") / group_advantages(rewards, G, "none")
        expected = float(lb.sigma_weight(k / G, G))
        assert torch.allclose(ratio, torch.full_like(ratio, expected), rtol=0, atol=1e-6)
        assert expected == pytest.approx(1 / (math.sqrt(G / (G - 1) * (k / G) * (1 - k / G)) + 1e-4), abs=1e-12)
        # the total advantage a group hands out
        for scaled, scale in ((True, "group"), (False, "none")):
            total = float(group_advantages(rewards, G, scale).abs().sum())
            assert total == pytest.approx(float(lb.total_push(k / G, G, scaled)), abs=1e-6)


def test_sigma_weight_is_largest_for_too_easy_and_too_hard_prompts():
    p = np.linspace(0.01, 0.99, 99)
    w = lb.sigma_weight(p)
    assert w.argmin() == 49 and w[49] == pytest.approx(1 / (0.5 + 1e-4), abs=1e-9)  # p = 0.5: sigma = 1/2
    assert w[0] == pytest.approx(w[-1]) and w[0] > 5 * w[49]  # symmetric, and ~5x at p = 0.01
    assert lb.sigma_weight(0.01) == pytest.approx(1 / (math.sqrt(0.01 * 0.99) + 1e-4), abs=1e-6)


# ----------------------------------------------------------------- Dr. GRPO: the length of wrong answers


# The test's proxy for run()'s 3 seeds x 40 iterations at lr 3e-4: 3 seeds x 20 iterations at lr 5e-4, compared
# over the last 5 iterations (about a third of the cost).
PROXY = dict(seeds=(0, 1, 2), iterations=20, lr=5e-4, window=5)


@pytest.fixture(scope="module")
def lengths(loaded):
    start = time.perf_counter()
    c = lb.compare(loaded=loaded, **PROXY)
    c["seconds"] = time.perf_counter() - start
    return c


def test_both_arms_start_from_the_same_draw(lengths):
    for seed in lengths["seeds"]:
        a, b = (lengths["runs"][arm][seed] for arm in lb.ARMS)
        for key in ("wrong_tokens", "wrong", "right_tokens", "right", "reward"):
            assert a[key][0] == b[key][0]


def test_wrong_answers_end_longer_under_grpo_on_every_seed(lengths):
    gaps = lengths["wrong_gap"]
    assert all(g > 0 for g in gaps.values()), gaps


def test_training_learns_in_both_arms(lengths):
    for arm in lb.ARMS:
        for seed in lengths["seeds"]:
            s = lengths["summary"][arm][seed]
            assert s["end_reward"] > s["start_reward"] - 0.1, (arm, seed, s)


# ----------------------------------------------------------------- the registry and run()


def test_both_experiments_are_registered():
    assert EXPERIMENTS["zero_variance"] is zv.EXPERIMENT
    assert EXPERIMENTS["length_bias"] is lb.EXPERIMENT


def test_run_returns_a_lab_result_small(loaded):
    result = zv.run(prompts=2, samples_for_p=8, pool=16, loaded=loaded)
    assert isinstance(result, LabResult) and len(result.figures) == 3 and len(result.table) == 6
    assert all({"quantity", "paper", "ours", "tolerance"} <= set(r) for r in result.table)
    result = lb.run(seeds=(0,), iterations=3, window=2, loaded=loaded)
    assert isinstance(result, LabResult) and len(result.figures) == 3 and len(result.text) == 5
    assert result.table[-2]["ours"] == pytest.approx(result.table[-2]["paper"], abs=1e-6)
