"""Pure figure builders: plain numbers in, a ``plotly.graph_objects.Figure`` out.

No Streamlit, no torch: every builder takes sequences of floats and strings,
so it can be unit-tested and reused in a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# One colour per series, shared by every chart so pi_theta is always the same blue.
SERIES_COLORS = {
    "π_θ": "#1f77b4",
    "π_old": "#9467bd",
    "π_ref": "#7f7f7f",
    "after update": "#2ca02c",
    "group": "#ff7f0e",
}
POSITIVE = "#2ca02c"
NEGATIVE = "#d62728"
NEUTRAL = "#7f7f7f"
BAND = "rgba(31, 119, 180, 0.12)"
WORD_PALETTE = ("#2ca02c", "#ff7f0e", "#d62728", "#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _layout(fig: go.Figure, title: str, height: int = 380, legend_below: bool = False, **kwargs) -> go.Figure:
    legend = (dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0) if legend_below
              else dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left"),
        height=height,
        margin=dict(l=10, r=10, t=70, b=10),
        legend=legend,
        font=dict(size=14),
        **kwargs,
    )
    return fig


def _sign_colors(values: Sequence[float], tol: float = 1e-12) -> list[str]:
    return [POSITIVE if v > tol else NEGATIVE if v < -tol else NEUTRAL for v in values]


def sample_labels(texts: Sequence[str]) -> list[str]:
    """'1 sat', '2 barked', ...: unique x labels that still say which word was sampled."""
    return [f"{i + 1} {t}" for i, t in enumerate(texts)]


def word_colors(words: Sequence[str]) -> dict[str, str]:
    return {w: WORD_PALETTE[i % len(WORD_PALETTE)] for i, w in enumerate(words)}


# ----------------------------------------------------------------- distributions


def distribution_chart(
    words: Sequence[str], series: Mapping[str, Sequence[float]], title: str = "Next-word distribution"
) -> go.Figure:
    """Grouped bars: one group per word, one bar per distribution (e.g. π_θ, π_old, π_ref)."""
    fig = go.Figure()
    palette = list(SERIES_COLORS.values()) + list(WORD_PALETTE)
    for k, (name, probs) in enumerate(series.items()):
        color = SERIES_COLORS.get(name, palette[k % len(palette)])
        fig.add_bar(
            name=name,
            x=list(words),
            y=[float(p) for p in probs],
            marker_color=color,
            text=[f"{p:.3f}" for p in probs],
            textposition="outside",
            hovertemplate="%{x}: %{y:.4f}<extra>" + name + "</extra>",
        )
    fig.update_yaxes(range=[0, 1.12], title="probability")
    return _layout(fig, title, barmode="group")


# ----------------------------------------------------------------- the group


def group_reward_chart(
    texts: Sequence[str],
    rewards: Sequence[float],
    group_mean: float,
    group_std: float,
    words: Sequence[str] | None = None,
    title: str = "Rewards of the group",
) -> go.Figure:
    """One bar per sample (coloured by word) with the group mean and mean ± std as lines."""
    colors = word_colors(words or list(dict.fromkeys(texts)))
    fig = go.Figure()
    fig.add_bar(
        name="reward r_i",
        x=sample_labels(texts),
        y=[float(r) for r in rewards],
        marker_color=[colors.get(t, NEUTRAL) for t in texts],
        text=[f"{r:.3g}" for r in rewards],
        textposition="outside",
        hovertemplate="sample %{x}<br>reward %{y:.4f}<extra></extra>",
    )
    fig.add_hline(y=group_mean, line=dict(color="black", width=2), annotation_text=f"mean μ = {group_mean:.4f}")
    if group_std > 0:
        for sign in (-1, 1):
            fig.add_hline(y=group_mean + sign * group_std, line=dict(color="black", dash="dot", width=1))
        fig.add_annotation(
            xref="paper", x=0, y=group_mean + group_std, text=f"μ ± σ (σ = {group_std:.4f})", showarrow=False,
            yshift=10, xanchor="left",
        )
    fig.update_yaxes(title="reward")
    return _layout(fig, title, showlegend=False)


def advantage_chart(texts: Sequence[str], advantages: Sequence[float], title: str = "Advantages A_i") -> go.Figure:
    """One bar per sample: green pushes its word up, red pushes it down, grey (A = 0) does nothing."""
    fig = go.Figure()
    fig.add_bar(
        name="advantage",
        x=sample_labels(texts),
        y=[float(a) for a in advantages],
        marker_color=_sign_colors(advantages),
        text=[f"{a:+.4f}" for a in advantages],
        textposition="outside",
        hovertemplate="sample %{x}<br>A = %{y:.4f}<extra></extra>",
    )
    fig.add_hline(y=0, line=dict(color="black", width=1))
    top = max([abs(float(a)) for a in advantages] + [0.5]) * 1.3
    fig.update_yaxes(title="advantage", range=[-top, top])
    return _layout(fig, title, showlegend=False)


# ----------------------------------------------------------------- ratios and the clip


def ratio_chart(
    texts: Sequence[str],
    ratios: Sequence[float],
    advantages: Sequence[float],
    clipped: Sequence[bool],
    epsilon_low: float,
    epsilon_high: float,
    title: str = "Probability ratios w_i against the clip band",
) -> go.Figure:
    """Each sample's ratio, coloured by the sign of its advantage, with the band [1-ε_low, 1+ε_high]."""
    labels = sample_labels(texts)
    fig = go.Figure()
    fig.add_hrect(
        y0=1 - epsilon_low, y1=1 + epsilon_high, fillcolor=BAND, line_width=0,
        annotation_text=f"clip band [{1 - epsilon_low:.4g}, {1 + epsilon_high:.4g}]", annotation_position="top left",
    )
    fig.add_hline(y=1, line=dict(color="black", dash="dot", width=1))
    clipped = [bool(c) for c in clipped]
    for is_clipped, symbol, name in ((False, "circle", "inside or harmless"), (True, "x", "clipped: no gradient")):
        idx = [i for i, c in enumerate(clipped) if c == is_clipped]
        fig.add_scatter(
            name=name,
            x=[labels[i] for i in idx],
            y=[float(ratios[i]) for i in idx],
            mode="markers+text",
            marker=dict(size=16, symbol=symbol, color=[_sign_colors(advantages)[i] for i in idx],
                        line=dict(width=1, color="black")),
            text=[f"{float(ratios[i]):.4f}" for i in idx],
            textposition="middle right",
            hovertemplate="sample %{x}<br>w = %{y:.6f}<extra>" + name + "</extra>",
        )
    values = [float(r) for r in ratios] + [1 - epsilon_low, 1 + epsilon_high]
    lo, hi = min(values), max(values)
    pad = max(0.05, 0.15 * (hi - lo))
    fig.update_xaxes(categoryorder="array", categoryarray=labels)
    fig.update_yaxes(title="w = π_θ / π_old", range=[lo - pad, hi + pad])
    return _layout(fig, title)


