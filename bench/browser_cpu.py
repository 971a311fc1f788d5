"""Chromium's own work for one click, page by page, against the bare one-button-one-chart app.

    python bench/browser_cpu.py [--clicks 12] [--profile]

For Step through GRPO's Next, Training's Step +1 and Toy vs language model's Next, and for the bare app's Next:
the median over --clicks clicks of what the page's renderer main thread did from the click until the page had
settled, from Chromium's performance counters (`Performance.getMetrics`): all its tasks, and of those script,
layout and style. --profile also samples the JavaScript of the app's clicks and prints where their time went, by
script file. This is the browser's share of a click in bench/load_test.py, where one Chromium draws every
student's page on the two cores the server also runs on.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from bench_browser import bare_and_app, one_click_ms, stay_before_last_stage  # noqa: E402
from conftest import DRAWN_JS, SETTLED_JS  # noqa: E402

COUNTERS = {"TaskDuration": "main_thread_ms", "ScriptDuration": "script_ms", "LayoutDuration": "layout_ms",
            "RecalcStyleDuration": "style_ms"}
CLICKS = {  # what is clicked: (page path, button, whether the page has stages to stay within)
    "step_through_next": ("step_through", "Next", True),
    "training_step": ("training", "Step +1", False),
    "language_model_next": ("language_model", "Next", True),
}


def counters(cdp) -> dict[str, float]:
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {name: metrics[name] * 1000 for name in COUNTERS}


def time_by_script(profile: dict) -> collections.Counter:
    """Self time (ms) of a JavaScript CPU profile by script file; native work keeps its own name."""
    nodes = {node["id"]: node["callFrame"] for node in profile["nodes"]}
    totals: collections.Counter = collections.Counter()
    for sample, delta_us in zip(profile["samples"], profile["timeDeltas"]):
        frame = nodes[sample]
        totals[frame["url"].rsplit("/", 1)[-1] or frame["functionName"] or "(anonymous)"] += delta_us / 1000
    return totals


def measure(browser, url: str, button: str, staged: bool, clicks: int, profile: bool) -> dict[str, float]:
    """Medians over ``clicks`` clicks of ``button`` of Chromium's counters (ms), and the JS profile when asked."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(DRAWN_JS, timeout=60_000)
    page.wait_for_function(SETTLED_JS, timeout=60_000)
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    for _ in range(2):  # the first clicks of a page warm its code paths
        one_click_ms(page, button)
        page.wait_for_function(SETTLED_JS)
    if profile:
        cdp.send("Profiler.enable")
        cdp.send("Profiler.start")
    samples = []
    for k in range(1, clicks + 1):
        if staged:
            stay_before_last_stage(page, k)
        page.wait_for_function(SETTLED_JS)
        page.wait_for_timeout(300)
        before = counters(cdp)
        one_click_ms(page, button)
        page.wait_for_function(SETTLED_JS)
        page.wait_for_timeout(700)  # paint and the charts' last layout happen after their data is in
        after = counters(cdp)
        samples.append({name: after[name] - before[name] for name in COUNTERS})
    result = {label: statistics.median(s[name] for s in samples) for name, label in COUNTERS.items()}
    if profile:
        by_script = time_by_script(cdp.send("Profiler.stop")["profile"])
        busy = {name: ms for name, ms in by_script.items() if name != "(idle)"}
        print(f"  where {url} clicks went (self time per click, JS profile):")
        for name, ms in sorted(busy.items(), key=lambda item: -item[1])[:12]:
            print(f"    {ms / clicks:7.1f} ms  {name}")
    context.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clicks", type=int, default=12)
    parser.add_argument("--profile", action="store_true", help="also print the app clicks' JavaScript by file")
    args = parser.parse_args()
    with bare_and_app() as (browser, bare_url, app_url):
        bare = measure(browser, bare_url, "Next", False, args.clicks, False)
        for what, (path, button, staged) in CLICKS.items():
            app = measure(browser, f"{app_url}/{path}", button, staged, args.clicks, args.profile)
            figures = " ".join(f"{label}={app[label]:.0f}" for label in COUNTERS.values())
            print(f"browser_cpu click={what} {figures} bare_main_thread_ms={bare['main_thread_ms']:.0f} "
                  f"ratio={app['main_thread_ms'] / bare['main_thread_ms']:.2f}")


if __name__ == "__main__":
    main()
