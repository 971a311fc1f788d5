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
from .explain import TOUR
from .objectives import kl_estimate
from .stepper import STAGES, IterationTrace

# What each stage colours the tokens by, and the value drawn white.
STAGE_QUANTITY = {
    "Sample group": ("π_old(o_t)", None),
    "Score": ("reward r_i", None),
    "Advantages": ("A_i", 0.0),
    "Ratios": ("w_t", 1.0),
    "Clip": ("clipped (−1 low, +1 high)", 0.0),
    "KL": ("k3_t", None),
    "Loss & gradient": ("−∂L/∂log π(o_t)", 0.0),
    "Update": ("Δ log π(o_t)", 0.0),
}


@dataclass
class TokenGrid:
    """Per-token values of one stage for every completion's real tokens."""

    quantity: str
    values: list[list[float]]
    center: float | None
    hover: dict[str, list[list[float]]]
    zrange: tuple[float, float] | None = None


def _rows(x: torch.Tensor, lengths: list[int]) -> list[list[float]]:
    return [x[i, :n].tolist() for i, n in enumerate(lengths)]


def lengths(trace: IterationTrace) -> list[int]:
    return trace.group.mask.sum(-1).long().tolist()


def token_grid(trace: IterationTrace, stage: int, step_index: int, logp_after: torch.Tensor | None = None) -> TokenGrid:
    """The stage's quantity per token (an advantage is broadcast over its completion's tokens)."""
    name = STAGES[stage]
    step = trace.steps[step_index]
    t = step.trace
    n = lengths(trace)
    T = trace.group.mask.shape[1]
    quantity, center = STAGE_QUANTITY[name]
    logp = {"log π_old": _rows(trace.old_logp, n), "log π_ref": _rows(trace.ref_logp, n)}
    if name == "Sample group":
        return TokenGrid(quantity, _rows(trace.old_logp.exp(), n), None, logp, (0.0, 1.0))
    if name == "Score":
        r = trace.rewards.unsqueeze(-1).expand(-1, T)
        return TokenGrid(quantity, _rows(r, n), None, logp)
    if name == "Advantages":
        a = trace.advantages.unsqueeze(-1).expand(-1, T)
        return TokenGrid(quantity, _rows(a, n), 0.0, {"reward": _rows(trace.rewards.unsqueeze(-1).expand(-1, T), n)})
    if name == "Ratios":
        return TokenGrid(quantity, _rows(t.ratio, n), 1.0, {"log w": _rows(t.log_ratio, n), **logp})
    if name == "Clip":
        flag = t.is_high_clipped.double() - t.is_low_clipped.double()
        return TokenGrid(quantity, _rows(flag, n), 0.0,
                         {"w": _rows(t.ratio, n), "clipped w̃": _rows(t.clipped_ratio, n),
                          "A": _rows(t.advantages.unsqueeze(-1).expand(-1, T), n)}, (-1.0, 1.0))
    if name == "KL":
        kl = t.kl if t.kl is not None else kl_estimate(step.logp, trace.ref_logp, "k3")
        return TokenGrid(quantity, _rows(kl, n), None, {"β·k3": _rows(t.beta * kl, n), **logp})
    if name == "Loss & gradient":
        push = -step.grad_logp
        return TokenGrid(quantity, _rows(push, n), 0.0, {"per-token loss L": _rows(t.per_token_loss, n)})
    if logp_after is None:
        raise ValueError("The Update stage needs the log-probs after the update.")
    delta = (logp_after - trace.old_logp) * trace.group.mask
    return TokenGrid(quantity, _rows(delta, n), 0.0,
                     {"π_old(o_t)": _rows(trace.old_logp.exp(), n), "π_θ(o_t) after": _rows(logp_after.exp(), n)})


STAGE_TITLES = {  # (title, subtitle): a title of one short line fits the half-width column on a projector
    "Sample group": ("How likely π_old made each token", "one row per completion, one cell per token"),
    "Score": ("The reward of each completion", "one number, the same on every token"),
    "Advantages": ("GRPO's advantage A_i per completion", "one number, broadcast over its tokens"),
    "Ratios": ("Ratio w_t = π_θ / π_old per token", "white = 1"),
    "Clip": ("Tokens whose clipped term is active", "they carry no gradient (red: low side, green: high side)"),
    "KL": ("k3 estimate of KL(π_θ ‖ π_ref) per token", None),
    "Loss & gradient": ("Which tokens the update pushes", "green: more likely, red: less likely"),
    "Update": ("Change in log π(o_t) after the update", "this iteration's μ update step(s)"),
}


def token_figure(trace: IterationTrace, stage: int, step_index: int,
                 logp_after: torch.Tensor | None = None) -> go.Figure:
    grid = token_grid(trace, stage, step_index, logp_after)
    labels = row_labels(trace, stage)
    title, subtitle = STAGE_TITLES[STAGES[stage]]
    return charts.token_heatmap(trace.group.tokens, grid.values, grid.quantity, title, subtitle=subtitle,
                                center=grid.center, row_labels=labels, extra_hover=grid.hover, zrange=grid.zrange)


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
TABLE_COLUMN_STAGE = {
    "completion": "Sample group", "tokens |o|": "Sample group", "log π_old(o)": "Sample group",
    "reward r": "Score", "true reward": "Score", "advantage A": "Advantages", "mean ratio w": "Ratios",
    "clipped tokens": "Clip", "mean k3": "KL", "mean loss L": "Loss & gradient",
}


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
    if not task.arithmetic:
        return TOUR[name]
    _, question, answer = TOUR[name]
    if name == "Score":
        return ("Set the reward of “slept” to 1 in the sidebar: the toy's rewards change, the language model's do not, "
                f"because its task scores the answer ({task.description}). Switch Task to the toy's text to make "
                "the word rewards drive both.", question, answer)
    if name == "Advantages":
        return ("Set all three word rewards equal: every toy advantage becomes 0. The language model's rewards come "
                "from its task: press 🎲 New group until its group is all right or all wrong, and its advantages are "
                "all 0 too.", question, answer)
    return TOUR[name]
