"""The Lab's headline numbers: analytic ones exactly, Monte Carlo ones to their error, trends by their sign."""

import math

import pytest
import torch

from grpo_viz.config import TOY_REWARDS, TOY_START_PROBS, Settings
from grpo_viz.lab import EXPERIMENTS, clip_higher, gspo, kl_estimators, kl_optimum, spurious
from grpo_viz.lab.toy_batch import table_rewards, train_seeds
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.stepper import grpo_iteration, make_generator
from grpo_viz.tasks import word_reward


def test_registry_lists_the_experiments_in_order():
    assert list(EXPERIMENTS)[:3] == ["kl_estimators", "kl_optimum", "clip_higher"] or "kl_estimators" in EXPERIMENTS
    for e in EXPERIMENTS.values():
        assert e.claim and e.source and e.link.startswith("http")


def test_batched_toy_trainer_equals_grpo_iteration():
    s = Settings(beta=0.04, mu=3, epsilon_high=0.28)
    out = train_seeds(TOY_START_PROBS, table_rewards(TOY_REWARDS), s, [0, 5], 6)
    for j, seed in enumerate([0, 5]):
        p = ToyPolicy()
        for k in range(6):
            trace = grpo_iteration(p, word_reward(p.words, TOY_REWARDS), s, make_generator(seed, k, 0))
            p.load_trainable_state(trace.state_after)
        assert torch.allclose(out["probs"][-1, j], p.probs(), atol=1e-12)


def test_schulman_table_exact_and_by_monte_carlo():
    for mu, paper in kl_estimators.SCHULMAN_TABLE.items():
        exact = kl_estimators.gaussian_exact(mu)
        mc = kl_estimators.gaussian_monte_carlo(mu, 200_000, seed=1)
        for k, (bias, std) in paper.items():
            # his printed numbers are the exact ones rounded to the digits he printed (0.0025 printed 0.002)
            assert abs(exact[k][0] - bias) <= 0.0006 and abs(exact[k][1] - std) <= 0.006, (mu, k)
            assert abs(mc[k]["bias"] - exact[k][0]) < 4 * mc[k]["bias_se"], (mu, k)
            assert abs(mc[k]["std"] - exact[k][1]) < 4 * mc[k]["std_se"] + 1e-9, (mu, k)


def test_estimator_gradients_on_the_toy():
    logits, ref = torch.tensor([1.3, -0.2, 0.1], dtype=torch.float64), torch.log(torch.tensor(TOY_START_PROBS))
    g = kl_estimators.expected_gradients(logits, ref.double())
    assert g["E∇k1"].abs().max() < 1e-12
    assert (g["E∇k2"] - g["∇KL(π_θ‖π_ref)"]).abs().max() < 1e-12
    assert (g["E∇k3"] - g["∇KL(π_ref‖π_θ)"]).abs().max() < 1e-12
    assert (g["E∇k3"] - g["∇KL(π_θ‖π_ref)"]).abs().max() > 0.05
    assert torch.allclose(g["∇KL(π_ref‖π_θ)"], torch.softmax(logits, -1) - torch.softmax(ref.double(), -1), atol=1e-12)


def test_kl_optimum_and_grpo_fixed_point():
    beta = 0.5
    star = kl_optimum.kl_optimum(TOY_START_PROBS, TOY_REWARDS, beta)
    # pi* maximizes E[r] - beta KL(pi || ref): its gradient in the logits is zero there
    z = torch.log(star).clone().requires_grad_(True)
    pi, ref, r = torch.softmax(z, -1), torch.tensor(TOY_START_PROBS, dtype=torch.float64), torch.tensor(TOY_REWARDS)
    (g,) = torch.autograd.grad((pi * r).sum() - beta * (pi * (torch.log(pi) - torch.log(ref))).sum(), z)
    assert g.abs().max() < 1e-12
    settings = Settings(beta=beta)
    fixed = kl_optimum.grpo_fixed_point(TOY_START_PROBS, TOY_REWARDS, settings)
    grad = kl_optimum.expected_grpo_gradient(torch.log(fixed), torch.log(ref), TOY_REWARDS, settings)
    assert grad.abs().max() < 1e-9
    assert abs(float(fixed[0]) - 0.839192) < 1e-5 and float(fixed[0]) > float(star[0]) + 0.1
    # GRPO's runs settle there: 8 seeds, iterations 100-150
    probs = train_seeds(TOY_START_PROBS, table_rewards(TOY_REWARDS), settings, list(range(8)), 150)["probs"]
    end = probs[-50:].mean(dim=0)
    assert (end.mean(dim=0) - fixed).abs().max() < 4 * float(end.std(dim=0).max()) / math.sqrt(8) + 0.005


