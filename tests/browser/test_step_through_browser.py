"""Real Chromium clicks through the landing page; a screenshot per stage lands in artifacts/screenshots/."""

import pytest

from grpo_viz.stepper import STAGES

from .conftest import DRAWN_JS, SCREENSHOTS, SETTLED_JS

pytestmark = pytest.mark.browser

# the charts shown: every stage of the group is on the page, the others hidden (ui.stage_tabs)
CHART_DATA_JS = ("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                 ".filter(d => d.checkVisibility({visibilityProperty: true})).map(d => JSON.stringify(d.data))")


def wait_for_stage(page, k):
    page.locator("h4", has_text=f"{k + 1}. {STAGES[k]}").wait_for(timeout=20_000)
    page.wait_for_function(DRAWN_JS, timeout=20_000)
    page.wait_for_function(SETTLED_JS, timeout=20_000)


def test_click_next_through_every_stage(page, app_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(app_url + "/step_through?mu=3")
    wait_for_stage(page, 0)
    seen = []
    for k in range(len(STAGES)):
        wait_for_stage(page, k)
        page.wait_for_timeout(300)  # let Plotly finish its transition before reading and photographing
        seen.append(page.evaluate(CHART_DATA_JS))
        page.screenshot(path=str(SCREENSHOTS / f"stage_{k + 1}.png"), full_page=True)
        assert "Traceback" not in page.content()
        if k < len(STAGES) - 1:
            page.get_by_role("button", name="Next").first.click()
            page.wait_for_function(f"() => ({CHART_DATA_JS})().join() !== {seen[-1]!r}.join()", timeout=20_000)
    assert all(seen[i] != seen[i + 1] for i in range(len(seen) - 1))
    assert f"stage={len(STAGES)}" in page.url

    page.keyboard.press("ArrowLeft")  # keyboard shortcut for Back
    wait_for_stage(page, len(STAGES) - 2)


def test_slider_moves_the_chart(page, app_url):
    page.goto(app_url + "/step_through?stage=8")
    wait_for_stage(page, 7)
    before = page.evaluate(CHART_DATA_JS)
    slider = page.get_by_role("slider", name="Learning rate η")
    slider.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => ({CHART_DATA_JS})().join() !== {before!r}.join()", timeout=20_000)
    assert "lr=" in page.url


def test_the_iteration_downloads_as_csv_after_stepping(page, app_url):
    """The CSV is made on click (ui.deferred) from the trace on screen, also after fragment-only reruns."""
    page.goto(app_url + "/step_through?mu=2")
    wait_for_stage(page, 0)
    page.get_by_role("button", name="Next").first.click()
    wait_for_stage(page, 1)
    with page.expect_download(timeout=20_000) as download:
        page.get_by_role("button", name="This iteration (CSV)").click()
    lines = open(download.value.path(), encoding="utf-8").read().splitlines()
    assert lines[0].startswith("inner_step,sample,completion")
    assert len(lines) == 1 + 2 * 8  # μ = 2 inner steps × G = 8 samples
