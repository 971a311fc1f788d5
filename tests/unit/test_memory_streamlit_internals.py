"""grpo_viz.ui.memory reaches into Streamlit's runtime (its session manager's storage and event loop). These tests run
it inside a real `streamlit run` and fail loudly when a Streamlit upgrade moves what it reads; the app itself then
falls back to Streamlit's own behaviour (closed sessions reaped at the next disconnect)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest
import websockets

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from conftest import start_streamlit  # noqa: E402

from tests.streamlit_ws import run, run_first_page  # noqa: E402

PROBE = f"""
import importlib.util
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

spec = importlib.util.spec_from_file_location("memory", {str(ROOT / "grpo_viz" / "ui" / "memory.py")!r})
memory = importlib.util.module_from_spec(spec)
spec.loader.exec_module(memory)
reaped = memory.forget_timed_out_sessions()
st.text(f"ME={{get_script_run_ctx().session_id}} REAPED={{reaped}}")
"""


async def probe(url: str, keep_open: bool = False):
    """One tab's run of the probe script: its session id, and how many closed sessions it shut down."""
    ws = await websockets.connect(url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit"],
                                  max_size=None, open_timeout=60)
    _, text = await run_first_page(ws, timeout=60)
    fields = dict(part.split("=", 1) for part in text.split())
    if not keep_open:
        await ws.close()
    return ws, fields["ME"], int(fields["REAPED"])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe")
    (folder / "probe.py").write_text(PROBE)
    proc, url = start_streamlit(str(folder / "probe.py"), cwd=folder,
                                extra_args=["--server.disconnectedSessionTTL=1", "--runner.postScriptGC=false"])
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_a_closed_session_past_its_ttl_is_shut_down_without_another_disconnect(server):
    """Streamlit reaps an expired session only when another tab disconnects; the collector does it itself."""
    async def scenario():
        closed_ws, _, _ = await probe(server, keep_open=True)
        await closed_ws.close()
        await asyncio.sleep(2.5)  # past its 1 s reconnection time, and no other tab has disconnected since
        ws, _, reaped = await probe(server, keep_open=True)
        try:
            assert reaped == 1, "forget_timed_out_sessions() no longer reaches Streamlit's session storage"
            again, _, reaped_again = await probe(server, keep_open=True)
            await again.close()
            assert reaped_again == 0  # shut down once: Streamlit's storage no longer holds it
        finally:
            await ws.close()

    run(scenario())


def test_outside_a_server_there_is_nothing_to_reach():
    spec = importlib.util.spec_from_file_location("memory_outside", ROOT / "grpo_viz" / "ui" / "memory.py")
    memory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(memory)
    assert memory.forget_timed_out_sessions() == 0
