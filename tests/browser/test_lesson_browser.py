"""The lesson in real Chromium as a lecturer presents it: PageDown from the first slide to the last at 1280 x 720
and 1024 x 768, nothing scrolled or cut on any slide, and the keys still step after the mouse toggles presentation
and drags a slide's slider."""

import re

import pytest

from grpo_viz.lesson import SLIDES

from .conftest import SCREENSHOTS
from .test_presenter_keys import (FIT_JS, SIZES, SMALLEST_TEXT_JS, assert_projector_sizes, drag, open_presenting,
                                  settle)

pytestmark = pytest.mark.browser


def slide_in_url(page) -> int:
    return int(re.search(r"[?&]slide=(\d+)", page.url).group(1))


def wait_for_slide(page, k: int):
    page.wait_for_function(f"() => /[?&]slide={k}(&|$)/.test(location.search)", timeout=20_000)
    # the slide's own card, not the last one's: a fragment's rerun may outlast the URL's change
    # (every slide is on the page once drawn: the one shown)
    heading = (f"() => Array.from(document.querySelectorAll('h4')).some(h => h.textContent.startsWith('{k}. ')"
               " && h.checkVisibility({visibilityProperty: true}))")
    page.wait_for_function(heading, timeout=20_000)
    settle(page)


def test_pagedown_presents_every_slide_on_one_screen(browser, app_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context, page = open_presenting(browser, f"{app_url}/?present=1&slide=1", SIZES[0])
    assert page.get_by_text("Page not found").count() == 0  # "/" is the lesson
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        smallest = []
        for k in range(1, len(SLIDES) + 1):
            wait_for_slide(page, k)
            assert page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                                 ".filter(d => d.checkVisibility({visibilityProperty: true})).length") == 1
            fit = page.evaluate(FIT_JS)
            smallest.append(page.evaluate(SMALLEST_TEXT_JS))
            assert_projector_sizes(page, f"slide {k} at {width}x{height}")
            page.screenshot(path=str(SCREENSHOTS / f"lesson_{width}x{height}_slide{k}.png"))
            assert fit["doc"] <= fit["height"] and fit["main"] <= fit["height"], (k, fit)
            assert not fit["outside"] and not fit["cut"], (k, fit)
            if k < len(SLIDES):
                page.keyboard.press("PageDown")
        assert min(px for px, _ in smallest) >= 18, smallest
        page.keyboard.press("PageDown")  # "Start again" on the last slide
        wait_for_slide(page, 1)
    context.close()


def test_keys_step_after_toggling_presentation_and_dragging_a_slide_slider(browser, app_url):
    context, page = open_presenting(browser, f"{app_url}/?slide=2")
    page.get_by_role("switch", name="Presentation mode").click(force=True)
    page.locator(".st-key-presenter_keys").wait_for(state="attached")
    settle(page)
    page.keyboard.press("PageDown")
    wait_for_slide(page, 3)
    page.keyboard.press("PageUp")
    wait_for_slide(page, 2)
    before = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text="Dividing by a temperature").inner_text()
    drag(page, page.get_by_role("slider", name="Temperature T"), 60)
    after = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text="Dividing by a temperature").inner_text()
    assert after != before, "the slider redraws the slide"
    page.keyboard.press("ArrowRight")
    wait_for_slide(page, 3)
    assert slide_in_url(page) == 3
    context.close()
