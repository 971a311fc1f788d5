"""A browser tab without a browser: Streamlit's websocket protocol, for tests that talk to a real `streamlit run`."""

from __future__ import annotations

import asyncio
import threading

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}


async def run_first_page(ws, timeout: float = 120) -> tuple[str, str]:
    """Ask the server for the page's first run, as a new tab does, and read it to its end: the session's id (empty
    when it resumed one) and the last text element's body. Fails on an exception element or a run that did not
    finish."""
    msg = BackMsg()
    msg.rerun_script.page_name = ""
    await ws.send(msg.SerializeToString())
    session_id = text = ""
    while True:
        forward = ForwardMsg()
        forward.ParseFromString(await asyncio.wait_for(ws.recv(), timeout))
        kind = forward.WhichOneof("type")
        if kind == "new_session":
            session_id = forward.new_session.initialize.session_id
        elif kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
            element = forward.delta.new_element
            assert element.WhichOneof("type") != "exception", element.exception.message
            if element.WhichOneof("type") == "text":
                text = element.text.body
        elif kind == "script_finished" and forward.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
            assert forward.script_finished in DONE
            return session_id, text


def run(coroutine):
    """``asyncio.run`` on a thread of its own: the browser tests' Playwright keeps an event loop running on the main
    thread for the whole session, where ``asyncio.run`` refuses to start."""
    outcome = {}

    def target():
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:  # re-raised on the caller's thread, assertion failures included
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
