"""One GRPO iteration of the three-word toy, every number worked out by hand.

Setup: state "The cat", words (sat, slept, barked), logits z = ln(0.3, 0.2, 0.5),
so pi_theta = (0.3, 0.2, 0.5); the reference is uniform, pi_ref = (1/3, 1/3, 1/3).
Rewards: sat 1, slept 0.5, barked 0.  G = 4, sampled group: sat, barked, slept, barked.
DeepSeekMath preset (loss "grpo", scale "group", eps 0.2, beta 0.04), T = 1, SGD lr 1, mu = 2.
"""

import math

import pytest
import torch

from grpo_viz.config import Settings
from grpo_viz.explain import count, stage_text
from grpo_viz.policies.base import Group
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.stepper import STAGES, grpo_iteration, make_generator
from grpo_viz.tasks import word_reward

WORDS = ("sat", "slept", "barked")


@pytest.fixture
def trace():
    policy = ToyPolicy(logits=[math.log(0.3), math.log(0.2), math.log(0.5)], words=WORDS,
                       ref_logits=[math.log(1 / 3)] * 3)
    group = Group(
        prompts=["The cat"] * 4,
        completion_ids=torch.tensor([[0], [2], [1], [2]]),
        mask=torch.ones(4, 1, dtype=torch.float64),
        texts=["sat", "barked", "slept", "barked"],
        tokens=[["sat"], ["barked"], ["slept"], ["barked"]],
    )
    settings = Settings(group_size=4, mu=2, lr=1.0, beta=0.04, rewards=(1.0, 0.5, 0.0))
    result = grpo_iteration(policy, word_reward(WORDS, settings.rewards), settings, make_generator(0), group=group)
    # the policy itself is untouched: the update lives in the trace
    assert torch.allclose(policy.probs(), torch.tensor([0.3, 0.2, 0.5], dtype=torch.float64))
    return result


def close(actual, expected, tol=1e-12):
    assert torch.allclose(torch.as_tensor(actual, dtype=torch.float64).flatten(),
                          torch.as_tensor(expected, dtype=torch.float64).flatten(), rtol=0, atol=tol), (actual, expected)


def test_rewards_and_advantages(trace):
    # r = (1, 0, 0.5, 0); mu = 1.5 / 4 = 0.375
    close(trace.rewards, [1.0, 0.0, 0.5, 0.0])
    close(trace.group_mean, [0.375] * 4)
    # deviations (0.625, -0.375, 0.125, -0.375); squares sum to 0.6875; sigma = sqrt(0.6875 / 3)
    sigma = math.sqrt(0.6875 / 3)
    close(trace.group_std, [sigma] * 4)
    assert sigma == pytest.approx(0.47871355387816905, abs=1e-15)
    # A = deviation / (sigma + 1e-4)
    close(trace.advantages, [1.3053097493539774, -0.7831858496123865, 0.2610619498707955, -0.7831858496123865])


def test_first_inner_step_is_on_policy(trace):
    step = trace.steps[0].trace
    close(step.ratio, [1.0] * 4)  # pi_theta is pi_old: w = 1 exactly
    close(step.clipped_ratio, [1.0] * 4)
    assert step.clip_low_fraction == 0 and step.clip_high_fraction == 0
    # k3 = pi_ref/pi - ln(pi_ref/pi) - 1, with pi_ref/pi = (1/3)/0.3, (1/3)/0.5, (1/3)/0.2, (1/3)/0.5
    close(step.kl, [0.005750595453284824, 0.07213177477483113, 0.15584104290067602, 0.07213177477483113])
    # L = (1/4) sum_i (-A_i + 0.04 k3_i); the advantages sum to 0, so L = 0.01 * sum k3
    close(step.loss, 0.003058551879036253)


def test_gradients_and_update(trace):
    first = trace.steps[0]
    # dL/dlogp_i = (1/4) (-A_i + beta (1 - pi_ref/pi))
    close(first.grad_logp, [-0.32743854844960546, 0.19912979573642994, -0.07193215413436554, 0.19912979573642994])
    # dL/dz_k = sum_i dL/dlogp_i (1[o_i = k] - pi_k)
    close(first.grad_params[0], [-0.3271052151162721, -0.07170993191214332, 0.3988151470284155])
    # z <- z - 1.0 * dL/dz
    close(first.state_after[0], [-0.876867589209664, -1.537727980521957, -1.0919623275883608])
    close(torch.softmax(first.state_after[0], -1), [0.4305015766005811, 0.22231395506111754, 0.3471844683383013])


