"""Recorded runs: a recording reads back, and training its first iterations again live reproduces its numbers."""

import json
from dataclasses import replace

import pytest

from grpo_viz.config import Settings
from grpo_viz.policies.loading import load_builtin, make_policy
from grpo_viz.tasks import TASKS
from grpo_viz.training import (RECORD_FORMAT, RUNS_DIR, LMTraining, LMWorker, RecordedRun, machine_cpu,
                               mismatch_explanation, record_run, recorded_runs, reproduction)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SETTINGS = replace(Settings(), group_size=4, max_new_tokens=6, seed=7)


@pytest.fixture(scope="module")
def builtin():
    return load_builtin()


@pytest.fixture(scope="module")
def recording(builtin, tmp_path_factory):
    lm = LMTraining(make_policy(builtin, max_new_tokens=6), TASKS["sum"], SETTINGS, prompts_per_iteration=2,
                    eval_every=2, eval_problems=4, eval_samples=2, held_out=True)
    data = record_run(lm, 4, "builtin", builtin.name, "sum", completions_at=(1, 4), recorded={"date": "today"})
    path = tmp_path_factory.mktemp("runs") / "builtin_sum.json"
    path.write_text(json.dumps(data))
    return path


def test_a_recording_reads_back_with_its_settings_numbers_and_completions(recording):
    data = json.loads(recording.read_text())
    assert data["format"] == RECORD_FORMAT and data["columns"]["iteration"] == [1, 2, 3, 4]
    run = RecordedRun.load(recording)
    assert run.settings == SETTINGS and run.iterations == 4 and run.prompts_per_iteration == 2 and run.held_out
    assert [it for it, _ in run.accuracy] == [0, 2, 4] and run.seconds_per_iteration > 0
    assert sorted(run.completions) == [1, 4] and len(run.completions[4]) == 8
    held = TASKS["sum"].evaluation_pairs(4, 12345)
    assert run.completions[4][0].prompt in TASKS["sum"].prompts(7, 3, n=2, held_out=held)
    assert [r.path for r in recorded_runs("builtin", "sum", recording.parent)] == [str(recording)]
    assert recorded_runs("smollm2", "sum", recording.parent) == []
    (recording.parent / "junk.json").write_text("{not json")  # unreadable files are skipped, not raised
    assert len(recorded_runs("builtin", "sum", recording.parent)) == 1
    with pytest.raises(ValueError, match="not a recorded run"):
        RecordedRun.from_dict({**data, "format": "something else"})
    assert data["recorded"]["cpu"] == machine_cpu() != ""


def test_a_mismatch_is_explained_by_what_differs_between_the_machines(recording):
    """The page's warning names the cause it can know: another processor, or (on the same one) a change of the code
    or the model; an older recording that names no processor is told as such."""
    run = RecordedRun.load(recording)
    here = run.recorded["cpu"]
    assert "the code or the model changed" in mismatch_explanation(run, here)
    assert "processor" in mismatch_explanation(run, here) and "records it again" in mismatch_explanation(run, here)
    other = mismatch_explanation(run, "Some Other CPU, AMX")
    assert f"recorded on {here}" in other and "this server runs on Some Other CPU, AMX" in other
    assert "code" not in other and "records it on this machine" in other
    unnamed = replace(run, recorded={k: v for k, v in run.recorded.items() if k != "cpu"})
    text = mismatch_explanation(unnamed, here)
    assert "does not say which processor" in text and "or the code or the model changed" in text


def test_training_the_first_iterations_again_live_reproduces_the_recording(builtin, recording):
    run = RecordedRun.load(recording)
    worker = LMWorker(run.training(make_policy(builtin, max_new_tokens=6), TASKS[run.task]), name="lm-replay test")
    worker.start(3)
    worker.join()
    snap = worker.snapshot()
    rows = reproduction(run, snap.columns, snap.accuracy)
    assert [r["iteration"] for r in rows] == [0, 1, 2, 3] and all(r["match"] for r in rows), rows
    assert [r["live"] for r in rows[1:]] == run.columns["mean_reward"][:3]  # rewards exactly
    assert max(r["largest difference"] for r in rows) < 1e-6


def test_a_different_run_does_not_match(builtin, recording):
    run = RecordedRun.load(recording)
    other = replace(run, settings=replace(run.settings, seed=8))
    lm = other.training(make_policy(builtin, max_new_tokens=6), TASKS[run.task])
    lm.train(2)
    rows = reproduction(run, lm.columns(), lm.accuracy)
    assert not all(r["match"] for r in rows)


def test_the_recorded_builtin_run_in_assets_reproduces(builtin):
    """The committed recording still matches the code: if this fails, `python scripts/record_run.py` records it
    again."""
    runs = recorded_runs("builtin", "sum", RUNS_DIR)
    assert runs, "assets/runs/ has no recording of the built-in model on sums"
    run = runs[0]
    assert run.iterations >= 500 and (RUNS_DIR / run.path).stat().st_size <= 1_000_000
    lm = run.training(make_policy(builtin, max_new_tokens=run.settings.max_new_tokens), TASKS[run.task])
    lm.train(2)
    rows = reproduction(run, lm.columns(), lm.accuracy)
    assert len(rows) == 3 and all(r["match"] for r in rows), rows
