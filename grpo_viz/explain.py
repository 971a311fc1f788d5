"""What each stage says: its equation with the group's numbers, a plain explanation, and a table.

Plain strings and pandas only (no Streamlit), so the math reference, the app
and a notebook all print the same thing.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from . import formulas
from .policies.toy import ToyPolicy, probs_from_logits
from .stages import GRPO_STAGES
from .stages import count, gradient_norm_text, pushed_down_text, zero_loss_text  # noqa: F401  (their old home)
from .stepper import IterationTrace


@dataclass
class ToyNumbers:
    """The toy-specific numbers of one iteration: distributions and logits before, during and after."""

    words: tuple[str, ...]
    temperature: float
    logits_old: torch.Tensor  # z at sampling time (pi_old)
    probs_old: torch.Tensor
    probs_ref: torch.Tensor
    logits_per_step: list[torch.Tensor]  # z after 0..mu inner updates
    probs_per_step: list[torch.Tensor]
    grad_logits: list[torch.Tensor]  # dL/dz at each inner step

    @property
    def probs_after(self) -> torch.Tensor:
        return self.probs_per_step[-1]


def toy_numbers(trace: IterationTrace, policy: ToyPolicy) -> ToyNumbers:
    T = trace.settings.temperature
    logits = [trace.steps[0].state_before[0]] + [s.state_after[0] for s in trace.steps]
    return ToyNumbers(
        words=policy.words,
        temperature=T,
        logits_old=logits[0],
        probs_old=probs_from_logits(logits[0], T),
        probs_ref=probs_from_logits(policy.ref_logits, T),
        logits_per_step=logits,
        probs_per_step=[probs_from_logits(z, T) for z in logits],
        grad_logits=[s.grad_params[0] for s in trace.steps],
    )


# ----------------------------------------------------------------- the per-sample table

# The per-sample table's columns, by the stage that adds them.
STAGE_COLUMNS = {stage.name: list(stage.columns) for stage in GRPO_STAGES}


def active_branch(ratio: float, advantage: float, low_clipped: bool, high_clipped: bool) -> str:
    """Which term of min(w A, w̃ A) is active for one sample, and why, in words."""
    if advantage == 0:
        return "A = 0: no push either way"
    if high_clipped:
        return "clipped (w > 1+ε_high, A > 0): no gradient"
    if low_clipped:
        return "clipped (w < 1−ε_low, A < 0): no gradient"
    if ratio > 1 or ratio < 1:
        return "unclipped w·A (clip would not help the objective)"
    return "unclipped w·A (w = 1)"


def sample_columns(trace: IterationTrace, step_index: int, stage: int,
                   probs_after: torch.Tensor | None = None) -> dict[str, list]:
    """One value per completion in each column of every stage up to ``stage``, by column name.

    For multi-token completions the per-token quantities are shown as the
    completion's mean over its real tokens.
    """
    step = trace.steps[step_index]
    t = step.trace
    mask = trace.group.mask.to(torch.float64)
    lengths = mask.sum(-1).clamp(min=1)

    def per_completion(x: torch.Tensor) -> list[float]:
        return ((x.to(torch.float64) * mask).sum(-1) / lengths).tolist()

    def per_completion_sum(x: torch.Tensor) -> list[float]:
        return (x.to(torch.float64) * mask).sum(-1).tolist()

    low = t.is_low_clipped.any(-1).tolist()
    high = t.is_high_clipped.any(-1).tolist()
    ratio = per_completion(t.ratio)
    adv = trace.advantages.tolist()
    kl = per_completion(t.kl) if t.kl is not None else [0.0] * len(adv)
    columns = {
        "sample": list(range(1, len(adv) + 1)),
        "completion": trace.group.texts,
        "π_old(o)": per_completion_sum(trace.old_logp),
        "π_ref(o)": per_completion_sum(trace.ref_logp),
        "reward r": trace.rewards.tolist(),
        "group mean r̄": trace.group_mean.tolist(),
        "group std σ": trace.group_std.tolist(),
        "advantage A": adv,
        "ratio w": ratio,
        "clipped ratio w̃": per_completion(t.clipped_ratio),
        "w·A": per_completion(t.unclipped_objective),
        "w̃·A": per_completion(t.clipped_objective),
        "active branch": [active_branch(r, a, lo, hi) for r, a, lo, hi in zip(ratio, adv, low, high)],
        "policy loss P": per_completion(t.policy_loss_per_token),
        "k3": kl,
        "β·k3": [t.beta * k for k in kl],
        "loss L_i": per_completion(t.per_token_loss),
        "∂L/∂log π(o)": per_completion_sum(step.grad_logp),
    }
    # a completion's probability is the exp of its summed token log-probs
    columns["π_old(o)"] = [math.exp(v) for v in columns["π_old(o)"]]
    columns["π_ref(o)"] = [math.exp(v) for v in columns["π_ref(o)"]]
    if probs_after is not None:
        ids = trace.group.completion_ids[:, 0]
        columns["π_θ(o) after"] = probs_after[ids].tolist()
    shown = [c for s in GRPO_STAGES[: stage + 1] for c in s.columns if c in columns]
    return {c: columns[c] for c in shown}


def sample_table(trace: IterationTrace, step_index: int, stage: int, probs_after: torch.Tensor | None = None) -> pd.DataFrame:
    """``sample_columns`` as a table, one row per completion (the CSV export; a notebook)."""
    return pd.DataFrame(sample_columns(trace, step_index, stage, probs_after))


def table_markdown(columns: Mapping[str, Sequence], digits: int = 4) -> str:
    """A small table (columns by name: a dict of lists, or a DataFrame) as GitHub-flavoured Markdown: real numbers to
    ``digits`` places, numbers right-aligned.

    The step-through table is plain Markdown rather than an interactive grid: it appears on every click, and the
    grid's canvas and code were ~0.7 s of the first page load and a redraw per click, for G <= 64 rows. Written
    out here rather than with ``DataFrame.to_markdown``: tabulate's column padding took ~9 ms of every click; and
    from plain lists, since building a DataFrame for it was 6% of the server's work under load (py-spy).
    """

    def escape(text: object) -> str:
        return str(text).replace("|", r"\|")

    def kind(values: Sequence) -> str:
        if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
            return "i"
        return "f" if all(isinstance(v, numbers.Real) for v in values) else "s"

    def cell(value: object, kind: str) -> str:
        return f"{value:.{digits}f}" if kind == "f" else escape(value)

    names = list(columns.keys())
    values = [list(columns[name]) for name in names]
    kinds = [kind(column) for column in values]
    lines = [
        "| " + " | ".join(escape(c).replace("_", r"\_") for c in names) + " |",
        "|" + "|".join("---:" if kind in "fi" else ":---" for kind in kinds) + "|",
    ]
    lines += ("| " + " | ".join(cell(v, kind) for v, kind in zip(row, kinds)) + " |" for row in zip(*values))
    return "\n".join(lines)


# ----------------------------------------------------------------- equations with numbers


def stage_latex(stage: int, trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> list[str]:
    """The stage's equation, then the same equation with this group's numbers."""
    return GRPO_STAGES[stage].latex(trace, step_index, toy)


# A stage left empty by mu = 1 offers one click: this many inner updates on the same group. At the default
# settings (seed 0, iteration 1) the second step moves the ratios (up to 0.495 from 1), clips 7 of 8 samples and gives
# KL > 0 (up to 0.092).
SHOW_MU = 2
SHOW_MU_LABEL = f"Show with μ = {SHOW_MU}"  # short: a presenting card's column fits it uncut; the help says more


def empty_until_more_updates(stage: int, trace: IterationTrace, step_index: int) -> bool:
    """True when the stage has nothing to show only because μ = 1: every ratio 1, nothing clipped, or (KL)
    π_θ = π_ref."""
    if trace.mu > 1:
        return False
    empty = GRPO_STAGES[stage].empty_with_one_update
    return empty is not None and empty(trace, step_index)


def stage_text(stage: int, trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> str:
    """One or two plain sentences on what the stage does and why, for this group (``toy``: the toy's numbers,
    for the sentences about its logits)."""
    return GRPO_STAGES[stage].text(trace, step_index, toy)


# ----------------------------------------------------------------- the formula card, tour and glossary

# The GRPO objective's pieces and the box around a stage's terms are formulas.GRPO_PIECES and formulas.boxed.
STAGE_TERMS = {stage.name: stage.terms for stage in GRPO_STAGES}


def objective_latex(stage: int) -> str:
    r"""J_GRPO(θ) with the terms the stage computes boxed in colour (J is maximized; the loss is -J)."""
    record = GRPO_STAGES[stage]
    objective = formulas.grpo_objective(record.terms, name="")  # unsubscripted: it fills 1280 px with the sidebar open
    if record.objective_below is not None:
        objective = rf"\begin{{gathered}}{objective}\\[0.3em]{formulas.boxed(record.objective_below)}\end{{gathered}}"
    return objective


SYMBOLS: dict[str, str] = {
    "q": "the prompt (here the two-word state “The cat”)",
    "o_i": "the i-th sampled completion of the group (here one word)",
    "G": "group size: completions sampled per prompt",
    "π_θ": "the policy being trained (softmax of the logits z / T)",
    "π_old (π_θold)": "the policy that sampled the group, frozen during the μ inner updates",
    "π_ref": "the frozen reference policy (the starting logits) the KL term pulls toward",
    "r_i": "the scalar reward of completion i",
    "r̄, σ_g": "mean and Bessel standard deviation (divide by G − 1) of the group's rewards "
                "(μ is the number of updates)",
    "Â_i,t (A_i)": "advantage: (r_i − r̄) / (σ_g + 1e-4), the same for every token of completion i",
    "w_i,t": "probability ratio π_θ(o_i,t) / π_old(o_i,t); exactly 1 on the first inner update",
    "ε_low, ε_high": "clip band half-widths: w is clipped to [1 − ε_low, 1 + ε_high]",
    "β": "weight of the KL penalty in the loss",
    "k3": "KL estimator π_ref/π_θ − log(π_ref/π_θ) − 1: never negative, unbiased",
    "μ (mu)": "number of gradient steps taken on one sampled group",
    "η": "learning rate (plain SGD on the toy's three logits)",
    "T": "sampling temperature: logits are divided by T for sampling and every log-prob",
    "z": "the toy's three logits, its only parameters",
    "𝓛": "the loss gradient descent minimizes, −J",
}

# For each stage: a "try this" prompt, a "check yourself" question and its answer.
TOUR: dict[str, tuple[str, str, str]] = {stage.name: stage.tour for stage in GRPO_STAGES}

TRAINING_TOUR: tuple[str, str, str] = (
    "Set Compare to beta, run b to 0.5 and Iterations to 200, press ⏩ Run to 200, and watch the KL chart.",
    "GRPO and PPO both end on “sat”: which one moved its probability faster, and what in the settings decides it?",
    "Compare the iteration at which each curve passes 0.9 (PPO's first update is larger here because it takes "
    "several epochs on each batch). The learning rates, μ against the PPO epochs, and β decide it; the clip "
    "fractions show how often each was held back.",
)
