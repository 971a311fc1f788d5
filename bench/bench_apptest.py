"""AppTest: one Next click on a grpo-viz page against a rerun of a bare one-button app, same process, same run,
the two alternating.

    python bench/bench_apptest.py [--runs 20]

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


STEPPER_PAGES = {  # page: the session key of its stage cursor
    "app_pages/1_step_through.py": "stage",
    "app_pages/2_ppo_vs_grpo.py": "cmp_stage",
    "app_pages/4_language_model.py": "lm_stage",
}


def timed_ms(action) -> float:
    t0 = time.perf_counter()
    action()
    return (time.perf_counter() - t0) * 1000


def page_against_bare(runs: int, page: str, key: str, bare_path: Path) -> tuple[float, float]:
    """Medians of Next clicks on ``page`` and on the bare app, alternating so that both see the same load."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page(page)
    at.run()
    bare = AppTest.from_file(str(bare_path)).run()
    page_times, bare_times = [], []
    for _ in range(runs):
        if at.session_state[key] >= 6:  # stay on stages 1-7 so every click is a plain "Next" (not timed)
            at.session_state[key] = at.session_state[f"{key}_picker"] = 0
            at.run()
        bare_times.append(timed_ms(lambda: bare.button(key="next").click().run()))
        page_times.append(timed_ms(lambda: at.button(key=f"{key}_next").click().run()))
    return statistics.median(page_times), statistics.median(bare_times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare_path = Path(tmp) / "bare.py"
        bare_path.write_text(BARE)
        for page, key in STEPPER_PAGES.items():
            step_ms, bare_ms = page_against_bare(args.runs, page, key, bare_path)
            print(f"apptest_next page={Path(page).stem} median_ms={step_ms:.1f} bare_ms={bare_ms:.1f} "
                  f"ratio={step_ms / bare_ms:.2f}")


if __name__ == "__main__":
    main()
