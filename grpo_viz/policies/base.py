"""The one interface the stepper, the objective and the charts see.

A policy is anything that can sample a group of completions for a prompt and
give per-token log-probabilities of them.  The three-word toy is a language
model with one step and a vocabulary of three; a causal LM is the same thing
with more of both.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Group:
    """B = num_groups * G sampled completions; rows of one group are contiguous."""

    prompts: list[str]  # one per completion
    completion_ids: Tensor  # [B, T] long
    mask: Tensor  # [B, T] float: 1 for real tokens (through the first EOS), 0 for padding
    texts: list[str]  # the decoded completions
    tokens: list[list[str]]  # each completion's real tokens, as text

    @property
    def batch_size(self) -> int:
        return self.completion_ids.shape[0]


class Trainable:
    """Anything with ``parameters()`` an update can be undone on: a policy, or PPO's critic."""

    def parameters(self) -> list[Tensor]:
        raise NotImplementedError

    @property
    def lock(self) -> threading.RLock:
        """Held by whatever changes these parameters in place, or reads them while they may be changed.

        One session's requests can run at the same time: Streamlit starts a new script thread for a click
        while the previous one may still be computing. Unserialized, one thread's in-place update lands
        between another's forward and backward (autograd then refuses), or its restore undoes the other's step.
        """
        lock = self.__dict__.get("_lock")
        return lock if lock is not None else self.__dict__.setdefault("_lock", threading.RLock())

    def __getstate__(self) -> dict:
        # a copy (clone, deepcopy) gets a lock of its own: locks cannot be copied, and it guards other tensors
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def trainable_state(self) -> list[Tensor]:
        """A detached copy of the trainable tensors: enough to undo or replay an update."""
        return [p.detach().clone() for p in self.parameters()]

    def load_trainable_state(self, state: list[Tensor]) -> None:
        with torch.no_grad():
            for p, saved in zip(self.parameters(), state, strict=True):
                p.copy_(saved)

    @contextlib.contextmanager
    def trainable_state_set_to(self, state: list[Tensor] | None):
        """The trainable tensors temporarily set to ``state`` (``None``: left as they are), under ``lock``:
        no other thread may train, or read, while they are swapped."""
        with self.lock:
            if state is None:
                yield
                return
            saved = self.trainable_state()
            try:
                self.load_trainable_state(state)  # inside: a load that fails halfway is undone too
                yield
            finally:
                self.load_trainable_state(saved)

    def gradients(self) -> list[Tensor]:
        """A copy of each trainable tensor's gradient (zeros where backward left none)."""
        return [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in self.parameters()]


class Policy(Trainable, abc.ABC):
    """pi_theta, with a frozen pi_ref beside it."""

    name: str = "policy"
    # The optimizer's own state (Adam's moments) carried from one iteration to the next, as a trainer keeps
    # its optimizer: a fresh Adam every iteration would move every weight by about lr on its first step.
    optimizer_state: dict | None = None

    @abc.abstractmethod
    def sample_group(self, prompts: list[str], group_size: int, generator: torch.Generator, temperature: float) -> Group:
        """Sample ``group_size`` completions for each prompt (no gradient)."""

    @abc.abstractmethod
    def log_probs(self, group: Group, temperature: float) -> Tensor:
        """log pi_theta(o_{i,t} | q, o_{i,<t}) as [B, T], differentiable w.r.t. the parameters (0 on padding)."""

    @abc.abstractmethod
    def reference_log_probs(self, group: Group, temperature: float) -> Tensor:
        """log pi_ref(o_{i,t} | q, o_{i,<t}) as [B, T], without gradient."""

    @abc.abstractmethod
    def parameters(self) -> list[Tensor]:
        """The tensors the optimizer updates."""

    @property
    @abc.abstractmethod
    def max_completion_length(self) -> int:
        """The generation limit in tokens: Dr. GRPO divides by B times this, whatever the batch's width."""

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=lr)

    def resume_optimizer(self, lr: float) -> torch.optim.Optimizer:
        """An optimizer over this policy's parameters that continues from ``optimizer_state``, at step size ``lr``."""
        optimizer = self.make_optimizer(lr)
        if self.optimizer_state is not None:
            # a copy: the saved state belongs to the kept trace, and recomputing this iteration must start from it
            optimizer.load_state_dict(_copied_state(self.optimizer_state))
            for param_group in optimizer.param_groups:
                param_group["lr"] = lr  # the slider's current value, not the one saved with the state
        return optimizer

    def adopt(self, settings) -> None:
        """Compute the way ``settings`` say (a language model's precision); what is computed stays the same. The
        toy has nothing to adopt."""

    def learning_rate(self, settings) -> float:
        """The step size this policy's optimizer takes from ``settings`` (the toy: ``settings.lr``)."""
        return settings.lr

    def max_grad_norm(self, settings) -> float:
        """The gradient-norm limit of this policy's optimizer step from ``settings`` (0: no clipping)."""
        return settings.max_grad_norm

    def clone(self) -> "Policy":
        """An independent copy for another session (shared read-only parts may stay shared)."""
        return copy.deepcopy(self)


def _copied_state(state):
    """An optimizer's state dict with every tensor cloned (dicts and lists rebuilt, other values shared: they are
    immutable): what ``copy.deepcopy`` gives, at a quarter of its cost on a model's Adam state."""
    if isinstance(state, Tensor):
        return state.clone()
    if isinstance(state, dict):
        return {k: _copied_state(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_copied_state(v) for v in state]
    return state


def one_at_a_time(method: Callable) -> Callable:
    """Run a session object's ``method`` holding ``self.policy.lock`` (see ``Trainable.lock``)."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self.policy.lock:
            return method(self, *args, **kwargs)

    return locked
