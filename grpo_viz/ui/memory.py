"""A lecture hall's server memory: one full garbage collection every 30 s in a background thread (the imports'
objects frozen out of the walk), closed sessions past their reconnection time shut down, freed heap handed back.

This is the one module that reaches into Streamlit's runtime (``Runtime``'s session manager, its session storage and
its event loop): Streamlit has no public way to list a server's sessions or to drop the expired ones. On a Streamlit
whose internals differ it logs a warning once and falls back to Streamlit's own behaviour;
tests/unit/test_memory_streamlit_internals.py runs it inside a real server and fails loudly instead. What each piece
gains under load is measured in docs/PERFORMANCE.md ("Issue 21").
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
                    "next disconnect, and each collection walks every object", type(error).__name__, error)


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


def live_session_ids(runtime=None, timeout_s: float = 5.0) -> set[str] | None:
    """Ids of the sessions the server holds: connected ones, and closed ones still within their reconnection time.
    None outside a Streamlit server."""
    return _on_runtime_loop(lambda runtime: {info.session.id for info in runtime._session_mgr.list_sessions()},
                            runtime, timeout_s)


class FreezingCollector:
    """Full garbage collections that skip the objects of the imports, without keeping a closed session alive.

    A full collection walks every tracked object, hundreds of thousands after the app's imports (torch,
    transformers, plotly, pandas), holding the GIL: every student's click waits for it, and Python's own automatic
    collections walk them too. After ``gc.freeze()`` both skip those objects. But a frozen object is never collected, and its references keep whatever it points
    to: a session alive at the freeze (its objects form reference cycles) would stay in memory after it closed.
    So each freeze remembers the sessions alive at that moment, and once any of them is gone the next collection
    unfreezes, collects everything and freezes again: one full collection, as often as the plain collector at
    most, and none while a lecture's sessions stay open. ``live_sessions`` returns the live session ids, or None
    outside a server (then every collection is a plain full one).
    """

    def __init__(self, live_sessions: Callable[[], set[str] | None] = live_session_ids) -> None:
        self.live_sessions = live_sessions
        self.frozen_with: set[str] | None = None  # the sessions alive at the last freeze; None: nothing frozen

    def collect(self) -> None:
        live = self.live_sessions()
        if live is None:
            gc.collect()
        elif self.frozen_with is None or self.frozen_with - live:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.frozen_with = live
        else:
            gc.collect()  # the frozen objects are skipped


def start_garbage_collector(interval_s: float = _COLLECTION_INTERVAL_S) -> None:
    """Once per server process: a full garbage collection every ``interval_s`` seconds, in a background thread.

    It replaces Streamlit's ``gc.collect(2)`` after every script run, turned off in .streamlit/config.toml
    (``runner.postScriptGC = false``): with torch, plotly and pandas loaded a full collection walks every object of
    the imports holding the GIL, after every click of every student. A closed session's state is mostly reference
    cycles, which only a full collection frees; every 30 s is soon enough for memory. The imports' objects are
    frozen out of the walk (``FreezingCollector``), so a collection is short while no session that was alive at the
    freeze has closed.

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

    release, collector = _heap_release(), FreezingCollector()

    def collect_forever() -> None:
        while True:
            time.sleep(interval_s)
            forget_timed_out_sessions()
            collector.collect()
            release()

    threading.Thread(target=collect_forever, name="grpo-viz-gc", daemon=True).start()
