"""A lesson or one iteration as a single self-contained HTML page: every stage's chart, equations and text, stepped
with the presenter's keys, with no server and no network (plotly.js and KaTeX with its fonts are inside the file).

Plain Python: the pages hand it the same payloads they draw (a Plotly figure, LaTeX lines, Markdown), so the file
and the app show one source.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import markdown
import plotly

STATIC = Path(__file__).parent / "static"
KATEX = STATIC / "katex"


@dataclass(frozen=True)
class DeckStage:
    """One stage (or slide) of the page: its bar name, title, chart, equations and words."""

    short: str  # the stage bar's name
    title: str  # the card's heading
    figure: object | None  # a plotly Figure (or its dict), drawn when the stage first shows
    equations: tuple[str, ...] = ()  # LaTeX, one display equation each
    text: str = ""  # Markdown
    objective: str | None = None  # LaTeX shown above the chart, full width
    extra_figures: tuple = field(default=())  # more charts under the first (the Update stage's trajectory)


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _katex_js() -> str:
    return (KATEX / "katex.min.js").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _katex_css() -> str:
    """KaTeX's stylesheet with each font's woff2 inlined as a data URL (the woff and ttf fallbacks dropped: every
    browser that runs the page reads woff2)."""
    css = (KATEX / "katex.min.css").read_text(encoding="utf-8")

    def inline(match: re.Match) -> str:
        name = re.search(r"url\(fonts/([^)]+)\.woff2\)", match.group(0)).group(1)
        data = base64.b64encode((KATEX / "fonts" / f"{name}.woff2").read_bytes()).decode("ascii")
        return f"src:url(data:font/woff2;base64,{data}) format(\"woff2\")"

    return re.sub(r"src:url\(fonts/[^;}]*", inline, css)


def _script_json(value) -> str:
    """JSON safe inside a <script> element: no '</' can close it."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def _figure_json(figure) -> dict | None:
    if figure is None:
        return None
    return json.loads(figure.to_json()) if hasattr(figure, "to_json") else figure


def text_html(text: str) -> str:
    """A stage's Markdown as HTML (bold, lists, tables: what the app's cards use)."""
    return markdown.markdown(text, extensions=["tables"])


_CSS = """
*{box-sizing:border-box}
body{margin:0;font:18px/1.45 "Source Sans Pro","Segoe UI",system-ui,sans-serif;color:#262730;background:#fff}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;padding:.5rem 1.5rem}
header h1{font-size:1.2rem;margin:0;flex:1 1 100%}
nav{display:flex;gap:.25rem;flex-wrap:wrap;flex:1}
nav button,.step button{font:inherit;border:1px solid #d0d0d8;background:#fff;border-radius:.5rem;padding:.2rem .7rem;
  cursor:pointer}
nav button[aria-selected=true]{border-color:#ff4b4b;color:#ff4b4b}
.step button#next{background:#ff4b4b;border-color:#ff4b4b;color:#fff;min-width:8rem}
.step button:disabled{opacity:.4;cursor:default}
main{padding:0 1.5rem 1rem}
section[hidden]{display:none}
.objective{overflow-x:auto}
.row{display:flex;gap:1rem;align-items:flex-start}
.charts{flex:5 1 0;min-width:0}
.card{flex:4 1 0;min-width:0;border:1px solid #d0d0d8;border-radius:.5rem;padding:.5rem 1rem}
.card h2{font-size:1.3rem;margin:.2rem 0}
.card .katex-display{overflow-x:auto;overflow-y:hidden;margin:.4em 0}
.card table{border-collapse:collapse}.card td,.card th{padding:.1rem .4rem;border-bottom:1px solid #eee}
footer{padding:.25rem 1.5rem;color:#666;font-size:.9rem}
@media (max-width:900px){.row{flex-direction:column}.charts,.card{width:100%}}
"""

