"""How many students one server process sustains, without browsers: each student is a websocket that speaks
Streamlit's own protocol, as the browser does.

    python bench/load_server.py [--students 10 50 100] [--seconds 60] [--think 3]

bench/load_test.py drives real Chromium pages, but on this 2-core machine one Chromium drawing every student's page
is the bottleneck (a quarter of the cores it takes to draw ten pages would be each student's own laptop in a
lecture hall). Here nothing is drawn: a student opens the app (the rerun request a browser sends on load), reads
the buttons from the elements the server sends back, and clicks by sending the same rerun request with the button's
trigger and its fragment, as the browser does. Two students in three step through GRPO with Next (Next iteration
at the last stage); every third one is on the Training page pressing Step +1; of those, every other one is on Toy
vs language model pressing Next (the built-in model). All students open the app at the same moment, click for the
first time at the same moment, then click every --think seconds (±50%, so that they drift apart as a class does).

For each class size, a fresh server (one torch thread per request, as the Dockerfile runs it) prints: errors (an
exception element, a run that did not finish within 30 s, a lost connection), page-load and click latency p50/p95
(the request sent until that run's "script finished" arrived: the server plus loopback; also apart, the class's
first click and the later ones, by what was clicked), every request timed from inside the server (bench/serve_timed.py), the cores the server kept busy, and its resident memory per session. Only
127.0.0.1 is contacted and every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT / "bench"))
from conftest import start_streamlit  # noqa: E402
from load_test import cpu_seconds, describe, p50_p95, rss_mb  # noqa: E402

FIRST, LATER = "the class's first click, all at once", "later clicks"
DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
ROLES = {  # what a student does: (page's URL path, the buttons it clicks, the first one it finds)
    "step": ("step_through", ("Next ▶", "Next iteration ▶")),
    "training": ("training", ("Step +1", "↺ Reset")),  # Step +1 is disabled once the run reached its length
    "language model": ("language_model", ("Next ▶", "Next iteration ▶")),
}


def role_of(index: int) -> str:
    if index % 3 != 2:
        return "step"
    return "training" if index % 6 == 2 else "language model"


class Student:
    """One browser tab, as the server sees it: a websocket, the page it is on, the buttons of its last run."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.page_hashes: dict[str, str] = {}  # URL path: page script hash
        self.page_hash = ""
        self.buttons: dict[str, tuple[str, str]] = {}  # label: (widget id, fragment id)

    async def run(self, page: str = "", click: str | None = None, timeout: float = 30) -> float:
        """Send one rerun request (a page load, or a click on the button labelled ``click``) and wait for its run to
        finish; returns the seconds it took. Raises on an exception shown, a failed run or a timeout."""
        msg = BackMsg()
        state = msg.rerun_script
        state.page_script_hash = self.page_hashes.get(page, self.page_hash)
        state.page_name = page
        if click is not None:
            widget_id, fragment_id = self.buttons[click]
            widget = state.widget_states.widgets.add()
            widget.id, widget.trigger_value = widget_id, True
            if fragment_id:
                state.fragment_id = fragment_id
        seen: dict[str, tuple[str, str]] = {}
        t0 = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        deadline = t0 + timeout
        while True:
            data = await asyncio.wait_for(self.ws.recv(), max(deadline - time.perf_counter(), 0.01))
            forward = ForwardMsg()
            forward.ParseFromString(data)
            kind = forward.WhichOneof("type")
            if kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                element = forward.delta.new_element
                if element.WhichOneof("type") == "exception":
                    raise RuntimeError(f"exception on screen: {element.exception.message[:160]}")
                if element.WhichOneof("type") == "button" and not element.button.disabled:
                    seen[element.button.label] = (element.button.id, forward.delta.fragment_id)
            elif kind == "navigation":
                self.page_hashes = {p.url_pathname: p.page_script_hash for p in forward.navigation.app_pages}
                self.page_hash = forward.navigation.page_script_hash
            elif kind == "script_finished":
                if forward.script_finished in DONE:
                    # a fragment's run resends that fragment's elements only: the others stay as they were
                    fragment = state.fragment_id
                    kept = {k: v for k, v in self.buttons.items() if fragment and v[1] != fragment}
                    self.buttons = {**kept, **seen}
                    return time.perf_counter() - t0
                if forward.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    raise RuntimeError(f"run ended with status {forward.script_finished}")


