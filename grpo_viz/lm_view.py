"""What the language-model column shows at each stage: a trace in, plain numbers and figures out.

No Streamlit: the page calls these, and tests call them directly.  Every
number comes from the ``IterationTrace`` that ``stepper.grpo_iteration``
computed with ``grpo_viz.objectives``; nothing here recomputes a formula
except ``kl_estimate`` for display when beta = 0 (the loss then has no KL term,
but the distance to pi_ref is still worth seeing).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import torch

from . import charts
from .objectives import kl_estimate
from .stages import GRPO_BY_NAME, GRPO_STAGES, lengths
from .stepper import STAGES, IterationTrace
from .tasks import ANSWER_TAG, NUMBER

# What each stage colours the tokens by, and the value drawn white.
STAGE_QUANTITY = {stage.name: (stage.lm_quantity, stage.lm_center) for stage in GRPO_STAGES}


@dataclass
class TokenGrid:
    """Per-token values of one stage for every completion's real tokens."""

    quantity: str
    values: list[list[float]]
    center: float | None
    hover: dict[str, list[list[float]]]
    zrange: tuple[float, float] | None = None


def token_grid(trace: IterationTrace, stage: int, step_index: int, logp_after: torch.Tensor | None = None) -> TokenGrid:
    """The stage's quantity per token (an advantage is broadcast over its completion's tokens)."""
    record = GRPO_STAGES[stage]
    values, hover, zrange = record.lm_tokens(trace, step_index, logp_after)
    return TokenGrid(record.lm_quantity, values, record.lm_center, hover, zrange)


# (title, subtitle): a title of one short line fits the half-width column on a projector
STAGE_TITLES = {stage.name: (stage.lm_title, stage.lm_subtitle) for stage in GRPO_STAGES}


def token_figure(trace: IterationTrace, stage: int, step_index: int,
                 logp_after: torch.Tensor | None = None, max_height: int | None = None) -> go.Figure:
    """The stage's quantity on every token of the group (``charts.token_heatmap``), at most ``max_height`` px tall."""
    grid = token_grid(trace, stage, step_index, logp_after)
    labels = row_labels(trace, stage)
    title, subtitle = STAGE_TITLES[STAGES[stage]]
    return charts.token_heatmap(trace.group.tokens, grid.values, grid.quantity, title, subtitle=subtitle,
                                center=grid.center, row_labels=labels, extra_hover=grid.hover, zrange=grid.zrange,
                                answer_spans=answer_spans(trace.group.tokens), max_height=max_height)


def answer_spans(tokens: list[list[str]]) -> list[tuple[int, int] | None]:
    """Each completion's tokens that hold the answer the sum tasks' reward reads (``tasks.extracted_answer``): the
    number inside <answer></answer>, else the last number; None where there is no number (the toy's words)."""
    spans = []
    for row in tokens:
        text = "".join(row)
        tagged = ANSWER_TAG.search(text)
        numbers = list(NUMBER.finditer(text))
        span = tagged.span(1) if tagged else numbers[-1].span() if numbers else None
        spans.append(None if span is None else charts.token_span(row, *span))
    return spans


def row_labels(trace: IterationTrace, stage: int) -> list[str]:
    """Each completion's row label: its number, and its reward once the Score stage has computed it."""
    if stage < STAGES.index("Score"):
        return [str(i + 1) for i in range(len(trace.group.texts))]
    return [f"{i + 1}: r={r:.3g}" for i, r in enumerate(trace.rewards.tolist())]


def summary_figure(trace: IterationTrace, true_rewards: torch.Tensor | None = None) -> go.Figure:
    return charts.completion_summary_chart(trace.rewards.tolist(), trace.advantages.tolist(), lengths(trace),
                                           None if true_rewards is None else true_rewards.tolist())


def top_k(probs: dict[str, torch.Tensor], token_text, k: int = 8) -> tuple[list[str], dict[str, list[float]]]:
    """The union of each distribution's top-k tokens (ordered by the first), and every distribution on them."""
    ids: list[int] = []
    for p in probs.values():
        for i in p.topk(min(k, p.numel())).indices.tolist():
            if i not in ids:
                ids.append(i)
    first = next(iter(probs.values()))
    ids.sort(key=lambda i: -float(first[i]))
    ids = ids[: k + 4]
    return [token_text(i) for i in ids], {name: [float(p[i]) for i in ids] for name, p in probs.items()}


# The stage at which each column of ``completion_table`` appears: the table reveals what the stages have computed.
TABLE_COLUMN_STAGE = {column: stage.name for stage in GRPO_STAGES for column in stage.lm_columns}


def completion_table(trace: IterationTrace, step_index: int, true_rewards: torch.Tensor | None = None,
                     stage: int | None = None) -> pd.DataFrame:
    """One row per completion: text, length, rewards, advantage, and token means of the ratio, KL and loss; with
    ``stage``, only the columns computed by that stage and the ones before it."""
    t = trace.steps[step_index].trace
    mask = trace.group.mask.double()
    n = mask.sum(-1).clamp(min=1)

    def mean(x: torch.Tensor) -> list[float]:
        return ((x.double() * mask).sum(-1) / n).tolist()

    kl = t.kl if t.kl is not None else kl_estimate(trace.steps[step_index].logp, trace.ref_logp, "k3")
    data = {
        "completion": trace.group.texts,
        "tokens |o|": mask.sum(-1).long().tolist(),
        "reward r": trace.rewards.tolist(),
    }
    if true_rewards is not None:
        data["true reward"] = true_rewards.tolist()
    data.update({
        "advantage A": trace.advantages.tolist(),
        "log π_old(o)": (trace.old_logp.double() * mask).sum(-1).tolist(),
        "mean ratio w": mean(t.ratio),
        "clipped tokens": ((t.is_low_clipped | t.is_high_clipped).double() * mask).sum(-1).long().tolist(),
        "mean k3": mean(kl),
        "mean loss L": mean(t.per_token_loss),
    })
    if stage is not None:
        data = {c: v for c, v in data.items() if STAGES.index(TABLE_COLUMN_STAGE[c]) <= stage}
    return pd.DataFrame(data, index=pd.RangeIndex(1, len(trace.group.texts) + 1, name="i"))


def tour(name: str, task) -> tuple[str, str, str]:
    """The stage's try-this, check-yourself question and answer for the page's toy and ``task`` (a tasks.Task).

    The sidebar's word rewards reach the language model only in the toy-text task; with a sum task the "try this"
    of the reward stages says what changes on each side.
    """
    stage = GRPO_BY_NAME[name]
    if not task.arithmetic or stage.lm_try_this is None:
        return stage.tour
    return (stage.lm_try_this(task), stage.question, stage.answer)
