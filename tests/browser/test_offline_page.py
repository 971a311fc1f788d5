""""Download as a page" gives one HTML file that steps through every stage from disk with the network off."""

import pytest

from grpo_viz.stepper import STAGES

from .conftest import SETTLED_JS, every_stage_drawn_js

pytestmark = pytest.mark.browser

SHOWN_JS = """() => {
  const s = Array.from(document.querySelectorAll('main > section')).filter(s => !s.hidden);
  if (s.length !== 1) return null;
  const charts = Array.from(s[0].querySelectorAll('.js-plotly-plot')).filter(d => d.querySelector('.main-svg'));
  return {title: s[0].querySelector('.card > h2').textContent, charts: charts.length,
          traces: charts.reduce((n, d) => n + d.data.length, 0), katex: s[0].querySelectorAll('.katex').length,
          errors: s[0].querySelectorAll('.katex-error').length, text: s[0].querySelector('.card > .text').textContent,
          hash: location.hash};
}"""


def test_the_iteration_as_one_page_steps_offline(browser, app_url, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(app_url + "/step_through?mu=2")
    page.wait_for_function(every_stage_drawn_js(), timeout=60_000)  # no rerun left to replace the download
    page.wait_for_function(SETTLED_JS, timeout=60_000)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download as a page").click()
    saved = tmp_path / "grpo_iteration.html"
    download.value.save_as(saved)
    context.close()

    offline = browser.new_context(viewport={"width": 1280, "height": 720})
    offline.set_offline(True)
    asked = []
    offline.route("http*://**", lambda route: (asked.append(route.request.url), route.abort()))
    page = offline.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(saved.as_uri())
    for k, name in enumerate(STAGES):
        page.wait_for_function(f"() => ({SHOWN_JS})()?.title === {f'{k + 1}. {name}'!r}", timeout=20_000)
        page.wait_for_function(f"() => ({SHOWN_JS})().charts > 0", timeout=20_000)
        shown = page.evaluate(SHOWN_JS)
        assert shown["katex"] > 0 and shown["errors"] == 0, shown
        assert len(shown["text"]) > 40 and shown["traces"] > 0, shown
        assert shown["hash"] == f"#{k + 1}"
        if name == "Update":
            assert shown["charts"] == 2  # μ = 2: the trajectory under the distribution
        page.keyboard.press("PageDown")
    page.keyboard.press("PageUp")
    page.wait_for_function(f"() => ({SHOWN_JS})().title === {f'{len(STAGES) - 1}. {STAGES[-2]}'!r}")
    page.reload()  # the stage is in the URL
    page.wait_for_function(f"() => ({SHOWN_JS})()?.title === {f'{len(STAGES) - 1}. {STAGES[-2]}'!r}")
    assert not asked and not errors, (asked, errors)
    offline.close()
