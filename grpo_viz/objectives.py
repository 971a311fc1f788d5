"""The math of GRPO and PPO, written once (see docs/MATH.md).

Shapes: ``B`` completions of ``T`` tokens; ``B / G`` groups of ``G`` contiguous
rows share a prompt.  ``logp[i, t]`` is log pi_theta(o_{i,t} | q, o_{i,<t}).
The three-word toy is the same math with ``T = 1``.

Everything here is plain torch, works in float32 or float64 as given, and is
differentiable with respect to ``logp`` (and ``values`` for PPO).  Bad
arguments raise ``ValueError`` with a sentence a student can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "GRPOTrace",
    "PPOTrace",
    "group_advantages",
    "kl_estimate",
    "grpo_loss",
    "gae",
    "ppo_token_rewards",
    "ppo_loss",
]

STD_EPS = 1e-4  # added to sigma in the advantage denominator (DeepSeekMath, TRL)
WHITEN_EPS = 1e-8  # added to the variance when whitening PPO advantages

SCALE_REWARDS = ("group", "batch", "none")
KL_ESTIMATORS = ("k1", "k2", "k3")
LOSS_TYPES = ("grpo", "bnpo", "dapo", "dr_grpo")
IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")


# --------------------------------------------------------------------------- checks


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}.")


def _check_epsilon(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or value != value or value < 0:
        raise ValueError(f"{name} is the half-width of the clip band and must be a number >= 0, not {value!r}.")


def _check_2d(name: str, x: Tensor, like: Tensor | None = None) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch tensor, not {type(x).__name__}.")
    if x.dim() != 2:
        raise ValueError(
            f"{name} must have shape [B, T] (completions x tokens; the toy has T = 1), "
            f"but it has shape {list(x.shape)}."
        )
    if like is not None and x.shape != like.shape:
        raise ValueError(f"{name} has shape {list(x.shape)} but logp has shape {list(like.shape)}; they must match.")


def _per_completion(name: str, x: Tensor, batch_size: int) -> Tensor:
    """Accept one number per completion as [B] or [B, 1] and return [B, 1]."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch tensor, not {type(x).__name__}.")
    if x.dim() == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 1 or x.shape[0] != batch_size:
        raise ValueError(
            f"{name} must hold one number per completion (shape [{batch_size}]), but it has shape {list(x.shape)}."
        )
    return x.unsqueeze(-1)


def _mask_like(mask: Tensor, logp: Tensor) -> Tensor:
    _check_2d("mask", mask, logp)
    return mask.to(logp.dtype)


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """sum(mask * x) / max(sum(mask), 1): a mean over real tokens that is 0, not NaN, when there are none."""
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


# --------------------------------------------------------------------------- GRPO


def group_advantages(rewards: Tensor, group_size: int, scale_rewards: str = "group") -> Tensor:
    r"""Group-relative advantages, one scalar per completion.

    .. math::
        A_i = \frac{r_i - \bar r_g}{\sigma + 10^{-4}}

    with r̄_g (r-bar) the mean of the G rewards of i's group and sigma their Bessel
    standard deviation (``"group"``), the Bessel std of all B rewards
    (``"batch"``), or no division at all (``"none"``, Dr. GRPO: A_i = r_i - r̄_g).
    A group whose rewards are all equal gets A_i = 0 exactly.
    """
    if not isinstance(rewards, Tensor):
        raise ValueError(f"rewards must be a torch tensor, not {type(rewards).__name__}.")
    if rewards.dim() != 1:
        raise ValueError(f"rewards must hold one number per completion (shape [B]), but it has shape {list(rewards.shape)}.")
    if isinstance(group_size, bool) or not isinstance(group_size, int):
        raise ValueError(f"group_size must be a whole number, not {group_size!r}.")
    if group_size < 2:
        raise ValueError(
            f"group_size is {group_size}, but GRPO needs at least 2 completions per group: "
            "the baseline is the group's mean reward, and one sample has nothing to be compared with."
        )
    if not rewards.is_floating_point():
        rewards = rewards.to(torch.get_default_dtype())
    batch_size = rewards.shape[0]
    if batch_size % group_size != 0:
        raise ValueError(f"{batch_size} rewards cannot be split into groups of {group_size}: B must be a multiple of G.")
    _check_choice("scale_rewards", scale_rewards, SCALE_REWARDS)

    grouped = rewards.view(-1, group_size)
    group_mean = grouped.mean(dim=1).repeat_interleave(group_size)
    advantages = rewards - group_mean
    if scale_rewards == "group":
        advantages = advantages / (grouped.std(dim=1).repeat_interleave(group_size) + STD_EPS)
    elif scale_rewards == "batch":
        advantages = advantages / (rewards.std() + STD_EPS)
    # Floating-point means of equal numbers can miss them by an ulp; such a
    # group carries no signal at all, so its advantages are zero, not 1e-13.
    all_equal = (grouped.amax(dim=1) == grouped.amin(dim=1)).repeat_interleave(group_size)
    return torch.where(all_equal, torch.zeros_like(advantages), advantages)


