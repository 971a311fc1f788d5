"""A lecture hall on loopback: many Chromium sessions stepping and training at once against one server.

    python bench/load_test.py [--sessions 10] [--seconds 120] [--think 1] [--server-threads 1] [--split-cores] [--bare]

One Chromium, one browser context per student. The students open the page at the same moment (their page-load
times are reported apart), and once every page is open each one steps: on "Step through GRPO" it clicks Next
(Next iteration at the last stage), looks at the screen for --think seconds, and clicks again; every third
student also trains on the Training page and steps the built-in language model. Only 127.0.0.1 is contacted;
every loop is bounded in time.

Two waves of --sessions students, each stepping for half of --seconds. Prints errors, page-load p50/p95, p50/p95
step latency (click until every chart has new data; also apart: the class's first click, all at the same
moment, later clicks, and the Training and language-model clicks), how many cores the server kept busy, and its
resident memory: after one warm-up visit, at the peak of each wave and after each wave's sessions closed and were
dropped. A second wave that peaks where the first did shows that closed sessions' state was let go.

Chromium renders every student's page on the same two cores as the server, so the latencies measure the browser
as much as the server. Two clocks take the server's share apart:
- `server_*`, per kind of click, from Chromium's websocket timestamps: the rerun request sent until that run's
  "script finished" arrived. It leaves out the drawing but not Chromium's own network process, which waits for
  the cores like the rest of Chromium;
- `in_server_*`, from inside the server (bench/serve_timed.py): each rerun request's arrival until its run's
  "script finished" was queued. This is the server's share whichever machine draws the page.
With --split-cores the server runs on the first core alone and Chromium (with this script) on the others.
With --bare the same class clicks Next on the bare one-button-one-chart app of bench/bench_browser.py instead (no
trainers): what this machine and one shared Chromium give a page that does almost nothing, the floor under the
app's figures.

The server runs as the Dockerfile runs it for a class: torch with one thread per request (OMP_NUM_THREADS=1, set
by --server-threads). With torch's default, one thread per core, each request's threads wait on each other
whenever something else holds a core: the built-in model's step took 185 ms against 82 ms with one thread, two
busy processes beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from bench_browser import BARE, CHARTS_JS  # noqa: E402  (bench/ is on the path when run as a script)
from conftest import CHROMIUM, CHROMIUM_ARGS, DRAWN_JS, SETTLED_JS, start_streamlit  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

# the page has drawn a chart and its script has finished (Streamlit shows its status widget while a run lasts)
LOADED_JS = f"() => ({DRAWN_JS})() && ({SETTLED_JS})()"


def rss_mb(pid: int) -> float:
    """Resident memory of the server process and its children (MB), from /proc."""
    total = 0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def describe(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"


def p50_p95(values: list[float]) -> tuple[float, float]:
    """Median and 95th percentile (nearest rank: the smallest value with 95% of the values at or below it), NaN when
    nothing was measured."""
    if not values:
        return float("nan"), float("nan")
    ordered = sorted(values)
    return statistics.median(ordered), ordered[math.ceil(0.95 * len(ordered)) - 1]


class ServerClock:
    """The server's part of a page's clicks, timed by Chromium's network stack (its own timestamps, so a busy
    renderer or a slow event delivery to Python does not move them): a rerun request sent until that run's
    successful "script finished" message arrived. What is left of a click's latency is the browser's own work."""

    DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}

    def __init__(self) -> None:
        self.sent: list[float] = []  # rerun requests
        self.finished: list[float] = []  # runs that ran to their end (not those cut short by a newer click)

    async def attach(self, context, page) -> None:
        cdp = await context.new_cdp_session(page)
        cdp.on("Network.webSocketFrameSent", self._sent)
        cdp.on("Network.webSocketFrameReceived", self._received)
        await cdp.send("Network.enable")

    @staticmethod
    def _payload(params: dict) -> bytes:
        frame = params["response"]
        return base64.b64decode(frame["payloadData"]) if frame.get("opcode") == 2 else b""

    def _sent(self, params: dict) -> None:
        msg = BackMsg()
        msg.ParseFromString(self._payload(params))
        if msg.WhichOneof("type") == "rerun_script":
            self.sent.append(params["timestamp"])

    def _received(self, params: dict) -> None:
        if len(params["response"]["payloadData"]) > 200:  # deltas carry the charts; "script finished" is a few bytes
            return
        msg = ForwardMsg()
        msg.ParseFromString(self._payload(params))
        if msg.WhichOneof("type") == "script_finished" and msg.script_finished in self.DONE:
            self.finished.append(params["timestamp"])

    async def seconds_since(self, mark: int, timeout: float = 30) -> float | None:
        """Server time of the first rerun requested after ``mark`` requests: until the first run that ended after it
        (None if Chromium reported no such pair within ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.sent) > mark:
                sent = self.sent[mark]
                done = [t for t in self.finished if t > sent]
                if done:
                    return done[0] - sent
            await asyncio.sleep(0.05)
        return None


