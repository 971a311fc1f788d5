"""grpo_viz.objectives against MATH.md: an independent NumPy reading on random inputs, autograd, finite
differences, hand-computed PPO numbers, and the degenerate cases."""

import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch

from grpo_viz.objectives import gae, group_advantages, grpo_loss, kl_estimate, ppo_loss, ppo_token_rewards

from . import reference as ref

RTOL = 1e-9


def random_batch(seed, B=6, T=5, ragged=True):
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    old = logp + 0.4 * torch.randn(B, T, generator=g, dtype=torch.float64)
    refp = logp + 0.5 * torch.randn(B, T, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, T + 1, (B,), generator=g) if ragged else torch.full((B,), T)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(torch.float64)
    rewards = torch.randint(0, 3, (B,), generator=g).to(torch.float64) / 2
    return logp, old, refp, mask, rewards


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("G", [2, 3, 6])
def test_advantages_match_reference(seed, scale, G):
    _, _, _, _, rewards = random_batch(seed)
    np.testing.assert_allclose(group_advantages(rewards, G, scale).numpy(), ref.advantages(rewards.numpy(), G, scale),
                               rtol=RTOL, atol=1e-12)


OPTIONS = list(itertools.product(
    ["grpo", "bnpo", "dapo", "dr_grpo"], ["token", "sequence"], [0.0, 0.04], [False, True], [(0.2, None), (0.2, 0.28)]
))


@pytest.mark.parametrize("loss_type,level,beta,correction,eps", OPTIONS)
def test_grpo_loss_matches_reference(loss_type, level, beta, correction, eps):
    for seed in range(3):
        logp, old, refp, mask, rewards = random_batch(seed)
        A = group_advantages(rewards, 3)
        max_len = 7 if loss_type == "dr_grpo" and seed == 2 else None
        trace = grpo_loss(logp, old, refp, A, mask, epsilon_low=eps[0], epsilon_high=eps[1], beta=beta,
                          loss_type=loss_type, importance_sampling_level=level, max_completion_length=max_len,
                          kl_ratio_correction=correction)
        loss, W, L, low, high = ref.grpo(logp.numpy(), old.numpy(), refp.numpy(), A.numpy(), mask.numpy(), eps[0],
                                        eps[1], beta, loss_type, level, max_len, correction)
        np.testing.assert_allclose(float(trace.loss), loss, rtol=RTOL)
        m = mask.bool().numpy()
        np.testing.assert_allclose(trace.ratio.numpy()[m], W[m], rtol=RTOL)
        np.testing.assert_allclose(trace.per_token_loss.numpy()[m], L[m], rtol=RTOL, atol=1e-15)
        assert float(trace.clip_low_fraction) == pytest.approx(low, abs=1e-15)
        assert float(trace.clip_high_fraction) == pytest.approx(high, abs=1e-15)
        assert (trace.kl is None) == (beta == 0)


def test_grpo_loss_gradient_matches_finite_differences():
    logp, old, refp, mask, rewards = random_batch(7)
    A = group_advantages(rewards, 2)

    def f(x):
        return grpo_loss(x, old, refp, A, mask, beta=0.04, epsilon_high=0.28, loss_type="grpo").loss

    assert torch.autograd.gradcheck(f, (logp.clone().requires_grad_(),))


def test_on_policy_ratio_is_one_and_nothing_clips():
    logp, _, refp, mask, rewards = random_batch(3)
    trace = grpo_loss(logp, None, refp, group_advantages(rewards, 3), mask, epsilon_low=0.0, beta=0.04)
    assert torch.equal(trace.ratio, torch.ones_like(logp))
    assert float(trace.clip_fraction) == 0.0


def test_on_policy_gradient_is_minus_advantage_over_lengths():
    # d/dlogp of (1/B) sum_i (1/|o_i|) sum_t -A_i w: -A_i / (B |o_i|) on real tokens
    logp, _, _, mask, rewards = random_batch(4)
    A = group_advantages(rewards, 2)
    x = logp.clone().requires_grad_()
    grpo_loss(x, None, None, A, mask).loss.backward()
    expected = -A[:, None] / (6 * mask.sum(-1, keepdim=True)) * mask
    torch.testing.assert_close(x.grad, expected, rtol=1e-12, atol=1e-15)


