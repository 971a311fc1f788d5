"""How many students one server process sustains, without browsers: each student is a websocket that speaks
Streamlit's own protocol, as the browser does.

    python bench/load_server.py [--students 10 50 100] [--seconds 60] [--think 3]
    python bench/load_server.py --processes 2 --students 300 510   # deploy/'s layout: 2 processes behind nginx
    python bench/load_server.py --url http://host:8501 --students 50  # a server or balancer already running

bench/load_test.py drives real Chromium pages, but on this 2-core machine one Chromium drawing every student's page
is the bottleneck (a quarter of the cores it takes to draw ten pages would be each student's own laptop in a lecture
hall). Here nothing is drawn: a student opens the app (the rerun request a browser sends on load), reads the buttons
from the elements the server sends back, and clicks by sending the same rerun request with the button's trigger and
its fragment, as the browser does. Two students in three step through GRPO with Next (Next iteration at the last
stage); one in six is on the Training page pressing Step +1, one in six on Toy vs language model pressing Next (the
built-in model); who does what is shuffled (a fixed seed), as a hall arrives. Where a page steps its stages in the
browser (it sends Next and the last stage's Next iteration together, and a tab per stage), a Next reveals a stage
without a request, and only Next iteration at the last stage reaches the server, as in the browser. All students
open the app at the same moment, click for the first time at the same moment, then click every --think seconds
(±50%, so that they drift apart as a class does). With --arrive-over S they open it spread evenly over S seconds
(a hall told "open the link now"), each clicking first as soon as their page is there.

For each class size, a fresh server (one torch thread per request, as the Dockerfile runs it; with --processes N,
deploy/start.py's N processes behind nginx, each student first fetching the page to get the balancer's cookie, as a
browser does) prints: errors (an exception element, a run that did not finish within 30 s, a lost connection),
page-load and click latency p50/p95 (the request sent until that run's "script finished" arrived: the server plus
loopback; also apart, the class's first click and the later ones, by what was clicked), every request timed from
inside the server (bench/serve_timed.py), the cores the server kept busy and its CPU milliseconds per request
(robust to a busy machine: waiting for a core costs no CPU), the cores this client used (it shares the machine), and
the server's resident memory (summed over its processes) per session and after the class left. Only the server's
address is contacted and every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT / "bench"))
from conftest import start_streamlit  # noqa: E402
from load_test import cpu_seconds, describe, p50_p95, rss_mb  # noqa: E402

sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(ROOT))
import start as deploy  # noqa: E402  (deploy/start.py)
from grpo_viz.stepper import STAGES  # noqa: E402

FIRST, LATER = "the class's first click, all at once", "later clicks"
DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
NEXT, LAST = "Next ▶", "Next iteration ▶"
ROLES = {  # what a student does: (page's URL path, the buttons it clicks, the first one it finds)
    "step": ("step_through", (NEXT, LAST)),
    "training": ("training", ("Step +1", "↺ Reset")),  # Step +1 is disabled once the run reached its length
    "language model": ("language_model", (NEXT, LAST)),
}
WARM_VISITS = 6  # one visit per role and more, per process


def roles(students: int) -> list[str]:
    """Two in three step, one in six trains, one in six steps the language model; shuffled with a fixed seed, so
    that a balancer's round robin does not hand one process every trainer."""
    mix = ["step" if i % 3 != 2 else "training" if i % 6 == 2 else "language model" for i in range(students)]
    random.Random(0).shuffle(mix)
    return mix


class Student:
    """One browser tab, as the server sees it: a websocket, the page it is on, the buttons of its last run."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.page_hashes: dict[str, str] = {}  # URL path: page script hash
        self.page_hash = ""
        self.session_id = ""
        self.buttons: dict[str, tuple[str, str]] = {}  # label: (widget id, fragment id)
        self.stage = 0  # the stage a client-side cursor shows

    @property
    def steps_in_browser(self) -> bool:
        """A cursor whose Next the browser handles: the server sends Next and the last stage's action together."""
        return NEXT in self.buttons and LAST in self.buttons

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
            elif kind == "new_session":
                self.session_id = forward.new_session.initialize.session_id or self.session_id
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

    def next_click(self, labels: tuple[str, ...]) -> str | None:
        """The button to click next, or None when the browser reveals the next stage by itself."""
        if labels[0] == NEXT and self.steps_in_browser:
            if self.stage < len(STAGES) - 1:
                self.stage += 1
                return None
            self.stage = 0
            return LAST
        return next(label for label in labels if label in self.buttons)


