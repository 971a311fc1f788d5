"""AppTest: one Next click on a grpo-viz page against a rerun of a bare one-button app, same process, same run.

    python bench/bench_apptest.py [--runs 20] [--page app.py]

Prints one line per page and, last, `apptest_next median_ms=<x> bare_ms=<y> ratio=<x/y>`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
BARE = 'import streamlit as st\nst.button("Next", key="next")\n'


def median_click_ms(at: AppTest, runs: int, click) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        click(at)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def step_page(runs: int) -> float:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()

    def click(at):
        if at.session_state["stage"] >= 6:  # stay on stages 1-7 so every click is a plain "Next"
            at.session_state["stage"] = at.session_state["stage_picker"] = 0
        at.button(key="stage_next").click().run()

    return median_click_ms(at, runs, click)


def bare(runs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bare.py"
        path.write_text(BARE)
        at = AppTest.from_file(str(path)).run()
        return median_click_ms(at, runs, lambda at: at.button(key="next").click().run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    bare_ms = bare(args.runs)
    step_ms = step_page(args.runs)
    print(f"apptest_next page=step_through median_ms={step_ms:.1f} bare_ms={bare_ms:.1f} ratio={step_ms / bare_ms:.2f}")


if __name__ == "__main__":
    main()