def clipped_surrogate(w: np.ndarray, advantage: float, epsilon_low: float, epsilon_high: float) -> np.ndarray:
    """min(w A, clip(w, 1-ε_low, 1+ε_high) A), the objective GRPO maximizes per token (plotting helper)."""
    return np.minimum(w * advantage, np.clip(w, 1 - epsilon_low, 1 + epsilon_high) * advantage)


def surrogate_chart(
    texts: Sequence[str],
    ratios: Sequence[float],
    advantages: Sequence[float],
    clipped: Sequence[bool],
    epsilon_low: float,
    epsilon_high: float,
    title: str = "The clipped surrogate min(w·A, clip(w)·A), per unit of |A|",
) -> go.Figure:
    """Two panels (A > 0, A < 0): the clipped objective as a function of w, with the group's samples on it."""
    ratios = [float(r) for r in ratios]
    top = max([1 + epsilon_high + 0.6, *(r + 0.2 for r in ratios)])
    bottom = max(0.0, min([1 - epsilon_low - 0.6, *(r - 0.2 for r in ratios)]))
    w = np.linspace(bottom, top, 401)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("A > 0: pushes π_θ(o) up", "A < 0: pushes π_θ(o) down"))
    labels = sample_labels(texts)
    for col, sign in ((1, 1.0), (2, -1.0)):
        fig.add_scatter(
            x=w, y=w * sign, mode="lines", line=dict(color=NEUTRAL, dash="dash"), name="w·A (unclipped)",
            showlegend=col == 1, row=1, col=col, hoverinfo="skip",
        )
        fig.add_scatter(
            x=w, y=clipped_surrogate(w, sign, epsilon_low, epsilon_high), mode="lines",
            line=dict(color=POSITIVE if sign > 0 else NEGATIVE, width=3), name="min(w·A, clip(w)·A)",
            showlegend=col == 1, row=1, col=col, hoverinfo="skip",
        )
        for x in (1 - epsilon_low, 1 + epsilon_high):
            fig.add_vline(x=x, line=dict(color="black", dash="dot", width=1), row=1, col=col)
        idx = [i for i, a in enumerate(advantages) if (a > 0 if sign > 0 else a < 0)]
        fig.add_scatter(
            x=[ratios[i] for i in idx],
            y=[float(clipped_surrogate(np.array(ratios[i]), sign, epsilon_low, epsilon_high)) for i in idx],
            mode="markers",
            marker=dict(size=14, color="black", symbol=["x" if clipped[i] else "circle" for i in idx]),
            text=[labels[i] for i in idx],
            name="samples (x = clipped)",
            showlegend=col == 1,
            hovertemplate="sample %{text}<br>w = %{x:.6f}<br>objective/|A| = %{y:.6f}<extra></extra>",
            row=1, col=col,
        )
    fig.update_xaxes(title="w = π_θ / π_old")
    fig.update_yaxes(title="objective per unit |A|", col=1)
    return _layout(fig, title, height=440, legend_below=True)