# Presenter keys as in the app: PageDown / PageUp (a clicker), the arrows and Space (Shift+Space back) step; the URL's
# #<n> records the stage, so a reload or a link opens at it. Charts and equations are drawn when a stage first shows.
_JS = """
(function () {
  const figures = JSON.parse(document.getElementById('deck-figures').textContent);
  const sections = Array.from(document.querySelectorAll('main > section'));
  const tabs = Array.from(document.querySelectorAll('nav button'));
  const back = document.getElementById('back'), next = document.getElementById('next');
  let shown = -1;
  // an equation wider than its box is set smaller until it fits (KaTeX sizes everything in em), not scrolled
  const fit = (el) => {
    el.style.fontSize = '';
    const box = el.querySelector('.katex-display') || el;
    const need = Math.max(box.scrollWidth, el.scrollWidth), have = el.clientWidth;
    if (have > 0 && need > have + 1) el.style.fontSize = (0.98 * have / need) + 'em';
  };
  const fitShown = () => { if (shown >= 0) sections[shown].querySelectorAll('[data-tex]').forEach(fit); };
  const draw = (k) => {
    const section = sections[k];
    if (section.dataset.drawn) return;
    section.dataset.drawn = '1';
    section.querySelectorAll('[data-tex]').forEach((el) => {
      katex.render(el.dataset.tex, el, {displayMode: true, throwOnError: false});
    });
    section.querySelectorAll('[data-figure]').forEach((el) => {
      const fig = figures[+el.dataset.figure];
      Plotly.newPlot(el, fig.data, fig.layout || {}, {displaylogo: false, responsive: true});
    });
  };
  const show = (k) => {
    k = Math.max(0, Math.min(sections.length - 1, k));
    if (k === shown) return;
    sections.forEach((s, i) => { s.hidden = i !== k; });
    tabs.forEach((t, i) => t.setAttribute('aria-selected', String(i === k)));
    shown = k;
    draw(k);
    fitShown();
    back.disabled = k === 0;
    next.disabled = k === sections.length - 1;
    history.replaceState(null, '', '#' + (k + 1));
  };
  tabs.forEach((t, i) => t.addEventListener('click', () => show(i)));
  back.addEventListener('click', () => show(shown - 1));
  next.addEventListener('click', () => show(shown + 1));
  window.addEventListener('resize', fitShown);
  window.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.altKey || e.metaKey) return;
    let step = 0;
    if (e.key === 'PageDown' || e.key === 'ArrowRight' || (e.key === ' ' && !e.shiftKey)) step = 1;
    else if (e.key === 'PageUp' || e.key === 'ArrowLeft' || (e.key === ' ' && e.shiftKey)) step = -1;
    if (!step) return;
    e.preventDefault();
    show(shown + step);
  });
  const start = parseInt((location.hash || '#1').slice(1), 10);
  show(Number.isFinite(start) ? start - 1 : 0);
})();
"""


def build_deck(title: str, stages: list[DeckStage], footer: str = "") -> str:
    """One HTML page holding every stage; it runs from a file or any web server, offline."""
    if not stages:
        raise ValueError("a page needs at least one stage")
    figures, sections = [], []
    for k, stage in enumerate(stages):
        charts = []
        for figure in (stage.figure, *stage.extra_figures):
            fig = _figure_json(figure)
            if fig is not None:
                charts.append(f'<div class="chart" data-figure="{len(figures)}"></div>')
                figures.append(fig)
        objective = (f'<div class="objective" data-tex="{html.escape(stage.objective)}"></div>'
                     if stage.objective else "")
        equations = "".join(f'<div data-tex="{html.escape(tex)}"></div>' for tex in stage.equations)
        sections.append(
            f'<section id="stage-{k + 1}" aria-label="{html.escape(stage.title)}" hidden>{objective}'
            f'<div class="row"><div class="charts">{"".join(charts)}</div>'
            f'<div class="card"><h2>{html.escape(stage.title)}</h2>{equations}'
            f'<div class="text">{text_html(stage.text)}</div></div></div></section>')
    bar = "".join(f'<button role="tab" aria-selected="false">{k + 1}. {html.escape(s.short)}</button>'
                  for k, s in enumerate(stages))
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{_katex_css()}</style><style>{_CSS}</style>"
        f"<script>{_plotly_js()}</script><script>{_katex_js()}</script></head><body>"
        f'<header><h1>{html.escape(title)}</h1><nav role="tablist">{bar}</nav>'
        f'<div class="step"><button id="back">◀ Back</button> <button id="next">Next ▶</button></div></header>'
        f"<main>{''.join(sections)}</main>"
        + (f"<footer>{html.escape(footer)}</footer>" if footer else "")
        + f'<script type="application/json" id="deck-figures">{_script_json(figures)}</script>'
        f"<script>{_JS}</script></body></html>"
    )


