"""A lecture hall's server memory: one full garbage collection every 30 s in a background thread, closed sessions
past their reconnection time shut down first, freed heap handed back to the system after.

This is the one module that reaches into Streamlit's runtime (``Runtime``'s session manager, its session storage and
its event loop): Streamlit has no public way to drop the sessions whose reconnection time has passed. On a Streamlit
whose internals differ it logs a warning once and falls back to Streamlit's own reaping (at the next disconnect);
tests/unit/test_memory_streamlit_internals.py runs it inside a real server and fails loudly instead. What each piece
gains under load is measured in docs/PERFORMANCE.md, "what the speed machinery pays".
"""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

_COLLECTION_INTERVAL_S = 30.0
_warned = False
_collector_started = False
_collector_lock = threading.Lock()


def _heap_release() -> Callable[[], object]:
    """glibc's ``malloc_trim(0)`` where there is one (Linux); elsewhere nothing to do."""
    try:
        return functools.partial(ctypes.CDLL("libc.so.6").malloc_trim, 0)
    except (OSError, AttributeError):
        return lambda: None


def _on_runtime_loop(work: Callable[[object], object], runtime=None, timeout_s: float = 5.0) -> object | None:
    """``work(runtime)`` run on the Streamlit runtime's event loop (its session objects are not thread-safe), waited
    for; None outside a Streamlit server, when the server is stopping, or on a Streamlit whose internals differ."""
    try:
        from streamlit.runtime import Runtime

        if runtime is None:
            if not Runtime.exists():
                return None  # not in a server: a notebook, a test, AppTest
            runtime = Runtime.instance()
        loop = runtime._get_async_objs().eventloop
    except Exception as error:
        _internals_differ(error)
        return None
    done, result = threading.Event(), [None]

    def run() -> None:
        try:
            result[0] = work(runtime)
        except Exception as error:
            _internals_differ(error)
            result[0] = None
        finally:
            done.set()

    try:
        loop.call_soon_threadsafe(run)
    except RuntimeError:  # the server is stopping: its loop is closed
        return None
    done.wait(timeout_s)
    return result[0]


def _internals_differ(error: Exception) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning("grpo-viz cannot read this Streamlit's sessions (%s: %s): closed sessions are dropped at the "
                    "next disconnect", type(error).__name__, error)


def forget_timed_out_sessions(runtime=None, timeout_s: float = 5.0) -> int:
    """Shut down the closed sessions whose reconnection time (``server.disconnectedSessionTTL``) has passed.

    Streamlit keeps a closed session for that time in case the tab reconnects, but it reaps expired ones only when
    its session storage is next written, i.e. when another tab disconnects: after the last student of a lecture
    leaves, every session of the lecture would stay in memory until the next one. Returns how many sessions were
    shut down; 0 outside a Streamlit server or on a Streamlit whose internals differ (then its own lazy reaping
    applies).
    """

    def reap(runtime) -> int:
        reaped = 0
        for _, info in runtime._session_mgr._session_storage._cache.expire():
            reaped += 1
            info.session.shutdown()
        return reaped

    return _on_runtime_loop(reap, runtime, timeout_s) or 0


def start_garbage_collector(interval_s: float = _COLLECTION_INTERVAL_S) -> None:
    """Once per server process: a full garbage collection every ``interval_s`` seconds, in a background thread.

    It replaces Streamlit's ``gc.collect(2)`` after every script run, turned off in .streamlit/config.toml
    (``runner.postScriptGC = false``): with torch, plotly and pandas loaded a full collection walks every object of
    the imports holding the GIL, after every click of every student. A closed session's state is mostly reference
    cycles, which only a full collection frees; every 30 s is soon enough for memory.

    Closed sessions past their reconnection time are shut down first (``forget_timed_out_sessions``). After each
    collection glibc is asked to hand freed heap pages back to the system (``malloc_trim``): otherwise the
    memory of closed sessions stays in the allocator's free lists and the server's resident size keeps the
    high-water mark of every past lecture.
    """
    global _collector_started
    with _collector_lock:
        if _collector_started:
            return
        _collector_started = True

    release = _heap_release()

    def collect_forever() -> None:
        while True:
            time.sleep(interval_s)
            forget_timed_out_sessions()
            gc.collect()
            release()

    threading.Thread(target=collect_forever, name="grpo-viz-gc", daemon=True).start()
