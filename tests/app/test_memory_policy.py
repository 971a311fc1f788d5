"""A lecture hall's server: no full collection after every click (one every 30 s instead); one run at a time per session."""

import asyncio
import gc
import threading
import time
import tomllib
import weakref
from pathlib import Path
from types import SimpleNamespace

from grpo_viz import ui

ROOT = Path(__file__).resolve().parents[2]


def runner_config() -> dict:
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["runner"]


def test_streamlit_does_not_collect_after_every_script_run():
    assert runner_config()["postScriptGC"] is False


def test_a_click_waits_for_the_running_script_rather_than_running_beside_it():
    """With fastReruns a click starts a second script thread while the first may still draw from the session's
    policy; the policy's lock keeps the numbers right (tests/unit/test_lm.py), this keeps the page consistent."""
    assert runner_config()["fastReruns"] is False


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


def test_closed_sessions_past_their_ttl_are_shut_down_without_waiting_for_another_disconnect():
    """Streamlit's own session storage, reaped on an event loop of its own thread, as the server's collector does."""
    from streamlit.runtime.memory_session_storage import MemorySessionStorage
    from streamlit.runtime.session_manager import SessionInfo

    class Session:
        def __init__(self, id):
            self.id, self.closed = id, False

        def shutdown(self):
            self.closed = True

    storage = MemorySessionStorage(ttl_seconds=0.2)
    sessions = [Session(f"s{i}") for i in range(3)]
    for session in sessions:
        storage.save(SessionInfo(client=None, session=session))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runtime = SimpleNamespace(_session_mgr=SimpleNamespace(_session_storage=storage, list_sessions=storage.list),
                              _get_async_objs=lambda: SimpleNamespace(eventloop=loop))
    try:
        assert ui.forget_timed_out_sessions(runtime) == 0  # still within their reconnection time
        assert ui.live_session_ids(runtime) == {"s0", "s1", "s2"}
        time.sleep(0.3)
        assert ui.forget_timed_out_sessions(runtime) == 3
        assert ui.live_session_ids(runtime) == set()
        assert all(s.closed for s in sessions) and not storage._cache._data
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    assert ui.forget_timed_out_sessions() == 0  # no Streamlit server in this process: nothing to do


class Cycle:
    """A session's state, as it mostly is: objects that point at each other, freed only by a full collection."""

    def __init__(self):
        self.me = self


def test_frozen_collections_skip_the_imports_yet_free_a_closed_sessions_state():
    live = {"lecturer", "student"}
    collector = ui.FreezingCollector(live_sessions=lambda: set(live))
    student_state = Cycle()
    freed = weakref.ref(student_state)
    try:
        collector.collect()  # the first collection freezes what exists: the imports, and both sessions' state
        assert gc.get_freeze_count() > 10_000 and collector.frozen_with == {"lecturer", "student"}
        later = Cycle()  # made after the freeze: an ordinary collection frees it
        later_freed = weakref.ref(later)
        del later
        collector.collect()
        assert later_freed() is None and gc.get_freeze_count() > 10_000

        del student_state
        collector.collect()
        assert freed() is not None  # frozen while its session lives on, as every session alive at the freeze

        live.discard("student")  # the student closed the tab: the next collection starts a clean freeze
        collector.collect()
        assert freed() is None and collector.frozen_with == {"lecturer"}
    finally:
        gc.unfreeze()


def test_outside_a_server_every_collection_is_a_plain_full_one():
    collector = ui.FreezingCollector(live_sessions=lambda: None)
    cycle = Cycle()
    freed = weakref.ref(cycle)
    del cycle
    collector.collect()
    assert freed() is None and gc.get_freeze_count() == 0
    assert ui.live_session_ids() is None  # no Streamlit server in this process