def kl_estimate(logp: Tensor, ref_logp: Tensor, estimator: str = "k3") -> Tensor:
    r"""Per-token estimate of KL(pi_theta || pi_ref) from a sample of pi_theta.

    With d = ref_logp - logp (so e^d = pi_ref / pi_theta):

    - ``k1`` = -d                     (unbiased, can be negative)
    - ``k2`` = d^2 / 2                (biased, low variance)
    - ``k3`` = e^d - d - 1            (unbiased, always >= 0; DeepSeekMath)
    """
    _check_choice("estimator", estimator, KL_ESTIMATORS)
    if not isinstance(logp, Tensor) or not isinstance(ref_logp, Tensor):
        raise ValueError("logp and ref_logp must be torch tensors.")
    if logp.shape != ref_logp.shape:
        raise ValueError(f"ref_logp has shape {list(ref_logp.shape)} but logp has shape {list(logp.shape)}; they must match.")
    d = ref_logp - logp
    if estimator == "k1":
        return logp - ref_logp  # = -d, and 0.0 (not -0.0, which a page would print as "-0") where they are equal
    if estimator == "k2":
        return d.pow(2) / 2
    return torch.exp(d) - d - 1


@dataclass
class GRPOTrace:
    """Every intermediate of one GRPO loss evaluation (tensors are [B, T] unless noted)."""

    loss: Tensor  # 0-dim, differentiable: what gradient descent minimizes (J = -loss)
    advantages: Tensor  # [B]
    log_ratio: Tensor  # logp - old_logp (per token, or the sequence mean broadcast)
    ratio: Tensor  # w
    clipped_ratio: Tensor  # clamp(w, 1 - eps_low, 1 + eps_high)
    unclipped_objective: Tensor  # w * A
    clipped_objective: Tensor  # w~ * A
    policy_loss_per_token: Tensor  # P = -min(w A, w~ A)
    kl: Tensor | None  # the KL term added to the loss (k3, times w with kl_ratio_correction); None when beta = 0
    per_token_loss: Tensor  # L = P + beta * KL
    is_low_clipped: Tensor  # bool: A < 0 and w < 1 - eps_low
    is_high_clipped: Tensor  # bool: A > 0 and w > 1 + eps_high
    clip_low_fraction: Tensor  # 0-dim, over real tokens (over completions with sequence-level ratios)
    clip_high_fraction: Tensor  # 0-dim, likewise
    policy_loss: Tensor  # 0-dim, the aggregated P alone
    kl_mean: Tensor | None  # 0-dim, masked mean of kl over real tokens
    mask: Tensor  # [B, T] in logp's dtype
    epsilon_low: float
    epsilon_high: float
    beta: float
    loss_type: str

    @property
    def clip_fraction(self) -> Tensor:
        return self.clip_low_fraction + self.clip_high_fraction


def _clip_fraction(is_clipped: Tensor, mask: Tensor, importance_sampling_level: str) -> Tensor:
    """The share of what one ratio governs that is clipped: real tokens, or with sequence-level ratios
    completions (each counts once, whatever its length, as TRL's ``clip_ratio`` metrics count them)."""
    if importance_sampling_level == "sequence":
        return is_clipped[:, 0].to(mask.dtype).mean()
    return _masked_mean(is_clipped.to(mask.dtype), mask)


