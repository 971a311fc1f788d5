"""The background worker that trains a session's language model: it stops within one iteration, two workers
training at once get their own numbers, and no thread is left behind."""

import threading
import time
from dataclasses import replace

import pytest

from grpo_viz.config import Settings
from grpo_viz.policies.loading import load_builtin, make_policy
from grpo_viz.tasks import TASKS
from grpo_viz.training import LMTraining, LMWorker, LMWorkerSlot

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SETTINGS = replace(Settings(), group_size=4, max_new_tokens=6)


@pytest.fixture(scope="module")
def builtin():
    return load_builtin()


def new_run(builtin, seed: int = 0, task: str = "sum", **kwargs) -> LMTraining:
    settings = replace(SETTINGS, seed=seed)
    return LMTraining(make_policy(builtin, max_new_tokens=6), TASKS[task], settings, prompts_per_iteration=2,
                      eval_every=2, eval_problems=4, eval_samples=2, **kwargs)


def wait_until(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def worker_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_a_worker_trains_in_the_background_as_lm_training_does_in_the_foreground(builtin):
    foreground = new_run(builtin)
    foreground.train(3)
    worker = LMWorker(new_run(builtin), name="lm-worker test-same")
    assert worker.snapshot().status == "idle" and worker.snapshot().iteration == 0
    assert worker.start(3)
    assert not worker.start(3)  # busy: a second Run while one trains is refused, not queued
    worker.join()
    snap = worker.snapshot()
    assert snap.status == "done" and snap.iteration == 3 and not snap.running
    assert snap.columns["mean_reward"] == foreground.columns()["mean_reward"]
    assert snap.columns["loss"] == foreground.columns()["loss"]
    assert [it for it, _ in snap.accuracy] == [it for it, _ in foreground.accuracy] == [0, 2, 3]
    assert snap.accuracy == tuple(foreground.accuracy)
    assert len(snap.completions) == 8 and {c.prompt for c in snap.completions} <= set(
        TASKS["sum"].prompts(0, 2, n=2))  # the latest iteration's prompts
    assert not worker_threads("lm-worker test-same")


def test_start_zero_only_measures_the_start_accuracy(builtin):
    worker = LMWorker(new_run(builtin), name="lm-worker test-zero")
    assert worker.start(0)
    worker.join()
    snap = worker.snapshot()
    assert snap.status == "done" and snap.iteration == 0 and [it for it, _ in snap.accuracy] == [0]
    assert not worker.start(0)  # nothing left to measure


def test_stop_takes_effect_within_one_iteration(builtin):
    worker = LMWorker(new_run(builtin), name="lm-worker test-stop")
    worker.start(100)
    wait_until(lambda: worker.snapshot().iteration >= 2)
    at_request = worker.lm.iteration
    worker.request_stop()
    assert worker.stop(timeout=60)
    snap = worker.snapshot()
    assert snap.status == "stopped" and not snap.running
    assert at_request <= snap.iteration <= at_request + 1  # the iteration under way finishes, no other starts
    assert snap.accuracy[-1][0] <= at_request + 1  # nor an evaluation of a later iteration
    assert not worker_threads("lm-worker test-stop")
    # stopped is not lost: Run again continues from where it stopped
    worker.start(1)
    worker.join()
    assert worker.snapshot().iteration == snap.iteration + 1 and worker.snapshot().status == "done"


def test_two_workers_training_at_once_each_get_their_own_numbers(builtin):
    alone = {}
    for seed in (0, 1):
        run = new_run(builtin, seed=seed)
        run.train(4)
        alone[seed] = run.columns()
    assert alone[0]["mean_reward"] != alone[1]["mean_reward"] or alone[0]["loss"] != alone[1]["loss"]
    workers = {seed: LMWorker(new_run(builtin, seed=seed), name=f"lm-worker test-iso-{seed}") for seed in (0, 1)}
    for worker in workers.values():
        worker.start(4)
    wait_until(lambda: all(w.snapshot().iteration >= 1 for w in workers.values()))
    assert all(w.running or w.snapshot().status == "done" for w in workers.values())
    for worker in workers.values():
        worker.join()
    for seed, worker in workers.items():
        cols = worker.snapshot().columns
        for key in ("mean_reward", "loss", "kl", "clip_low", "clip_high"):
            assert cols[key] == pytest.approx(alone[seed][key], rel=1e-6, abs=1e-9), (seed, key)


def test_closing_the_slot_stops_every_worker_and_leaves_no_thread(builtin):
    slot = LMWorkerSlot()
    first = slot.put("lm", "key a", LMWorker(new_run(builtin), name="lm-worker test-slot"))
    first.start(100)
    wait_until(lambda: first.snapshot().iteration >= 1)
    second = slot.put("lm", "key b", LMWorker(new_run(builtin, seed=3), name="lm-worker test-slot"))
    assert first.stop_requested  # replaced: told to stop, the page does not wait for it
    assert slot.get("lm", "key b") is second and slot.get("lm", "key a") is None
    second.start(100)
    wait_until(lambda: second.snapshot().iteration >= 1)
    slot.close()  # what the session's end calls: returns at once
    assert second.stop_requested
    slot.join(timeout=60)
    assert not worker_threads("lm-worker test-slot")
    assert first.snapshot().status == second.snapshot().status == "stopped"
    late = slot.put("lm", "key c", LMWorker(new_run(builtin), name="lm-worker test-slot"))
    assert late.stop_requested  # a closed session's slot starts nothing new


def test_a_failing_run_says_why_and_ends_its_thread(builtin):
    class Broken:
        def __call__(self, group):
            raise ValueError("the reward function broke")

    task = replace(TASKS["sum"], reward=Broken(), true_reward=Broken())
    run = LMTraining(make_policy(builtin, max_new_tokens=6), task, SETTINGS, prompts_per_iteration=2,
                     eval_problems=2, eval_samples=2)
    worker = LMWorker(run, name="lm-worker test-fail")
    worker.start(3)
    worker.join()
    snap = worker.snapshot()
    assert snap.status == "failed" and "reward function broke" in snap.error and not worker.running


def test_a_held_out_run_never_trains_on_the_evaluation_sums(builtin):
    run = new_run(builtin, held_out=True)
    held = set(TASKS["sum"].evaluation_pairs(run.eval_problems, 12345))
    assert len(held) == run.eval_problems == 4
    held_prompts = {TASKS["sum"].prompt(a, b, chat=False) for a, b in held}
    drawn = [p for it in range(600) for p in TASKS["sum"].prompts(0, it, n=2, held_out=tuple(held))]
    assert not held_prompts & set(drawn) and len(set(drawn)) == 96  # every other sum is drawn
    run.train(2)
    assert not {c.prompt for c in run.latest_completions} & held_prompts
    # the evaluation set is the one accuracy() scores: the first problems of the same shuffle
    assert TASKS["sum"].evaluation_pairs(40, 12345)[:4] == TASKS["sum"].evaluation_pairs(4, 12345)