def test_second_inner_step_moves_the_ratio_and_clips(trace):
    second = trace.steps[1].trace
    # w_i = pi_1(o_i) / pi_old(o_i) = (0.43050/0.3, 0.34718/0.5, 0.22231/0.2, 0.34718/0.5)
    close(second.ratio, [1.4350052553352703, 0.6943689366766026, 1.1115697753055875, 0.6943689366766026])
    close(second.clipped_ratio, [1.2, 0.8, 1.1115697753055875, 0.8])
    # sat: A > 0 and w > 1.2 -> clipped high; barked: A < 0 and w < 0.8 -> clipped low (twice); slept inside
    assert second.is_high_clipped[:, 0].tolist() == [True, False, False, False]
    assert second.is_low_clipped[:, 0].tolist() == [False, True, False, True]
    close(second.clip_high_fraction, 0.25)
    close(second.clip_low_fraction, 0.5)
    # P = -min(wA, w~A): sat -1.2 * 1.30531, barked -0.8 * -0.78319 ... -> clipped terms
    close(second.policy_loss_per_token[:, 0],
          [-1.2 * 1.3053097493539774, 0.8 * 0.7831858496123865, -1.1115697753055875 * 0.2610619498707955,
           0.8 * 0.7831858496123865])
    # clipped samples carry only the KL gradient: (beta/4)(1 - pi_ref/pi_1)
    g = trace.steps[1].grad_logp[:, 0]
    pi_1 = torch.softmax(trace.steps[0].state_after[0], -1)
    close(g[0], 0.01 * (1 - (1 / 3) / pi_1[0]))
    close(g[1], 0.01 * (1 - (1 / 3) / pi_1[2]))


def test_clip_stage_sentence_counts_the_clipped_samples(trace):
    text = stage_text(STAGES.index("Clip"), trace, 1)
    assert text.startswith("1 sample with A > 0 has w > 1 + ε_high and 2 with A < 0 have w < 1 − ε_low")
    assert (count(1, "epoch"), count(0, "sample"), count(3, "step")) == ("1 epoch", "0 samples", "3 steps")


def test_max_grad_norm_rescales_the_step_and_the_trace_says_by_how_much(trace):
    """With max_grad_norm = 0.1 the first SGD step is the same gradient rescaled to norm 0.1 (torch's rule:
    g * min(1, 0.1 / (||g|| + 1e-6))); the toy's default (0) leaves it as it is."""
    policy = ToyPolicy(logits=[math.log(0.3), math.log(0.2), math.log(0.5)], words=WORDS,
                       ref_logits=[math.log(1 / 3)] * 3)
    settings = trace.settings.__class__(**{**vars(trace.settings), "max_grad_norm": 0.1})
    clipped = grpo_iteration(policy, word_reward(WORDS, settings.rewards), settings, make_generator(0),
                             group=trace.group)
    g = trace.steps[0].grad_params[0]
    norm = float(g.norm())
    assert trace.steps[0].grad_norm == pytest.approx(norm, abs=1e-15) == trace.steps[0].grad_norm_clipped
    assert not trace.steps[0].grad_norm_was_clipped
    first = clipped.steps[0]
    assert norm > 0.1 and first.grad_norm_was_clipped
    close(first.grad_params[0], g)  # the trace keeps the gradient before the clip
    assert first.grad_norm == pytest.approx(norm, abs=1e-15)
    assert first.grad_norm_clipped == pytest.approx(0.1 * norm / (norm + 1e-6), abs=1e-15)
    close(first.state_after[0], first.state_before[0] - g * 0.1 / (norm + 1e-6))


def test_dr_grpo_divides_by_the_generation_limit_not_the_batch_width():
    """Dr. GRPO's denominator is B x max_completion_length (the policy's limit) even when every completion
    stopped early, as TRL divides by B x max_completion_length."""
    from grpo_viz.objectives import grpo_loss

    logp = torch.log(torch.tensor([[0.5, 0.25], [0.2, 0.1]], dtype=torch.float64))
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    advantages = torch.tensor([1.0, -1.0], dtype=torch.float64)
    width = grpo_loss(logp, None, None, advantages, mask, beta=0.0, loss_type="dr_grpo")
    limit = grpo_loss(logp, None, None, advantages, mask, beta=0.0, loss_type="dr_grpo", max_completion_length=8)
    # on-policy w = 1: L = -(1 + 1 - 1) = -1 summed over real tokens
    assert float(width.loss) == pytest.approx(-1 / (2 * 2)) and float(limit.loss) == pytest.approx(-1 / (2 * 8))
    assert ToyPolicy().max_completion_length == 1
