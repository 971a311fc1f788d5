"""Pure figure builders: plain numbers in, a ``plotly.graph_objects.Figure`` out.

No Streamlit, no torch: every builder takes sequences of floats and strings,
so it can be unit-tested and reused in a notebook.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
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
GUIDE = "#8c8c8c"  # reference lines and markers: readable on the light and the dark theme
BAND = "rgba(31, 119, 180, 0.12)"
WORD_PALETTE = ("#2ca02c", "#ff7f0e", "#d62728", "#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf")


# Room for the y title and tick labels (left) and the x tick labels (bottom) of a stage chart. Streamlit's chart
# theme turns on axis automargin, which only ever grows a margin: starting from margins that already fit saves
# plotly.js a second layout-and-draw pass (~25 ms of every step, as every step draws its chart anew).
MARGIN = dict(l=90, r=10, t=70, b=40)
SUBTITLE_ROOM = 24  # px more at the top, where a subtitle would sit on what a chart draws above its plot


# ----------------------------------------------------------------- text: sizes, colours, value labels

NORMAL_MIN_PX = 14   # the smallest text of a chart on a laptop: ticks, legend, value labels (Streamlit's theme: 12)
PRESENT_MIN_PX = 18  # on a projector, read from the back of a room
NOMINAL_FIGURE_PX = 600  # the width value labels are fitted to; narrower in the browser, Plotly hides what won't fit
CHAR_EM = 0.6  # a label's width estimate: characters x font size x 0.6 (digits are ~0.5 em; this errs wide)
BARGAP, BARGROUPGAP = 0.12, 0.1  # between groups; between the bars of a group, so neighbours' labels never touch
# Tick labels, axis titles and legends. Streamlit's chart theme draws them in a faded grey (~3.7:1 on white); a
# page that knows its theme gets a dark grey on light (12.6:1) or a light grey on dark (13.9:1); a page that does
# not, a grey that reads on both (4.6:1 on white, 4.1:1 on Streamlit's dark background).
TEXT_COLORS = {False: "#333333", True: "#dddddd", None: "#757575"}


@dataclass(frozen=True)
class TextStyle:
    """How big and what colour a chart's text is: ``min_px`` is the smallest text anywhere in a figure (hover
    boxes excepted); ``dark`` the theme (None: not known); ``figure_px`` the width value labels are fitted to."""
    min_px: int = NORMAL_MIN_PX
    dark: bool | None = None
    figure_px: int = NOMINAL_FIGURE_PX

    @property
    def color(self) -> str:
        return TEXT_COLORS[self.dark]


# Per thread (Streamlit runs each session's script in its own thread), so one lecturer presenting does not
# enlarge every student's charts; a new thread starts from the default.
_STYLE: contextvars.ContextVar[TextStyle] = contextvars.ContextVar("grpo_viz_chart_style", default=TextStyle())


def text_style() -> TextStyle:
    """The style the builders use now."""
    return _STYLE.get()


def set_presentation(on: bool, dark: bool | None = None, figure_px: int | None = None) -> None:
    """Every figure built after this, in this thread, for a projector (``on``: no text under ``PRESENT_MIN_PX``)
    or a screen (``NORMAL_MIN_PX``). Call it where the charts are built, on every run (a Streamlit fragment's
    rerun runs in a new thread, which starts from the default style): e.g.
    ``charts.set_presentation(presenting, dark=st.context.theme.type == "dark" if st.context.theme.type else None)``.
    """
    _STYLE.set(TextStyle(PRESENT_MIN_PX if on else NORMAL_MIN_PX, dark,
                         NOMINAL_FIGURE_PX if figure_px is None else int(figure_px)))


@contextlib.contextmanager
def presentation(on: bool = True, dark: bool | None = None, figure_px: int | None = None) -> Iterator[TextStyle]:
    """``set_presentation`` for the figures built inside a ``with`` block only."""
    token = _STYLE.set(replace(_STYLE.get(), min_px=PRESENT_MIN_PX if on else NORMAL_MIN_PX,
                               **({} if dark is None else {"dark": dark}),
                               **({} if figure_px is None else {"figure_px": int(figure_px)})))
    try:
        yield _STYLE.get()
    finally:
        _STYLE.reset(token)


def label_px(label: str, font_px: float) -> float:
    """The estimated width of a one-line label: characters x font size x ``CHAR_EM``."""
    return len(label) * font_px * CHAR_EM


def bar_slot_px(categories: int, per_group: int = 1, figure_px: float | None = None) -> tuple[float, float]:
    """(the width of one bar, the width of one category's group of bars) in a ``figure_px``-wide figure with the
    charts' margins, ``per_group`` bars side by side in each of ``categories`` groups."""
    plot = (figure_px or text_style().figure_px) - MARGIN["l"] - MARGIN["r"]
    group = plot / max(1, categories) * (1 - BARGAP)
    return group / max(1, per_group) * (1 - BARGROUPGAP), group


def fit_labels(values: Sequence[float], formats: Sequence, room_px: float, font_px: float | None = None
               ) -> list[str] | None:
    """The values written in the first of ``formats`` (most precise first; a format string or a function) whose
    widest label fits ``room_px`` at ``font_px``; None when none fits (no labels: the hover and the table have them)."""
    px = font_px or text_style().min_px
    for fmt in formats:
        labels = [fmt(float(v)) if callable(fmt) else fmt.format(float(v)) for v in values]
        if max([label_px(t, px) for t in labels] + [0.0]) <= room_px:
            return labels
    return None


def _signed_fixed(decimals: int):
    """'+1.30' / '−0.78': ``decimals`` decimals and a true minus sign, every label of a chart as wide as the others
    (Plotly then hides all of a chart's labels or none)."""
    return lambda v: f"{v:+.{decimals}f}".replace("-", "−")


PROBABILITY_FORMATS = ("{:.3f}", "{:.2f}")
NUMBER_FORMATS = ("{:.3g}", "{:.2g}")


def _font(size: float, color: str | None = None, **extra) -> dict:
    return {"size": size, **({"color": color} if color else {}), **extra}


def _axis_text(axis: dict, style: TextStyle) -> dict:
    """An axis with its tick labels and title at the style's size and colour."""
    axis = dict(axis)
    axis["tickfont"] = {**axis.get("tickfont", {}), **_font(style.min_px, style.color)}
    title = axis.get("title")
    if title is not None:
        title = {"text": title} if isinstance(title, str) else dict(title)
        title["font"] = {**title.get("font", {}), **_font(max(style.min_px, title.get("font", {}).get("size", 0)),
                                                          style.color)}
        axis["title"] = title
    return axis


def _apply_text_style(data: list[dict], layout: dict, style: TextStyle) -> None:
    """Every text a figure draws at ``style.min_px`` or more, in place: Streamlit's theme sets 12 px ticks and
    legends in its template, which only explicit sizes here override. Hover boxes keep the theme's."""
    px, color = style.min_px, style.color
    layout["font"] = {**layout.get("font", {}), **_font(px, color)}
    layout["uniformtext"] = dict(minsize=px, mode="hide")  # a bar label is drawn at full size or not at all
    title = layout.get("title")
    if isinstance(title, dict):
        title = layout["title"] = {**title, "font": {**title.get("font", {}), "size": px + 2}}
        if isinstance(title.get("subtitle"), dict):
            title["subtitle"] = {**title["subtitle"], "font": {**title["subtitle"].get("font", {}), "size": px}}
    layout["legend"] = {**layout.get("legend", {}), "font": {**layout.get("legend", {}).get("font", {}),
                                                              **_font(px, color)}}
    for name in list(layout):
        if name.startswith(("xaxis", "yaxis")):
            layout[name] = _axis_text(layout[name] or {}, style)
    if "ternary" in layout:
        layout["ternary"] = {k: _axis_text(v, style) if k.endswith("axis") else v for k, v in layout["ternary"].items()}
    if layout.get("annotations"):
        layout["annotations"] = [{**a, "font": {**a.get("font", {}), "size": max(px, a.get("font", {}).get("size", 0))}}
                                 for a in layout["annotations"]]
    for trace in data:
        if trace.get("type") == "heatmap":
            trace["textfont"] = {**trace.get("textfont", {}), "size": px}
            bar = trace.get("colorbar", {})
            trace["colorbar"] = {**bar, "tickfont": _font(px, color),
                                 "title": {**bar.get("title", {}), "font": _font(px, color)}}
        elif trace.get("text") is not None and (trace.get("type") == "bar" or "text" in str(trace.get("mode", ""))):
            trace["textfont"] = {**trace.get("textfont", {}), "size": px}


def _top_room_px(top_room: int) -> int:
    """The px a chart's ``top_room`` takes at the current text size: what sits there grows with the text (at a
    projector's sizes the subtitle ran into the panel titles)."""
    return round(top_room * (text_style().min_px / NORMAL_MIN_PX) ** 2)


def _base_layout(title: str, height: int = 380, legend_below: bool = False, subtitle: str | None = None,
                 top_room: int = 0) -> dict:
    """Title (and a subtitle under it: the numbers of a chart's guide lines, which written on the lines themselves
    overlapped the bars), size, margins, legend and bar gaps shared by every chart of the app (text sizes and
    colours: ``_apply_text_style``).

    ``top_room``: px more above the plot, for a chart that draws there (ticks, panel titles) under a subtitle;
    the title then hangs from the top of the figure instead of sitting in the middle of the taller margin.
    """
    # above the plot, the legend's row ran into a subtitle, and at 18 px wrapped up over the title of a 380 px chart
    legend_below = legend_below or bool(subtitle) or text_style().min_px >= PRESENT_MIN_PX
    legend = (dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0) if legend_below
              else dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    heading = dict(text=title, x=0, xanchor="left")
    if subtitle:
        heading["subtitle"] = dict(text=subtitle)
    if top_room:
        top_room = _top_room_px(top_room)
        # high in the margin: the subtitle under it clears what the chart writes above its plot
        heading.update(yref="container", y=1, yanchor="top", pad=dict(t=4))
    return dict(title=heading, height=height + top_room, margin={**MARGIN, "t": MARGIN["t"] + top_room},
                legend=legend, bargap=BARGAP, bargroupgap=BARGROUPGAP)


# Plotly's property validation is ~75% of building a step-through figure (5.8 of 7.5 ms each, every click).
# The test suite turns it on (tests/conftest.py), so every builder's output is validated there.
VALIDATE_FIGURES = os.environ.get("GRPO_VIZ_VALIDATE_FIGURES") == "1"


def _as_validation_would(spec):
    """What validation did for us: drop properties set to None (``dash=None``) and expand an axis's string
    title, ``yaxis=dict(title="reward")`` -> ``title=dict(text="reward")`` (plotly.js 3 dropped the shorthand).
    None inside a list is data (a gap in a line) and stays."""
    if isinstance(spec, dict):
        out = {k: _as_validation_would(v) for k, v in spec.items() if v is not None}
        if isinstance(out.get("title"), str) and "text" not in out:
            out["title"] = {"text": out["title"]}
        return out
    if isinstance(spec, list) and spec and isinstance(spec[0], dict):
        return [_as_validation_would(v) for v in spec]
    return spec


class _BuiltFigure(go.Figure):
    """A figure built unvalidated, and only when something reads it: ``to_dict`` hands over its dicts as they are.

    ``st.plotly_chart`` calls ``to_dict()`` and only serializes the result. Plotly's ``to_dict`` deep-copies every
    trace and walks it for numpy arrays to base64-encode, and even unvalidated, constructing a ``go.Figure`` turns
    every dict into Plotly's property objects, which the app never reads; a server request draws up to a group's
    eight stage figures, so this is a share of every request's CPU (docs/PERFORMANCE.md). So the figure is constructed on first use of anything else (``fig.layout``, ``fig.data``, ``update_*``,
    ``show``), and ``to_dict`` builds nothing while no template is set (the app's case: Streamlit's theme styles
    the chart in the browser); with Plotly's default template (a notebook) it constructs, to apply the template.
    Callers must not change what ``to_dict`` returns (nested dicts are the figure's own).
    """

    def __init__(self, data: list[dict], layout: dict) -> None:  # go.Figure.__init__ runs on first use
        self.__dict__["_spec"] = {"data": data, "layout": layout}

    def _construct(self) -> None:
        spec = self.__dict__.pop("_spec")
        go.Figure.__init__(self, data=spec["data"], layout=spec["layout"], _validate=False)

    def __getattr__(self, name: str):  # reached only for what the figure does not have yet: construct it
        if "_spec" not in self.__dict__:
            raise AttributeError(name)
        self._construct()
        return getattr(self, name)

    def to_dict(self) -> dict:
        if "_spec" in self.__dict__ and pio.templates.default is not None:
            self._construct()
        spec = self.__dict__.get("_spec") or {"data": self._data, "layout": self._layout}
        return {"data": [dict(trace) for trace in spec["data"]], "layout": dict(spec["layout"])}


def _figure(data: list[dict], title: str, height: int = 380, legend_below: bool = False, subtitle: str | None = None,
            top_room: int = 0, x_range: Sequence[float] | None = None, **layout) -> go.Figure:
    """One Figure from plain dicts in a single construction, validated only under test (``VALIDATE_FIGURES``).

    Building the whole figure at once is ~5x faster than add_trace/add_hline/update_layout
    calls, and the step-through figures are rebuilt on every click of a lecture. A ``margin`` given here changes
    only the sides it names; ``x_range`` is given to every x axis (``update_xaxes(range=...)`` afterwards cost
    0.4 ms a chart, seven charts every Training step).
    """
    base = _base_layout(title, height, legend_below, subtitle, top_room)
    layout = {**base, **layout, "margin": {**base["margin"], **layout.get("margin", {})}}
    if "ternary" not in layout:  # axes the builder left to defaults still need their tick labels sized
        layout.setdefault("xaxis", {})
        layout.setdefault("yaxis", {})
    if x_range is not None:
        for name in [k for k in layout if k.startswith("xaxis")] or ["xaxis"]:
            layout[name] = {**layout.get(name, {}), "range": list(x_range)}
    _apply_text_style(data, layout, text_style())
    if VALIDATE_FIGURES:
        return go.Figure(data=data, layout=layout)
    return _BuiltFigure(data=_as_validation_would(data), layout=_as_validation_would(layout))


@functools.lru_cache(maxsize=32)
def _panel_skeleton(titles: tuple[str, ...], spacing: float, shared_yaxes: bool) -> str:
    layout = make_subplots(rows=1, cols=max(1, len(titles)), subplot_titles=titles or ("",), shared_yaxes=shared_yaxes,
                           horizontal_spacing=spacing).layout.to_plotly_json()
    layout.pop("template", None)
    return json.dumps(layout)


def _panels(titles: Sequence[str], spacing: float, shared_yaxes: bool = False, x_title: str | None = None,
            y_title: str | None = None, y_range: Sequence[float] | None = None) -> dict:
    """Axes and panel titles of a one-row grid of plots, as ``make_subplots`` lays them out, as layout entries for
    ``_figure``. The grid is computed once per shape: make_subplots and add_* calls cost ~10 ms a figure, and the
    Training page redraws six such figures a step."""
    layout = json.loads(_panel_skeleton(tuple(titles), spacing, shared_yaxes))
    for name, axis in layout.items():
        if name.startswith("xaxis") and x_title is not None:
            axis["title"] = x_title
        if name.startswith("yaxis") and y_range is not None:
            axis["range"] = list(y_range)
    if y_title is not None:
        layout["yaxis"]["title"] = y_title
    return layout


def _in_panel(trace: dict, col: int) -> dict:
    """A trace drawn in panel ``col`` (1-based) of a ``_panels`` grid."""
    suffix = "" if col == 1 else str(col)
    return {**trace, "xaxis": "x" + suffix, "yaxis": "y" + suffix}


def _history_line(x: Sequence) -> dict:
    """A line needs two points: at iteration 0 a run's one point is drawn as a whole dot (on the y axis, where a
    clipped dot would be cut in half), not as nothing."""
    return dict(mode="lines") if len(x) > 1 else dict(mode="lines+markers", cliponaxis=False)


def _hline(y: float, color: str = GUIDE, dash: str | None = None, width: float = 1, xref: str = "paper") -> dict:
    return dict(type="line", xref=xref if xref != "paper" else "paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                line=dict(color=color, dash=dash, width=width))


def _vline(x: float, xref: str = "x", yref: str = "y domain") -> dict:
    return dict(type="line", xref=xref, x0=x, x1=x, yref=yref, y0=0, y1=1, line=dict(color=GUIDE, dash="dot", width=1))


def _note(text: str, y: float, x: float = 0, xanchor: str = "left", yshift: int = 10) -> dict:
    return dict(text=text, xref="paper", x=x, yref="y", y=y, showarrow=False, xanchor=xanchor, yshift=yshift)


def _legend_only(trace_type: str, name: str, marker: dict, **kwargs) -> dict:
    """A legend entry with no data: the key for marks coloured per sample, whose own swatch would take the first
    sample's colour (pair it with the real trace through ``legendgroup`` and give that one ``showlegend=False``)."""
    return dict(type=trace_type, name=name, x=[None], y=[None], marker=marker, hoverinfo="skip", **kwargs)


def _sign_colors(values: Sequence[float], tol: float = 1e-12) -> list[str]:
    return [POSITIVE if v > tol else NEGATIVE if v < -tol else NEUTRAL for v in values]


def signed(value: float) -> str:
    """'+1.5006' and '−0.6821' (a true minus sign): as wide as each other, so Plotly, which hides a bar's label
    when it does not fit, hides all of a chart's labels or none, never only the positive ones."""
    return f"{float(value):+.4f}".replace("-", "−")


def sample_labels(texts: Sequence[str]) -> list[str]:
    """'1 sat', '2 barked', ...: unique x labels that still say which word was sampled."""
    return [f"{i + 1} {t}" for i, t in enumerate(texts)]


def word_colors(words: Sequence[str]) -> dict[str, str]:
    return {w: WORD_PALETTE[i % len(WORD_PALETTE)] for i, w in enumerate(words)}


def _bar(name: str, x: Sequence, y: Sequence[float], color, text: Sequence[str] | None = None,
         hover: str = "%{x}: %{y:.4f}", extra: str | None = None, alone: bool = False, **kwargs) -> dict:
    """Bars, with ``text`` above them; the hover box's side label is ``extra`` (the trace's name by default).

    A label is kept within its bar (Plotly hides it, ``uniformtext``, when it would have to shrink to fit), unless
    it is ``alone``: the only labelled bar of its group, free to span the group's width (fitted by ``fit_labels``).
    """
    bar = dict(type="bar", name=name, x=list(x), y=[float(v) for v in y], marker=dict(color=color),
               hovertemplate=hover + "<extra>" + (name if extra is None else extra) + "</extra>", **kwargs)
    if text is not None:
        bar.update(text=list(text), textposition="outside", cliponaxis=False,
                   constraintext="none" if alone else "both")
    return bar


SIGNED_FORMATS = (lambda v: signed(v), _signed_fixed(2), _signed_fixed(1))
# the series a grouped chart keeps its labels on when every series' would not fit: the policy being trained
FOCUS_SERIES = ("after update", "π_θ")


# ----------------------------------------------------------------- distributions


def distribution_chart(
    words: Sequence[str], series: Mapping[str, Sequence[float]], title: str = "Next-word distribution",
    labelled: int | None = None, legend_below: bool = False, subtitle: str | None = None,
    annotations: Sequence[dict] = (),
) -> go.Figure:
    """Grouped bars: one group per word, one bar per distribution (e.g. π_θ, π_old, π_ref).

    The first ``labelled`` series carry their values above the bars (all of them by default), 3 decimals, or 2
    where 3 would not fit their bars (``fit_labels``); where neither fits, only one series keeps its labels
    (``FOCUS_SERIES``, else the first), spread over its group: side by side, the labels ran together ("0.3000.300").
    """
    palette = list(SERIES_COLORS.values()) + list(WORD_PALETTE)
    names = list(series)
    bar_px, group_px = bar_slot_px(len(words), len(names))
    wanted = names if labelled is None else names[:labelled]
    texts: dict[str, list[str] | None] = {}
    if len(wanted) > 1:
        both = fit_labels([p for n in wanted for p in series[n]], PROBABILITY_FORMATS, bar_px)
        if both is not None:
            texts = {n: fit_labels(series[n], PROBABILITY_FORMATS, bar_px) for n in wanted}
        else:
            wanted = [next((n for n in FOCUS_SERIES if n in wanted), wanted[0])]
    if len(wanted) == 1:
        texts = {wanted[0]: fit_labels(series[wanted[0]], PROBABILITY_FORMATS,
                                       group_px if len(names) > 1 else bar_px)}
    alone = len(texts) == 1 and len(names) > 1
    data = [
        _bar(name, words, probs, SERIES_COLORS.get(name, palette[k % len(palette)]), texts.get(name), alone=alone)
        for k, (name, probs) in enumerate(series.items())
    ]
    # category, always: a language model's tokens are often numbers ("13"), and Plotly would then make the axis
    # numeric, sort the bars by value and drop every token that is not a number ("<answer>")
    return _figure(data, title, subtitle=subtitle, legend_below=legend_below, barmode="group",
                   xaxis=dict(type="category"), yaxis=dict(range=[0, 1.12], title="probability"),
                   **({"annotations": list(annotations)} if annotations else {}))


# ----------------------------------------------------------------- the group


def group_reward_chart(
    texts: Sequence[str],
    rewards: Sequence[float],
    group_mean: float,
    group_std: float,
    words: Sequence[str] | None = None,
    title: str = "Rewards of the group",
) -> go.Figure:
    """One bar per sample (coloured by word) with the group mean and mean ± std as lines, their values above."""
    colors = word_colors(words or list(dict.fromkeys(texts)))
    bar = _bar("reward r_i", sample_labels(texts), rewards, [colors.get(t, NEUTRAL) for t in texts],
               fit_labels(rewards, NUMBER_FORMATS, bar_slot_px(len(texts))[0]), hover="sample %{x}<br>reward %{y:.4f}")
    shapes = [_hline(group_mean, width=2)]
    subtitle = f"solid line: mean r̄ = {group_mean:.4f}"
    if group_std > 0:
        shapes += [_hline(group_mean + sign * group_std, dash="dot") for sign in (-1, 1)]
        subtitle += f" · dotted: r̄ ± σ, σ = {group_std:.4f}"
    else:
        subtitle += " · σ = 0"
    return _figure([bar], title, showlegend=False, shapes=shapes, subtitle=subtitle, yaxis=dict(title="reward"))


def advantage_chart(texts: Sequence[str], advantages: Sequence[float], title: str = "Advantages A_i") -> go.Figure:
    """One bar per sample: green pushes its word up, red pushes it down, grey (A = 0) does nothing."""
    bar = _bar("advantage", sample_labels(texts), advantages, _sign_colors(advantages),
               fit_labels(advantages, SIGNED_FORMATS, bar_slot_px(len(texts))[0]), hover="sample %{x}<br>A = %{y:.4f}")
    top = max([abs(float(a)) for a in advantages] + [0.5]) * 1.3
    return _figure([bar], title, showlegend=False, shapes=[_hline(0)],
                   yaxis=dict(title="advantage", range=[-top, top]))


# ----------------------------------------------------------------- ratios and the clip


def ratio_chart(
    texts: Sequence[str],
    ratios: Sequence[float],
    advantages: Sequence[float],
    clipped: Sequence[bool],
    epsilon_low: float,
    epsilon_high: float,
    title: str = "Probability ratios w_i against the clip band",
    subtitle: str = "colour: the advantage's sign (green A > 0, red A < 0)",
    value_labels: bool = True,
) -> go.Figure:
    """Each sample's ratio, coloured by the sign of its advantage, with the band [1-ε_low, 1+ε_high].

    The marker's shape says whether the sample is clipped. The legend shows the shapes in grey: its swatch
    would otherwise take the first sample's colour, as if colour meant clipped.
    """
    labels = sample_labels(texts)
    colors = _sign_colors(advantages)
    clipped = [bool(c) for c in clipped]
    # values above the markers, not beside them (beside, they ran into the next sample's marker), as precise as
    # fits between two samples; past 16 samples the hover and the table have them
    values = fit_labels(ratios, ("{:.4f}", "{:.3f}", "{:.2f}"), bar_slot_px(len(labels))[1]) \
        if value_labels and len(labels) <= 16 else None
    data, legend = [], []
    for is_clipped, symbol, name in ((False, "circle", "inside or harmless"), (True, "x", "clipped: no gradient")):
        idx = [i for i, c in enumerate(clipped) if c == is_clipped]
        legend.append(_legend_only("scatter", name, dict(size=14, symbol=symbol, color=NEUTRAL), legendgroup=name,
                                   mode="markers"))
        data.append(dict(
            type="scatter", name=name, legendgroup=name, showlegend=False,
            x=[labels[i] for i in idx], y=[float(ratios[i]) for i in idx],
            mode="markers" if values is None else "markers+text",
            text=[f"{float(ratios[i]):.4f}" for i in idx] if values is None else [values[i] for i in idx],
            textposition="top center",
            marker=dict(size=16, symbol=symbol, color=[colors[i] for i in idx], line=dict(width=1, color=GUIDE)),
            hovertemplate="sample %{x}<br>w = %{y:.6f}<extra>" + name + "</extra>",
        ))
    band = dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=1 - epsilon_low, y1=1 + epsilon_high,
                fillcolor=BAND, line=dict(width=0), layer="below")
    values = [float(r) for r in ratios] + [1 - epsilon_low, 1 + epsilon_high]
    lo, hi = min(values), max(values)
    pad = max(0.05, 0.15 * (hi - lo))
    return _figure(
        data + legend, title, subtitle=subtitle, legend_below=True,  # a legend above would cover the subtitle
        shapes=[band, _hline(1, dash="dot")],
        annotations=[_note(f"clip band [{1 - epsilon_low:.4g}, {1 + epsilon_high:.4g}]", 1 + epsilon_high, yshift=-10)],
        xaxis=dict(categoryorder="array", categoryarray=labels),
        yaxis=dict(title="w = π_θ / π_old", range=[lo - pad, hi + pad]),
    )


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
    title: str = "The clipped surrogate, per unit of |A|",
    subtitle: str = "min(w·A, clip(w)·A) as a function of w",
) -> go.Figure:
    """Two panels (A > 0, A < 0): the clipped objective as a function of w, with the group's samples on it."""
    ratios = [float(r) for r in ratios]
    top = max([1 + epsilon_high + 0.6, *(r + 0.2 for r in ratios)])
    bottom = max(0.0, min([1 - epsilon_low - 0.6, *(r - 0.2 for r in ratios)]))
    # the curve is piecewise linear: its kinks are all it needs
    w = np.unique(np.array([bottom, 1 - epsilon_low, 1 + epsilon_high, top]))
    labels = sample_labels(texts)
    data, shapes = [], []
    for col, sign in ((1, 1.0), (2, -1.0)):
        axes = dict(xaxis="x" if col == 1 else "x2", yaxis="y" if col == 1 else "y2")
        data.append(dict(type="scatter", x=w, y=w * sign, mode="lines", line=dict(color=NEUTRAL, dash="dash"),
                         name="w·A (unclipped)", showlegend=col == 1, hoverinfo="skip", **axes))
        data.append(dict(type="scatter", x=w, y=clipped_surrogate(w, sign, epsilon_low, epsilon_high), mode="lines",
                         line=dict(color=POSITIVE if sign > 0 else NEGATIVE, width=3), name="min(w·A, clip(w)·A)",
                         showlegend=col == 1, hoverinfo="skip", **axes))
        idx = [i for i, a in enumerate(advantages) if (a > 0 if sign > 0 else a < 0)]
        data.append(dict(
            type="scatter", x=[ratios[i] for i in idx],
            y=[float(clipped_surrogate(np.array(ratios[i]), sign, epsilon_low, epsilon_high)) for i in idx],
            mode="markers", marker=dict(size=14, color="#5b5b5b", line=dict(width=1.5, color="#ffffff"), symbol=["x" if clipped[i] else "circle" for i in idx]),
            text=[labels[i] for i in idx], name="samples (x = clipped)", showlegend=col == 1,
            hovertemplate="sample %{text}<br>w = %{x:.6f}<br>objective/|A| = %{y:.6f}<extra></extra>", **axes,
        ))
        xref, yref = ("x", "y domain") if col == 1 else ("x2", "y2 domain")
        shapes += [_vline(x, xref, yref) for x in (1 - epsilon_low, 1 + epsilon_high)]
    titles = [dict(text=t, xref="x domain" if i == 0 else "x2 domain", x=0.5, yref="paper", y=1.0, showarrow=False,
                   yanchor="bottom", font=dict(size=14)) for i, t in enumerate(("A > 0: push up",
                                                                                  "A < 0: push down"))]
    # the legend hangs from the figure's bottom edge, under the axis titles, in a margin sized for its rows: placed
    # relative to the plot (y = -0.3) it ran into the axis titles once a projector's chart was short
    bottom = 150 if text_style().min_px >= PRESENT_MIN_PX else 110
    return _figure(
        data, title, subtitle=subtitle, top_room=SUBTITLE_ROOM, height=440, legend_below=True, shapes=shapes,
        annotations=titles, margin=dict(b=bottom),  # top_room: the panel titles sit above the plot
        legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", xanchor="left", x=0),
        xaxis=dict(domain=[0, 0.46], title="w = π_θ / π_old"), xaxis2=dict(domain=[0.54, 1], title="w = π_θ / π_old"),
        yaxis=dict(title="objective per unit |A|"), yaxis2=dict(anchor="x2"),
    )


