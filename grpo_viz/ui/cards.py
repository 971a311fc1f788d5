"""Text around a stage: notices about degenerate settings, a card's equations, the self-study tour."""

from __future__ import annotations

import streamlit as st

from ..config import Settings


def settings_notices(settings: Settings) -> None:
    """Plain words for settings that are legal but degenerate."""
    if settings.epsilon_low == 0 or settings.epsilon_high == 0:
        st.info("ε = 0 makes the clip band a single edge at 1: as soon as the policy moves on a sample in the "
                "direction its advantage pushes, that sample is clipped and stops contributing gradient.", icon="ℹ️")


def latex_lines(lines: list[str]) -> None:
    """Equations one under the other, typeset as one block: one KaTeX render per card, not one per line."""
    if lines:
        st.latex(r"\begin{gathered}" + r"\\[0.4em]".join(lines) + r"\end{gathered}")


def tour_card(tour: tuple[str, str, str]) -> None:
    """A stage's "try this" prompt and its "check yourself" question, whose answer opens on click."""
    try_this, question, answer = tour
    left, right = st.columns(2)
    left.info(f"**Try this:** {try_this}", icon="🧪")
    with right.expander(f"**Check yourself:** {question}"):
        st.markdown(answer)