KEYS = "Keys: PageDown / PageUp, → / ←, Space (Shift+Space back)."


def _file_style():
    """Charts for the file's white page at a screen's text sizes, whatever thread builds them (a download is built
    on a worker thread of the server, which starts from the default style)."""
    from . import charts

    return charts.presentation(False, dark=False)


@dataclass
class IterationView:
    """What the Step through page shows of one drawn group: the trace, the toy's numbers, and where it is."""

    trace: object  # stepper.IterationTrace
    toy: object  # explain.ToyNumbers
    iteration: int  # from 0
    draw: int  # from 0


def iteration_page(view: IterationView) -> str:
    """Step through's iteration as one page: its eight stages at the last inner update, as the page opens them."""
    from . import charts, explain
    from .config import TOY_STATE, TOY_WORDS
    from .stages import GRPO_STAGES
    from .toy_view import toy_stage_figure

    trace, toy = view.trace, view.toy
    step = trace.mu - 1
    stages = []
    with _file_style():
        for k, record in enumerate(GRPO_STAGES):
            extra = ()
            if record.name == "Update" and trace.mu > 1:
                extra = (charts.trajectory_chart(TOY_WORDS, [p.tolist() for p in toy.probs_per_step],
                                                 toy.probs_ref.tolist()),)
            stages.append(DeckStage(
                short=record.short, title=f"{k + 1}. {record.name}",
                figure=toy_stage_figure(trace, toy, k, step, TOY_WORDS, TOY_STATE), extra_figures=extra,
                equations=tuple(explain.stage_latex(k, trace, step, toy)),
                text=explain.stage_text(k, trace, step, toy), objective=explain.objective_latex(k)))
    return build_deck(f"One GRPO iteration of the toy “{TOY_STATE} …”: iteration {view.iteration + 1}, "
                      f"group draw {view.draw + 1}", stages, footer=f"Made by grpo-viz. {KEYS}")


@dataclass
class LessonView:
    """What the lesson page shows: each slide's live control value (None for a slide without one, or at its
    default) and the group draw of the slides that sample a group."""

    values: tuple[float | None, ...]  # one per slide of lesson.SLIDES
    draw: int  # from 0


def lesson_page(view: LessonView) -> str:
    """The lesson as one page: every slide built by ``lesson.build`` at the page's control values and draw, the
    view the page draws (the objective over the chart; the card's numbers and words beside it)."""
    from . import lesson

    if len(view.values) != len(lesson.SLIDES):
        raise ValueError(f"the lesson has {len(lesson.SLIDES)} slides, not {len(view.values)}")
    stages, settings = [], []
    with _file_style():
        for k, (slide, value) in enumerate(zip(lesson.SLIDES, view.values)):
            shown = lesson.build(slide, value, view.draw)
            stages.append(DeckStage(short=slide.title, title=f"{k + 1}. {slide.heading}", figure=shown.figure,
                                    equations=tuple(shown.equations[1:]), text=shown.text,
                                    objective=shown.equations[0]))
            if slide.control is not None:  # its symbol ends its label: "Clip ε", "Group size G"
                settings.append(f"{slide.title}: {slide.control.label.split()[-1]} = "
                                f"{slide.control.value(value):g}")
    footer = f"Made by grpo-viz with {', '.join(settings)}; group draw {view.draw + 1}. {KEYS}"
    return build_deck("The GRPO story, in nine slides", stages, footer=footer)
