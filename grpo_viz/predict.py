"""Predict, then reveal: a question a student answers before a stage's numbers show, and its score.

Three stages ask one question each, answered from the iteration's trace:

- Advantages: which words does this group push up?  The words of the samples with A_i > 0.
- Clip: which words' samples are clipped at the inner step shown?  Those with A > 0 and w > 1 + eps_high, or
  A < 0 and w < 1 - eps_low (none on the first inner step, where every ratio is 1).
- Update: which word gains the most probability?  argmax_w of pi_after(w) - pi_old(w).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from .stepper import IterationTrace

NONE = "none of them"


@dataclass(frozen=True)
class Prediction:
    """One question with its options and the set of options that answers it."""

    stage: str
    question: str
    options: tuple[str, ...]
    answer: frozenset[str]
    multiple: bool  # choose any number of options, or exactly one

    def score(self, chosen: Iterable[str] | str | None) -> tuple[bool, str]:
        """(right?, one sentence naming the answer) for the options the student chose."""
        picked = frozenset([chosen] if isinstance(chosen, str) else (chosen or ()))
        answer = ", ".join(o for o in self.options if o in self.answer)
        if not picked:  # asked of a room, or skipped: nothing to score, only the answer to say
            return False, f"The answer: {answer}."
        right = picked == self.answer
        return right, (f"Right: {answer}." if right else f"Not quite: the answer is {answer}.")


def _words_where(texts: Sequence[str], flags: Sequence[bool], vocabulary: Sequence[str]) -> frozenset[str]:
    return frozenset(w for w in vocabulary if any(t == w and f for t, f in zip(texts, flags)))


def prediction(stage: str, trace: IterationTrace, step_index: int, words: Sequence[str],
               probs_old: torch.Tensor | None = None, probs_after: torch.Tensor | None = None) -> Prediction | None:
    """The question ``stage`` asks about this trace (None for a stage that asks none)."""
    texts = trace.group.texts
    drawn = tuple(w for w in words if w in texts)
    if stage == "Advantages":
        up = _words_where(texts, (trace.advantages > 0).tolist(), drawn)
        return Prediction(stage, "Which words will this group push up (A > 0)?", (*drawn, NONE),
                          up or frozenset({NONE}), multiple=True)
    if stage == "Clip":
        t = trace.steps[step_index].trace
        clipped = (t.is_low_clipped | t.is_high_clipped).any(dim=-1).tolist()
        hit = _words_where(texts, clipped, drawn)
        return Prediction(stage, f"At inner step {step_index + 1}, whose samples are clipped (no gradient)?",
                          (*drawn, NONE), hit or frozenset({NONE}), multiple=True)
    if stage == "Update" and probs_old is not None and probs_after is not None:
        gain = (probs_after - probs_old).tolist()
        best = max(range(len(words)), key=gain.__getitem__)
        return Prediction(stage, "Which word gains the most probability in this update?", tuple(words),
                          frozenset({words[best]}), multiple=False)
    return None


PREDICTING_STAGES = ("Advantages", "Clip", "Update")

__all__ = ["NONE", "PREDICTING_STAGES", "Prediction", "prediction"]
