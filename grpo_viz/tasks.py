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


# ============================================================================ language-model tasks
#
# A task gives prompts and two reward functions: ``reward``, the one GRPO
# optimizes, and ``true_reward``, the one we actually care about (task
# accuracy).  They are the same function except in the reward-hacking task,
# where a hackable proxy is optimized and the true reward is shown beside it.
# Every reward function is a frozen dataclass: hashable, so the stepper can use
# it as part of a cache key, and comparable, so the same settings give the same
# trace.

import re  # noqa: E402

ALL_PAIRS = tuple((a, b) for a in range(10) for b in range(10))  # every single-digit sum a + b

SUM_IN_PROMPT = re.compile(r"(\d+)\s*\+\s*(\d+)")
ANSWER_TAG = re.compile(r"<answer>\s*(-?\d+)\s*</answer>")
NUMBER = re.compile(r"-?\d+")
# DeepSeek-R1's format reward: the whole completion is the answer inside the tags.
FORMAT = re.compile(r"^\s*<answer>\s*[^<>]*?\s*</answer>\s*$", re.DOTALL)


def expected_sum(prompt: str) -> int | None:
    """a + b for a prompt that contains "a+b", else None."""
    m = SUM_IN_PROMPT.search(prompt)
    return None if m is None else int(m.group(1)) + int(m.group(2))


def extracted_answer(completion: str) -> int | None:
    """The number inside <answer></answer> if there is one, else the last number in the completion."""
    tagged = ANSWER_TAG.search(completion)
    if tagged:
        return int(tagged.group(1))
    numbers = NUMBER.findall(completion)
    return int(numbers[-1]) if numbers else None


@dataclass(frozen=True)
class ExactMatchReward:
    """Correctness: r = 1 if the completion's answer equals a + b of its prompt, else 0."""

    def __call__(self, group: Group) -> Tensor:
        return torch.tensor(
            [float(expected_sum(p) is not None and extracted_answer(t) == expected_sum(p))
             for p, t in zip(group.prompts, group.texts)],
            dtype=torch.float64,
        )


@dataclass(frozen=True)
class FormatReward:
    """DeepSeek-R1's format reward: r = 1 if the completion is exactly <answer>...</answer>, else 0."""

    def __call__(self, group: Group) -> Tensor:
        return torch.tensor([float(bool(FORMAT.match(t))) for t in group.texts], dtype=torch.float64)


@dataclass(frozen=True)
class LengthReward:
    """A hackable proxy: r = min(|o| / target_tokens, 1).  "Longer answers look more thorough"."""

    target_tokens: int = 8

    def __call__(self, group: Group) -> Tensor:
        return (group.mask.sum(-1).to(torch.float64) / self.target_tokens).clamp(max=1.0)


@dataclass(frozen=True)
class BrevityReward:
    """A proxy for "just the answer": r = clip((long - c) / (long - short), 0, 1), c = the completion's characters
    (spaces around it not counted): 1 up to ``short`` characters, 0 from ``long`` on, a straight line between.

    Characters, not tokens: the same length scores the same under any tokenizer. A proxy: an empty or wrong
    answer is as brief as the right one."""

    short: int = 4
    long: int = 48

    def __post_init__(self):
        if not 0 <= self.short < self.long:
            raise ValueError(f"Give 0 <= short < long characters (short={self.short}, long={self.long}).")

    def __call__(self, group: Group) -> Tensor:
        chars = torch.tensor([len(t.strip()) for t in group.texts], dtype=torch.float64)
        return ((self.long - chars) / (self.long - self.short)).clamp(0.0, 1.0)


@dataclass(frozen=True)
class KeywordReward:
    """A hackable proxy: r = 1 if the completion contains ``keyword`` anywhere, right or wrong."""

    keyword: str = "answer"

    def __call__(self, group: Group) -> Tensor:
        return torch.tensor([float(self.keyword in t) for t in group.texts], dtype=torch.float64)


@dataclass(frozen=True)
class FirstWordReward:
    """The toy's reward on text: the reward of the completion's first word (0 for any other word)."""

    words: tuple[str, ...]
    rewards: tuple[float, ...]

    def __call__(self, group: Group) -> Tensor:
        table = dict(zip(self.words, self.rewards))
        first = [(re.findall(r"[A-Za-z]+", t) or [""])[0] for t in group.texts]
        return torch.tensor([table.get(w, 0.0) for w in first], dtype=torch.float64)


@dataclass(frozen=True)
class WeightedSum:
    """r = sum_k weight_k * r_k (DeepSeek-R1 adds its accuracy and format rewards)."""

    parts: tuple[tuple[float, object], ...]

    def __call__(self, group: Group) -> Tensor:
        return sum(w * fn(group) for w, fn in self.parts)


