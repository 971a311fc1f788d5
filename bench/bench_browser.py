"""Real Chromium against `streamlit run`: grpo-viz beside a bare one-button-one-chart app, in the same run.

    python bench/bench_browser.py [--clicks 31]

(b) Next click until every chart on the page has new data, median of --clicks clicks, app and bare clicks
alternating so that both see the same machine load;
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
CHARTS_JS = "() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => JSON.stringify(d.data)).join('|')"


def one_click_ms(page, button: str = "Next") -> float:
    """Click ``button`` and wait until every chart on the page holds new data and is drawn."""
    page.wait_for_function(DRAWN_JS)
    before = page.evaluate(CHARTS_JS)
    t0 = time.perf_counter()
    page.get_by_role("button", name=button).first.click()
    page.wait_for_function(f"() => ({CHARTS_JS})() !== {before!r} && ({DRAWN_JS})()", timeout=30_000)
    return (time.perf_counter() - t0) * 1000


def stay_before_last_stage(page, k: int) -> None:
    """Stages 1..8 have a Next button: after 7 clicks go back to stage 1 (not timed)."""
    if k and k % 7 == 0:
        page.get_by_text("1. Sample group", exact=True).first.click()
        page.wait_for_timeout(500)


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
    parser.add_argument("--query", default="stage=1", help="URL parameters for the app's page, e.g. present=1")
    args = parser.parse_args()
    results = {}
    with bare_and_app() as (browser, bare_url, app_url):
        pages = {}
        for name, url in (("bare", bare_url), ("app", app_url)):
            cold_ms(browser, url, runs=1)  # warm the server's imports and caches
            results[f"{name}_cold"] = cold_ms(browser, url)
            pages[name] = browser.new_page(viewport={"width": 1440, "height": 900})
            pages[name].goto(url + (f"/step_through?{args.query}" if name == "app" else ""))
            pages[name].wait_for_function(DRAWN_JS, timeout=60_000)
        results["app_click"], results["bare_click"] = interleaved_click_ms(pages["app"], pages["bare"], args.clicks)
    for what in ("click", "cold"):
        app, bare = results[f"app_{what}"], results[f"bare_{what}"]
        print(f"browser_{what} app_ms={app:.0f} bare_ms={bare:.0f} ratio={app / bare:.2f}")


if __name__ == "__main__":
    main()
