"""deploy/ on loopback: two app processes behind Debian's nginx, a tab's websocket session through the balancer, kept
on its process by the balancer's cookie; the compose file describes the same layout."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import websockets
import yaml

from tests.streamlit_ws import run, run_first_page

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
spec = importlib.util.spec_from_file_location("grpo_viz_deploy_start", DEPLOY / "start.py")
deploy = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(deploy)

needs_nginx = pytest.mark.skipif(not Path(deploy.NGINX).exists(),
                                 reason="nginx is not installed (apt-get install -y nginx; .ci/run installs it)")


@pytest.fixture(scope="module")
def layout():
    if not Path(deploy.NGINX).exists():
        pytest.skip("nginx is not installed (apt-get install -y nginx; .ci/run installs it)")
    running = deploy.start(2)
    yield running
    running.stop()


def new_tab_cookie(url: str) -> str:
    """What a browser's first request for the page gets: the balancer's cookie naming the tab's process."""
    with urllib.request.urlopen(url + "/", timeout=60) as response:
        assert response.status == 200 and b"<div id=\"root\">" in response.read()
        cookies = [c.split(";", 1)[0] for c in response.headers.get_all("Set-Cookie") or []]
    return next(c for c in cookies if c.startswith(deploy.COOKIE + "="))


async def open_session(url: str, cookie: str, resume: str = "") -> str:
    """Open the app over a websocket through the balancer, as a browser tab does (``resume``: the id of the session
    a reconnecting tab had), run its first page to the end; returns the session's id."""
    subprotocols = ["streamlit", "xsrf-unused", resume] if resume else ["streamlit"]
    async with websockets.connect(url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=subprotocols,
                                  additional_headers={"Cookie": cookie}, max_size=None, open_timeout=60) as ws:
        session_id, _ = await run_first_page(ws)
        return session_id


@needs_nginx
def test_new_tabs_are_dealt_to_the_processes_in_turn(layout):
    cookies = [new_tab_cookie(layout.url) for _ in range(4)]
    assert sorted(cookies) == sorted([f"{deploy.COOKIE}=b1", f"{deploy.COOKIE}=b2"] * 2)
    assert cookies[0] != cookies[1]


@needs_nginx
def test_a_websocket_session_runs_through_the_balancer_and_stays_on_its_process(layout):
    """A tab that reconnects (a network blip) with its cookie finds its session, state and all; the same session id
    with the other process's cookie finds nothing there, so it is the cookie that keeps the tab on its process."""
    mine, other = new_tab_cookie(layout.url), new_tab_cookie(layout.url)
    assert mine != other
    session = run(open_session(layout.url, mine))
    assert session
    assert run(open_session(layout.url, mine, resume=session)) == session
    assert run(open_session(layout.url, other, resume=session)) != session


@needs_nginx
def test_the_config_for_any_number_of_processes_is_valid_nginx(tmp_path):
    config = tmp_path / "nginx.conf"
    config.write_text(deploy.nginx_config([f"127.0.0.1:{8601 + i}" for i in range(3)], "127.0.0.1:18501",
                                          [19001, 19002, 19003], prefix=tmp_path))
    result = subprocess.run([deploy.NGINX, "-t", "-p", str(tmp_path), "-c", str(config)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@needs_nginx
def test_a_tab_whose_process_is_down_is_served_by_another(layout):
    """Each process's upstream lists the others as backups: a tab pinned to a stopped process gets a new session on
    a running one instead of an error page. (It stops a process: the module's last test on the layout.)"""
    cookies = {new_tab_cookie(layout.url) for _ in range(2)}
    layout.apps[0].terminate()
    layout.apps[0].wait(timeout=30)
    for cookie in cookies:
        assert run(open_session(layout.url, cookie))


def test_the_compose_file_describes_the_same_layout():
    """Two app services with local model folders off and one torch thread, and nginx with the configuration
    nginx_config writes for them (deploy/nginx.conf, checked in: compose cannot run Python)."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    apps = [name for name in services if name.startswith("app")]
    assert len(apps) == 2
    for name in apps:
        env = services[name]["environment"]
        assert str(env["GRPO_VIZ_ALLOW_LOCAL_MODELS"]) == "0" and str(env["OMP_NUM_THREADS"]) == "1"
    balancer = services["balancer"]
    assert balancer["image"].startswith("nginx") and set(balancer["depends_on"]) == set(apps)
    assert any(volume.startswith("./nginx.conf:") for volume in balancer["volumes"])
    expected = deploy.nginx_config([f"{name}:8501" for name in apps], "0.0.0.0:8501", [9001, 9002])
    assert (DEPLOY / "nginx.conf").read_text() == expected


def test_start_prints_its_config_and_refuses_zero_processes():
    printed = subprocess.run([sys.executable, str(DEPLOY / "start.py"), "--processes", "3", "--print-config"],
                             capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0 and printed.stdout.count("upstream grpo_viz_b") == 3
    refused = subprocess.run([sys.executable, str(DEPLOY / "start.py"), "--processes", "0"], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode != 0 and "at least 1" in refused.stderr