async def student(url: str, index: int, seconds: float, think: float, opened: asyncio.Barrier,
                  loads: list[float], clicks: list[tuple[str, str, float]], errors: list[str]) -> None:
    role = role_of(index)
    page, labels = ROLES[role]
    rng = random.Random(index)
    doing = "opening the app"
    passed = False  # the barrier of the first click
    try:
        async with websockets.connect(url.replace("http", "ws") + "/_stcore/stream", subprotocols=["streamlit"],
                                      max_size=None, open_timeout=60) as ws:
            tab = Student(ws)
            loads.append(await tab.run(timeout=120))
            if page:
                doing = f"opening {page}"
                await tab.run(page, timeout=120)
            try:
                await opened.wait()  # the class's first click, all at the same moment
            except asyncio.BrokenBarrierError:
                pass  # a classmate could not open the app: click anyway
            passed = True
            end, kind = time.monotonic() + seconds, FIRST
            while time.monotonic() < end:
                label = next(label for label in labels if label in tab.buttons)
                doing = f"clicking {label} on {role}"
                clicks.append((kind, role, await tab.run(page, click=label)))
                kind = LATER
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))
    except Exception as error:  # a timeout, a lost connection or an exception on screen is what we count
        errors.append(f"student {index} {doing}: {describe(error)}")
        if not passed:  # do not leave the others waiting for this one
            await opened.abort()


async def one_class(students: int, seconds: float, think: float) -> None:
    ttl = 5
    clock_log = Path(tempfile.mkdtemp()) / "runs.log"
    proc, url = start_streamlit(extra_args=[f"--server.disconnectedSessionTTL={ttl}"],
                                extra_env={"OMP_NUM_THREADS": "1"},
                                launcher=[sys.executable, str(ROOT / "bench" / "serve_timed.py"), str(clock_log)])
    try:
        warm: list[str] = []
        for index in range(6):  # one visit per role loads the imports, the caches and the built-in model
            await student(url, index, 0.5, think, asyncio.Barrier(1), [], [], warm)
        await asyncio.sleep(ttl + 40)  # the warm-up sessions are dropped and collected
        baseline = rss_mb(proc.pid)
        clock_log.write_text("")
        loads: list[float] = []
        clicks: list[tuple[str, str, float]] = []
        errors: list[str] = warm
        opened = asyncio.Barrier(students)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        tasks = [asyncio.create_task(student(url, i, seconds, think, opened, loads, clicks, errors))
                 for i in range(students)]
        peak = baseline
        while not all(task.done() for task in tasks):
            await asyncio.sleep(1)
            peak = max(peak, rss_mb(proc.pid))
        busy = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
        await asyncio.sleep(ttl + 40)
        after = rss_mb(proc.pid)
    finally:
        proc.terminate()
    in_server = [float(line.split()[0]) for line in clock_log.read_text().splitlines()]
    for e in errors[:10]:
        print("error:", e)
    for kind in (FIRST, LATER):
        for role in ROLES:
            times = [t for k, r, t in clicks if k == kind and r == role]
            p50, p95 = p50_p95(times)
            print(f"  {kind}, {role}: n={len(times)} p50_ms={p50 * 1000:.0f} p95_ms={p95 * 1000:.0f}")
    later_p50, later_p95 = p50_p95([t for k, _, t in clicks if k == LATER])
    load_p50, load_p95 = p50_p95(loads)
    p50, p95 = p50_p95([t for _, _, t in clicks])
    server_p50, server_p95 = p50_p95(in_server)
    print(f"server_load students={students} seconds={seconds:.0f} think_s={think:g} errors={len(errors)} "
          f"clicks={len(clicks)} page_load_p50_ms={load_p50 * 1000:.0f} page_load_p95_ms={load_p95 * 1000:.0f} "
          f"p50_ms={p50 * 1000:.0f} p95_ms={p95 * 1000:.0f} later_p50_ms={later_p50 * 1000:.0f} "
          f"later_p95_ms={later_p95 * 1000:.0f} in_server_p50_ms={server_p50 * 1000:.0f} "
          f"in_server_p95_ms={server_p95 * 1000:.0f} server_cores_busy={busy:.2f} rss_baseline_mb={baseline:.0f} "
          f"rss_peak_mb={peak:.0f} rss_after_mb={after:.0f} per_session_mb={(peak - baseline) / students:.1f}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--seconds", type=float, default=60, help="clicking time of each class")
    parser.add_argument("--think", type=float, default=3.0, help="mean seconds between a student's clicks")
    args = parser.parse_args()
    for students in args.students:
        asyncio.run(one_class(max(students, 1), min(args.seconds, 600), max(args.think, 0.0)))


if __name__ == "__main__":
    main()
