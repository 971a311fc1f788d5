"""Runs a session trains for many iterations: the Play timer, training to a target under a progress bar, and the
session's own language-model run, trained by a background worker and started again from π_ref when its settings
change."""

from __future__ import annotations

import uuid

import streamlit as st

from ..config import Settings
from ..policies.loading import LoadedModel, make_policy
from ..training import LM_EVAL_PROBLEMS, LM_EVAL_SAMPLES, LMTraining, LMWorker, LMWorkerSlot, RecordedRun

PLAY_INTERVAL_S = 0.4  # one Play tick: a few iterations, then the charts are redrawn
TICKS_PER_RUN = 40  # Play reaches the target in about this many ticks, whatever the number of iterations
LM_POLL_S = 1.0  # while a language-model worker runs, the page redraws its snapshot this often, or once an
LM_POLL_MAX_S = 3.0  # iteration when iterations are slower, up to this: each redraw competes with the worker's CPU


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


@st.cache_resource(scope="session", on_release=LMWorkerSlot.close, show_spinner=False)
def _worker_slot(session_token: str) -> LMWorkerSlot:
    return LMWorkerSlot()


def session_worker_slot() -> LMWorkerSlot:
    """This session's workers. A session-scoped resource is released when the session disconnects (a closed tab,
    a lost connection): ``LMWorkerSlot.close`` then asks every worker to stop after its current iteration. The
    token from the session's own state keeps sessions apart where they share an id (AppTest's do)."""
    token = st.session_state.setdefault("lm_slot_token", uuid.uuid4().hex)
    return _worker_slot(token)


def session_lm_worker(loaded: LoadedModel, choice: dict, task, lm_settings: Settings, prompts_per_iteration: int,
                      eval_every: int, eval_problems: int = LM_EVAL_PROBLEMS,
                      eval_samples: int = LM_EVAL_SAMPLES, held_out: bool = True) -> LMWorker:
    """This session's language-model run and its background worker (``session_state.lm_worker``): kept while the
    model, task and settings stay; when any of them changes (or Reset), a new run from π_ref, with a toast, and the
    old worker told to stop."""
    state = st.session_state
    state.setdefault("lm_generation", 0)  # Reset bumps it: same settings, a new run
    lm_key = (choice["kind"], choice["source"], task, lm_settings, int(prompts_per_iteration), int(eval_every),
              int(eval_problems), int(eval_samples), bool(held_out), state.lm_generation)
    slot = session_worker_slot()
    if state.get("lm_training_key") != lm_key or "lm_worker" not in state:
        if "lm_training_key" in state and state.lm_training_key[:-1] != lm_key[:-1]:
            st.toast("LM settings changed: the language model starts again from π_ref.", icon="🔄")
        state.lm_training_key = lm_key
        # this session's own trainable copy on the shared read-only base (as on the Toy vs language model page)
        policy = make_policy(loaded, max_new_tokens=lm_settings.max_new_tokens, precision=lm_settings.lm_precision)
        lm = LMTraining(policy, task, lm_settings,
                        chat=loaded.chat, prompts_per_iteration=int(prompts_per_iteration),
                        eval_every=int(eval_every), eval_problems=int(eval_problems), eval_samples=int(eval_samples),
                        held_out=held_out)
        state.lm_worker = LMWorker(lm, name=f"lm-worker {loaded.name}")
    if slot.get("lm", lm_key) is not state.lm_worker:
        slot.put("lm", lm_key, state.lm_worker)  # a new run, or a new slot after a reconnection
    return state.lm_worker


def restart_lm_training() -> None:
    """A button's callback: the next run of the page starts the language model again from π_ref (the running
    worker, if any, is told to stop)."""
    state = st.session_state
    if "lm_worker" in state:
        state.lm_worker.request_stop()
    state.lm_generation = state.get("lm_generation", 0) + 1


def start_lm_worker(iterations: int) -> None:
    """A button's callback: train ``iterations`` more in the background."""
    st.session_state.lm_worker.start(int(iterations))


def stop_lm_worker() -> None:
    """A button's callback: stop after the iteration under way."""
    st.session_state.lm_worker.request_stop()


def rerun_if_worker_switched(running: bool, polling: bool) -> None:
    """A fragment's timer is set when the page runs in full (``polling``): when a worker starts or ends
    (``running``: any of the fragment's workers runs now), run the page in full again so the timer follows."""
    if running != polling:
        st.rerun()


def start_reproduction(loaded: LoadedModel, recording: RecordedRun, task, iterations: int) -> None:
    """A button's callback: a fresh copy of the recorded model, trained ``iterations`` iterations in the background
    with the recording's own settings (``session_state.replay_worker``), to compare with the recording."""
    state = st.session_state
    state.replay_generation = state.get("replay_generation", 0) + 1
    policy = make_policy(loaded, max_new_tokens=recording.settings.max_new_tokens,
                         precision=recording.settings.lm_precision)
    worker = LMWorker(recording.training(policy, task, chat=loaded.chat), name=f"lm-replay {loaded.name}")
    state.replay_worker = worker
    state.replay_path = recording.path
    session_worker_slot().put("replay", (recording.path, state.replay_generation), worker)
    worker.start(int(iterations))


def session_replay_worker(recording: RecordedRun) -> LMWorker | None:
    """The reproduction this session started of ``recording``, if any."""
    state = st.session_state
    return state.get("replay_worker") if state.get("replay_path") == recording.path else None


def poll_seconds(*workers: LMWorker | None) -> float | None:
    """The fragment's ``run_every`` for these workers: None when none runs, else about one redraw an iteration of
    the fastest running one, between LM_POLL_S and LM_POLL_MAX_S seconds."""
    running = [w for w in workers if w is not None and w.running]
    if not running:
        return None
    per_it = min((w.snapshot().seconds_per_iteration or LM_POLL_S) for w in running)
    return min(max(per_it, LM_POLL_S), LM_POLL_MAX_S)
