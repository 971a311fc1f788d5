"""Prompts and reward functions.  A reward function maps a sampled group to one number per completion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .policies.base import Group


@dataclass(frozen=True)
class WordReward:
    """The toy's reward: a fixed number for each candidate word."""

    words: tuple[str, ...]
    rewards: tuple[float, ...]

    def __post_init__(self):
        if len(self.words) != len(self.rewards):
            raise ValueError(f"Give one reward per word: {len(self.words)} words but {len(self.rewards)} rewards.")

    def table(self) -> dict[str, float]:
        return dict(zip(self.words, self.rewards))

    def __call__(self, group: Group) -> Tensor:
        table = self.table()
        return torch.tensor([table.get(text.strip(), 0.0) for text in group.texts], dtype=torch.float64)

    def best_word(self) -> str:
        return max(self.words, key=self.table().__getitem__)


def word_reward(words: Sequence[str], rewards: Sequence[float]) -> WordReward:
    return WordReward(tuple(words), tuple(float(r) for r in rewards))