def test_kl_estimators():
    logp = torch.log(torch.tensor([0.5, 0.25], dtype=torch.float64))
    refl = torch.log(torch.tensor([0.25, 0.5], dtype=torch.float64))
    d = refl - logp  # (-ln 2, ln 2)
    torch.testing.assert_close(kl_estimate(logp, refl, "k1"), -d)
    torch.testing.assert_close(kl_estimate(logp, refl, "k2"), d**2 / 2)
    torch.testing.assert_close(kl_estimate(logp, refl, "k3"), torch.tensor([0.5 + np.log(2) - 1, 2 - np.log(2) - 1],
                                                                           dtype=torch.float64))
    x = torch.randn(1000, dtype=torch.float64)
    assert (kl_estimate(x, x + torch.randn(1000, dtype=torch.float64), "k3") >= 0).all()
    assert (kl_estimate(x, x + torch.randn(1000, dtype=torch.float64), "k1") < 0).any()
    # on-policy every estimator is exactly 0, and a positive 0: a page prints -0.0 as "-0"
    for estimator in ("k1", "k2", "k3"):
        assert not torch.signbit(kl_estimate(x, x.clone(), estimator)).any()


# ----------------------------------------------------------------- degenerate inputs


def test_group_of_two():
    A = group_advantages(torch.tensor([1.0, 0.0]), 2)
    # mu 0.5, sigma sqrt(0.5) (Bessel): A = +-0.5 / (0.70711 + 1e-4)
    torch.testing.assert_close(A, torch.tensor([0.5, -0.5]) / (0.5**0.5 + 1e-4))


def test_equal_rewards_give_zero_advantage_not_nan():
    r = torch.tensor([0.1, 0.1, 0.1, 1.0, 0.0, 0.5], dtype=torch.float64)
    for scale in ("group", "batch", "none"):
        A = group_advantages(r, 3, scale)
        assert torch.isfinite(A).all()
        assert torch.equal(A[:3], torch.zeros(3, dtype=torch.float64))
        assert (A[3:] != 0).any()


def test_epsilon_zero_clips_any_move_in_the_advantage_direction():
    logp = torch.tensor([[-1.0], [-1.0]], dtype=torch.float64)
    old = torch.tensor([[-1.1], [-0.9]], dtype=torch.float64)
    trace = grpo_loss(logp, old, None, torch.tensor([1.0, -1.0]).double(), torch.ones(2, 1), epsilon_low=0.0)
    assert trace.is_high_clipped[0, 0] and trace.is_low_clipped[1, 0]
    torch.testing.assert_close(trace.clipped_ratio, torch.ones(2, 1, dtype=torch.float64))


def test_all_padding_rows_are_finite():
    logp, old, refp, mask, rewards = random_batch(5)
    mask[1] = 0
    for loss_type in ("grpo", "dapo", "dr_grpo"):
        x = logp.clone().requires_grad_()
        trace = grpo_loss(x, old, refp, group_advantages(rewards, 2), mask, beta=0.04, loss_type=loss_type,
                          importance_sampling_level="sequence")
        trace.loss.backward()
        assert torch.isfinite(trace.loss) and torch.isfinite(x.grad).all()
        assert torch.equal(x.grad[1], torch.zeros_like(x.grad[1]))
    empty = grpo_loss(logp, old, refp, torch.zeros(6), torch.zeros_like(mask), beta=0.04)
    assert float(empty.loss) == 0.0 and float(empty.clip_fraction) == 0.0


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: group_advantages(torch.ones(4), 1), "at least 2"),
        (lambda: group_advantages(torch.ones(5), 2), "multiple of G"),
        (lambda: group_advantages(torch.ones(4), 2, "median"), "scale_rewards"),
        (lambda: grpo_loss(torch.zeros(2, 3), None, None, torch.zeros(2), torch.ones(2, 3), loss_type="x"), "loss_type"),
        (lambda: grpo_loss(torch.zeros(2, 3), None, None, torch.zeros(2), torch.ones(2, 3), epsilon_low=-0.1), ">= 0"),
        (lambda: grpo_loss(torch.zeros(2, 3), None, None, torch.zeros(2), torch.ones(2, 2)), "shape"),
        (lambda: grpo_loss(torch.zeros(2, 3), None, None, torch.zeros(3), torch.ones(2, 3)), "one number per"),
        (lambda: grpo_loss(torch.zeros(2, 3), None, None, torch.zeros(2), torch.ones(2, 3), beta=0.1), "ref_logp"),
        (lambda: grpo_loss(torch.zeros(3), None, None, torch.zeros(3), torch.ones(3)), "[B, T]"),
        (lambda: kl_estimate(torch.zeros(2), torch.zeros(2), "k4"), "estimator"),
        (lambda: ppo_loss(*(torch.zeros(2, 2),) * 6, torch.ones(2, 2), epsilon=-1), ">= 0"),
    ],
)
def test_bad_arguments_raise_plain_value_errors(call, words):
    with pytest.raises(ValueError, match=None) as info:
        call()
    assert words in str(info.value)