def _aggregate(per_token: Tensor, mask: Tensor, loss_type: str, max_completion_length: int) -> Tensor:
    """Reduce [B, T] to one number the MATH.md section 5 way for ``loss_type``."""
    if loss_type == "grpo":
        return ((per_token * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1.0)).mean()
    if loss_type in ("bnpo", "dapo"):
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    return (per_token * mask).sum() / (per_token.shape[0] * max_completion_length)


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor | None,
    ref_logp: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    loss_type: str = "grpo",
    importance_sampling_level: str = "token",
    max_completion_length: int | None = None,
    kl_ratio_correction: bool = False,
) -> GRPOTrace:
    r"""The clipped GRPO surrogate with a KL penalty in the loss.

    .. math::
        w_{i,t} = \frac{\pi_\theta(o_{i,t})}{\pi_{old}(o_{i,t})},\quad
        \tilde w_{i,t} = \mathrm{clip}(w_{i,t}, 1-\epsilon_{low}, 1+\epsilon_{high})

        L_{i,t} = -\min(w_{i,t} A_i,\ \tilde w_{i,t} A_i) + \beta\,\mathrm{KL}_{k3}[\pi_\theta \| \pi_{ref}]_{i,t}

    aggregated over real tokens by ``loss_type``:
    ``grpo`` mean over each completion's tokens, then over completions;
    ``bnpo``/``dapo`` one mean over all tokens of the batch;
    ``dr_grpo`` sum divided by B * max_completion_length.

    ``importance_sampling_level="sequence"`` (GSPO) uses one ratio per
    completion, exp(mean_t log w_{i,t}).  ``old_logp=None`` means on-policy
    (old = logp detached, so w = 1 and the clip cannot bite).
    """
    _check_2d("logp", logp)
    if old_logp is None:
        old_logp = logp.detach()
    _check_2d("old_logp", old_logp, logp)
    mask = _mask_like(mask, logp)
    batch_size, num_tokens = logp.shape
    advantages_col = _per_completion("advantages", advantages, batch_size)
    _check_epsilon("epsilon_low", epsilon_low)
    if epsilon_high is None:
        epsilon_high = epsilon_low
    _check_epsilon("epsilon_high", epsilon_high)
    _check_choice("loss_type", loss_type, LOSS_TYPES)
    _check_choice("importance_sampling_level", importance_sampling_level, IMPORTANCE_SAMPLING_LEVELS)
    if not isinstance(beta, (int, float)) or beta != beta or beta < 0:
        raise ValueError(f"beta weighs the KL penalty and must be a number >= 0, not {beta!r}.")
    if beta != 0:
        if ref_logp is None:
            raise ValueError("beta is not 0, so the KL term needs ref_logp (log-probs under the reference policy).")
        _check_2d("ref_logp", ref_logp, logp)
    if max_completion_length is None:
        max_completion_length = num_tokens
    if isinstance(max_completion_length, bool) or not isinstance(max_completion_length, int) or max_completion_length < 1:
        raise ValueError(f"max_completion_length must be a whole number >= 1, not {max_completion_length!r}.")

    log_ratio = logp - old_logp
    if importance_sampling_level == "sequence":
        sequence_log_ratio = (log_ratio * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1.0)
        log_ratio = sequence_log_ratio.unsqueeze(-1).expand(batch_size, num_tokens)
    ratio = torch.exp(log_ratio)
    clipped_ratio = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)

    unclipped_objective = ratio * advantages_col
    clipped_objective = clipped_ratio * advantages_col
    policy_loss_per_token = -torch.min(unclipped_objective, clipped_objective)

    kl = None
    per_token_loss = policy_loss_per_token
    if beta != 0:
        kl = kl_estimate(logp, ref_logp, "k3")
        if kl_ratio_correction:
            kl = kl * ratio
        per_token_loss = policy_loss_per_token + beta * kl

    is_low_clipped = (ratio < 1 - epsilon_low) & (advantages_col < 0)
    is_high_clipped = (ratio > 1 + epsilon_high) & (advantages_col > 0)
    with torch.no_grad():
        clip_low_fraction = _clip_fraction(is_low_clipped, mask, importance_sampling_level)
        clip_high_fraction = _clip_fraction(is_high_clipped, mask, importance_sampling_level)

    return GRPOTrace(
        loss=_aggregate(per_token_loss, mask, loss_type, max_completion_length),
        advantages=advantages_col[:, 0],
        log_ratio=log_ratio,
        ratio=ratio,
        clipped_ratio=clipped_ratio,
        unclipped_objective=unclipped_objective,
        clipped_objective=clipped_objective,
        policy_loss_per_token=policy_loss_per_token,
        kl=kl,
        per_token_loss=per_token_loss,
        is_low_clipped=is_low_clipped,
        is_high_clipped=is_high_clipped,
        clip_low_fraction=clip_low_fraction,
        clip_high_fraction=clip_high_fraction,
        policy_loss=_aggregate(policy_loss_per_token, mask, loss_type, max_completion_length),
        kl_mean=None if kl is None else _masked_mean(kl.detach(), mask),
        mask=mask,
        epsilon_low=float(epsilon_low),
        epsilon_high=float(epsilon_high),
        beta=float(beta),
        loss_type=loss_type,
    )