def balancer_cookie(url: str) -> str:
    """The cookie the balancer sets on a tab's first request ('' when there is none): fetch the page, as a
    browser does before it opens the websocket."""
    with urllib.request.urlopen(url + "/", timeout=60) as response:
        cookies = [c.split(";", 1)[0] for c in response.headers.get_all("Set-Cookie") or []]
        response.read()
    return "; ".join(c for c in cookies if c.startswith(deploy.COOKIE + "="))


def connect(url: str, cookie: str = ""):
    return websockets.connect(url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit"],
                              additional_headers={"Cookie": cookie} if cookie else None, max_size=None,
                              open_timeout=60)


async def student(url: str, index: int, role: str, seconds: float, think: float, opened: asyncio.Barrier | None,
                  loads: list[float], clicks: list[tuple[str, str, float]], errors: list[str],
                  in_browser: list[int], balanced: bool, arrival: float = 0.0) -> None:
    """One student: opens the app ``arrival`` seconds after the class starts, then their page; clicks first with
    the whole class (``opened``, a barrier) or, without one, as soon as their page is there; then every ~think s."""
    page, labels = ROLES[role]
    rng = random.Random(index)
    doing = "opening the app"
    passed = opened is None  # the barrier of the first click
    await asyncio.sleep(arrival)
    try:
        cookie = await asyncio.to_thread(balancer_cookie, url) if balanced else ""
        async with connect(url, cookie) as ws:
            tab = Student(ws)
            loads.append(await tab.run(timeout=120))
            if page:
                doing = f"opening {page}"
                await tab.run(page, timeout=120)
            if opened is not None:
                try:
                    await opened.wait()  # the class's first click, all at the same moment
                except asyncio.BrokenBarrierError:
                    pass  # a classmate could not open the app: click anyway
            passed = True
            end, kind = time.monotonic() + seconds, FIRST
            while time.monotonic() < end:
                label = tab.next_click(labels)
                if label is None:
                    in_browser.append(1)
                else:
                    doing = f"clicking {label} on {role}"
                    clicks.append((kind, role, await tab.run(page, click=label)))
                    kind = LATER
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))
    except Exception as error:  # a timeout, a lost connection or an exception on screen is what we count
        errors.append(f"student {index} {doing}: {describe(error)}")
        if not passed:  # do not leave the others waiting for this one
            await opened.abort()


class Server:
    """The processes that answer: one ``streamlit run`` (``processes`` 0), deploy/'s layout, or a running URL."""

    def __init__(self, processes: int, url: str | None, app_dir: Path, ttl: int, clock_dir: Path) -> None:
        launcher = [sys.executable, str(ROOT / "bench" / "serve_timed.py"), str(clock_dir / "runs.{pid}.log")]
        args, env = [f"--server.disconnectedSessionTTL={ttl}"], {"OMP_NUM_THREADS": "1"}
        self.layout, self.proc = None, None
        if url:
            self.url, self.pids = url.rstrip("/"), []
        elif processes:
            self.layout = deploy.start(processes, app_dir=app_dir, launcher=launcher, extra_args=args, extra_env=env)
            self.url, self.pids = self.layout.url, [p.pid for p in self.layout.apps]
        else:
            self.proc, self.url = start_streamlit(cwd=app_dir, extra_args=args, extra_env=env, launcher=launcher)
            self.pids = [self.proc.pid]
        self.balanced = bool(url) or self.layout is not None

    def rss_mb(self) -> float:
        return sum(rss_mb(pid) for pid in self.pids) if self.pids else float("nan")

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids) if self.pids else float("nan")

    def stop(self) -> None:
        if self.layout is not None:
            self.layout.stop()
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


