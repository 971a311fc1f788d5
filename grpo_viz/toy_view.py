"""The toy's chart for each stage: the picture beside the formula on every page that steps the toy."""

from __future__ import annotations

import plotly.graph_objects as go

from .stages import GRPO_STAGES
from .stepper import IterationTrace


def toy_stage_figure(trace: IterationTrace, toy, stage: int, step_index: int, words, state: str,
                     narrow: bool = False) -> go.Figure:
    """The toy's chart for ``stage`` of ``trace`` at inner step ``step_index`` (``toy``: explain.toy_numbers).

    ``narrow``: drawn in a half-width column, where the ratios' value labels would run into each other and a
    legend above the plot would cover the title.
    """
    return GRPO_STAGES[stage].chart(trace, toy, step_index, words, state, narrow)