# ----------------------------------------------------------------- PPO


def test_gae_by_hand():
    # one completion of 3 tokens, gamma 1, lambda 0.5; rewards (0, 0, 1), values (0.5, 0.6, 0.7)
    rew = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    V = torch.tensor([[0.5, 0.6, 0.7]], dtype=torch.float64)
    A, R = gae(rew, V, torch.ones(1, 3), gamma=1.0, lam=0.5)
    # delta_2 = 1 + 0 - 0.7 = 0.3;         A_2 = 0.3
    # delta_1 = 0 + 0.7 - 0.6 = 0.1;       A_1 = 0.1 + 0.5 * 0.3 = 0.25
    # delta_0 = 0 + 0.6 - 0.5 = 0.1;       A_0 = 0.1 + 0.5 * 0.25 = 0.225
    torch.testing.assert_close(A, torch.tensor([[0.225, 0.25, 0.3]], dtype=torch.float64))
    torch.testing.assert_close(R, torch.tensor([[0.725, 0.85, 1.0]], dtype=torch.float64))


def test_token_rewards_put_the_score_on_the_last_real_token():
    logp = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.25, 0.5, 0.5]], dtype=torch.float64))
    refl = torch.log(torch.tensor([[0.25, 0.5, 0.5], [0.25, 0.5, 0.5]], dtype=torch.float64))
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    rew = ppo_token_rewards(torch.tensor([2.0, -1.0]), logp, refl, mask, beta=0.1)
    ln2 = float(np.log(2))
    # k1 = logp - ref_logp = ln 2 on the first token of row 0, 0 elsewhere
    torch.testing.assert_close(rew, torch.tensor([[-0.1 * ln2, 2.0, 0.0], [0.0, 0.0, -1.0]], dtype=torch.float64))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("whiten", [True, False])
def test_ppo_matches_reference(seed, whiten):
    logp, old, refp, mask, rewards = random_batch(seed)
    g = torch.Generator().manual_seed(100 + seed)
    V = torch.randn(*logp.shape, generator=g, dtype=torch.float64) * mask
    V_new = V + 0.3 * torch.randn(*logp.shape, generator=g, dtype=torch.float64)
    rew = ppo_token_rewards(rewards, old, refp, mask, beta=0.05, estimator="k3")
    A, R = gae(rew, V, mask, gamma=0.99, lam=0.95)
    Ar, Rr = ref.gae(rew.numpy(), V.numpy(), mask.numpy(), 0.99, 0.95)
    np.testing.assert_allclose(A.numpy(), Ar, rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(R.numpy(), Rr, rtol=RTOL, atol=1e-14)
    trace = ppo_loss(logp, old, A, V_new, V, R, mask, whiten_advantages=whiten)
    loss, pg, vf = ref.ppo(logp.numpy(), old.numpy(), A.numpy(), V_new.numpy(), V.numpy(), R.numpy(), mask.numpy(),
                           whiten=whiten)
    np.testing.assert_allclose([float(trace.loss), float(trace.policy_loss), float(trace.value_loss)], [loss, pg, vf],
                               rtol=RTOL)


def test_ppo_whitening_is_skipped_for_a_single_token():
    one = torch.zeros(1, 1, dtype=torch.float64)
    trace = ppo_loss(one, None, torch.ones(1, 1, dtype=torch.float64), one, one, one, torch.ones(1, 1))
    assert not trace.whitened and float(trace.advantages[0, 0]) == 1.0


def test_objectives_import_no_streamlit():
    code = "import sys, grpo_viz.objectives, grpo_viz.stepper, grpo_viz.charts, grpo_viz.explain; " \
           "print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
