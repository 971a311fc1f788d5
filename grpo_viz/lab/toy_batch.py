"""The toy trained under many seeds at once: the same GRPO iteration as ``stepper.grpo_iteration``, batched.

S independent toy policies (S rows of three logits) each sample their group from their own stream
``make_generator(seed, iteration, 0)``, exactly as ``TrainingRun`` and the step-through page do, and take mu
plain-SGD steps of ``objectives.grpo_loss`` on it. One ``grpo_loss`` call covers all S groups; each policy's
logits only touch its own rows, so the gradient of S times the batch loss with respect to policy s's logits is
the gradient of its own loss. A unit test checks the result against ``grpo_iteration`` run seed by seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..config import Settings
from ..objectives import group_advantages, grpo_loss
from ..stepper import make_generator

# rewards(seed, iteration, word_ids [G]) -> rewards [G]; the default looks each word up in a table
RewardRule = Callable[[int, int, torch.Tensor], torch.Tensor]


def table_rewards(rewards: Sequence[float]) -> RewardRule:
    """r(w): a fixed reward per word."""
    table = torch.as_tensor(rewards, dtype=torch.float64)
    return lambda seed, iteration, ids: table[ids]


def coin_rewards(p: float = 0.5) -> RewardRule:
    """r ~ Bernoulli(p), independent of the word: a random (spurious) reward, drawn from stream (seed, iteration, 1)."""
    def rule(seed: int, iteration: int, ids: torch.Tensor) -> torch.Tensor:
        gen = make_generator(seed, iteration, 1)
        return (torch.rand(ids.shape[0], generator=gen, dtype=torch.float64) < p).to(torch.float64)
    return rule


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """H(pi) = -sum_w pi(w) log pi(w), in nats, along the last axis."""
    return -(probs * torch.log(probs.clamp_min(1e-300))).sum(dim=-1)


def train_seeds(start_probs: Sequence[float], reward: RewardRule, settings: Settings, seeds: Sequence[int],
                iterations: int, ref_probs: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    r"""GRPO on the toy from ``start_probs`` under each seed: probabilities [iterations + 1, S, 3] and clip fractions.

    Each iteration k, for each seed s: w_1..w_G ~ pi_s (stream (s, k, 0)), A = group_advantages(r), then mu steps
    z_s <- z_s - lr * d/dz_s [ -(1/G) sum_i min(w_i A_i, clip(w_i, 1-eps_low, 1+eps_high) A_i) + beta k3_i ]
    (loss_type "grpo", temperature T). Returns {"probs", "clip_high", "clip_low", "entropy"}.
    """
    S, G = len(seeds), settings.group_size
    T = settings.temperature
    logits = torch.log(torch.as_tensor(start_probs, dtype=torch.float64)).repeat(S, 1) * T
    ref = torch.log(torch.as_tensor(ref_probs if ref_probs is not None else start_probs, dtype=torch.float64)) * T
    rows = torch.arange(S).repeat_interleave(G)
    probs_history = [torch.softmax(logits / T, dim=-1)]
    clip_high = torch.zeros(iterations, S, dtype=torch.float64)
    clip_low = torch.zeros(iterations, S, dtype=torch.float64)
    for k in range(iterations):
        probs = torch.softmax(logits / T, dim=-1)
        ids = torch.cat([torch.multinomial(probs[s], G, replacement=True, generator=make_generator(seed, k, 0))
                         for s, seed in enumerate(seeds)])
        rewards = torch.cat([reward(seed, k, ids[s * G:(s + 1) * G]) for s, seed in enumerate(seeds)])
        advantages = group_advantages(rewards, G, settings.scale_rewards)
        ref_logp = torch.log_softmax(ref / T, dim=-1)[ids].unsqueeze(-1)
        old_logp = None
        for _ in range(settings.mu):
            z = logits.clone().requires_grad_(True)
            logp = torch.log_softmax(z / T, dim=-1)[rows, ids].unsqueeze(-1)
            if old_logp is None:
                old_logp = logp.detach()
            trace = grpo_loss(logp, old_logp, ref_logp, advantages, torch.ones_like(logp),
                              epsilon_low=settings.epsilon_low, epsilon_high=settings.epsilon_high, beta=settings.beta,
                              loss_type="grpo", kl_ratio_correction=settings.kl_ratio_correction)
            (grad,) = torch.autograd.grad(trace.loss * S, z)
            logits = logits - settings.lr * grad
            clip_high[k] += trace.is_high_clipped.view(S, G).to(torch.float64).mean(dim=1) / settings.mu
            clip_low[k] += trace.is_low_clipped.view(S, G).to(torch.float64).mean(dim=1) / settings.mu
        probs_history.append(torch.softmax(logits / T, dim=-1))
    probs = torch.stack(probs_history)
    return {"probs": probs, "clip_high": clip_high, "clip_low": clip_low, "entropy": entropy(probs)}


def mean_and_se(x: torch.Tensor) -> tuple[float, float]:
    """The mean over seeds and its standard error, sd / sqrt(S) (Bessel sd)."""
    x = x.to(torch.float64).flatten()
    return float(x.mean()), float(x.std() / math.sqrt(x.numel())) if x.numel() > 1 else float("nan")