# ----------------------------------------------------------------- KL, gradient


def kl_chart(
    texts: Sequence[str], kl: Sequence[float], beta: float, title: str = "KL to the reference (k3) per sample"
) -> go.Figure:
    """k3 for each sample, and beta * k3, the amount it adds to that sample's loss."""
    labels = sample_labels(texts)
    data = [
        _bar("k3", labels, kl, SERIES_COLORS["π_ref"], fit_labels(kl, ("{:.4g}",) + NUMBER_FORMATS,
                                                                   bar_slot_px(len(labels), 2)[1]),
             hover="sample %{x}<br>k3 = %{y:.6g}", alone=True),
        _bar(f"β·k3 (β = {beta:g})", labels, [beta * float(k) for k in kl], SERIES_COLORS["π_old"],
             hover="sample %{x}<br>β·k3 = %{y:.6g}"),
    ]
    top = max([float(k) for k in kl] + [1e-3]) * 1.3
    return _figure(data, title, barmode="group", yaxis=dict(title="KL estimate (≥ 0)", range=[0, top]))


def gradient_chart(
    names: Sequence[str], gradient: Sequence[float], title: str = "Gradient descent step direction on each logit",
    subtitle: str | None = None,
) -> go.Figure:
    """-dL/dz for each parameter: positive bars are pushed up by the update, negative ones down."""
    push = [-float(g) for g in gradient]
    bar = _bar("−∂L/∂z", names, push, _sign_colors(push), fit_labels(push, SIGNED_FORMATS, bar_slot_px(len(names))[0]),
               hover="%{x}<br>−∂L/∂z = %{y:.6f}")
    top = max([abs(p) for p in push] + [1e-3]) * 1.35
    return _figure([bar], title, subtitle=subtitle, showlegend=False, shapes=[_hline(0)],
                   yaxis=dict(title="−∂L/∂z  (up = more likely)", range=[-top, top]))


