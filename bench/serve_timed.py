"""`streamlit run` with a clock on every rerun request, from inside the server (used by bench/load_test.py).

    python bench/serve_timed.py <log file> run app.py [streamlit options]

``{pid}`` in the log file's name becomes the process id (bench/load_server.py --processes N runs N of them).

Each rerun request a browser sends adds one line to the log when the run that answers it has finished:
`<seconds> <page> <full|fragment>`, the seconds from the request's arrival at the server until that run's
"script finished" message was queued for the browser. It includes waiting for the session's previous run (one
run at a time per session) and for the cores, and leaves out the network and everything the browser does, so it
is the server's share of a click whichever machine draws the page. A run cut short by a newer click answers
nothing; its requests are answered by the run that replaces it.
"""

from __future__ import annotations

import os
import sys
import time

from streamlit.runtime.app_session import AppSession
from streamlit.runtime.scriptrunner import ScriptRunnerEvent
from streamlit.web import cli

FINISHED = {ScriptRunnerEvent.SCRIPT_STOPPED_WITH_SUCCESS, ScriptRunnerEvent.FRAGMENT_STOPPED_WITH_SUCCESS}


def install_clock(log) -> None:
    """Wrap the two AppSession methods a rerun passes through; both run on the server's event loop thread."""
    waiting: dict[str, list[tuple[float, str, str]]] = {}  # session id: requests not yet picked up by a run
    in_run: dict[str, list[tuple[float, str, str]]] = {}  # session id: requests the current run answers
    handle_backmsg = AppSession.handle_backmsg
    on_event = AppSession._handle_scriptrunner_event_on_event_loop

    def timed_handle_backmsg(self, msg) -> None:
        if msg.WhichOneof("type") == "rerun_script":
            state = msg.rerun_script
            kind = "fragment" if state.fragment_id else "full"
            waiting.setdefault(self.id, []).append((time.monotonic(), state.page_name or "main", kind))
        handle_backmsg(self, msg)

    def timed_on_event(self, sender, event, *args, **kwargs) -> None:
        if event == ScriptRunnerEvent.SCRIPT_STARTED:
            in_run[self.id] = in_run.pop(self.id, []) + waiting.pop(self.id, [])
        elif event in FINISHED:
            now = time.monotonic()
            for arrived, page, kind in in_run.pop(self.id, []):
                log.write(f"{now - arrived:.6f} {page} {kind}\n")
        on_event(self, sender, event, *args, **kwargs)

    AppSession.handle_backmsg = timed_handle_backmsg
    AppSession._handle_scriptrunner_event_on_event_loop = timed_on_event


if __name__ == "__main__":
    log_path = sys.argv.pop(1).replace("{pid}", str(os.getpid()))  # one log a process behind a balancer
    install_clock(open(log_path, "a", buffering=1))
    sys.exit(cli.main())