# ----------------------------------------------------------------- KL, gradient


def kl_chart(
    texts: Sequence[str], kl: Sequence[float], beta: float, title: str = "KL to the reference (k3) per sample"
) -> go.Figure:
    """k3 for each sample, and beta * k3, the amount it adds to that sample's loss."""
    labels = sample_labels(texts)
    fig = go.Figure()
    fig.add_bar(name="k3", x=labels, y=[float(k) for k in kl], marker_color=SERIES_COLORS["π_ref"],
                text=[f"{float(k):.4g}" for k in kl], textposition="outside",
                hovertemplate="sample %{x}<br>k3 = %{y:.6g}<extra></extra>")
    fig.add_bar(name=f"β·k3 (β = {beta:g})", x=labels, y=[beta * float(k) for k in kl],
                marker_color=SERIES_COLORS["π_old"], hovertemplate="sample %{x}<br>β·k3 = %{y:.6g}<extra></extra>")
    top = max([float(k) for k in kl] + [1e-3]) * 1.3
    fig.update_yaxes(title="KL estimate (≥ 0)", range=[0, top])
    return _layout(fig, title, barmode="group")


def gradient_chart(
    names: Sequence[str], gradient: Sequence[float], title: str = "Gradient descent step direction on each logit"
) -> go.Figure:
    """-dL/dz for each parameter: positive bars are pushed up by the update, negative ones down."""
    push = [-float(g) for g in gradient]
    fig = go.Figure()
    fig.add_bar(
        name="−∂L/∂z",
        x=list(names),
        y=push,
        marker_color=_sign_colors(push),
        text=[f"{p:+.4f}" for p in push],
        textposition="outside",
        hovertemplate="%{x}<br>−∂L/∂z = %{y:.6f}<extra></extra>",
    )
    fig.add_hline(y=0, line=dict(color="black", width=1))
    top = max([abs(p) for p in push] + [1e-3]) * 1.35
    fig.update_yaxes(title="−∂L/∂z  (up = more likely)", range=[-top, top])
    return _layout(fig, title, showlegend=False)


def trajectory_chart(
    words: Sequence[str], probs_per_step: Sequence[Sequence[float]], ref_probs: Sequence[float],
    title: str = "Probabilities over the μ inner updates",
) -> go.Figure:
    """One line per word over inner steps 0..μ (π_ref dotted), to watch the clip slow the climb."""
    colors = word_colors(words)
    steps = list(range(len(probs_per_step)))
    fig = go.Figure()
    for j, word in enumerate(words):
        fig.add_scatter(name=word, x=steps, y=[float(p[j]) for p in probs_per_step], mode="lines+markers",
                        line=dict(color=colors[word], width=3))
        fig.add_scatter(name=f"{word} (π_ref)", x=steps, y=[float(ref_probs[j])] * len(steps), mode="lines",
                        line=dict(color=colors[word], dash="dot", width=1), showlegend=False, hoverinfo="skip")
    fig.update_xaxes(title="inner update", dtick=1)
    fig.update_yaxes(title="π_θ(word)", range=[0, 1])
    return _layout(fig, title)