# --------------------------------------------------------------------------- PPO


def ppo_token_rewards(
    scores: Tensor, logp: Tensor, ref_logp: Tensor, mask: Tensor, beta: float = 0.05, estimator: str = "k1"
) -> Tensor:
    r"""RLHF per-token rewards: the KL penalty lives in the reward.

    .. math::
        \mathrm{rew}_{i,t} = -\beta\,\mathrm{KL}_{i,t} + [t = |o_i| - 1]\; r_i

    The score r_i lands on the last real token of completion i; padding gets 0.
    """
    _check_2d("logp", logp)
    _check_2d("ref_logp", ref_logp, logp)
    mask = _mask_like(mask, logp)
    scores_col = _per_completion("scores", scores, logp.shape[0])
    if not isinstance(beta, (int, float)) or beta != beta or beta < 0:
        raise ValueError(f"beta (the KL coefficient) must be a number >= 0, not {beta!r}.")
    rewards = -beta * kl_estimate(logp, ref_logp, estimator) * mask
    lengths = mask.sum(dim=-1).long()
    last = (lengths - 1).clamp(min=0)
    # A completion with no real token has nowhere to receive its score.
    at_last_token = torch.zeros_like(rewards).scatter(1, last.unsqueeze(-1), 1.0) * (lengths > 0).unsqueeze(-1)
    return rewards + at_last_token * scores_col.to(rewards.dtype)


