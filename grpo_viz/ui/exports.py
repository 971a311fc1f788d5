"""Downloads on every stepping page: CSVs made only when clicked, and the TRL script with these settings."""

from __future__ import annotations

import mimetypes
import weakref
from collections.abc import Callable

import streamlit as st


def deferred(build: Callable[[object], str], source: object, attribute: str | None = None) -> Callable[[], str]:
    """A download's data, made only when it is clicked: ``build(source)`` (or ``build(source.attribute)``).

    ``source`` is held weakly. Streamlit keeps a download button's callable after a session that timed out on
    disconnect is dropped (that session is never shut down), and a lambda written in a page holds the page's
    globals: the session's runs, policies and language-model copy, ~17 MB that never came back. Built here, the
    callable holds only a weak reference and a function of the shared core.
    """
    ref = weakref.ref(source)

    def make() -> str:
        obj = ref()
        if obj is None:  # the session moved on: this button is stale
            return ""
        return build(obj if attribute is None else getattr(obj, attribute))

    return make


def export_row(downloads: list[tuple[str, object, str, bool]], trl_script: str) -> None:
    """Download buttons ((label, data or a ``deferred`` callable, file name, enabled)) and a TRL script that
    trains the language-model task with these settings, with one line that says what it trains.

    The script is shown only on request: a code block loads Streamlit's 1.5 MB syntax highlighter, ~0.4 s of
    every student's first page load, even inside a closed expander.
    """
    downloads = [*downloads, ("⬇ These settings as a TRL script", trl_script, "grpo_trl.py", True)]
    row = st.container(horizontal=True)
    for label, data, file_name, enabled in downloads:
        row.download_button(label, data, file_name, mimetypes.guess_type(file_name)[0], width="stretch",
                            key=f"download_{file_name}", disabled=not enabled)
    # The script's first line is its docstring, "Trains <model> ... with the app's settings."
    what = trl_script.split("\n", 1)[0].strip('"').rstrip(".")
    if st.toggle(f"Take it to TRL: a script that {what[:1].lower()}{what[1:]}", key="show_trl"):
        st.code(trl_script, language="python")