def trajectory_chart(
    words: Sequence[str], probs_per_step: Sequence[Sequence[float]], ref_probs: Sequence[float],
    title: str = "Probabilities over the μ inner updates",
) -> go.Figure:
    """One line per word over inner steps 0..μ (π_ref dotted), to watch the clip slow the climb."""
    colors = word_colors(words)
    steps = list(range(len(probs_per_step)))
    data = []
    for j, word in enumerate(words):
        data.append(dict(type="scatter", name=word, x=steps, y=[float(p[j]) for p in probs_per_step],
                         mode="lines+markers", line=dict(color=colors[word], width=3)))
        data.append(dict(type="scatter", name=f"{word} (π_ref)", x=steps, y=[float(ref_probs[j])] * len(steps),
                         mode="lines", line=dict(color=colors[word], dash="dot", width=1), showlegend=False,
                         hoverinfo="skip"))
    return _figure(data, title, xaxis=dict(title="inner update", dtick=1), yaxis=dict(title="π_θ(word)", range=[0, 1]))


# ================================================================= PPO beside GRPO, and training over iterations
# (issue 4).  Runs are passed as {label: {column: [values per row]}}, the columns of
# grpo_viz.training's history ("iteration", "p_<word>", "kl", ...); None is a gap.

ALGORITHM_COLORS = {"GRPO": "#1f77b4", "PPO": "#d62728"}
RUN_DASHES = ("solid", "dash", "dot", "dashdot")



