"""A lecture hall's server: no full collection after every click, one every 30 s instead."""

import gc
import threading
import tomllib
from pathlib import Path

from grpo_viz import ui

ROOT = Path(__file__).resolve().parents[2]


def test_streamlit_does_not_collect_after_every_script_run():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False


def test_one_background_collector_per_process():
    ui.start_garbage_collector()
    ui.start_garbage_collector()
    collectors = [t for t in threading.enumerate() if t.name == "grpo-viz-gc"]
    assert len(collectors) == 1 and collectors[0].daemon


def test_a_deferred_download_holds_its_source_weakly():
    class Run:
        history = [{"iteration": 1, "reward": 0.5}]

    run = Run()
    make = ui.deferred(lambda h: f"{len(h)} rows", run, "history")
    assert make() == "1 rows"
    del run
    gc.collect()
    assert make() == ""  # the session is gone: nothing kept alive, nothing to download


def test_the_collector_hands_freed_heap_back_to_the_system():
    release = ui._heap_release()
    assert release() in (0, 1, None)  # glibc's malloc_trim: 1 if it released memory; None where there is no glibc
