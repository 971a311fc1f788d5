"""The language models a page trains on: loaded once per server process, shared read-only by every session.

Which models a choice may load is the operator's setting (``grpo_viz.policies.access``, read from the server's
environment), never the visitor's link.
"""

from __future__ import annotations

import logging

import streamlit as st

from ..policies.access import LoadRequest, ModelAccess
from ..policies.loading import LoadedModel, load_hf, load_model

log = logging.getLogger(__name__)
_logged_problems: set[str] = set()


def model_access() -> ModelAccess:
    """The operator's settings as the environment holds them now; a setting it ignored goes to the server's log once."""
    access = ModelAccess.from_env()
    for problem in access.problems:
        if problem not in _logged_problems:
            _logged_problems.add(problem)
            log.warning(problem)
    return access


def model_choices() -> dict[str, str]:
    """The sidebar's model choices (URL value -> label) this server offers."""
    return model_access().choices()


@st.cache_resource(show_spinner=False, max_entries=4)
def shared_model(kind: str, source: str, name: str = "", offered: bool = False) -> LoadedModel:
    """Loaded once per server process and never trained: every session makes its own policy on top of it.

    The size check runs here, on a cache miss only: a model already loaded is not weighed against the memory it
    occupies itself. A ``ValueError`` is not cached, so a refused model is checked again on the next try."""
    request = LoadRequest(kind, source, name, offered)
    model_access().check_size(request)
    if not offered:
        return load_model(kind, source)
    loaded = load_hf(source, name=name)
    loaded.source = "the models this server offers"  # the operator's path stays on the server
    return loaded


def load_chosen_model(choice: dict) -> tuple[LoadedModel | None, str | None]:
    """The model ``lm_sidebar`` chose, from the shared cache: (LoadedModel, None), or (None, a sentence to show)."""
    try:
        request = model_access().request(choice["kind"], choice.get("source", ""))
    except ValueError as err:
        return None, str(err)
    if request.kind == "hf" and not request.source:
        return None, "Type a model folder (or a Hugging Face id already in the local cache) in the sidebar."
    label = {"smollm2": "SmolLM2 (the first load converts the GGUF once, about 20 s)", "builtin": "the built-in model"}
    try:
        with st.spinner(f"Loading {label.get(request.kind, request.name or 'the model')}…"):
            return shared_model(request.kind, request.source, request.name, request.offered), None
    except ValueError as err:
        if request.offered and "this server's limit" not in str(err):
            log.error("GRPO_VIZ_MODELS entry %r could not be loaded: %s", request.name, err)
            return None, (f"The model {request.name} this server offers could not be loaded; the server's log says "
                          "why (its operator's GRPO_VIZ_MODELS entry needs fixing).")
        return None, str(err)
