"""A class's server on one machine: N grpo-viz processes behind nginx, each student's tab kept on one process.

    python deploy/start.py [--processes 2] [--port 8501] [--address 0.0.0.0]

Starts N ``streamlit run app.py`` processes on loopback ports (one torch thread each, loading local model folders
off), then Debian's nginx in the foreground as a child, listening on ``--address:--port`` with a configuration
written for N (``nginx_config``). Ctrl-C or SIGTERM stops nginx and every app process. ``--print-config`` prints the
configuration and exits.

Why nginx is set up this way:
- One Python process runs one script at a time (the GIL), so a class needs as many processes as cores, and a
  balancer in front of them.
- A Streamlit session lives in the process that opened it: its websocket, its session state, the files its
  download buttons serve. Every request of a tab must reach that process. ``ip_hash`` keys on the client's
  address, which is one address for a whole hall behind a university's NAT (and for every tab on loopback), so
  the balancer pins a tab with a cookie instead: a request without it goes round robin to one of N internal
  listeners, each of which proxies to its own process and sets ``grpo_viz_backend=b<i>``; a request with it
  goes straight to that process, with the others as backups should it be down.
- Websockets need HTTP/1.1 with the ``Upgrade`` and ``Connection`` headers passed on, and a long read timeout
  (a student may read a slide for minutes without a message). ``Host`` is passed with its port: Streamlit
  refuses a websocket whose ``Origin`` differs from its ``Host``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
COOKIE = "grpo_viz_backend"
# What every app process of a class runs with: one torch thread per request (with one thread per core, every
# large tensor operation waits for both cores, which the other processes hold), and no model folders from a
# visitor's link (the operator decides which models a shared server loads).
APP_ENV = {"OMP_NUM_THREADS": "1", "GRPO_VIZ_ALLOW_LOCAL_MODELS": "0"}
APP_ARGS = ["--server.headless=true", "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"]

_PROXY = """\
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 1d;
            proxy_send_timeout 1d;
            proxy_buffering off;"""


def nginx_config(backends: list[str], listen: str, internal_ports: list[int], prefix: Path | None = None) -> str:
    """nginx.conf for the app processes at ``backends`` ("host:port" each), served at ``listen`` ("address:port").

    ``internal_ports`` are loopback ports inside nginx, one per backend, where a tab's first request is assigned
    its process and given the cookie. ``prefix`` is a folder for nginx's pid and temporary files (None: a
    container's defaults).
    """
    if len(internal_ports) != len(backends) or not backends:
        raise ValueError("one internal port per backend, and at least one backend")
    names = [f"b{i + 1}" for i in range(len(backends))]
    lines = ["# written by deploy/start.py (nginx_config): edit that, not this", "worker_processes 1;",
             "worker_rlimit_nofile 16384;", "error_log stderr warn;"]
    if prefix is not None:
        lines.append(f"pid {prefix / 'nginx.pid'};")
    lines += ["events { worker_connections 8192; }", "", "http {", "    access_log off;",
              "    map $http_upgrade $connection_upgrade { default upgrade; '' close; }"]
    if prefix is not None:
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            lines.append(f"    {kind}_temp_path {prefix / (kind + '_temp')};")
    lines.append(f"    # a tab's cookie names its process; without one (or an unknown one) it is assigned one")
    lines.append(f"    map $cookie_{COOKIE} $grpo_viz_upstream {{")
    lines.append("        default grpo_viz_new;")
    lines += [f"        {name} grpo_viz_{name};" for name in names]
    lines.append("    }")
    for i, (name, backend) in enumerate(zip(names, backends)):
        others = [b for j, b in enumerate(backends) if j != i]
        lines.append(f"    upstream grpo_viz_{name} {{ server {backend};"
                     + "".join(f" server {other} backup;" for other in others) + " }")
    lines.append("    upstream grpo_viz_new { " + " ".join(f"server 127.0.0.1:{p};" for p in internal_ports) + " }")
    for name, port in zip(names, internal_ports):
        lines += ["    server {", f"        listen 127.0.0.1:{port};", "        location / {",
                  f"            proxy_pass http://grpo_viz_{name};", _PROXY,
                  f'            add_header Set-Cookie "{COOKIE}={name}; Path=/; HttpOnly; SameSite=Lax";',
                  "        }", "    }"]
    lines += ["    server {", f"        listen {listen};", "        location / {",
              "            proxy_pass http://$grpo_viz_upstream;", _PROXY, "        }", "    }", "}", ""]
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with code {proc.returncode} before {url} answered")
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")


@dataclass
class Layout:
    """The running processes of a class: ``url`` is the balancer's address, ``apps`` the app processes."""

    url: str
    apps: list[subprocess.Popen]
    nginx: subprocess.Popen | None
    folder: Path
    app_urls: list[str] = field(default_factory=list)

    def stop(self) -> None:
        for proc in [self.nginx, *self.apps]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [self.nginx, *self.apps]:
            if proc is not None:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def start(processes: int = 2, port: int | None = None, address: str = "127.0.0.1", app_dir: Path = ROOT,
          launcher: list[str] | None = None, extra_args: list[str] | None = None,
          extra_env: dict[str, str] | None = None, quiet: bool = True) -> Layout:
    """Start ``processes`` app processes and nginx in front of them; returns when the balancer answers.

    ``launcher`` replaces ``python -m streamlit`` (bench/load_server.py runs each process under a clock);
    ``port`` None picks a free one. Raises RuntimeError when nginx is not installed or a process fails to start.
    """
    if not Path(NGINX).exists():
        raise RuntimeError("nginx is not installed (Debian: apt-get install -y nginx)")
    folder = Path(tempfile.mkdtemp(prefix="grpo-viz-deploy-"))
    folder.chmod(0o755)  # nginx's workers (user nobody when started as root) read the temp folders under it
    out = None if not quiet else subprocess.DEVNULL
    layout = Layout(url="", apps=[], nginx=None, folder=folder)
    try:
        app_ports = [free_port() for _ in range(processes)]
        for app_port in app_ports:
            layout.apps.append(subprocess.Popen(
                [*(launcher or [sys.executable, "-m", "streamlit"]), "run", "app.py", f"--server.port={app_port}",
                 "--server.address=127.0.0.1", *APP_ARGS, *(extra_args or [])],
                cwd=app_dir, env={**os.environ, **APP_ENV, **(extra_env or {})}, stdout=out, stderr=out))
            layout.app_urls.append(f"http://127.0.0.1:{app_port}")
        port = port or free_port()
        config = folder / "nginx.conf"
        config.write_text(nginx_config([f"127.0.0.1:{p}" for p in app_ports], f"{address}:{port}",
                                       [free_port() for _ in range(processes)], prefix=folder))
        for app_url, proc in zip(layout.app_urls, layout.apps):
            wait_healthy(app_url, proc)
        # -e: its log before the configuration is read goes to stderr too (not /var/log/nginx, root's only)
        layout.nginx = subprocess.Popen([NGINX, "-e", "stderr", "-p", str(folder), "-c", str(config),
                                         "-g", "daemon off;"], stdout=out, stderr=None)
        layout.url = f"http://{'127.0.0.1' if address in ('0.0.0.0', '') else address}:{port}"
        wait_healthy(layout.url, layout.nginx, timeout_s=15)
        return layout
    except BaseException:
        layout.stop()
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2,
                        help="app processes (default: one per core)")
    parser.add_argument("--port", type=int, default=8501, help="the balancer's port")
    parser.add_argument("--address", default="0.0.0.0", help="the balancer's address")
    parser.add_argument("--print-config", action="store_true", help="print nginx.conf for these settings and exit")
    args = parser.parse_args()
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.print_config:
        print(nginx_config([f"127.0.0.1:{8601 + i}" for i in range(args.processes)], f"{args.address}:{args.port}",
                           [9001 + i for i in range(args.processes)]))
        return
    try:
        layout = start(args.processes, args.port, args.address, quiet=False)
    except RuntimeError as error:
        sys.exit(f"deploy/start.py: {error}")
    print(f"grpo-viz: {args.processes} processes behind nginx at {layout.url} (Ctrl-C stops them)", flush=True)
    stop = lambda *_: (layout.stop(), sys.exit(0))  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        for proc in [layout.nginx, *layout.apps]:
            if proc.poll() is not None:
                layout.stop()
                sys.exit(f"deploy/start.py: {proc.args[0]} exited with code {proc.returncode}; stopped the rest")
        time.sleep(1)


if __name__ == "__main__":
    main()
