"""Real Chromium against `streamlit run`: grpo-viz beside a bare one-button-one-chart app, in the same run.

    python bench/bench_browser.py [--clicks 31] [--pages step_through ppo_vs_grpo language_model lesson]

(b) on each stepping page, a Next click until the visible charts hold the next stage's data and are drawn at their
shown size, median of --clicks clicks, app and bare clicks alternating so that both see the same machine load;
(c) cold start: a fresh browser context opening the page until its first chart is drawn, median of 5.
Each prints a line `browser_<what> app_ms=<x> bare_ms=<y> ratio=<x/y>`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from conftest import CHROMIUM, CHROMIUM_ARGS, DRAWN_JS, start_streamlit  # noqa: E402

BARE = '''import plotly.graph_objects as go
import streamlit as st

st.session_state.setdefault("n", 0)
if st.button("Next"):
    st.session_state.n += 1
st.plotly_chart(go.Figure(go.Bar(x=["a", "b", "c"], y=[st.session_state.n, 1, 2])))
'''
# the charts a user sees (a hidden tab's are on the page too), and whether each is drawn at the size it is shown
SHOWN_PLOTS = ("Array.from(document.querySelectorAll('.js-plotly-plot'))"
               ".filter(d => d.checkVisibility({visibilityProperty: true}))")
CHARTS_JS = f"() => {SHOWN_PLOTS}.map(d => JSON.stringify(d.data)).join('|')"
SHOWN_JS = (f"() => {SHOWN_PLOTS}.every(d => d.querySelector('.main-svg') && d._fullLayout"
            " && Math.abs(d._fullLayout.width - d.getBoundingClientRect().width) < 3)")
# each stepping page and its URL, from stage (or slide) 1
PAGES = {"step_through": "/step_through?stage=1", "ppo_vs_grpo": "/ppo_vs_grpo?stage=1",
         "language_model": "/language_model?stage=1", "lesson": "/?slide=1"}


def one_click_ms(page, button: str = "Next") -> float:
    """Click ``button`` and wait until every chart shown holds new data and is drawn at its shown size."""
    page.wait_for_function(DRAWN_JS)
    before = page.evaluate(CHARTS_JS)
    # found before the clock starts: Playwright's search by role walks the whole page (every stage of a group is
    # on it), which is the test driver's time, not the user's
    target = page.get_by_role("button", name=button).first.element_handle()
    t0 = time.perf_counter()
    target.click()
    page.wait_for_function(f"() => ({CHARTS_JS})() !== {before!r} && ({DRAWN_JS})() && ({SHOWN_JS})()",
                           timeout=30_000)
    return (time.perf_counter() - t0) * 1000


def stay_before_last_stage(page, k: int) -> None:
    """Stages 1..8 have a Next button: after 7 clicks go back to stage 1 (not timed), by the stage bar (tabs, or
    the segmented control of a page that asks the server)."""
    if k and k % 7 == 0:
        tabs = page.locator("[role=tab]")
        (tabs if tabs.count() else page.locator('[data-testid="stButtonGroup"] button')).first.click()
        page.wait_for_timeout(1000)


def interleaved_click_ms(app_page, bare_page, clicks: int) -> tuple[float, float]:
    """Medians of Next clicks on the app and on the bare app, alternating: both see the same machine load."""
    app_times, bare_times = [], []
    for k in range(clicks):
        stay_before_last_stage(app_page, k)
        bare_times.append(one_click_ms(bare_page))
        app_times.append(one_click_ms(app_page))
    return statistics.median(app_times), statistics.median(bare_times)


def cold_ms(browser, url: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function(DRAWN_JS, timeout=60_000)
        times.append((time.perf_counter() - t0) * 1000)
        context.close()
    return statistics.median(times)


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
    parser.add_argument("--clicks", type=int, default=31)
    parser.add_argument("--pages", nargs="+", default=list(PAGES), choices=list(PAGES))
    parser.add_argument("--query", default="", help="more URL parameters for the app's pages, e.g. present=1")
    args = parser.parse_args()
    lines = []
    with bare_and_app() as (browser, bare_url, app_url):
        bare = browser.new_page(viewport={"width": 1440, "height": 900})
        bare.goto(bare_url)
        bare.wait_for_function(DRAWN_JS, timeout=60_000)
        cold_ms(browser, app_url, runs=1)  # warm the server's imports and caches
        for name in args.pages:
            url = app_url + PAGES[name] + (f"&{args.query}" if args.query else "")
            cold_ms(browser, url, runs=1)  # this page's own imports and caches
            app_cold, bare_cold = cold_ms(browser, url), cold_ms(browser, bare_url)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url)
            page.wait_for_function(DRAWN_JS, timeout=60_000)
            page.wait_for_timeout(1000)
            app_click, bare_click = interleaved_click_ms(page, bare, args.clicks)
            page.close()
            for what, app, base in (("click", app_click, bare_click), ("cold", app_cold, bare_cold)):
                lines.append(f"browser_{what} page={name} app_ms={app:.0f} bare_ms={base:.0f} ratio={app / base:.2f}")
                print(lines[-1], flush=True)


if __name__ == "__main__":
    main()