def run_styles(labels: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(colour, dash) per run: colour says the algorithm (GRPO blue, PPO red), dash tells apart runs of one algorithm."""
    seen: dict[str, int] = {}
    styles = {}
    for k, label in enumerate(labels):
        algorithm = "PPO" if str(label).startswith("PPO") else "GRPO" if str(label).startswith("GRPO") else ""
        color = ALGORITHM_COLORS.get(algorithm, WORD_PALETTE[k % len(WORD_PALETTE)])
        n = seen.get(algorithm, 0)
        seen[algorithm] = n + 1
        styles[label] = (color, RUN_DASHES[n % len(RUN_DASHES)])
    return styles


def _clean(values: Sequence) -> list[float | None]:
    """Floats with None for missing or non-finite entries, so a chart shows a gap, never 'NaN'."""
    out = []
    for v in values:
        try:
            x = float(v)
        except (TypeError, ValueError):
            out.append(None)
            continue
        out.append(x if np.isfinite(x) else None)
    return out


def training_probability_chart(
    words: Sequence[str], runs: Mapping[str, Mapping[str, Sequence]], ref_probs: Sequence[float],
    title: str = "π_θ(word) over iterations (π_ref dashed)", x_range: Sequence[float] | None = None,
) -> go.Figure:
    """One panel per run: each word's probability over iterations, the reference as a dashed line."""
    labels = list(runs)
    colors = word_colors(words)
    data, shapes = [], []
    for col, label in enumerate(labels, start=1):
        run = runs[label]
        x = list(run["iteration"])
        for j, word in enumerate(words):
            data.append(_in_panel(dict(
                type="scatter", name=word, x=x, y=_clean(run[f"p_{word}"]), **_history_line(x), legendgroup=word,
                line=dict(color=colors[word], width=3), showlegend=col == 1,
                hovertemplate="iteration %{x}<br>π_θ(" + word + ") = %{y:.4f}<extra>" + label + "</extra>"), col))
            # across the whole panel, so the reference is there from iteration 0 on, not only as far as the run got
            suffix = "" if col == 1 else str(col)
            shapes.append(dict(type="line", xref=f"x{suffix} domain", x0=0, x1=1, yref=f"y{suffix}",
                               y0=float(ref_probs[j]), y1=float(ref_probs[j]), layer="below",
                               line=dict(color=colors[word], dash="dash", width=1.5)))
    return _figure(data, title, height=360, legend_below=True, shapes=shapes, x_range=x_range,
                   **_panels(labels, 0.03, shared_yaxes=True, x_title="iteration", y_title="probability",
                             y_range=(0, 1.02)))


def training_metric_chart(
    runs: Mapping[str, Mapping[str, Sequence]], column: str, title: str, y_title: str,
    y_range: Sequence[float] | None = None, reference: float | None = None, reference_name: str = "",
    x_range: Sequence[float] | None = None,
) -> go.Figure:
    """One line per run for one history column (e.g. expected reward, KL, loss)."""
    styles = run_styles(list(runs))
    data = []
    for label, run in runs.items():
        y = _clean(run.get(column, []))
        if all(v is None for v in y):
            continue  # e.g. the value loss of a GRPO run: GRPO has no critic
        color, dash = styles[label]
        data.append(dict(type="scatter", name=label, x=list(run["iteration"]), y=y, **_history_line(y),
                         line=dict(color=color, dash=dash, width=2.5),
                         hovertemplate="iteration %{x}<br>%{y:.4f}<extra>" + label + "</extra>"))
    guide = {}
    if reference is not None:
        guide = dict(shapes=[_hline(reference, dash="dot")],
                     annotations=[dict(text=reference_name, xref="paper", x=1, xanchor="right", yref="y", y=reference,
                                       yanchor="top", showarrow=False)])
    return _figure(data, title, height=300, legend_below=True, xaxis=dict(title="iteration"), x_range=x_range,
                   yaxis=dict(title=y_title, range=list(y_range) if y_range is not None else None), **guide)


def clip_fraction_chart(runs: Mapping[str, Mapping[str, Sequence]],
                        title: str = "Fraction of samples clipped, per iteration",
                        x_range: Sequence[float] | None = None) -> go.Figure:
    """Two panels: clipped on the low side (A < 0, w < 1−ε) and on the high side (A > 0, w > 1+ε)."""
    styles = run_styles(list(runs))
    data = []
    for col, column in ((1, "clip_low"), (2, "clip_high")):
        for label, run in runs.items():
            color, dash = styles[label]
            data.append(_in_panel(dict(
                type="scatter", name=label, x=list(run["iteration"]), y=_clean(run.get(column, [])),
                **_history_line(run["iteration"]),
                line=dict(color=color, dash=dash, width=2), legendgroup=label, showlegend=col == 1,
                hovertemplate="iteration %{x}<br>%{y:.3f}<extra>" + label + "</extra>"), col))
    return _figure(data, title, height=300, legend_below=True, x_range=x_range,
                   **_panels(("low: A < 0, w < 1 − ε", "high: A > 0, w > 1 + ε"), 0.04, shared_yaxes=True,
                             x_title="iteration", y_title="fraction clipped", y_range=(0, 1.02)))


def value_chart(runs: Mapping[str, Mapping[str, Sequence]],
                title: str = "PPO's critic: value estimate V(s) and value loss",
                x_range: Sequence[float] | None = None) -> go.Figure:
    """Two panels for the PPO runs: V(s) against the expected reward it should learn, and the value loss."""
    styles = run_styles(list(runs))
    data = []
    for label, run in runs.items():
        value = _clean(run.get("value", []))
        if all(v is None for v in value):
            continue
        color, dash = styles[label]
        x = list(run["iteration"])
        data += [
            _in_panel(dict(type="scatter", name=label, x=x, y=value, **_history_line(x),
                           line=dict(color=color, dash=dash, width=2.5), legendgroup=label,
                           hovertemplate="iteration %{x}<br>V = %{y:.4f}<extra>" + label + "</extra>"), 1),
            _in_panel(dict(type="scatter", name=f"{label}: E[r]", x=x, y=_clean(run.get("expected_train_reward", [])),
                           **_history_line(x), line=dict(color=color, dash="dot", width=1.5), legendgroup=label,
                           showlegend=False,
                           hovertemplate="iteration %{x}<br>E[r] = %{y:.4f}<extra>" + label + "</extra>"), 1),
            _in_panel(dict(type="scatter", name=label, x=x, y=_clean(run.get("value_loss", [])), **_history_line(x),
                           line=dict(color=color, dash=dash, width=2), legendgroup=label, showlegend=False,
                           hovertemplate="iteration %{x}<br>value loss = %{y:.5f}<extra>" + label + "</extra>"), 2),
        ]
    return _figure(data, title, height=300, legend_below=True, x_range=x_range,
                   **_panels(("V(s) solid, E[r] dotted", "value loss"), 0.08, x_title="iteration"))


def simplex_chart(
    words: Sequence[str], runs: Mapping[str, Mapping[str, Sequence]], ref_probs: Sequence[float],
    title: str = "The policy on the probability simplex",
) -> go.Figure:
    """A ternary plot of (π(w1), π(w2), π(w3)): each run's path from the common start (★) to its end (●)."""
    if len(words) != 3:
        raise ValueError("A ternary plot needs exactly three words.")
    a, b, c = words
    styles = run_styles(list(runs))
    data = [dict(type="scatterternary", name="start = π_ref", a=[float(ref_probs[0])], b=[float(ref_probs[1])],
                 c=[float(ref_probs[2])], mode="markers", marker=dict(symbol="star", size=18, color=GUIDE),
                 hovertemplate=f"{a} %{{a:.3f}}<br>{b} %{{b:.3f}}<br>{c} %{{c:.3f}}<extra>start</extra>")]
    for label, run in runs.items():
        color, dash = styles[label]
        pa, pb, pc = (_clean(run[f"p_{w}"]) for w in words)
        data.append(dict(type="scatterternary", name=label, a=pa, b=pb, c=pc, mode="lines",
                         line=dict(color=color, dash=dash, width=3), legendgroup=label,
                         customdata=list(run["iteration"]),
                         hovertemplate=f"iteration %{{customdata}}<br>{a} %{{a:.3f}}<br>{b} %{{b:.3f}}<br>{c} %{{c:.3f}}"
                                       f"<extra>{label}</extra>"))
        if pa:
            data.append(dict(type="scatterternary", name=f"{label} now", a=pa[-1:], b=pb[-1:], c=pc[-1:],
                             mode="markers", marker=dict(size=12, color=color, line=dict(width=1, color="white")),
                             legendgroup=label, showlegend=False, hoverinfo="skip"))
    ternary = dict(
        sum=1,
        aaxis=dict(title=f"π({a})", min=0, linewidth=1, ticks="outside"),
        baxis=dict(title=f"π({b})", min=0, linewidth=1, ticks="outside"),
        caxis=dict(title=f"π({c})", min=0, linewidth=1, ticks="outside"),
    )
    return _figure(data, title, height=430, legend_below=True, ternary=ternary, margin=dict(l=60, r=70, t=90, b=10))


def reward_hacking_chart(runs: Mapping[str, Mapping[str, Sequence]],
                         title: str = "Proxy reward against true reward",
                         subtitle: str = "solid: the proxy it is trained on; dotted: the true reward it earns") -> go.Figure:
    """For each run: the expected proxy reward it is trained on, and the expected true reward it actually earns."""
    palette = ("#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd")
    data = []
    for k, (label, run) in enumerate(runs.items()):
        color = palette[k % len(palette)]
        x = list(run["iteration"])
        data += [
            dict(type="scatter", name=f"{label}: proxy", x=x, y=_clean(run["expected_train_reward"]), mode="lines",
                 line=dict(color=color, width=3), legendgroup=label,
                 hovertemplate="iteration %{x}<br>proxy E[r] = %{y:.4f}<extra>" + label + "</extra>"),
            dict(type="scatter", name=f"{label}: true", x=x, y=_clean(run["expected_reward"]), mode="lines",
                 line=dict(color=color, width=3, dash="dot"), legendgroup=label,
                 hovertemplate="iteration %{x}<br>true E[r] = %{y:.4f}<extra>" + label + "</extra>"),
        ]
    return _figure(data, title, subtitle=subtitle, height=360, legend_below=True, xaxis=dict(title="iteration"),
                   yaxis=dict(title="expected reward under π_θ"))


# ----------------------------------------------------------------- PPO's side of one iteration


def ppo_reward_chart(
    texts: Sequence[str], scores: Sequence[float], kl_penalty: Sequence[float], value: float | None = None,
    words: Sequence[str] | None = None, title: str = "PPO: per-token reward = score − β·KL",
) -> go.Figure:
    """Stacked per sample: the score r_i and the KL penalty −β·KL_i (KL in the reward); the total as a marker.

    With ``value`` given, the critic's V(s) is drawn as the baseline line the rewards are compared with.
    """
    labels = sample_labels(texts)
    colors = word_colors(words or list(dict.fromkeys(texts)))
    scores = [float(s) for s in scores]
    penalty = [float(k) for k in kl_penalty]
    total = [s + k for s, k in zip(scores, penalty)]
    totals = fit_labels(total, NUMBER_FORMATS, bar_slot_px(len(labels))[1])  # as precise as fits between samples
    data = [
        dict(type="bar", name="score r_i", x=labels, y=scores, marker=dict(color=[colors.get(t, NEUTRAL) for t in texts]),
             hovertemplate="sample %{x}<br>score %{y:.4f}<extra></extra>", legendgroup="score", showlegend=False),
        dict(type="bar", name="−β·KL (in the reward)", x=labels, y=penalty, marker=dict(color=SERIES_COLORS["π_old"]),
             hovertemplate="sample %{x}<br>−β·KL = %{y:.6f}<extra></extra>"),
        dict(type="scatter", name="rew_i = r_i − β·KL_i", x=labels, y=total,
             mode="markers" if totals is None else "markers+text",
             text=totals, textposition="top center", cliponaxis=False,  # "1" above the top
             marker=dict(color=GUIDE, symbol="diamond", size=9),
             hovertemplate="sample %{x}<br>rew = %{y:.6f}<extra></extra>"),
        # the scores' legend entry, listed first: the bars are coloured by word
        _legend_only("bar", "score r_i (coloured by word)", dict(color=NEUTRAL), legendgroup="score", legendrank=1),
    ]
    baseline = {}
    if value is not None:
        baseline = dict(shapes=[_hline(float(value), width=2)],
                        subtitle=f"solid line: the critic's baseline V(s) = {float(value):.4f}")
    return _figure(data, title, height=400, legend_below=True, barmode="relative", yaxis=dict(title="reward"),
                   **baseline)


def ppo_kl_chart(
    texts: Sequence[str], kl: Sequence[float], beta: float, estimator: str = "k1",
    title: str = "PPO: KL per sample, subtracted from the reward",
) -> go.Figure:
    """The KL estimate of each sample (k1 can be negative) and −β·KL, what it adds to that sample's reward."""
    labels = sample_labels(texts)
    kl = [float(k) for k in kl]
    data = [
        _bar(estimator, labels, kl, SERIES_COLORS["π_ref"],
             fit_labels(kl, ("{:.4g}",) + NUMBER_FORMATS, bar_slot_px(len(labels), 2)[1]),
             hover="sample %{x}<br>" + estimator + " = %{y:.6g}", extra="", alone=True),
        _bar(f"−β·{estimator} (β = {beta:g}) added to the reward", labels, [-beta * k for k in kl],
             SERIES_COLORS["π_old"], hover="sample %{x}<br>−β·KL = %{y:.6g}", extra=""),
    ]
    top = max([abs(k) for k in kl] + [1e-3]) * 1.3
    return _figure(data, title, height=400, legend_below=True, barmode="group", shapes=[_hline(0)],
                   yaxis=dict(title=f"KL estimate ({estimator})", range=[-top, top]))


def ppo_advantage_chart(
    texts: Sequence[str], advantages_raw: Sequence[float], advantages: Sequence[float], whitened: bool,
    title: str = "PPO: GAE advantages, before and after whitening",
) -> go.Figure:
    """Per sample: the GAE advantage (rew − V for the one-step toy) and, if applied, the whitened one used by the loss.

    A subtitle, not a legend, says which bar is which: a legend's swatch would take the first sample's colour,
    while the colours of the bars the loss uses are their signs.
    """
    labels = sample_labels(texts)
    raw = [float(a) for a in advantages_raw]
    used = [float(a) for a in advantages]
    data = []
    if whitened:
        data.append(_bar("GAE A (before whitening)", labels, raw, "rgba(127,127,127,0.45)",
                         hover="sample %{x}<br>A = %{y:.4f}", extra="before whitening"))
    bar_px, group_px = bar_slot_px(len(labels), 2 if whitened else 1)
    data.append(_bar("A used by the loss" + (" (whitened)" if whitened else ""), labels, used, _sign_colors(used),
                     fit_labels(used, SIGNED_FORMATS, group_px if whitened else bar_px),
                     hover="sample %{x}<br>A = %{y:.4f}", extra="used", alone=whitened))
    top = max([abs(a) for a in raw + used] + [0.5]) * 1.3
    subtitle = ("grey: before whitening; green / red: the A the loss uses" if whitened
                else "the A the loss uses (green > 0, red < 0); no whitening")
    return _figure(data, title, subtitle=subtitle, height=400, showlegend=False, barmode="group",
                   shapes=[_hline(0)], yaxis=dict(title="advantage", range=[-top, top]))


# ----------------------------------------------------------------- language model (issue 5)


# Diverging scale for signed quantities (advantage, gradient push): red down, white 0, green up.
DIVERGING = [[0.0, NEGATIVE], [0.5, "#f7f7f7"], [1.0, POSITIVE]]
SEQUENTIAL = [[0.0, "#f7f7f7"], [1.0, SERIES_COLORS["π_old"]]]


def _cell_text(token: str, limit: int = 10) -> str:
    """A token as a cell label: visible spaces and newlines, shortened to fit."""
    text = token.replace("\n", "↵").replace(" ", "·") or "∅"
    return text if len(text) <= limit else text[: limit - 1] + "…"


# A token cell holds this many characters ("·answ…": the hover has all of it): most of a small model's tokens fit.
TOKEN_LABEL_CHARS = 5
TOKEN_CELL_PAD_PX = 4  # the 2-px gap between cells and a pixel of air each side of the label
TOKEN_COLORBAR_PX = 70  # the colour bar and its tick labels, right of the cells
NOTE_LINE_PX = 24  # one more line of the key under the cells
# The narrowest width a token heatmap is drawn at when nobody says: the Toy vs language model page's right-hand
# column at 1280 px with the sidebar open (460 px), and that column presenting (no sidebar) at 1024 px (470 px).
TOKEN_FIGURE_PX = {False: 460, True: 470}


def token_cells_per_line(figure_px: float, font_px: float, chars: int = TOKEN_LABEL_CHARS,
                         left_px: float = MARGIN["l"]) -> int:
    """How many token cells of ``chars`` characters at ``font_px`` fit side by side in a ``figure_px``-wide
    heatmap (its margins and colour bar taken off; ``left_px``: the row labels' margin): one cell is
    chars x font x ``CHAR_EM`` + ``TOKEN_CELL_PAD_PX``."""
    plot = figure_px - left_px - MARGIN["r"] - TOKEN_COLORBAR_PX
    return max(1, int(plot // (chars * font_px * CHAR_EM + TOKEN_CELL_PAD_PX)))


def token_lines(length: int, per_line: int) -> list[tuple[int, int]]:
    """A completion of ``length`` tokens wrapped into lines of at most ``per_line``: [(first, end), ...]."""
    return [(k, min(k + per_line, length)) for k in range(0, max(length, 1), per_line)]


def token_span(tokens: Sequence[str], start: int, end: int) -> tuple[int, int] | None:
    """The tokens ``[first, last + 1)`` that hold characters ``[start, end)`` of ``"".join(tokens)``."""
    first = last = None
    position = 0
    for t, token in enumerate(tokens):
        if position < end and position + len(token) > start:
            first = t if first is None else first
            last = t
        position += len(token)
    return None if first is None else (first, last + 1)


def token_heatmap(
    tokens: Sequence[Sequence[str]],
    values: Sequence[Sequence[float]],
    quantity: str,
    title: str,
    *,
    center: float | None = 0.0,
    row_labels: Sequence[str] | None = None,
    extra_hover: Mapping[str, Sequence[Sequence[float]]] | None = None,
    zrange: tuple[float, float] | None = None,
    subtitle: str | None = None,
    answer_spans: Sequence[tuple[int, int] | None] | None = None,
    figure_px: float | None = None,
    max_height: int | None = None,
) -> go.Figure:
    """One block of rows per completion, one cell per real token, coloured by ``quantity``; each cell shows its
    token (at most ``TOKEN_LABEL_CHARS`` characters; the hover has the rest).

    A completion longer than fits ``figure_px`` (default: the narrowest column it is drawn in,
    ``TOKEN_FIGURE_PX``) wraps onto more rows, as text does; a thin line then parts the completions, and a
    continued row is labelled with its first token's position. ``answer_spans[i] = (first, end)`` boxes
    completion i's tokens ``first .. end - 1``: the answer its reward reads. ``center`` is the value drawn white (a
    diverging scale around it, e.g. 0 for an advantage, 1 for a ratio); ``None`` draws a sequential scale from 0.
    Padding after a completion's end stays empty. Hover shows the token, the value and every series in
    ``extra_hover``. ``max_height`` (px): a figure that would be taller (long completions wrapped onto many rows)
    shows each completion's first tokens only, as many rows of them as fit, and says so under the cells.
    """
    style = text_style()
    presenting = style.min_px >= PRESENT_MIN_PX
    longest = max([len(t) for t in tokens] + [1])
    labels = list(row_labels) if row_labels is not None else [str(i + 1) for i in range(len(tokens))]
    # Plotly widens the left margin to the longest row label ("3: r=0.909"), and the axis title beside it
    left_px = max(MARGIN["l"], max(len(label) for label in labels + [""]) * style.min_px * CHAR_EM + 30)
    cells = token_cells_per_line(figure_px or TOKEN_FIGURE_PX[presenting], style.min_px, left_px=left_px)
    line_count = -(-longest // cells)
    per_line = -(-longest // line_count)  # as many lines, evened out: 24 tokens at 7 a line -> 4 lines of 6
    # a row as tall as its text and some air: 14 px text in 26 px rows, 18 px in 20 px (a projector's chart is short)
    row_px = style.min_px + (2 if presenting else 12)
    shown = longest
    top_room = SUBTITLE_ROOM if subtitle else 0
    if max_height is not None:
        # room for the rows, less the key's second line under them
        rows_fit = max(1, (max_height - MARGIN["t"] - MARGIN["b"] - NOTE_LINE_PX
                           - _top_room_px(top_room)) // row_px)
        lines_each = max(1, rows_fit // max(len(tokens), 1))
        if lines_each < line_count:
            per_line = cells  # full rows of the first tokens
            shown = lines_each * per_line
    blocks = [token_lines(min(len(row), shown), per_line) for row in tokens]
    line_count = max(len(lines) for lines in blocks)
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    hover: list[list[str]] = []
    ticks: list[str] = []
    first_row: list[int] = []  # the grid row each completion starts on
    for i, (row, lines) in enumerate(zip(tokens, blocks)):
        first_row.append(len(z))
        for k, (first, end) in enumerate(lines):
            z.append([None] * per_line)
            text.append([""] * per_line)
            hover.append([""] * per_line)
            ticks.append(labels[i] if k == 0 else f"↳ {first + 1}")
            for t in range(first, end):
                v = float(values[i][t])
                z[-1][t - first] = v
                text[-1][t - first] = _cell_text(row[t], TOKEN_LABEL_CHARS)
                lines_of_hover = [f"completion {i + 1}, token {t + 1}: {row[t]!r}", f"{quantity} = {v:.6g}"]
                for name, series in (extra_hover or {}).items():
                    lines_of_hover.append(f"{name} = {float(series[i][t]):.6g}")
                if answer_spans and answer_spans[i] and answer_spans[i][0] <= t < answer_spans[i][1]:
                    lines_of_hover.append("part of the answer the reward reads")
                if k == len(lines) - 1 and t == end - 1 and end < len(row):  # the row's last shown token
                    lines_of_hover.append(f"… and {len(row) - end} more tokens: {''.join(row[end:])!r}")
                hover[-1][t - first] = "<br>".join(lines_of_hover)
    finite = [v for r in z for v in r if v is not None]
    if zrange is not None:
        zmin, zmax = zrange
    elif center is None:
        zmin, zmax = 0.0, max(finite + [0.0])
        if zmax < 1e-6:  # nothing there yet (KL 0 before the first update): a plain scale, not ticks at 1n
            zmax = 0.01
    else:
        spread = max([abs(v - center) for v in finite] + [0.0])
        if spread < 1e-6:  # nothing varies (every ratio is 1): a plain scale, not ticks at 1.000000001
            spread = 0.01 * max(1.0, abs(center))
        zmin, zmax = center - spread, center + spread
    heatmap = dict(
        type="heatmap", z=z, text=text, texttemplate="%{text}", customdata=hover,
        hovertemplate="%{customdata}<extra></extra>", colorscale=SEQUENTIAL if center is None else DIVERGING,
        zmin=zmin, zmax=zmax, xgap=2, ygap=2, colorbar=dict(title=dict(text=quantity, side="right"), thickness=12),
        hoverongaps=False,
    )
    ink = style.color
    shapes = []
    if line_count > 1:  # wrapped: a line between completions, so a continued row reads as part of the one above
        shapes += [dict(type="line", xref="x", yref="y", x0=-0.5, x1=per_line - 0.5, y0=r - 0.5, y1=r - 0.5,
                        line=dict(color=GUIDE, width=2)) for r in first_row[1:]]
    boxed = False
    for i, span in enumerate(answer_spans or []):
        if not span:
            continue
        for k, (first, end) in enumerate(blocks[i]):
            lo, hi = max(span[0], first), min(span[1], end)
            if lo < hi:
                boxed = True
                r = first_row[i] + k
                shapes.append(dict(type="rect", xref="x", yref="y", x0=lo - first - 0.5, x1=hi - first - 0.5,
                                   y0=r - 0.5, y1=r + 0.5, line=dict(color=ink, width=2), fillcolor="rgba(0,0,0,0)"))
    # the key sits in the bottom margin, empty since the token positions are written on top
    keys = (["▭ the answer the reward reads"] if boxed else []) + (
        [f"first {shown} tokens (hover: the rest)"] if shown < longest else [])
    note = [dict(text="<br>".join(keys), xref="paper", x=0, yref="paper", y=0, yanchor="top", align="left",
                 xanchor="left", yshift=-6, showarrow=False)] if keys else []
    bottom = MARGIN["b"] + NOTE_LINE_PX * max(len(keys) - 1, 0)
    return _figure(
        [heatmap], title, subtitle=subtitle, top_room=top_room,  # its ticks are on top
        # as tall as its rows need (max_height already chose how many), and 260 px at the least within max_height
        height=max(MARGIN["t"] + bottom + row_px * len(z),
                   min(260, (max_height or 10**6) - _top_room_px(top_room))),
        margin={"b": bottom},
        showlegend=False, **({"shapes": shapes} if shapes else {}), **({"annotations": note} if note else {}),
        yaxis=dict(tickmode="array", tickvals=list(range(len(z))), ticktext=ticks, title="completion",
                   range=[len(z) - 0.5, -0.5]),  # reversed: completion 1 on top
        # the ticks say t (within a row); an axis title would hit the chart title
        xaxis=dict(tickmode="array", tickvals=list(range(per_line)), ticktext=[str(t + 1) for t in range(per_line)],
                   side="top", range=[-0.5, per_line - 0.5]),
    )


def completion_summary_chart(
    rewards: Sequence[float], advantages: Sequence[float], lengths: Sequence[int],
    true_rewards: Sequence[float] | None = None, title: str = "Reward, advantage and length per completion",
) -> go.Figure:
    """Three small panels sharing the completion axis: reward (and the true reward), advantage, length |o_i|."""
    labels = [str(i + 1) for i in range(len(rewards))]

    def panel_bar(panel: int, name: str, y: list, color, hover: str, **kwargs) -> dict:
        return _in_panel(dict(type="bar", x=labels, y=y, name=name, marker=dict(color=color),
                              hovertemplate="completion %{x}<br>" + hover + "<extra></extra>", **kwargs), panel)

    data = [panel_bar(1, "reward (optimized)", [float(r) for r in rewards], SERIES_COLORS["π_θ"], "r = %{y:.4g}")]
    if true_rewards is not None:
        data.append(panel_bar(1, "true reward (correct?)", [float(r) for r in true_rewards],
                              SERIES_COLORS["after update"], "true r = %{y:.4g}"))
    data += [
        panel_bar(2, "advantage", [float(a) for a in advantages], _sign_colors(advantages), "A = %{y:.4f}",
                  showlegend=False),
        panel_bar(3, "tokens", [int(n) for n in lengths], NEUTRAL, "|o| = %{y}", showlegend=False),
    ]
    return _figure(data, title, height=300, legend_below=True, barmode="group",
                   **_panels(("reward r_i", "advantage A_i", "length |o_i|"), 0.07, x_title="completion"))


def top_k_chart(
    tokens: Sequence[str], series: Mapping[str, Sequence[float]], sampled: str | None = None,
    title: str = "Top-k next tokens",
) -> go.Figure:
    """Grouped bars over the top-k tokens (union over the series), e.g. under π_θ, π_old and π_ref.

    Past a dozen bars only the first series is labelled: side by side the labels ran into each other.
    """
    labelled = None if len(tokens) * len(series) <= 12 else 1
    notes = []
    if sampled is not None and sampled in tokens:
        # by position: on a category axis a label such as "13" would be read as the 14th category
        notes.append(dict(x=list(tokens).index(sampled), y=1.08, text="sampled", showarrow=False,
                          font=dict(color=SERIES_COLORS["group"])))
    return distribution_chart([_cell_text(t, 14) for t in tokens], series, title=title, labelled=labelled,
                              annotations=notes)


# ----------------------------------------------------------------- a language model over many iterations


def running_mean(values: Sequence[float | None], window: int = 10) -> list[float | None]:
    """The mean of the last ``window`` values at each point (fewer at the start; missing values skipped)."""
    out: list[float | None] = []
    clean = _clean(values)
    for i in range(len(clean)):
        recent = [v for v in clean[max(0, i - window + 1): i + 1] if v is not None]
        out.append(sum(recent) / len(recent) if recent else None)
    return out


def lm_reward_chart(
    iterations: Sequence[int], rewards: Sequence[float], true_rewards: Sequence[float] | None = None,
    window: int = 10, title: str = "LM: mean reward of each iteration's sampled groups",
    x_range: Sequence[float] | None = None,
) -> go.Figure:
    """Each iteration's group-mean reward (thin) and its running mean (thick); the true reward dotted beside it
    when the optimized reward is a hackable proxy."""
    x = list(iterations)
    series = [("optimized reward", rewards, SERIES_COLORS["π_θ"], "solid")]
    if true_rewards is not None:
        series.append(("true reward (correct?)", true_rewards, SERIES_COLORS["after update"], "dot"))
    data = []
    for name, values, color, dash in series:
        data.append(dict(type="scatter", name=name, x=x, y=_clean(values), mode="lines", legendgroup=name,
                         line=dict(color=color, width=1, dash=dash), opacity=0.45,
                         hovertemplate="iteration %{x}<br>" + name + " = %{y:.3f}<extra></extra>"))
        data.append(dict(type="scatter", name=f"{name}, mean of last {window}", x=x, y=running_mean(values, window),
                         mode="lines", legendgroup=name, line=dict(color=color, width=3, dash=dash),
                         hovertemplate="iteration %{x}<br>running mean = %{y:.3f}<extra></extra>"))
    return _figure(data, title, height=330, legend_below=True, x_range=x_range,
                   xaxis=dict(title="iteration"), yaxis=dict(title="mean reward of the groups"))


def lm_accuracy_chart(
    iterations: Sequence[int], accuracy: Sequence[float],
    title: str = "LM: task accuracy on a fixed evaluation set", x_range: Sequence[float] | None = None,
) -> go.Figure:
    """Accuracy (mean true reward on the same problems and samples) at each evaluation, the start dotted across."""
    x, y = list(iterations), _clean(accuracy)
    shapes = [_hline(y[0], dash="dot")] if y and y[0] is not None else []
    data = [dict(type="scatter", name="accuracy", x=x, y=y, mode="lines+markers",
                 line=dict(color=POSITIVE, width=3), marker=dict(size=7),
                 hovertemplate="iteration %{x}<br>accuracy = %{y:.3f}<extra></extra>")]
    return _figure(data, title, height=330, legend_below=True, shapes=shapes, x_range=x_range,
                   xaxis=dict(title="iteration"), yaxis=dict(title="accuracy", range=[0, 1.02]))