def gae(
    token_rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[Tensor, Tensor]:
    r"""Generalized advantage estimation, backwards over real tokens (V = 0 after the last).

    .. math::
        \delta_t = \mathrm{rew}_t + \gamma V_{t+1} - V_t,\qquad
        A_t = \delta_t + \gamma\lambda A_{t+1},\qquad R_t = A_t + V_t

    Returns ``(advantages, returns)``, both [B, T] and 0 on padding.
    """
    _check_2d("token_rewards", token_rewards)
    _check_2d("values", values, token_rewards)
    mask = _mask_like(mask, token_rewards)
    for name, x in (("gamma", gamma), ("lam", lam)):
        if not isinstance(x, (int, float)) or x != x or not 0 <= x <= 1:
            raise ValueError(f"{name} must be a number between 0 and 1, not {x!r}.")
    values = values * mask
    num_tokens = token_rewards.shape[1]
    next_value = torch.zeros_like(values[:, 0])
    next_advantage = torch.zeros_like(values[:, 0])
    advantages_reversed = []
    for t in reversed(range(num_tokens)):
        delta = token_rewards[:, t] + gamma * next_value - values[:, t]
        advantage = (delta + gamma * lam * next_advantage) * mask[:, t]
        advantages_reversed.append(advantage)
        next_value, next_advantage = values[:, t], advantage
    advantages = torch.stack(advantages_reversed[::-1], dim=1)
    returns = (advantages + values) * mask
    return advantages, returns


@dataclass
class PPOTrace:
    """Every intermediate of one PPO loss evaluation (tensors are [B, T] unless noted)."""

    loss: Tensor  # 0-dim: policy_loss + vf_coef * value_loss
    policy_loss: Tensor  # 0-dim
    value_loss: Tensor  # 0-dim
    advantages: Tensor  # after whitening (if it was applied)
    whitened: bool  # False when whitening was asked for but undefined (fewer than 2 real tokens)
    ratio: Tensor
    clipped_ratio: Tensor
    policy_loss_per_token: Tensor  # max(-A w, -A w~)
    value_loss_per_token: Tensor  # 0.5 * max((V - R)^2, (V_clipped - R)^2)
    values_clipped: Tensor
    is_clipped: Tensor  # bool: the clipped branch of the max is the active one
    clip_fraction: Tensor  # 0-dim, over real tokens
    value_clip_fraction: Tensor  # 0-dim
    mask: Tensor
    epsilon: float


def ppo_loss(
    logp: Tensor,
    old_logp: Tensor | None,
    advantages: Tensor,
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    *,
    epsilon: float = 0.2,
    cliprange_value: float = 0.2,
    vf_coef: float = 0.1,
    whiten_advantages: bool = True,
) -> PPOTrace:
    r"""PPO's clipped policy loss and clipped value loss over real tokens.

    .. math::
        L^{\pi} = \mathrm{mean}_{t}\max(-A_t w_t,\ -A_t\,\mathrm{clip}(w_t, 1-\epsilon, 1+\epsilon))

        L^{V} = \tfrac12\,\mathrm{mean}_{t}\max((V_t - R_t)^2,\ (\mathrm{clip}(V_t, V^{old}_t - c_v, V^{old}_t + c_v) - R_t)^2)

        L = L^{\pi} + c_{vf} L^{V}

    With ``whiten_advantages`` A is first normalized over real tokens:
    A <- (A - mean) / sqrt(var + 1e-8), Bessel variance; skipped (``whitened=False``)
    when there are fewer than two real tokens, where the variance is undefined.
    """
    _check_2d("logp", logp)
    if old_logp is None:
        old_logp = logp.detach()
    _check_2d("old_logp", old_logp, logp)
    for name, x in (("advantages", advantages), ("values", values), ("old_values", old_values), ("returns", returns)):
        _check_2d(name, x, logp)
    mask = _mask_like(mask, logp)
    _check_epsilon("epsilon", epsilon)
    _check_epsilon("cliprange_value", cliprange_value)
    if not isinstance(vf_coef, (int, float)) or vf_coef != vf_coef or vf_coef < 0:
        raise ValueError(f"vf_coef weighs the value loss and must be a number >= 0, not {vf_coef!r}.")

    num_real = mask.sum()
    whitened = bool(whiten_advantages and num_real >= 2)
    if whitened:
        mean = (advantages * mask).sum() / num_real
        variance = ((advantages - mean).pow(2) * mask).sum() / (num_real - 1)
        advantages = (advantages - mean) * torch.rsqrt(variance + WHITEN_EPS)
    advantages = advantages * mask

    ratio = torch.exp(logp - old_logp)
    clipped_ratio = torch.clamp(ratio, 1 - epsilon, 1 + epsilon)
    pg_losses = -advantages * ratio
    pg_losses_clipped = -advantages * clipped_ratio
    policy_loss_per_token = torch.max(pg_losses, pg_losses_clipped)

    values_clipped = torch.clamp(values, old_values - cliprange_value, old_values + cliprange_value)
    vf_losses = (values - returns).pow(2)
    vf_losses_clipped = (values_clipped - returns).pow(2)
    value_loss_per_token = 0.5 * torch.max(vf_losses, vf_losses_clipped)

    policy_loss = _masked_mean(policy_loss_per_token, mask)
    value_loss = _masked_mean(value_loss_per_token, mask)
    is_clipped = pg_losses_clipped > pg_losses
    with torch.no_grad():
        clip_fraction = _masked_mean(is_clipped.to(logp.dtype), mask)
        value_clip_fraction = _masked_mean((vf_losses_clipped > vf_losses).to(logp.dtype), mask)
    return PPOTrace(
        loss=policy_loss + vf_coef * value_loss,
        policy_loss=policy_loss,
        value_loss=value_loss,
        advantages=advantages,
        whitened=whitened,
        ratio=ratio,
        clipped_ratio=clipped_ratio,
        policy_loss_per_token=policy_loss_per_token,
        value_loss_per_token=value_loss_per_token,
        values_clipped=values_clipped,
        is_clipped=is_clipped,
        clip_fraction=clip_fraction,
        value_clip_fraction=value_clip_fraction,
        mask=mask,
        epsilon=float(epsilon),
    )