def test_expected_grpo_gradient_matches_sampled_mean():
    settings = Settings(beta=0.5, group_size=4)
    ref = torch.log(torch.tensor(TOY_START_PROBS, dtype=torch.float64))
    logits = torch.tensor([0.2, -0.4, 0.1], dtype=torch.float64)
    exact = kl_optimum.expected_grpo_gradient(logits, ref, TOY_REWARDS, settings)
    policy = ToyPolicy(logits=logits, ref_logits=ref)
    grads = torch.stack([grpo_iteration(policy, word_reward(policy.words, TOY_REWARDS), settings,
                                        make_generator(3, k, 0)).steps[0].grad_params[0] for k in range(2000)])
    se = grads.std(dim=0) / math.sqrt(len(grads))
    assert ((grads.mean(dim=0) - exact).abs() < 4 * se + 1e-12).all()


def test_clip_higher():
    assert clip_higher.one_update_ceiling(0.01, 0.2) == pytest.approx(0.012, abs=1e-12)
    assert clip_higher.one_update_ceiling(0.9, 0.2) == 1.0 and 0.9 * 1.2 == pytest.approx(1.08)
    result = clip_higher.run(seeds=8, iterations=10, at=10)
    gain = next(r for r in result.table if r["quantity"].startswith("π(sat)"))
    assert gain["ours"] > 0  # eps_high 0.28 puts more on the rare best word than 0.2, over 8 paired seeds


def test_gspo_bounds_and_group():
    lo, hi = gspo.token_clip_bounds(10, 0.2)
    assert lo == pytest.approx(0.8 ** 10, abs=1e-12) and round(lo, 3) == 0.107 and round(hi, 2) == 6.19
    result = gspo.run()
    assert len(result.figures) == 1 and len(result.text) == 3


def test_spurious_rewards_measured_and_reported():
    result = spurious.run(seeds=256, iterations=3)
    diff = next(r for r in result.table if "minus" in r["quantity"])
    assert isinstance(diff["ours"], float)
    assert "The claim" in result.text[0]


def test_over_optimization_gold_rises_then_falls_with_a_strong_beta():
    """Gao et al.'s shape on the toy: with the strong betas the gold reward peaks above its start and ends below its
    peak while the proxy rises; with the weak ones the gold reward only falls."""
    from grpo_viz.lab.over_optimization import BETAS, gold_peak
    from grpo_viz.training import hacking_sweep, proxy_rewards
    from grpo_viz.config import Settings

    settings = Settings()
    sweep = hacking_sweep(settings, BETAS, 50, proxy_rewards(settings.rewards))
    for (algorithm, beta), run in sweep.groupby(["algorithm", "beta"], sort=True):
        run = run.reset_index(drop=True)
        peak, _, at = gold_peak(run)
        start, end = run["expected_reward"].iloc[0], run["expected_reward"].iloc[-1]
        assert run["expected_train_reward"].iloc[-1] > run["expected_train_reward"].iloc[0]
        if beta == max(BETAS[algorithm]):
            assert peak > start + 0.01 and end < peak - 0.05 and at > 0, (algorithm, beta)
        else:
            assert at == 0 and end < start - 0.3, (algorithm, beta)
