"""The Lab: published claims about GRPO and PPO, each reproduced by a run, with the paper's number beside ours.

Each experiment is one module of this package that defines ``EXPERIMENT``, an :class:`Experiment` record: its
claim, its source, and ``run(**kwargs) -> LabResult`` (figures, a "paper vs ours" table, and sentences computed
from the run). No Streamlit here: the page ``app_pages/6_lab.py`` only draws what ``run`` returns.

``EXPERIMENTS`` collects the modules of ``MODULES`` that exist, in the order of the issue's list, so an
experiment is added by adding its module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import plotly.graph_objects as go

# The experiments in the order the page lists them; a module not written yet is skipped.
MODULES = ("kl_estimators", "kl_optimum", "zero_variance", "clip_higher", "length_bias", "gspo", "spurious",
           "over_optimization")


@dataclass
class LabResult:
    """What one run of an experiment shows.

    ``table`` rows are {"quantity", "paper", "ours", "tolerance"} (numbers where they are numbers, so a test can
    compare them); ``text`` holds sentences whose numbers come from this run.
    """

    figures: list[go.Figure] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Experiment:
    """One claim of one paper, and the run that checks it."""

    key: str  # the URL's ?experiment= value
    title: str
    claim: str  # one sentence
    source: str  # paper (authors, year)
    link: str
    run: Callable[..., LabResult]
    seconds: float = 1.0  # about how long ``run()`` takes: the page runs it on opening below 2 s, else on a click


def row(quantity: str, paper, ours, tolerance) -> dict:
    """One line of a paper-vs-ours table."""
    return {"quantity": quantity, "paper": paper, "ours": ours, "tolerance": tolerance}


def _collect() -> dict[str, Experiment]:
    experiments = {}
    for name in MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise  # a module that exists but fails to import is a bug, not a missing experiment
            continue
        experiments[module.EXPERIMENT.key] = module.EXPERIMENT
    return experiments


EXPERIMENTS: dict[str, Experiment] = _collect()

__all__ = ["EXPERIMENTS", "Experiment", "LabResult", "MODULES", "row"]
