"""Real Chromium plays the Training page and watches its charts grow; screenshots land in artifacts/screenshots/."""

import time

import pytest

from .conftest import DRAWN_JS, SCREENSHOTS, SETTLED_JS

pytestmark = pytest.mark.browser

# number of iterations drawn in the first chart (π_θ over iterations)
POINTS_JS = "() => { const d = document.querySelector('.js-plotly-plot'); return d && d.data ? d.data[0].x.length : 0 }"


def settle(page):
    page.wait_for_function(DRAWN_JS, timeout=30_000)
    page.wait_for_function(SETTLED_JS, timeout=30_000)


def open_training(page, app_url, query=""):
    page.goto(app_url + "/training" + query)  # a direct link, as a shared URL opens it
    page.get_by_text("Training over many iterations").wait_for(timeout=30_000)
    settle(page)


def test_play_grows_the_charts_then_pause(page, app_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    open_training(page, app_url, "?iterations=500")  # far enough that Play is still going when Pause is pressed
    assert page.evaluate(POINTS_JS) == 1
    play = page.get_by_role("switch", name="Play")
    play.click(force=True)
    page.wait_for_function(f"() => ({POINTS_JS})() > 5", timeout=30_000)
    grown = page.evaluate(POINTS_JS)
    page.wait_for_function(f"() => ({POINTS_JS})() > {grown}", timeout=30_000)  # still growing, tick after tick
    play.click(force=True)  # pause
    page.wait_for_function("() => !document.body.innerText.includes('(playing)')", timeout=20_000)
    assert not play.is_checked()
    settle(page)
    page.wait_for_timeout(1500)
    paused = page.evaluate(POINTS_JS)
    page.wait_for_timeout(1500)
    assert page.evaluate(POINTS_JS) == paused  # paused means paused
    assert "Traceback" not in page.content()
    page.screenshot(path=str(SCREENSHOTS / "training_paused.png"), full_page=True)


def test_run_to_target_and_compare(page, app_url):
    open_training(page, app_url)
    page.get_by_role("button", name="Run to").click()
    page.wait_for_function(f"() => ({POINTS_JS})() == 51", timeout=60_000)
    settle(page)
    page.screenshot(path=str(SCREENSHOTS / "training_run.png"), full_page=True)
    assert "Traceback" not in page.content()
    titles_js = "() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => d.layout.title.text)"
    # the page streams its charts in one after another: wait for the simplex rather than read a half-drawn page
    page.wait_for_function(f"() => ({titles_js})().some(t => t && t.includes('Paths on the probability simplex'))",
                           timeout=30_000)
    titles = page.evaluate(titles_js)
    assert any("Paths on the probability simplex" in (t or "") for t in titles)


def test_sections_are_tabs_with_their_own_url(page, app_url):
    """Reward hacking and the language model are tabs: a click opens one (and puts it in the URL), and the toy's
    runs are where they were when its tab opens again."""
    open_training(page, app_url)
    for _ in range(2):
        before = page.evaluate(POINTS_JS)
        page.get_by_role("button", name="Step +1").click()
        page.wait_for_function(f"() => ({POINTS_JS})() > {before}", timeout=30_000)
    page.get_by_role("tab", name="Reward hacking").click()
    page.wait_for_function("() => location.search.includes('section=Reward')", timeout=30_000)
    titles_js = "() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => d.layout.title.text).join('|')"
    page.wait_for_function(f"() => ({titles_js})().includes('Trained on the proxy')", timeout=30_000)
    settle(page)  # the run has ended: charts of the toy's tab still on the page would stay
    assert "π_θ(word)" not in page.evaluate(titles_js)  # the toy's charts are not drawn behind the tab
    page.get_by_role("tab", name="Toy training").click()
    page.wait_for_function(f"() => ({titles_js})().includes('π_θ(word)')", timeout=30_000)
    settle(page)
    page.wait_for_function(f"() => ({POINTS_JS})() == 3", timeout=10_000)  # iteration 0 and two steps, as left
    assert page.locator("[data-testid='stException']").count() == 0


# number of trained iterations drawn in the live LM loss chart (the drawn title may be wrapped in <b> tags)
LM_POINTS_JS = ("() => { const d = Array.from(document.querySelectorAll('.js-plotly-plot')).find(p => p.layout && "
                "p.layout.title && (p.layout.title.text || '').replace(/<[^>]*>/g, '').startsWith('LM: loss')); "
                "return d && d.data && d.data.length ? d.data[0].x.length : 0 }")


def test_language_model_trains_in_the_background_while_the_other_pages_stay_usable(page, app_url):
    # G = 64 x 64 tokens: iterations slow enough that the run of 40 outlasts the visit to another page
    open_training(page, app_url, "?section=Language+model&group_size=64&max_new_tokens=64")
    page.wait_for_function("() => document.body.innerText.includes('accuracy')", timeout=120_000)
    run = page.get_by_role("button", name="Run 40")
    run.wait_for(timeout=30_000)
    page.wait_for_function("() => { const b = Array.from(document.querySelectorAll('button')).find(b => "
                           "b.innerText.includes('Run 40')); return b && !b.disabled }", timeout=240_000)
    run.click()
    # the charts fill in while it trains (generous timeouts: the test machine is shared and busy)
    page.wait_for_function(f"() => ({LM_POINTS_JS})() >= 1", timeout=240_000)
    first = page.evaluate(LM_POINTS_JS)
    page.wait_for_function(f"() => ({LM_POINTS_JS})() > {first}", timeout=240_000)
    # another page of the same session answers while the worker trains
    started = time.monotonic()
    page.get_by_role("link", name="Math reference").click()
    page.wait_for_function("() => location.pathname.endsWith('/math_reference')", timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('.katex').length > 3", timeout=30_000)
    math_seconds = time.monotonic() - started
    page.wait_for_timeout(1500)
    page.get_by_role("link", name="Training").click()
    page.get_by_text("Live run", exact=True).wait_for(timeout=30_000)
    page.wait_for_function(f"() => ({LM_POINTS_JS})() > {first}", timeout=240_000)  # it went on training
    page.get_by_role("button", name="Stop").click()
    page.wait_for_function("() => document.body.innerText.includes('Run 40') && Array.from("
                           "document.querySelectorAll('button')).some(b => b.innerText.includes('Run 40') && "
                           "!b.disabled)", timeout=240_000)
    stopped = page.evaluate(LM_POINTS_JS)
    page.wait_for_timeout(2500)
    assert page.evaluate(LM_POINTS_JS) == stopped < 40  # stopped means stopped
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "training_lm_background.png"), full_page=True)
    assert math_seconds < 30, math_seconds
