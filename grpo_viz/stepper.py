"""One GRPO iteration, computed in full, then revealed stage by stage.

``grpo_iteration`` samples a group, scores it, turns rewards into advantages
and runs ``mu`` inner updates of the GRPO loss on that same group, recording
every intermediate.  The policy passed in is left exactly as it was: the
updated parameters come back in the trace (``state_after``), and the caller
decides when to make them the current policy.  Stepping through stages only
chooses how much of the trace to show; it never recomputes or resamples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .config import Settings
from .objectives import GRPOTrace, group_advantages, grpo_loss, kl_estimate
from .policies.base import Group, Policy, one_at_a_time

STAGES = (
    "Sample group",
    "Score",
    "Advantages",
    "Ratios",
    "Clip",
    "KL",
    "Loss & gradient",
    "Update",
)

RewardFn = Callable[[Group], Tensor]


def make_generator(seed: int, *stream: int) -> torch.Generator:
    """A torch generator for (seed, iteration, draw, ...): distinct streams that a URL can reproduce."""
    state = np.random.SeedSequence([int(seed) % 2**63, *(int(s) for s in stream)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def clip_gradient_norm(parameters: list[Tensor], max_norm: float) -> tuple[float, float]:
    r"""Rescale the gradients of ``parameters`` together so that their norm is at most ``max_norm`` (0: leave them).

    .. math::
        g \leftarrow g \cdot \min\left(1, \frac{\text{max\_norm}}{\lVert g \rVert_2 + 10^{-6}}\right)

    exactly as ``torch.nn.utils.clip_grad_norm_`` (and so TRL's trainer) does.  Returns the norm before and after.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0, 0.0
    before = float(torch.nn.utils.clip_grad_norm_(parameters, max_norm if max_norm > 0 else float("inf")))
    after = float(torch.nn.utils.get_total_norm(grads)) if max_norm > 0 else before
    return before, after


@dataclass
class InnerStep:
    """The k-th of mu gradient steps on one sampled group (everything detached)."""

    trace: GRPOTrace
    logp: Tensor  # [B, T] log pi_theta before this step's update
    grad_logp: Tensor  # [B, T] d loss / d logp: which tokens are pushed up (negative) or down (positive)
    grad_params: list[Tensor]  # d loss / d parameter, for each trainable tensor (before any norm clipping)
    state_before: list[Tensor]
    state_after: list[Tensor]
    grad_norm: float = 0.0  # ||d loss / d parameters||_2 before the optimizer step's norm clip
    grad_norm_clipped: float = 0.0  # the norm the optimizer stepped with (equal unless max_grad_norm bit)
    max_grad_norm: float = 0.0  # the limit in force (0: none)

    @property
    def grad_norm_was_clipped(self) -> bool:
        return self.max_grad_norm > 0 and self.grad_norm > self.max_grad_norm


@dataclass
class IterationTrace:
    settings: Settings
    group: Group
    rewards: Tensor  # [B]
    group_mean: Tensor  # [B], r̄_g (the group mean reward) of each completion's group
    group_std: Tensor  # [B], Bessel sigma_g of each completion's group
    batch_std: Tensor  # 0-dim, Bessel sigma of all B rewards
    advantages: Tensor  # [B]
    equal_reward_groups: Tensor  # [B / G] bool: groups with sigma = 0, which give no policy gradient
    old_logp: Tensor  # [B, T]
    ref_logp: Tensor  # [B, T]
    max_completion_length: int = 1  # the policy's generation limit: Dr. GRPO's denominator is B times it
    steps: list[InnerStep] = field(default_factory=list)
    optimizer_state_after: dict | None = None  # what the policy's optimizer carries into the next iteration

    @property
    def state_before(self) -> list[Tensor]:
        return self.steps[0].state_before

    @property
    def state_after(self) -> list[Tensor]:
        return self.steps[-1].state_after

    @property
    def mu(self) -> int:
        return len(self.steps)

    @property
    def all_rewards_equal(self) -> bool:
        return bool(self.equal_reward_groups.all())


def _detach_trace(trace: GRPOTrace) -> GRPOTrace:
    values = {k: (v.detach() if isinstance(v, Tensor) else v) for k, v in vars(trace).items()}
    return GRPOTrace(**values)


def grpo_iteration(
    policy: Policy,
    reward_fn: RewardFn,
    settings: Settings,
    generator: torch.Generator,
    prompts: list[str] | None = None,
    group: Group | None = None,
) -> IterationTrace:
    """Sample (unless ``group`` is given), score, and run mu inner GRPO updates; leave ``policy`` unchanged."""
    with policy.lock:  # its parameters are stepped and restored in place below
        problems = settings.validate()
        if problems:
            raise ValueError(" ".join(problems))
        policy.adopt(settings)  # e.g. the precision: sampling, pi_old, pi_theta and pi_ref all compute in it
        start = policy.trainable_state()
        if group is None:
            group = policy.sample_group(prompts, settings.group_size, generator, settings.temperature)
        rewards = reward_fn(group).to(torch.float64)
        G = settings.group_size
        grouped = rewards.view(-1, G)
        advantages = group_advantages(rewards, G, settings.scale_rewards)
        with torch.no_grad():
            ref_logp = policy.reference_log_probs(group, settings.temperature).detach()
        # pi_old is the policy before the first inner update, so its log-probs are the first step's, detached
        # (as TRL does): one forward pass fewer per iteration. Policies' forwards are deterministic (eval mode).
        first_logp = policy.log_probs(group, settings.temperature)
        old_logp = first_logp.detach()
        mask = group.mask.to(old_logp.dtype)
        adv = advantages.to(old_logp.dtype)

        trace = IterationTrace(
            settings=settings,
            group=group,
            rewards=rewards,
            group_mean=grouped.mean(dim=1).repeat_interleave(G),
            group_std=grouped.std(dim=1).repeat_interleave(G),
            batch_std=rewards.std(),
            advantages=advantages,
            equal_reward_groups=grouped.amax(dim=1) == grouped.amin(dim=1),
            old_logp=old_logp,
            ref_logp=ref_logp,
            max_completion_length=policy.max_completion_length,
        )
        optimizer = policy.resume_optimizer(policy.learning_rate(settings))
        max_grad_norm = policy.max_grad_norm(settings)
        try:
            for k in range(settings.mu):
                before = policy.trainable_state()
                optimizer.zero_grad()
                logp = first_logp if k == 0 else policy.log_probs(group, settings.temperature)
                loss_trace = grpo_loss(
                    logp,
                    old_logp,
                    ref_logp,
                    adv,
                    mask,
                    epsilon_low=settings.epsilon_low,
                    epsilon_high=settings.epsilon_high,
                    beta=settings.beta,
                    loss_type=settings.loss_type,
                    importance_sampling_level=settings.importance_sampling_level,
                    max_completion_length=trace.max_completion_length,
                    kl_ratio_correction=settings.kl_ratio_correction,
                )
                (grad_logp,) = torch.autograd.grad(loss_trace.loss, logp, retain_graph=True)
                loss_trace.loss.backward()
                grads = policy.gradients()
                grad_norm, grad_norm_clipped = clip_gradient_norm(policy.parameters(), max_grad_norm)
                optimizer.step()
                trace.steps.append(
                    InnerStep(
                        trace=_detach_trace(loss_trace),
                        logp=logp.detach(),
                        grad_logp=grad_logp.detach(),
                        grad_params=grads,
                        state_before=before,
                        state_after=policy.trainable_state(),
                        grad_norm=grad_norm,
                        grad_norm_clipped=grad_norm_clipped,
                        max_grad_norm=max_grad_norm,
                    )
                )
            # no copy needed: this optimizer is dropped here, and resume_optimizer copies what it loads
            trace.optimizer_state_after = optimizer.state_dict()
        finally:
            policy.load_trainable_state(start)
            optimizer.zero_grad()
        return trace


class StepRun:
    """A policy trained one inspected iteration at a time (what one app session holds).

    The current iteration's trace is computed once per (settings, iteration,
    draw) and kept, so moving the stage cursor or re-drawing the page is free.
    """

    MAX_HISTORY = 500  # rows kept per session: a lecture hall of sessions must not grow without bound

    def __init__(self, policy: Policy, describe: Callable[[Policy], dict] | None = None):
        self.policy = policy
        self.describe = describe  # extra columns for the history, e.g. the toy's word probabilities
        self.initial_state = policy.trainable_state()
        self.iteration = 0
        self.draw = 0
        self.history: list[dict] = []
        self._version = 0  # bumped whenever the policy's parameters change
        self._cached: tuple[tuple, IterationTrace] | None = None

    @one_at_a_time
    def trace(self, settings: Settings, reward_fn: RewardFn, prompts: list[str] | None = None) -> IterationTrace:
        key = (settings, self.iteration, self.draw, self._version, reward_fn, tuple(prompts or ()))
        if self._cached is None or self._cached[0] != key:
            generator = make_generator(settings.seed, self.iteration, self.draw)
            self._cached = (key, grpo_iteration(self.policy, reward_fn, settings, generator, prompts))
        return self._cached[1]

    @property
    def trace_key(self) -> tuple | None:
        """What the trace last returned was computed from (settings, iteration, draw, the policy's version, reward,
        prompts): equal keys, equal traces, so a page can key its own caches on it."""
        return None if self._cached is None else self._cached[0]

    @one_at_a_time
    def advance(self) -> None:
        """Keep the current trace's updated parameters and move to the next iteration."""
        if self._cached is not None:
            trace = self._cached[1]
            self.policy.load_trainable_state(trace.state_after)
            self.policy.optimizer_state = trace.optimizer_state_after
            self._record(trace)
        self.iteration += 1
        self.draw = 0
        self._version += 1

    @one_at_a_time
    def new_group(self) -> None:
        self.draw += 1

    @one_at_a_time
    def reset(self) -> None:
        self.policy.load_trainable_state(self.initial_state)
        self.policy.optimizer_state = None
        self.iteration = 0
        self.draw = 0
        self.history.clear()
        self._version += 1

    @one_at_a_time
    def replay(self, settings: Settings, reward_fn: RewardFn, iterations: int, draw: int = 0) -> None:
        """Reach iteration ``iterations`` from the start with these settings: how a shared link rebuilds a run."""
        self.reset()
        for _ in range(iterations):
            self.trace(settings, reward_fn)
            self.advance()
        self.draw = draw

    def _record(self, trace: IterationTrace) -> None:
        last = trace.steps[-1].trace
        # KL to the reference of the sampled tokens (k3), whether or not beta puts it in the loss
        kl = kl_estimate(trace.steps[-1].logp, trace.ref_logp, "k3")
        row = {
            "iteration": self.iteration + 1,
            "mean_reward": float(trace.rewards.mean()),
            "loss": float(last.loss),
            "kl_to_ref": float((kl * last.mask).sum() / last.mask.sum().clamp(min=1)),
            "clip_low_fraction": float(last.clip_low_fraction),
            "clip_high_fraction": float(last.clip_high_fraction),
        }
        if self.describe is not None:
            row.update(self.describe(self.policy))
        self.history.append(row)
        del self.history[: -self.MAX_HISTORY]
