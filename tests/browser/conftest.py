"""A real `streamlit run app.py` on a free loopback port, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# at least one Plotly chart is drawn
DRAWN_JS = "() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0"
# the page's script run has ended (Streamlit shows its status widget while a run lasts)
SETTLED_JS = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
# every stage of a stepping page's drawn group is on the page, its chart drawn (a session's first run draws only the
# URL's stage and then asks the server for the rest: until then a rerun may replace what a test reads)
def every_stage_drawn_js(cursor: str = "stage", stages: int = 8) -> str:
    return (f"() => Array.from({{length: {stages}}}, (_, k) => document.querySelector("
            f"'.st-key-{cursor}_view_' + k + ' .js-plotly-plot .main-svg')).every(Boolean)")


SCREENSHOTS = ROOT / "artifacts" / "screenshots"  # per-run pictures; README ones are copied to docs/


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(script: str = "app.py", cwd: Path = ROOT, extra_args: list[str] | None = None,
                    extra_env: dict[str, str] | None = None,
                    launcher: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """``streamlit run script`` on a free port, waited for until healthy; ``launcher`` replaces
    ``python -m streamlit`` (bench/load_test.py runs the server under a clock)."""
    port = _free_port()
    proc = subprocess.Popen(
        [*(launcher or [sys.executable, "-m", "streamlit"]), "run", script, "--server.headless=true",
         f"--server.port={port}",
         "--server.address=127.0.0.1", "--browser.gatherUsageStats=false", "--server.fileWatcherType=none",
         *(extra_args or [])],
        cwd=cwd, env={**os.environ, **(extra_env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=1).status == 200:
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("streamlit did not start within 60 s")


@pytest.fixture(scope="session")
def app_url():
    proc, url = start_streamlit()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (apt-get install -y chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()
