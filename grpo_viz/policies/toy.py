"""The classic toy: after a two-word state, a softmax over three candidate words.

Three trainable logits z are the whole model; pi_theta(w) = softmax(z / T)_w.
The reference pi_ref is a frozen copy of the starting logits.  Float64
throughout, so the numbers on screen are the numbers a student gets by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..config import TOY_START_PROBS, TOY_STATE, TOY_WORDS
from .base import Group, Policy


def probs_from_logits(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """pi(w) = exp(z_w / T) / sum_v exp(z_v / T)."""
    return torch.softmax(logits / temperature, dim=-1)


class ToyPolicy(Policy):
    """Three logits over three words, and a frozen copy of where they started."""

    name = "three-word toy"

    def __init__(
        self,
        logits: Sequence[float] | Tensor | None = None,
        words: Sequence[str] = TOY_WORDS,
        state: str = TOY_STATE,
        ref_logits: Sequence[float] | Tensor | None = None,
    ):
        if logits is None:
            logits = [math.log(p) for p in TOY_START_PROBS]
        self.words = tuple(words)
        self.state = state
        self.logits = torch.nn.Parameter(torch.as_tensor(logits, dtype=torch.float64).clone())
        if self.logits.shape != (len(self.words),):
            raise ValueError(f"The toy needs one logit per word: {len(self.words)} words, {self.logits.numel()} logits.")
        start = self.logits.detach() if ref_logits is None else torch.as_tensor(ref_logits, dtype=torch.float64)
        self.ref_logits = start.clone()

    # ------------------------------------------------------------ distributions
    def probs(self, temperature: float = 1.0) -> Tensor:
        return probs_from_logits(self.logits.detach(), temperature)

    def ref_probs(self, temperature: float = 1.0) -> Tensor:
        return probs_from_logits(self.ref_logits, temperature)

    # ------------------------------------------------------------ Policy
    def sample_group(
        self, prompts: list[str] | None, group_size: int, generator: torch.Generator, temperature: float
    ) -> Group:
        prompts = prompts or [self.state]
        ids = torch.cat(
            [torch.multinomial(self.probs(temperature), group_size, replacement=True, generator=generator) for _ in prompts]
        )
        words = [self.words[i] for i in ids.tolist()]
        return Group(
            prompts=[p for p in prompts for _ in range(group_size)],
            completion_ids=ids.unsqueeze(-1),
            mask=torch.ones(len(ids), 1, dtype=torch.float64),
            texts=words,
            tokens=[[w] for w in words],
        )

    def log_probs(self, group: Group, temperature: float) -> Tensor:
        return torch.log_softmax(self.logits / temperature, dim=-1)[group.completion_ids]

    def reference_log_probs(self, group: Group, temperature: float) -> Tensor:
        return torch.log_softmax(self.ref_logits / temperature, dim=-1)[group.completion_ids]

    def parameters(self) -> list[Tensor]:
        return [self.logits]

    max_completion_length = 1  # one word per completion

    def word_ids(self, words: Sequence[str]) -> Tensor:
        return torch.tensor([self.words.index(w) for w in words])