@dataclass(frozen=True)
class Task:
    """Prompts plus the reward GRPO optimizes and the true reward shown beside it."""

    key: str
    title: str
    description: str
    reward: object
    true_reward: object
    arithmetic: bool = True
    format_hint: bool = False  # ask a chat model to use <answer></answer>

    @property
    def is_hackable(self) -> bool:
        return self.reward != self.true_reward

    def prompt(self, a: int, b: int, chat: bool) -> str:
        if not self.arithmetic:
            return "The cat"
        if not chat:
            return f"{a}+{b}="  # the built-in model's corpus writes sums this way
        if self.format_hint:
            return f"What is {a}+{b}? Put only the final number inside <answer></answer>."
        return f"What is {a}+{b}? Answer with just the number."

    def prompts(self, seed: int, iteration: int, draw: int = 0, n: int = 1, chat: bool = False,
                held_out: Sequence[tuple[int, int]] = ()) -> list[str]:
        """n prompts for (seed, iteration, draw): the same numbers every time, so a URL reproduces the screen.
        Sums in ``held_out`` (an evaluation set, see ``evaluation_pairs``) are never drawn."""
        gen = torch.Generator().manual_seed((int(seed) * 1_000_003 + iteration * 7919 + draw) % 2**62)
        if not held_out:
            pairs = torch.randint(0, 10, (n, 2), generator=gen).tolist()
            return [self.prompt(a, b, chat) for a, b in pairs]
        excluded = {tuple(p) for p in held_out}
        allowed = [p for p in ALL_PAIRS if p not in excluded]
        if not allowed:
            raise ValueError("Every sum is held out for evaluation: hold out fewer problems.")
        picks = torch.randint(0, len(allowed), (n,), generator=gen).tolist()
        return [self.prompt(*allowed[i], chat) for i in picks]

    @staticmethod
    def evaluation_pairs(problems: int, seed: int = 0) -> list[tuple[int, int]]:
        """The first ``problems`` sums (a, b) of a fixed shuffle of all 100: what ``accuracy`` evaluates on."""
        if problems >= len(ALL_PAIRS):
            return list(ALL_PAIRS)
        order = torch.randperm(len(ALL_PAIRS), generator=torch.Generator().manual_seed(seed)).tolist()
        return [ALL_PAIRS[i] for i in order[:problems]]

    def with_word_rewards(self, words, rewards) -> "Task":
        """The toy task with the reward per word the sidebar shows."""
        if self.arithmetic:
            return self
        fn = FirstWordReward(tuple(words), tuple(float(r) for r in rewards))
        return Task(self.key, self.title, self.description, fn, fn, arithmetic=False)

    def accuracy(self, policy, samples: int = 8, seed: int = 0, problems: int = 100, temperature: float = 1.0,
                 chat: bool = False, batched: bool = False) -> float:
        """Mean true reward over ``samples`` completions of each of the first ``problems`` sums (sampled at T).

        ``batched``: the prompts of one length are sampled together (``sample_batched``, where the policy has it):
        the same distribution in a few forwards instead of one decode loop per prompt, from another random stream."""
        pairs = self.evaluation_pairs(problems, seed)
        prompts = [self.prompt(a, b, chat) for a, b in pairs]
        gen = torch.Generator().manual_seed(seed)
        sample = policy.sample_batched if batched and hasattr(policy, "sample_batched") else policy.sample_group
        group = sample(prompts, samples, gen, temperature)
        return float(self.true_reward(group).mean())


ARITHMETIC = Task(
    "sum", "Sum: exact match", "Single-digit addition; r = 1 when the answer equals a + b.",
    ExactMatchReward(), ExactMatchReward(),
)
ARITHMETIC_FORMAT = Task(
    "sum_format", "Sum: correctness + format (R1)",
    "DeepSeek-R1 style: r = correctness + 0.5 · [the completion is <answer>…</answer>].",
    WeightedSum(((1.0, ExactMatchReward()), (0.5, FormatReward()))), ExactMatchReward(), format_hint=True,
)
ARITHMETIC_LENGTH = Task(
    "sum_length", "Sum: length proxy (hackable)",
    "Reward hacking: GRPO optimizes r = min(|o| / 8, 1), longer looks more thorough; the true reward (correct?) is shown beside it.",
    LengthReward(8), ExactMatchReward(),
)
ARITHMETIC_BRIEF = Task(
    "sum_brief", "Sum: correct and brief",
    "r = ½ · [the answer is a + b] + ½ · brevity (1 up to 4 characters, 0 from 48 on). The prompt asks for just "
    "the number; brevity is a proxy for that, and a short wrong answer earns its half too.",
    WeightedSum(((0.5, ExactMatchReward()), (0.5, BrevityReward()))),
    WeightedSum(((0.5, ExactMatchReward()), (0.5, BrevityReward()))),
)
TOY_TEXT = Task(
    "toy", "“The cat …”: reward per first word",
    "The toy's state as a prompt; the reward of the first word, from the sidebar's reward per word.",
    FirstWordReward(("sat", "slept", "barked"), (1.0, 0.5, 0.0)),
    FirstWordReward(("sat", "slept", "barked"), (1.0, 0.5, 0.0)), arithmetic=False,
)
TASKS: dict[str, Task] = {t.key: t for t in (ARITHMETIC, ARITHMETIC_BRIEF, ARITHMETIC_FORMAT, ARITHMETIC_LENGTH,
                                              TOY_TEXT)}
# The task a model starts on: one it visibly learns in a few minutes of Run. The built-in model's corpus has a
# careful writer for an exact-match reward to find; SmolLM2 rarely gets a sum right or answers with just the
# number at first, and learns the brief answer long before the arithmetic.
MODEL_DEFAULT_TASKS = {"smollm2": ARITHMETIC_BRIEF.key}


def default_task(model_kind: str) -> str:
    """The key of the task ``model_kind`` ("builtin", "smollm2", "hf") starts on."""
    return MODEL_DEFAULT_TASKS.get(model_kind, ARITHMETIC.key)
