"""A lecture hall's server: no full collection after every click (one every 30 s instead); one run at a time per session."""

import asyncio
import gc
import threading
import time
import tomllib
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
        assert {info.session.id for info in storage.list()} == {"s0", "s1", "s2"}
        time.sleep(0.3)
        assert ui.forget_timed_out_sessions(runtime) == 3
        assert all(s.closed for s in sessions) and not storage._cache._data
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    assert ui.forget_timed_out_sessions() == 0  # no Streamlit server in this process: nothing to do
