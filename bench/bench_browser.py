"""Real Chromium against `streamlit run`: grpo-viz beside a bare one-button-one-chart app, in the same run.

    python bench/bench_browser.py [--clicks 31] [--cold-runs 5] [--input mouse|key|dispatch]
                                  [--pages step_through ppo_vs_grpo language_model lesson]

(b) on each stepping page, a Next click until the charts shown hold the next stage's data and are drawn at their
shown size, median of --clicks clicks, app and bare clicks alternating so that both see the same machine load;
(c) cold start: a fresh browser context opening the page until its first chart is drawn, median of 5, app
and bare alternating; each page's later runs end before the next start (not timed).
Each prints a line `browser_<what> page=<page> app_ms=<x> bare_ms=<y> ratio=<x/y>`.

What a click's time is (the same for both apps): what a user waits for, timed inside the page. A listener that the
page's own scripts cannot come before (added by ``add_init_script``, on the window, capture phase) takes the input
event's ``timeStamp`` as the start; a ``requestAnimationFrame`` loop checks, every frame from then on, the charts
that are visible (``checkVisibility``), and the first frame in which they hold other data than before the input,
each drawn (``.main-svg``) at the width it is shown at, is the end: ``performance.now()`` in that frame's callback,
the frame that paints it. The input is real and comes in without Playwright's actionability checks (which wait on
frames of the page and walk it, and are the test driver's time, not the user's):
``--input mouse`` (default) a mouse click (``page.mouse.click``: pressed and released) at the middle of the Next
button, found before the clock starts, timed from its ``click`` event; ``--input key`` PageDown, what a lecturer's
clicker sends (the bare app's Next has ``shortcut="PageDown"``), timed from its ``keydown``; ``--input dispatch``
``element.click()`` called in the page. For the bare app the time holds the round trip, its script run and Plotly's
redraw; for a page that steps in the browser, the style change and the frame.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from conftest import CHROMIUM, CHROMIUM_ARGS, DRAWN_JS, SETTLED_JS, start_streamlit  # noqa: E402

BARE = '''import plotly.graph_objects as go
import streamlit as st

st.session_state.setdefault("n", 0)
if st.button("Next", shortcut="PageDown"):
    st.session_state.n += 1
st.plotly_chart(go.Figure(go.Bar(x=["a", "b", "c"], y=[st.session_state.n, 1, 2])))
'''
# the charts a user sees (a hidden tab's are on the page too), and whether each is drawn at the size it is shown
SHOWN_PLOTS = ("Array.from(document.querySelectorAll('.js-plotly-plot'))"
               ".filter(d => d.checkVisibility({visibilityProperty: true}))")
CHARTS_JS = f"() => {SHOWN_PLOTS}.map(d => JSON.stringify(d.data)).join('|')"
SHOWN_JS = (f"() => {SHOWN_PLOTS}.every(d => d.querySelector('.main-svg') && d._fullLayout"
            " && Math.abs(d._fullLayout.width - d.getBoundingClientRect().width) < 3)")
# the input event's time, taken by a listener the page's own cannot come before (it stops a stepped page's Next)
INPUT_CLOCK_JS = """
window.__benchInput = {armed: null, at: null};
for (const type of ['click', 'keydown']) {
  window.addEventListener(type, (e) => {
    const clock = window.__benchInput;
    if (clock.armed === type) { clock.at = e.timeStamp; clock.armed = null; }
  }, true);
}
"""
# armed for one input: resolves with the ms from its event to the first frame whose shown charts hold new data,
# each drawn at its shown size
WATCH_JS = f"""(type) => {{
  const shown = () => {SHOWN_PLOTS};
  const charts = (plots) => plots.map(d => JSON.stringify(d.data)).join('|');
  const before = charts(shown());
  const clock = window.__benchInput;
  clock.armed = type;
  clock.at = null;
  window.__benchDone = new Promise((resolve, reject) => {{
    const deadline = performance.now() + 30000;
    const frame = () => {{
      const now = performance.now();
      if (clock.at !== null) {{
        const plots = shown();
        if (plots.length && charts(plots) !== before && plots.every(d => d.querySelector('.main-svg')
            && d._fullLayout && Math.abs(d._fullLayout.width - d.getBoundingClientRect().width) < 3)) {{
          resolve(now - clock.at);
          return;
        }}
      }}
      if (now > deadline) {{ reject(new Error('no new chart within 30 s of the input')); return; }}
      requestAnimationFrame(frame);
    }};
    requestAnimationFrame(frame);
  }});
}}"""
# the Next button a user sees ("Next" or "Next ▶", not "Next iteration ▶"; a shortcut's hint is on its own line)
NEXT_BUTTON_JS = ("() => Array.from(document.querySelectorAll('button')).find(b =>"
                  " /^Next( ▶)?$/.test(b.innerText.trim().split('\\n')[0].trim())"
                  " && b.checkVisibility({visibilityProperty: true}))")
# each stepping page and its URL, from stage (or slide) 1
PAGES = {"step_through": "/step_through?stage=1", "ppo_vs_grpo": "/ppo_vs_grpo?stage=1",
         "language_model": "/language_model?stage=1", "lesson": "/?slide=1"}


def one_click_ms(page, button: str = "Next") -> float:
    """Playwright's click on ``button`` until every chart shown holds new data and is drawn at its shown size, timed
    from outside the page (bench/browser_cpu.py counts Chromium's work around it)."""
    page.wait_for_function(DRAWN_JS)
    before = page.evaluate(CHARTS_JS)
    target = page.get_by_role("button", name=button).first.element_handle()
    t0 = time.perf_counter()
    target.click()
    page.wait_for_function(f"() => ({CHARTS_JS})() !== {before!r} && ({DRAWN_JS})() && ({SHOWN_JS})()",
                           timeout=30_000)
    return (time.perf_counter() - t0) * 1000


def user_wait_ms(page, how: str = "mouse") -> float:
    """One Next, by ``how`` (mouse, key or dispatch), timed in the page from the input event to the frame that shows
    the next data (the module's docstring)."""
    page.wait_for_function(DRAWN_JS)
    page.wait_for_function(f"() => !!({NEXT_BUTTON_JS})()")
    box = page.evaluate(f"() => {{ const r = ({NEXT_BUTTON_JS})().getBoundingClientRect();"
                        " return [r.x + r.width / 2, r.y + r.height / 2]; }")
    page.evaluate(WATCH_JS, "keydown" if how == "key" else "click")
    if how == "mouse":
        page.mouse.click(*box)
    elif how == "key":
        page.keyboard.press("PageDown")
    else:
        page.evaluate(f"() => ({NEXT_BUTTON_JS})().click()")
    return page.evaluate("() => window.__benchDone")


def stay_before_last_stage(page, k: int) -> None:
    """Stages 1..8 have a Next button: after 7 clicks go back to stage 1 (not timed), by the stage bar (tabs, or
    the segmented control of a page that asks the server)."""
    if k and k % 7 == 0:
        tabs = page.locator("[role=tab]")
        (tabs if tabs.count() else page.locator('[data-testid="stButtonGroup"] button')).first.click()
        page.wait_for_timeout(1000)


def interleaved_click_ms(app_page, bare_page, clicks: int, how: str = "mouse") -> tuple[float, float]:
    """Medians of Next clicks on the app and on the bare app, alternating: both see the same machine load."""
    app_times, bare_times = [], []
    for k in range(clicks):
        stay_before_last_stage(app_page, k)
        bare_times.append(user_wait_ms(bare_page, how))
        app_times.append(user_wait_ms(app_page, how))
    return statistics.median(app_times), statistics.median(bare_times)


def cold_ms(browser, url: str, runs: int = 5) -> float:
    """Median of ``runs`` fresh browser contexts opening ``url`` until its first chart is drawn."""
    return statistics.median(cold_once_ms(browser, url) for _ in range(runs))


def cold_once_ms(browser, url: str) -> float:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function(DRAWN_JS, timeout=60_000)
    elapsed = (time.perf_counter() - t0) * 1000
    # not timed: the page's runs after its first chart (a stepped page then draws its other stages) end before the
    # next start, which would otherwise share the server's cores with them
    page.wait_for_timeout(1000)
    page.wait_for_function(SETTLED_JS, timeout=60_000)
    context.close()
    return elapsed


def interleaved_cold_ms(browser, app_url: str, bare_url: str, runs: int = 5) -> tuple[float, float]:
    """Medians of cold starts of the app and of the bare app, alternating."""
    app_times, bare_times = [], []
    for _ in range(runs):
        app_times.append(cold_once_ms(browser, app_url))
        bare_times.append(cold_once_ms(browser, bare_url))
    return statistics.median(app_times), statistics.median(bare_times)


@contextmanager
def bare_and_app() -> Iterator[tuple[object, str, str]]:
    """Chromium, and `streamlit run` of the bare app and of grpo-viz side by side: (browser, bare URL, app URL)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bare.py").write_text(BARE)
        bare_proc, bare_url = start_streamlit(str(Path(tmp) / "bare.py"), cwd=Path(tmp))
        app_proc, app_url = start_streamlit()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                yield browser, bare_url, app_url
                browser.close()
        finally:
            for proc in (bare_proc, app_proc):
                proc.terminate()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clicks", type=int, default=31, help="Next clicks a page (0: cold starts only)")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold starts a page, each app and bare")
    parser.add_argument("--pages", nargs="+", default=list(PAGES), choices=list(PAGES))
    parser.add_argument("--input", default="mouse", choices=("mouse", "key", "dispatch"),
                        help="how Next is pressed (the module's docstring)")
    parser.add_argument("--query", default="", help="more URL parameters for the app's pages, e.g. present=1")
    args = parser.parse_args()
    lines = []
    with bare_and_app() as (browser, bare_url, app_url):
        bare = browser.new_page(viewport={"width": 1440, "height": 900})
        bare.add_init_script(INPUT_CLOCK_JS)
        bare.goto(bare_url)
        bare.wait_for_function(DRAWN_JS, timeout=60_000)
        cold_ms(browser, app_url, runs=1)  # warm the server's imports and caches
        for name in args.pages:
            url = app_url + PAGES[name] + (f"&{args.query}" if args.query else "")
            cold_ms(browser, url, runs=1)  # this page's own imports and caches
            app_cold, bare_cold = interleaved_cold_ms(browser, url, bare_url, args.cold_runs)
            results = [("cold", app_cold, bare_cold)]
            if not args.clicks:  # cold starts only
                report(lines, name, results, args.input)
                continue
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.add_init_script(INPUT_CLOCK_JS)
            page.goto(url)
            page.wait_for_function(DRAWN_JS, timeout=60_000)
            page.wait_for_timeout(1000)
            app_click, bare_click = interleaved_click_ms(page, bare, args.clicks, args.input)
            page.close()
            report(lines, name, [("click", app_click, bare_click), *results], args.input)


def report(lines: list[str], name: str, results, how: str) -> None:
    """One line a measurement: ``browser_<what> page=<page> app_ms=<x> bare_ms=<y> ratio=<x/y>``, with the load."""
    load = os.getloadavg()[0]
    for what, app, base in results:
        via = f" input={how}" if what == "click" else ""
        lines.append(f"browser_{what} page={name}{via} app_ms={app:.0f} bare_ms={base:.0f}"
                     f" ratio={app / base:.2f} load={load:.1f}")
        print(lines[-1], flush=True)


if __name__ == "__main__":
    main()
