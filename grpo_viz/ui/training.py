"""Runs a session trains for many iterations: the Play timer, training to a target under a progress bar, and the
session's own language-model run, started again from π_ref when its settings change."""

from __future__ import annotations

import streamlit as st

from ..config import Settings
from ..policies.loading import LoadedModel, make_policy
from ..training import LMTraining

PLAY_INTERVAL_S = 0.4  # one Play tick: a few iterations, then the charts are redrawn
TICKS_PER_RUN = 40  # Play reaches the target in about this many ticks, whatever the number of iterations


class PlayTimer:
    """Play: a switch (``session_state[key]``) whose ticks are a fragment's reruns, ``run_every`` seconds apart.

    The fragment's timer is set when the page runs in full, so it follows the switch as it was then
    (``playing_at_start``); a change of the switch inside the fragment asks for a full rerun
    (``rerun_if_switched``) to start or stop the timer. Make one per page run, before the fragment is defined.
    """

    def __init__(self, key: str = "training_playing", interval_s: float = PLAY_INTERVAL_S,
                 ticks_per_run: int = TICKS_PER_RUN) -> None:
        self.key, self.interval_s, self.ticks_per_run = key, interval_s, ticks_per_run
        st.session_state.setdefault(key, False)
        self.playing_at_start = st.session_state[key]

    @property
    def run_every(self) -> float | None:
        """The fragment's ``run_every``: ticking while Play was on when the page ran in full."""
        return self.interval_s if self.playing_at_start else None

    @property
    def playing(self) -> bool:
        return st.session_state[self.key]

    def pause(self) -> None:
        st.session_state[self.key] = False

    def tick(self, run, target: int) -> None:
        """A Play tick trains first, before the Play switch is drawn, so reaching the target can switch it off:
        about ``target / ticks_per_run`` iterations of ``run`` (anything with ``iteration`` and ``step(n)``)."""
        if self.playing and self.playing_at_start:
            per_tick = max(1, round(target / self.ticks_per_run))
            run.step(min(per_tick, max(target - run.iteration, 0)))
            if run.iteration >= target:
                self.pause()

    def switch(self, container, disabled: bool, help: str) -> None:
        """Play is a switch, not a button: a switch's state travels with every rerun request, so pressing it while
        the ticks are running is never lost (a button's one-shot click can be)."""
        container.toggle("Play", key=self.key, disabled=disabled, help=help)

    def rerun_if_switched(self) -> None:
        if self.playing != self.playing_at_start:
            st.rerun()  # a full rerun starts or stops the fragment's timer


def train_to(run, target: int, chunk: int = 10) -> None:
    """Train ``run`` to iteration ``target``, ``chunk`` iterations at a time, under a progress bar."""
    progress = st.progress(0.0, text="Training…")
    start = run.iteration
    while run.iteration < target:
        run.step(min(chunk, target - run.iteration))
        progress.progress((run.iteration - start) / max(target - start, 1),
                          text=f"Training… iteration {run.iteration} of {target}")
    progress.empty()


def session_lm_training(loaded: LoadedModel, choice: dict, task, lm_settings: Settings, prompts_per_iteration: int,
                        eval_every: int) -> LMTraining:
    """This session's language-model run (``session_state.lm_training``): kept while the model, task and settings
    stay, started again from π_ref, with a toast, when any of them changes."""
    state = st.session_state
    lm_key = (choice["kind"], choice["source"], task, lm_settings, int(prompts_per_iteration), int(eval_every))
    if state.get("lm_training_key") != lm_key:
        if "lm_training_key" in state:
            st.toast("LM settings changed: the language model starts again from π_ref.", icon="🔄")
        state.lm_training_key = lm_key
        # this session's own trainable copy on the shared read-only base (as on the Toy vs language model page)
        state.lm_training = LMTraining(make_policy(loaded, max_new_tokens=lm_settings.max_new_tokens), task,
                                       lm_settings, chat=loaded.chat, prompts_per_iteration=int(prompts_per_iteration),
                                       eval_every=int(eval_every))
    return state.lm_training


def restart_lm_training() -> None:
    """A button's callback: the next run of the page starts the language model again from π_ref."""
    st.session_state.pop("lm_training_key", None)


def advance_lm_training(lm: LMTraining, iterations: int | None) -> None:
    """The start accuracy, measured once; then, when ``iterations``, that many more iterations (never past the
    run's end) under a progress bar, and the accuracy where they end. ValueError if the model cannot train."""
    if not lm.accuracy:
        with st.spinner("Measuring the start accuracy…"):
            lm.evaluate_now()
    if iterations:
        progress = st.progress(0.0, text="Training the language model…")
        lm.train(iterations, on_iteration=lambda iteration, start, target: progress.progress(
            (iteration - start) / max(target - start, 1),
            text=f"Training the language model… iteration {iteration} of {target}"))
        progress.empty()
