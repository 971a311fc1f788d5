"""One PPO (RLHF style) iteration on the same policy interface, computed in full and kept in a trace.

This mirrors :func:`grpo_viz.stepper.grpo_iteration` so the two algorithms can
be shown side by side on the *same* sampled group: sample once (with the GRPO
stepper's :func:`~grpo_viz.stepper.make_generator`) and pass ``group=`` to both.

PPO differs from GRPO in two places (MATH.md, PPO section):

- the baseline is a learned value V(s), a second model with its own learning
  rate, instead of the group's mean and spread;
- the KL to the reference is a per-token *reward* (k1 by default), which then
  flows through GAE, instead of a term added to the loss.

Every formula comes from :mod:`grpo_viz.objectives` (``ppo_token_rewards``,
``gae``, ``ppo_loss``); this module only wires them together and records the
intermediates.  Like the GRPO stepper it leaves the policy (and the value)
exactly as it found them: the updated parameters are in the trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .config import Settings
from .objectives import PPOTrace, kl_estimate, gae, ppo_loss, ppo_token_rewards
from .policies.base import Group, Policy, Trainable, one_at_a_time
from .stepper import RewardFn, clip_gradient_norm


class ToyValue(Trainable):
    """The toy's critic: one learned number V(s) for its single state "The cat".

    Every token of every completion is in that state, so V[i, t] = V for all i, t.
    It starts at 0: a fresh critic knows nothing about the rewards.
    """

    name = "scalar value V(s)"

    def __init__(self, value: float = 0.0):
        self.value = torch.nn.Parameter(torch.tensor(float(value), dtype=torch.float64))

    def values(self, group: Group) -> Tensor:
        """V[i, t] for every token of the group, differentiable w.r.t. V ([B, T])."""
        return self.value.expand(group.mask.shape)

    def parameters(self) -> list[Tensor]:
        return [self.value]

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        # its own optimizer, so the critic has its own learning rate (value_lr)
        return torch.optim.SGD(self.parameters(), lr=lr)

    def __float__(self) -> float:
        return float(self.value.detach())


@dataclass
class PPOEpoch:
    """The k-th of ``ppo_epochs`` gradient steps on one batch (everything detached)."""

    trace: PPOTrace
    logp: Tensor  # [B, T] log pi_theta before this epoch's update
    values: Tensor  # [B, T] V before this epoch's update
    grad_logp: Tensor  # [B, T] d loss / d logp (negative = pushed up)
    grad_params: list[Tensor]  # d loss / d policy parameter (the toy: its three logits)
    grad_value: list[Tensor]  # d loss / d value parameter (= vf_coef * d L^V / d V)
    state_before: list[Tensor]
    state_after: list[Tensor]
    value_state_before: list[Tensor]
    value_state_after: list[Tensor]


@dataclass
class PPOIterationTrace:
    """Every intermediate of one PPO iteration ([B, T] tensors unless noted)."""

    settings: Settings
    group: Group
    rewards: Tensor  # [B] the scalar score r_i from the reward function
    kl: Tensor  # per-token KL estimate (settings.kl_estimator) of pi_old against pi_ref
    token_rewards: Tensor  # rew[i, t] = -beta * KL[i, t] + [t = last] r_i
    values: Tensor  # V_old[i, t]: the critic's estimate when the batch was sampled (the baseline)
    advantages_raw: Tensor  # GAE advantages before whitening
    advantages: Tensor  # after whitening (equal to advantages_raw when whitening is off or undefined)
    whitened: bool
    returns: Tensor  # R = A_raw + V_old: the critic's regression target
    old_logp: Tensor
    ref_logp: Tensor
    epochs: list[PPOEpoch] = field(default_factory=list)

    @property
    def state_before(self) -> list[Tensor]:
        return self.epochs[0].state_before

    @property
    def state_after(self) -> list[Tensor]:
        return self.epochs[-1].state_after

    @property
    def value_before(self) -> float:
        return float(self.epochs[0].value_state_before[0])

    @property
    def value_after(self) -> float:
        return float(self.epochs[-1].value_state_after[0])

    @property
    def value_state_after(self) -> list[Tensor]:
        return self.epochs[-1].value_state_after

    @property
    def num_epochs(self) -> int:
        return len(self.epochs)


def _detach_trace(trace: PPOTrace) -> PPOTrace:
    return PPOTrace(**{k: (v.detach() if isinstance(v, Tensor) else v) for k, v in vars(trace).items()})


def ppo_iteration(
    policy: Policy,
    value: ToyValue,
    reward_fn: RewardFn,
    settings: Settings,
    generator: torch.Generator,
    group: Group | None = None,
    prompts: list[str] | None = None,
) -> PPOIterationTrace:
    r"""Sample (unless ``group`` is given), score, and run ``ppo_epochs`` PPO updates; leave both models unchanged.

    .. math::
        \mathrm{rew}_{i,t} = -\beta\,\mathrm{KL}_{i,t} + [t = |o_i|-1]\,r_i,\qquad
        A = \mathrm{GAE}_{\gamma,\lambda}(\mathrm{rew}, V_{old}),\qquad R = A + V_{old}

        L = \mathrm{mean}_t \max(-A w, -A\,\mathrm{clip}(w, 1-\epsilon, 1+\epsilon))
            + c_{vf}\,\tfrac12\,\mathrm{mean}_t \max((V-R)^2, (\mathrm{clip}(V, V_{old}\pm c_v)-R)^2)

    PPO's clip is symmetric: it uses ``epsilon = settings.epsilon_low``.  The
    policy takes SGD steps of size ``lr`` and the critic of size ``value_lr``,
    both on the gradient of the one total loss L.
    """
    with policy.lock:  # its parameters are stepped and restored in place below
        problems = settings.validate()
        if problems:
            raise ValueError(" ".join(problems))
        start, value_start = policy.trainable_state(), value.trainable_state()
        if group is None:
            group = policy.sample_group(prompts, settings.group_size, generator, settings.temperature)
        rewards = reward_fn(group).to(torch.float64)
        with torch.no_grad():
            old_logp = policy.log_probs(group, settings.temperature).detach()
            ref_logp = policy.reference_log_probs(group, settings.temperature).detach()
            # a copy: V_old stays where the batch was sampled while the critic's steps move V (a view would move too)
            old_values = value.values(group).detach().to(old_logp.dtype).clone()
        mask = group.mask.to(old_logp.dtype)

        # KL lives in the reward, computed once from the sampling policy: it is part of the data, not of the loss
        token_rewards = ppo_token_rewards(rewards, old_logp, ref_logp, mask, beta=settings.beta,
                                          estimator=settings.kl_estimator)
        advantages_raw, returns = gae(token_rewards, old_values, mask, gamma=settings.gamma, lam=settings.lam)

        trace = PPOIterationTrace(
            settings=settings,
            group=group,
            rewards=rewards,
            kl=kl_estimate(old_logp, ref_logp, settings.kl_estimator) * mask,
            token_rewards=token_rewards,
            values=old_values,
            advantages_raw=advantages_raw,
            advantages=advantages_raw,
            whitened=False,
            returns=returns,
            old_logp=old_logp,
            ref_logp=ref_logp,
        )
        optimizer = policy.make_optimizer(settings.lr)
        value_optimizer = value.make_optimizer(settings.value_lr)
        try:
            for _ in range(settings.ppo_epochs):
                before, value_before = policy.trainable_state(), value.trainable_state()
                optimizer.zero_grad()
                value_optimizer.zero_grad()
                logp = policy.log_probs(group, settings.temperature)
                values = value.values(group)
                values_before = values.detach().clone()  # a view of the critic's parameter would follow its step
                loss_trace = ppo_loss(
                    logp, old_logp, advantages_raw, values, old_values, returns, mask,
                    epsilon=settings.epsilon_low,
                    cliprange_value=settings.cliprange_value,
                    vf_coef=settings.vf_coef,
                    whiten_advantages=settings.whiten_advantages,
                )
                (grad_logp,) = torch.autograd.grad(loss_trace.loss, logp, retain_graph=True)
                loss_trace.loss.backward()
                grads, value_grads = policy.gradients(), value.gradients()
                clip_gradient_norm([*policy.parameters(), *value.parameters()], policy.max_grad_norm(settings))
                optimizer.step()
                value_optimizer.step()
                trace.epochs.append(PPOEpoch(
                    trace=_detach_trace(loss_trace),
                    logp=logp.detach(),
                    values=values_before,
                    grad_logp=grad_logp.detach(),
                    grad_params=grads,
                    grad_value=value_grads,
                    state_before=before,
                    state_after=policy.trainable_state(),
                    value_state_before=value_before,
                    value_state_after=value.trainable_state(),
                ))
        finally:
            policy.load_trainable_state(start)
            value.load_trainable_state(value_start)
            optimizer.zero_grad()
            value_optimizer.zero_grad()
        # whitening uses the same fixed advantages every epoch, so the first epoch's are the batch's
        trace.advantages = trace.epochs[0].trace.advantages
        trace.whitened = trace.epochs[0].trace.whitened
        return trace


__all__ = ["PPOEpoch", "PPOIterationTrace", "ToyValue", "ppo_iteration"]


class CompareRun:
    """One policy and one critic, and the same sampled group shown under GRPO and under PPO (one app session's state).

    The group of (iteration, draw) is sampled once from pi_theta with ``make_generator(seed, iteration, draw)``,
    exactly the group the step-through page draws, then handed to both ``grpo_iteration`` and
    ``ppo_iteration``.  Both traces are cached, so moving the stage cursor never recomputes or resamples.
    """

    def __init__(self, policy: Policy, value: ToyValue | None = None):
        self.policy = policy
        self.value = value if value is not None else ToyValue()
        self.initial_state = policy.trainable_state()
        self.initial_value = self.value.trainable_state()
        self.iteration = 0
        self.draw = 0
        self._version = 0
        self._cached: tuple[tuple, tuple] | None = None

    @one_at_a_time
    def traces(self, settings: Settings, reward_fn: RewardFn):
        """(GRPO IterationTrace, PPOIterationTrace) of the current group."""
        from .stepper import grpo_iteration, make_generator  # the GRPO stepper, unchanged

        key = (settings, self.iteration, self.draw, self._version, reward_fn)
        if self._cached is None or self._cached[0] != key:
            problems = settings.validate()
            if problems:
                raise ValueError(" ".join(problems))
            generator = make_generator(settings.seed, self.iteration, self.draw)
            group = self.policy.sample_group(None, settings.group_size, generator, settings.temperature)
            grpo = grpo_iteration(self.policy, reward_fn, settings, generator, group=group)
            ppo = ppo_iteration(self.policy, self.value, reward_fn, settings, generator, group=group)
            self._cached = (key, (grpo, ppo))
        return self._cached[1]

    @property
    def shown(self) -> tuple | None:
        """The (GRPO, PPO) traces :meth:`traces` last returned, or None before the first call."""
        return None if self._cached is None else self._cached[1]

    @one_at_a_time
    def advance(self, keep: str) -> None:
        """Keep ``keep``'s update ("GRPO" or "PPO") as the next iteration's policy; the critic keeps its update."""
        if self._cached is not None:
            grpo, ppo = self._cached[1]
            self.policy.load_trainable_state((grpo if keep == "GRPO" else ppo).state_after)
            self.value.load_trainable_state(ppo.value_state_after)
        self.iteration += 1
        self.draw = 0
        self._version += 1

    @one_at_a_time
    def new_group(self) -> None:
        self.draw += 1

    @one_at_a_time
    def reset(self) -> None:
        self.policy.load_trainable_state(self.initial_state)
        self.value.load_trainable_state(self.initial_value)
        self.iteration = 0
        self.draw = 0
        self._version += 1


__all__ += ["CompareRun"]