async def one_class(students: int, seconds: float, think: float, app_dir: Path = ROOT, processes: int = 0,
                    url: str | None = None, profile: Path | None = None, arrive_over: float = 0.0) -> None:
    ttl = 5
    clock_dir = Path(tempfile.mkdtemp())
    server = Server(processes, url, app_dir, ttl, clock_dir)
    try:
        warm: list[str] = []
        mix = roles(WARM_VISITS)
        for index in range(WARM_VISITS * max(processes, 1)):  # the imports, caches and built-in model, each process
            await student(server.url, index, mix[index % WARM_VISITS], 0.5, think, asyncio.Barrier(1), [], [], warm,
                          [], server.balanced)
        await asyncio.sleep(ttl + 40)  # the warm-up sessions are dropped and collected
        baseline = server.rss_mb()
        for log in clock_dir.glob("runs.*.log"):
            log.write_text("")
        loads: list[float] = []
        clicks: list[tuple[str, str, float]] = []
        in_browser: list[int] = []
        errors: list[str] = warm
        # everyone at once, or arrivals spread evenly over arrive_over seconds (a hall told "open the link now")
        opened = asyncio.Barrier(students) if arrive_over <= 0 else None
        arrivals = [arrive_over * i / students for i in range(students)]
        random.Random(1).shuffle(arrivals)
        cpu0, t0, client0 = server.cpu_seconds(), time.monotonic(), time.process_time()
        spies = []
        if profile is not None:  # the threads holding the GIL, as collapsed stacks ("frame;frame;... count")
            spies = [subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds) + 10),
                                       "--rate", "50", "--gil", "--nonblocking", "--format", "raw", "-o",
                                       str(profile.with_suffix(f".{students}.{i}.txt"))],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for i, pid in enumerate(server.pids)]
        mix = roles(students)
        tasks = [asyncio.create_task(student(server.url, i, mix[i], seconds, think, opened, loads, clicks, errors,
                                             in_browser, server.balanced, arrivals[i]))
                 for i in range(students)]
        peak = baseline
        while not all(task.done() for task in tasks):
            await asyncio.sleep(1)
            peak = max(peak, server.rss_mb())
        elapsed = time.monotonic() - t0
        cpu = server.cpu_seconds() - cpu0
        client_busy = (time.process_time() - client0) / elapsed
        for spy in spies:
            spy.wait(timeout=120)
        await asyncio.sleep(ttl + 40)
        after = server.rss_mb()
    finally:
        server.stop()
    in_server = [float(line.split()[0]) for log in clock_dir.glob("runs.*.log")
                 for line in log.read_text().splitlines()]
    for e in errors[:10]:
        print("error:", e)
    for kind in (FIRST, LATER):
        for role in ROLES:
            times = [t for k, r, t in clicks if k == kind and r == role]
            p50, p95 = p50_p95(times)
            label = "each student's first click" if kind == FIRST and arrive_over > 0 else kind
            print(f"  {label}, {role}: n={len(times)} p50_ms={p50 * 1000:.0f} p95_ms={p95 * 1000:.0f}")
    later_p50, later_p95 = p50_p95([t for k, _, t in clicks if k == LATER])
    load_p50, load_p95 = p50_p95(loads)
    p50, p95 = p50_p95([t for _, _, t in clicks])
    server_p50, server_p95 = p50_p95(in_server)
    requests = len(clicks) + 2 * len(loads)  # a student's load is two runs: the app, then its page
    layout = f"url={url}" if url else f"processes={processes or 1}{' behind nginx' if processes else ''}"
    print(f"server_load {layout} students={students} arrive_over_s={arrive_over:g} seconds={seconds:.0f} "
          f"think_s={think:g} errors={len(errors)} "
          f"clicks={len(clicks)} revealed_in_browser={len(in_browser)} page_load_p50_ms={load_p50 * 1000:.0f} "
          f"page_load_p95_ms={load_p95 * 1000:.0f} p50_ms={p50 * 1000:.0f} p95_ms={p95 * 1000:.0f} "
          f"later_p50_ms={later_p50 * 1000:.0f} later_p95_ms={later_p95 * 1000:.0f} "
          f"in_server_p50_ms={server_p50 * 1000:.0f} in_server_p95_ms={server_p95 * 1000:.0f} "
          f"server_cores_busy={cpu / elapsed:.2f} server_cpu_ms_per_request={cpu / max(requests, 1) * 1000:.1f} "
          f"client_cores_busy={client_busy:.2f} rss_baseline_mb={baseline:.0f} rss_peak_mb={peak:.0f} "
          f"rss_after_mb={after:.0f} per_session_mb={(peak - baseline) / students:.1f} "
          f"after_minus_baseline_mb={after - baseline:.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--seconds", type=float, default=60, help="clicking time of each class")
    parser.add_argument("--think", type=float, default=3.0, help="mean seconds between a student's clicks")
    parser.add_argument("--processes", type=int, default=0,
                        help="N app processes behind nginx (deploy/start.py); 0: one process, no balancer")
    parser.add_argument("--arrive-over", type=float, default=0.0, help="spread the students' arrivals evenly over "
                        "this many seconds, each clicking first once their page is there (default 0: all arrive in "
                        "the same second and click first together)")
    parser.add_argument("--url", help="a server or balancer already running (no memory or CPU figures)")
    parser.add_argument("--app-dir", type=Path, default=ROOT,
                        help="the copy of the app to serve (e.g. another commit's `git archive`), to compare two")
    parser.add_argument("--profile", type=Path, help="py-spy's samples of each server process while the class "
                        "clicks, to <this>.<students>.<process>.txt (pip install py-spy)")
    args = parser.parse_args()
    for students in args.students:
        asyncio.run(one_class(max(students, 1), min(args.seconds, 600), max(args.think, 0.0), args.app_dir,
                              max(args.processes, 0), args.url, args.profile, max(args.arrive_over, 0.0)))


if __name__ == "__main__":
    main()
