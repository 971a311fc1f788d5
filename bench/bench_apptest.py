"""AppTest: one Next click on a grpo-viz page against a rerun of a bare one-button app, same process, same run.

    python bench/bench_apptest.py [--runs 20] [--page app.py]

Prints one line per page with a stage cursor: `apptest_next page=<p> median_ms=<x> bare_ms=<y> ratio=<x/y>`.
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


def median_click_ms(at: AppTest, runs: int, click, prepare=None) -> float:
    times = []
    for _ in range(runs):
        if prepare is not None:
            prepare(at)  # not timed
        t0 = time.perf_counter()
        click(at)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


STEPPER_PAGES = {  # page: the session key of its stage cursor
    "app_pages/1_step_through.py": "stage",
    "app_pages/2_ppo_vs_grpo.py": "cmp_stage",
    "app_pages/4_language_model.py": "lm_stage",
}


def step_page(runs: int, page: str, key: str) -> float:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page(page)
    at.run()

    def back_to_start(at):
        if at.session_state[key] >= 6:  # stay on stages 1-7 so every click is a plain "Next"
            at.session_state[key] = at.session_state[f"{key}_picker"] = 0
            at.run()

    return median_click_ms(at, runs, lambda at: at.button(key=f"{key}_next").click().run(), back_to_start)


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
    for page, key in STEPPER_PAGES.items():
        step_ms = step_page(args.runs, page, key)
        name = Path(page).stem
        print(f"apptest_next page={name} median_ms={step_ms:.1f} bare_ms={bare_ms:.1f} ratio={step_ms / bare_ms:.2f}")


if __name__ == "__main__":
    main()
