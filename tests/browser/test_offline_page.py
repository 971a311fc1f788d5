""""Download as a page" gives one HTML file that steps through every stage from disk with the network off."""

import pytest

from grpo_viz import lesson
from grpo_viz.lesson import SLIDES
from grpo_viz.stepper import STAGES

from .conftest import SCREENSHOTS, SETTLED_JS, every_stage_drawn_js
from .test_presenter_keys import drag

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

# what of the shown stage lies outside the window or is cut: wider than the page, or an equation that scrolls
FITS_JS = """() => {
  const s = Array.from(document.querySelectorAll('main > section')).find(s => !s.hidden);
  const bad = [];
  if (document.documentElement.scrollWidth > innerWidth) bad.push('page ' + document.documentElement.scrollWidth);
  s.querySelectorAll('.card, .charts, .js-plotly-plot, .katex-display').forEach(el => {
    const r = el.getBoundingClientRect();
    if (r.left < -0.5 || r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5) {
      bad.push(el.className + ' ' + r.bottom);
    }
  });
  s.querySelectorAll('[data-tex]').forEach(el => {
    const box = el.querySelector('.katex-display');
    if (Math.max(box.scrollWidth, el.scrollWidth) > el.clientWidth + 1) bad.push('wide ' + el.dataset.tex.slice(0, 20));
  });
  return bad;
}"""


def open_offline(browser, saved):
    """The saved file opened from disk in a context with the network off and every http(s) request aborted (and
    recorded), its page errors recorded too."""
    offline = browser.new_context(viewport={"width": 1280, "height": 720})
    offline.set_offline(True)
    asked: list[str] = []
    offline.route("http*://**", lambda route: (asked.append(route.request.url), route.abort()))
    page = offline.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(saved.as_uri())
    return offline, page, asked, errors


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

    offline, page, asked, errors = open_offline(browser, saved)
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


def test_the_lesson_as_one_page_steps_offline_at_the_slides_values(browser, app_url, tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    clip = next(k for k, s in enumerate(SLIDES) if s.key == "clip")
    page.goto(f"{app_url}/?slide={clip + 1}")
    page.wait_for_function(every_stage_drawn_js("slide", len(SLIDES)), timeout=90_000)
    page.wait_for_function(SETTLED_JS, timeout=60_000)
    drag(page, page.get_by_role("slider", name="Clip ε"), 2000)  # to its highest, ε = 0.6
    page.wait_for_function(f"() => document.querySelector('.st-key-lesson_chart_{clip}').textContent"
                           ".includes('ε = 0.6')", timeout=30_000)
    page.wait_for_function(SETTLED_JS, timeout=60_000)
    button = page.get_by_role("button", name="Download as a page")
    button.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "lesson_download_1280x720.png"))
    with page.expect_download(timeout=90_000) as download:
        button.click()
    saved = tmp_path / "grpo_lesson.html"
    download.value.save_as(saved)
    context.close()

    offline, page, asked, errors = open_offline(browser, saved)
    assert "Clip: ε = 0.6" in page.inner_text("footer")
    for k, slide in enumerate(SLIDES):
        title = f"{k + 1}. {slide.heading}"
        page.wait_for_function(f"() => ({SHOWN_JS})()?.title === {title!r}", timeout=20_000)
        page.wait_for_function(f"() => ({SHOWN_JS})().charts > 0", timeout=20_000)
        shown = page.evaluate(SHOWN_JS)
        assert shown["charts"] == 1 and shown["traces"] > 0, shown
        # the objective and every line of the card, each its own display
        assert shown["katex"] == len(lesson.build(slide).equations) and shown["errors"] == 0, shown
        assert len(shown["text"]) > 40 and shown["hash"] == f"#{k + 1}", shown
        assert page.evaluate(FITS_JS) == [], k
        page.screenshot(path=str(SCREENSHOTS / f"lesson_file_1280x720_slide{k + 1}.png"))
        if k == clip:  # the slide at the value the app showed
            assert "ε = 0.6" in page.inner_text(f"#stage-{k + 1} .chart")
        page.keyboard.press("ArrowRight" if k % 2 else "PageDown")
    page.keyboard.press("PageUp")
    last_but_one = f"{len(SLIDES) - 1}. {SLIDES[-2].heading}"
    page.wait_for_function(f"() => ({SHOWN_JS})().title === {last_but_one!r}")
    page.reload()  # the slide is in the URL
    page.wait_for_function(f"() => ({SHOWN_JS})()?.title === {last_but_one!r}")
    page.get_by_role("tab", name=f"{clip + 1}. {SLIDES[clip].title}").click()  # the slide bar
    page.wait_for_function(f"() => ({SHOWN_JS})()?.hash === '#{clip + 1}'")
    assert not asked and not errors, (asked, errors)
    offline.close()