async def click_and_wait(page, name: str) -> float:
    before = await page.evaluate(CHARTS_JS)
    t0 = time.perf_counter()
    await page.get_by_role("button", name=name).first.click()
    # every 50 ms rather than every frame: ten pages serializing their charts' data each frame cost the one shared
    # Chromium more CPU than the pages themselves
    await page.wait_for_function(f"() => ({CHARTS_JS})() !== {before!r} && ({DRAWN_JS})()", polling=50,
                                 timeout=30_000)
    return time.perf_counter() - t0


async def timed_click(page, clock: ServerClock, name: str, kind: str, latencies: list, server: list) -> None:
    """Click, record the latency the student saw, then the server's part of it."""
    mark = len(clock.sent)
    latencies.append((kind, await click_and_wait(page, name)))
    server_seconds = await clock.seconds_since(mark)
    if server_seconds is not None:
        server.append((kind, server_seconds))


async def student(browser, url: str, index: int, joined: asyncio.Barrier, seconds: float, think: float,
                  loads: list, latencies: list, server: list, errors: list, bare: bool = False) -> None:
    """Open the page, wait until the whole class has it open, then step for ``seconds`` (on the bare app: Next
    only)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    clock = ServerClock()
    await clock.attach(context, page)
    loaded = False
    try:
        t0 = time.perf_counter()
        await page.goto(url + f"/step_through?seed={index}", timeout=180_000)
        await page.wait_for_function(DRAWN_JS, timeout=180_000)
        loads.append(time.perf_counter() - t0)
        loaded = True
    except Exception as error:
        errors.append(f"student {index} loading: {describe(error)}")
    await joined.wait()  # everybody's page is open (or failed): now the lecture starts
    deadline = time.monotonic() + seconds
    try:
        trainer = not bare and index % 3 == 0
        k = 0
        doing = "stepping"
        while loaded and time.monotonic() < deadline:
            last_stage = not bare and await page.get_by_role("button", name="Next iteration").count()
            label = "Next iteration" if last_stage else "Next"
            # the first click comes from the whole class at the same moment ("now everybody click Next")
            await timed_click(page, clock, label, "first" if k == 0 else "step", latencies, server)
            k += 1
            if trainer and k % 10 == 0:
                for link, button in (("Training", "Step +1"), ("Language model", "Next")):
                    if await page.get_by_role("link", name=link).count() == 0:
                        continue
                    doing = f"opening {link}"
                    await page.get_by_role("link", name=link).click()
                    # a page still loading would be timed with the click (its first run, every chart's first plot)
                    await page.wait_for_function(LOADED_JS, polling=100, timeout=120_000)
                    await page.wait_for_timeout(500)
                    doing = f"{link}: {button}"
                    await timed_click(page, clock, button, link, latencies, server)
                doing = "back to Step through GRPO"
                await page.get_by_role("link", name="Step through GRPO").click()
                await page.wait_for_function(LOADED_JS, polling=100, timeout=60_000)
                doing = "stepping"
            shown = page.locator("[data-testid='stException']")  # not page.content(): a whole-DOM copy
            if await shown.count():
                text = " ".join((await shown.first.inner_text()).split())[:300]
                errors.append(f"student {index} {doing}: exception on screen: {text}")
                break
            await page.wait_for_timeout(think * 1000)  # reading the screen before the next click
    except Exception as error:  # a timeout or a crash is what we count
        errors.append(f"student {index} {doing}: {describe(error)}")
    finally:
        await context.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wave(browser, url, sessions, seconds, think, pid, loads, latencies, server, errors, bare=False) -> float:
    """``sessions`` students open the page together, then step for ``seconds``; returns the server's peak RSS."""
    joined = asyncio.Barrier(sessions)
    tasks = [asyncio.create_task(student(browser, url, i, joined, seconds, think, loads, latencies, server, errors,
                                         bare))
             for i in range(sessions)]
    peak = 0.0
    while not all(t.done() for t in tasks):
        peak = max(peak, rss_mb(pid))
        await asyncio.sleep(1)
    return peak


