"""The offline page builder: one self-contained file holding every stage's chart, equations and text."""

import html
import json
import re

import plotly.graph_objects as go
import pytest
import torch

from grpo_viz import charts, deck, explain, lesson
from grpo_viz.config import TOY_WORDS, Settings
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.stepper import STAGES, StepRun
from grpo_viz.tasks import word_reward


def figures(page: str) -> list:
    return json.loads(re.search(r'<script type="application/json" id="deck-figures">(.*?)</script>', page,
                                re.S).group(1))


def test_a_page_holds_every_stage_with_its_chart_equations_and_text():
    stages = [deck.DeckStage(short=f"S{k}", title=f"{k + 1}. Stage {k}",
                             figure=go.Figure(go.Bar(x=["a", "b"], y=[k, 1])), equations=(rf"x_{k} = {k}",),
                             text=f"**bold {k}** and a list:\n\n- one\n- two", objective=r"\mathcal{J}")
              for k in range(3)]
    page = deck.build_deck("A title", stages, footer="made here")
    assert page.count("<section ") == 3 and page.count('role="tab"') == 3
    assert [f["data"][0]["y"] for f in figures(page)] == [[0, 1], [1, 1], [2, 1]]
    assert "<strong>bold 2</strong>" in page and "<li>two</li>" in page
    assert 'data-tex="x_1 = 1"' in page and "<h2>3. Stage 2</h2>" in page and "made here" in page


def test_the_page_needs_no_network():
    page = deck.build_deck("t", [deck.DeckStage(short="a", title="a", figure=None, equations=(r"\frac12",))])
    assert "Plotly" in page and "katex" in page  # both libraries inside the file
    markup = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", "", page, flags=re.S)  # the page less the libraries' code
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", markup)  # nothing fetched
    assert "url(fonts/" not in page and page.count("data:font/woff2;base64,") >= 19  # KaTeX's fonts inlined


def without_libraries(page: str) -> str:
    """The page less plotly.js, KaTeX's script and KaTeX's stylesheet (their code names URLs it never fetches:
    XML namespaces, map tile servers): the markup, the figures, the text and the page's own style and script."""
    for library in (deck._plotly_js(), deck._katex_js(), deck._katex_css()):
        assert library in page
        page = page.replace(library, "")
    return page


def test_text_and_equations_cannot_break_out_of_the_page():
    evil = deck.DeckStage(short="<b>", title='"><script>alert(1)</script>', figure={"data": [{"name": "</script>"}]},
                          equations=('"><img src=x>',))
    page = deck.build_deck("</title>", [evil])
    assert "<script>alert(1)</script>" not in page and '"><img src=x>' not in page
    assert figures(page)[0]["data"][0]["name"] == "</script>"


def test_an_empty_page_is_refused():
    with pytest.raises(ValueError):
        deck.build_deck("t", [])


def test_step_throughs_iteration_is_its_eight_stages():
    torch.set_num_threads(1)
    settings = Settings(mu=2)
    run = StepRun(ToyPolicy())
    trace = run.trace(settings, word_reward(TOY_WORDS, settings.rewards))
    toy = explain.toy_numbers(trace, run.policy)
    page = deck.iteration_page(deck.IterationView(trace, toy, 0, 0))
    assert page.count("<section ") == len(STAGES)
    for k, name in enumerate(STAGES):
        assert f"<h2>{k + 1}. {html.escape(name)}</h2>" in page
    assert len(figures(page)) == len(STAGES) + 1  # the Update stage's trajectory (μ = 2)
    assert deck.text_html(explain.stage_text(0, trace, 1, toy)) in page


def lesson_at(values: dict[str, float], draw: int = 0) -> deck.LessonView:
    return deck.LessonView(tuple(values.get(s.key) if s.control else None for s in lesson.SLIDES), draw)


def test_the_lesson_page_holds_every_slide_as_the_lesson_draws_it_at_its_controls_values():
    torch.set_num_threads(1)
    values = {"clip": 0.4, "grpo": 4, "hacking": 1.0}
    page = deck.lesson_page(lesson_at(values, draw=1))
    assert page.count("<section ") == len(lesson.SLIDES) and page.count('role="tab"') == len(lesson.SLIDES)
    drawn = figures(page)
    assert len(drawn) == len(lesson.SLIDES)  # one chart a slide
    for k, slide in enumerate(lesson.SLIDES):
        with charts.presentation(False, dark=False):  # the file's style: a screen's sizes on a white page
            view = lesson.build(slide, values.get(slide.key), 1)
        assert f'{k + 1}. {html.escape(slide.title)}</button>' in page
        assert f"<h2>{k + 1}. {html.escape(slide.heading)}</h2>" in page
        assert drawn[k] == json.loads(view.figure.to_json()), slide.key  # the payload the page draws
        assert f'<div class="objective" data-tex="{html.escape(view.equations[0])}">' in page
        for tex in view.equations[1:]:
            assert f'<div data-tex="{html.escape(tex)}">' in page
        assert deck.text_html(view.text) in page
    assert "Clip: ε = 0.4" in page and "GRPO: G = 4" in page and "Softmax: T = 1" in page
    assert "group draw 2" in page


def test_the_lesson_page_needs_no_network():
    page = deck.lesson_page(lesson_at({}))
    rest = without_libraries(page)
    assert "http://" not in rest and "https://" not in rest
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", rest)


def test_a_lesson_view_of_another_length_is_refused():
    with pytest.raises(ValueError, match="slides"):
        deck.lesson_page(deck.LessonView((None,), 0))
