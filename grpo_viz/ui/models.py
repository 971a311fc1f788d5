"""The language models a page trains on: loaded once per server process, shared read-only by every session."""

from __future__ import annotations

import streamlit as st

from ..policies.loading import LoadedModel, load_model


@st.cache_resource(show_spinner=False, max_entries=4)
def shared_model(kind: str, source: str) -> LoadedModel:
    """Loaded once per server process and never trained: every session makes its own policy on top of it."""
    return load_model(kind, source)


def load_chosen_model(choice: dict) -> tuple[LoadedModel | None, str | None]:
    """The model ``lm_sidebar`` chose, from the shared cache: (LoadedModel, None), or (None, a sentence to show)."""
    if choice["kind"] == "hf" and not choice["source"]:
        return None, "Type a model folder (or a Hugging Face id already in the local cache) in the sidebar."
    label = "SmolLM2 (the first load converts the GGUF once, about 20 s)" if choice["kind"] == "smollm2" else "the model"
    try:
        with st.spinner(f"Loading {label}…"):
            return shared_model(choice["kind"], choice["source"]), None
    except ValueError as err:
        return None, str(err)