async def main_async(sessions: int, seconds: float, think: float, server_threads: int, split_cores: bool,
                     bare: bool = False) -> None:
    from playwright.async_api import async_playwright

    ttl = 5
    everywhere = os.sched_getaffinity(0)
    if split_cores:  # a child process keeps the cores its parent had when it started
        os.sched_setaffinity(0, {min(everywhere)})
    tmp = Path(tempfile.mkdtemp())
    clock_log = tmp / "runs.log"
    script, cwd = "app.py", ROOT
    if bare:
        (tmp / "bare.py").write_text(BARE)
        script, cwd = str(tmp / "bare.py"), tmp
    proc, url = start_streamlit(script, cwd, extra_args=[f"--server.disconnectedSessionTTL={ttl}"],
                                extra_env={"OMP_NUM_THREADS": str(server_threads)},
                                launcher=[sys.executable, str(ROOT / "bench" / "serve_timed.py"), str(clock_log)])
    if split_cores:
        os.sched_setaffinity(0, everywhere - {min(everywhere)})
    latencies: list[tuple[str, float]] = []  # (what was clicked, seconds)
    server: list[tuple[str, float]] = []  # (what was clicked, the server's part of it in seconds)
    loads: list[float] = []
    errors: list[str] = []
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            # one visit loads the imports and caches
            await wave(browser, url, 1, 1, think, proc.pid, [], [], [], [], bare)
            await asyncio.sleep(ttl + 40)
            baseline = rss_mb(proc.pid)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            clock_log.write_text("")  # the clock counts the two waves' requests only
            peak1 = await wave(browser, url, sessions, seconds / 2, think, proc.pid, loads, latencies, server, errors,
                               bare)
            server_cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
            await asyncio.sleep(ttl + 40)  # the server drops closed sessions after their TTL; the collector runs every 30 s
            after1 = rss_mb(proc.pid)
            peak2 = await wave(browser, url, sessions, seconds / 2, think, proc.pid, loads, latencies, server, errors,
                               bare)
            await asyncio.sleep(ttl + 40)
            after2 = rss_mb(proc.pid)
            await browser.close()
    finally:
        proc.terminate()
    p50, p95 = p50_p95([t for _, t in latencies])
    server_p50, server_p95 = p50_p95([t for _, t in server])
    kinds = {"first": "the class's first click together", "step": "later Next clicks",
             "Training": "Training: Step +1", "Language model": "Language model: Next"}
    for kind, meaning in kinds.items():
        times = [t for k, t in latencies if k == kind]
        kind_p50, kind_p95 = p50_p95(times)
        on_server = p50_p95([t for k, t in server if k == kind])
        print(f"  {meaning}: n={len(times)} p50_ms={kind_p50 * 1000:.0f} p95_ms={kind_p95 * 1000:.0f} "
              f"server_p50_ms={on_server[0] * 1000:.0f} server_p95_ms={on_server[1] * 1000:.0f}")
    in_server = [line.split() for line in clock_log.read_text().splitlines()]
    for kind in ("full", "fragment"):
        runs = [float(seconds) for seconds, _, k in in_server if k == kind]
        kind_p50, kind_p95 = p50_p95(runs)
        print(f"  in the server, {kind} runs: n={len(runs)} p50_ms={kind_p50 * 1000:.0f} p95_ms={kind_p95 * 1000:.0f}")
    in_server_p50, in_server_p95 = p50_p95([float(seconds) for seconds, _, _ in in_server])
    load_p50, load_p95 = p50_p95(loads)
    for e in errors[:20]:
        print("error:", e)
    print(f"load app={'bare' if bare else 'grpo-viz'} sessions={sessions} seconds={seconds:.0f} think_s={think:g} "
          f"server_threads={server_threads} "
          f"split_cores={split_cores} "
          f"steps={len(latencies)} errors={len(errors)} "
          f"page_load_p50_ms={load_p50 * 1000:.0f} "
          f"page_load_p95_ms={load_p95 * 1000:.0f} "
          f"p50_ms={p50 * 1000:.0f} p95_ms={p95 * 1000:.0f} server_timed={len(server)} "
          f"server_p50_ms={server_p50 * 1000:.0f} server_p95_ms={server_p95 * 1000:.0f} "
          f"in_server_requests={len(in_server)} in_server_p50_ms={in_server_p50 * 1000:.0f} "
          f"in_server_p95_ms={in_server_p95 * 1000:.0f} "
          f"server_cores_busy={server_cpu:.2f} "
          f"rss_baseline_mb={baseline:.0f} rss_peak_mb={peak1:.0f} rss_after_mb={after1:.0f} "
          f"rss_second_wave_peak_mb={peak2:.0f} rss_second_wave_after_mb={after2:.0f} "
          f"per_session_mb={(peak1 - baseline) / sessions:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=120, help="stepping time, split over the two waves")
    parser.add_argument("--think", type=float, default=1.0, help="seconds a student looks at the screen between clicks")
    parser.add_argument("--server-threads", type=int, default=1,
                        help="torch threads per request in the server (OMP_NUM_THREADS; the Dockerfile sets 1)")
    parser.add_argument("--split-cores", action="store_true",
                        help="the server on the first core alone, Chromium on the others (needs two cores or more)")
    parser.add_argument("--bare", action="store_true",
                        help="the bare one-button-one-chart app instead of grpo-viz: the machine's floor")
    args = parser.parse_args()
    if args.split_cores and len(os.sched_getaffinity(0)) < 2:
        parser.error("--split-cores needs at least two cores")
    asyncio.run(main_async(args.sessions, min(args.seconds, 600), max(args.think, 0.0), max(args.server_threads, 1),
                           args.split_cores, args.bare))


if __name__ == "__main__":
    main()
