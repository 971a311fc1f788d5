"""Issue 6 in real Chromium: a shared link reproduces the numbers, autoplay advances, phone and projector sizes."""

import pytest

from .conftest import DRAWN_JS, SCREENSHOTS, SETTLED_JS, every_stage_drawn_js

pytestmark = pytest.mark.browser

CHART_DATA_JS = "() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => JSON.stringify(d.data))"
LATEX_JS = "() => Array.from(document.querySelectorAll('.katex-mathml annotation')).map(a => a.textContent).join('|')"


def open_and_read(browser, url, viewport=(1440, 900), every_stage=False):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(every_stage_drawn_js() if every_stage else DRAWN_JS, timeout=60_000)
    page.wait_for_function(SETTLED_JS, timeout=60_000)
    page.wait_for_timeout(500)
    return context, page, page.evaluate(CHART_DATA_JS), page.evaluate(LATEX_JS)


def test_a_shared_link_shows_the_same_numbers_in_a_fresh_browser(browser, app_url):
    link = app_url + "/step_through?seed=4&mu=3&beta=0.1&group_size=12&iteration=3&stage=5"
    first, page, charts, latex = open_and_read(browser, link, every_stage=True)
    assert "Iteration 3," in page.content()
    first.close()
    second, _, charts_again, latex_again = open_and_read(browser, link, every_stage=True)
    second.close()
    assert charts_again == charts and latex_again == latex


def test_autoplay_steps_forward_by_itself(browser, app_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context, page, _, _ = open_and_read(browser, app_url + "/step_through?present=1", viewport=(1280, 720))
    page.screenshot(path=str(SCREENSHOTS / "presentation_1280x720.png"))
    page.get_by_role("switch", name="Autoplay").click(force=True)
    page.locator("h4", has_text="3. Advantages").wait_for(timeout=30_000)  # two stages on, untouched
    context.close()


def test_usable_on_a_phone(browser, app_url):
    context, page, charts, _ = open_and_read(browser, app_url + "/step_through?stage=2", viewport=(390, 844))
    page.get_by_role("button", name="Next").first.click()
    page.locator("h4", has_text="3. Advantages").wait_for(timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "phone_390x844.png"), full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 400  # no sideways scrolling of the page
    context.close()


def test_impatient_key_presses_on_the_language_model_page(page, app_url):
    """N pressed 15 times faster than an iteration computes, three times over: the session's policy is stepped
    and read by one request at a time (before, the page showed autograd's "modified by an inplace operation")."""
    page.goto(app_url + "/language_model")
    page.get_by_role("button", name="🎲 New group").wait_for(timeout=60_000)
    page.wait_for_function(SETTLED_JS, timeout=60_000)
    for _ in range(3):
        for _ in range(15):
            page.keyboard.press("n")
            page.wait_for_timeout(15)
        page.wait_for_timeout(1000)
        page.wait_for_function(SETTLED_JS, timeout=60_000)
        exceptions = page.locator("[data-testid=stException]")
        assert exceptions.count() == 0, exceptions.first.inner_text()
    page.get_by_role("button", name="Next ▶").click()
    page.wait_for_function("() => location.search.includes('stage=2')", timeout=30_000)  # still answers


OVERFLOWING_JS = """() => Array.from(document.querySelectorAll('.katex-display'))
    .filter(e => e.scrollWidth > e.clientWidth + 2)
    .map(e => (e.querySelector('annotation') || {}).textContent.slice(0, 80))"""


@pytest.mark.parametrize("path", ["/step_through", "/ppo_vs_grpo", "/language_model"])
def test_every_equation_fits_a_1280_px_projector_with_the_sidebar_open(browser, app_url, path):
    """The objective and every stage card's lines, at all 8 stages, are no wider than their box (none scrolls)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(app_url + path + "?mu=3")
    for k in range(1, 9):
        page.wait_for_function(f"() => location.search.includes('stage={k}')", timeout=30_000)
        page.wait_for_function("() => document.querySelectorAll('.katex-display').length > 1", timeout=30_000)
        page.wait_for_function(SETTLED_JS, timeout=30_000)
        page.wait_for_timeout(300)  # KaTeX and the container queries settle
        assert page.evaluate(OVERFLOWING_JS) == [], f"stage {k}"
        if k < 8:
            page.get_by_role("button", name="Next ▶").first.click()
    context.close()


def test_the_math_reference_fits_a_1024_px_screen_with_the_sidebar_open(browser, app_url):
    """Every equation of the math reference (its PPO loss was cut off at 1280 px) fits its box."""
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    page.goto(app_url + "/math_reference")
    page.wait_for_function("() => document.querySelectorAll('.katex-display').length >= 5", timeout=60_000)
    page.wait_for_function(SETTLED_JS, timeout=30_000)
    page.wait_for_timeout(300)
    assert page.evaluate(OVERFLOWING_JS) == []
    context.close()


EXPANDER_OPEN_JS = """(label) => {
    const box = Array.from(document.querySelectorAll('[data-testid="stExpander"] details'))
        .find(d => d.querySelector('summary').textContent.includes(label));
    return box ? box.open : null;
}"""


def set_expander(page, label: str, open_: bool, attempts: int = 3) -> None:
    """Open or close the expander ``label`` and wait until the page has settled with it so: a state, not a time.

    Under load a click that lands while an earlier run is still drawing did not take once (the box still open 30 s
    later): each click waits for the page to settle first, and is repeated if the page settles in the wrong state."""
    for _ in range(attempts):
        page.wait_for_function(SETTLED_JS, timeout=60_000)
        if page.evaluate(EXPANDER_OPEN_JS, label) is open_:
            return
        page.locator('[data-testid="stExpander"] summary', has_text=label).click()
        page.wait_for_function(f"(label) => ({EXPANDER_OPEN_JS})(label) === {str(open_).lower()}", arg=label,
                               timeout=60_000)
        # the rerun the click asked for builds (or drops) the box's widgets: wait until it has ended
        page.wait_for_function(SETTLED_JS, timeout=60_000)
        if page.evaluate(EXPANDER_OPEN_JS, label) is open_:
            return
    raise AssertionError(f"the expander {label!r} did not stay {'open' if open_ else 'closed'} after {attempts} clicks")


def test_hidden_settings_stay_in_the_link(browser, app_url):
    """The PPO options are drawn only while their box is open; closed, their values still apply and stay in the URL,
    so a reload (or a link) shows the same screen."""
    context, page, _, _ = open_and_read(browser, app_url + "/ppo_vs_grpo?stage=6")
    label = "PPO options (critic, GAE, epochs)"
    set_expander(page, label, True)
    epochs = page.get_by_role("slider", name="PPO epochs per batch")
    epochs.focus()
    page.keyboard.press("ArrowLeft")  # 4 -> 3
    page.wait_for_function("() => location.search.includes('ppo_epochs=3')", timeout=30_000)
    set_expander(page, label, False)
    epochs.wait_for(state="detached", timeout=60_000)  # drawn only while the box is open
    page.get_by_role("button", name="🎲 New group").click()
    page.wait_for_function(SETTLED_JS, timeout=30_000)
    assert "ppo_epochs=3" in page.url
    page.reload()
    page.get_by_text("PPO takes 3 epochs").wait_for(timeout=60_000)
    context.close()
