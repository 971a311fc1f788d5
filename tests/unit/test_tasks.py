"""The language-model tasks' rewards, and the batched sampling an evaluation uses."""

from __future__ import annotations

import pytest
import torch

from grpo_viz.config import Settings
from grpo_viz.policies.base import Group
from grpo_viz.policies.loading import make_policy
from grpo_viz.stepper import make_generator
from grpo_viz.tasks import ARITHMETIC, ARITHMETIC_BRIEF, TASKS, BrevityReward
from grpo_viz.training import LM_EVAL_SEED, LMTraining, RecordedRun, recording

from .lm_fixtures import load_test_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def group_of(prompts, texts) -> Group:
    n = len(texts)
    return Group(prompts=list(prompts), completion_ids=torch.zeros(n, 1, dtype=torch.long), mask=torch.ones(n, 1),
                 texts=list(texts), tokens=[[t] for t in texts])


def test_brevity_is_one_up_to_short_zero_from_long_and_a_line_between():
    r = BrevityReward(short=4, long=48)
    texts = ["", "7", " 12. ", "x" * 4, "x" * 26, "x" * 48, "x" * 100]
    assert r(group_of(["p"] * len(texts), texts)).tolist() == pytest.approx([1, 1, 1, 1, 0.5, 0, 0])
    with pytest.raises(ValueError, match="short < long"):
        BrevityReward(short=10, long=10)


def test_correct_and_brief_gives_half_for_the_right_sum_and_half_for_brevity():
    prompt = ARITHMETIC_BRIEF.prompt(3, 4, chat=True)
    texts = ["7", "9", "3 + 4 = 7", "The sum of three and four is seven, as everyone knows.", ""]
    rewards = ARITHMETIC_BRIEF.reward(group_of([prompt] * len(texts), texts)).tolist()
    assert rewards == pytest.approx([1.0, 0.5, 0.5 + 0.5 * (48 - 9) / 44, 0.0, 0.5])
    assert not ARITHMETIC_BRIEF.is_hackable  # the held-out evaluation scores what GRPO optimizes
    assert "just the number" in prompt and ARITHMETIC_BRIEF.prompt(3, 4, chat=False) == "3+4="
    assert list(TASKS)[:2] == ["sum", "sum_brief"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return load_test_models(tmp_path_factory.mktemp("tasks"))


PROMPTS = {"builtin": ["3+4=", "5+1=", "The cat", "2+2="], "gpt2": ["The cat", "the mat .", "The cat sat"],
           "qwen2": ["3 + 4 =", "12 + 5 =", "1 + 2 + 3 ="]}


def plain_batch_sampling(policy, prompts, samples, generator, temperature):
    """The straightforward sampler for prompts of one length: every step reads all rows' whole sequences again."""
    x = torch.tensor([policy.tokenizer.encode_prompt(p) for p in prompts]).repeat_interleave(samples, dim=0)
    start = x.shape[1]
    for _ in range(policy.max_new_tokens):
        logits = policy.model(input_ids=x, use_cache=False).logits[:, -1]
        nxt = torch.multinomial(torch.softmax(logits.float() / temperature, -1), 1, generator=generator)
        x = torch.cat([x, nxt], dim=1)
    return x[:, start:]


@pytest.mark.parametrize("style", ["builtin", "gpt2", "qwen2"])
def test_batched_sampling_draws_the_plain_batch_samplers_tokens_prompt_by_prompt(loaded, style):
    """Prompts of one token length are read and continued in one batch; each length's batch draws what the plain
    sampler draws for it (lengths in order of first appearance), and the rows come back in the prompts' order."""
    policy = make_policy(loaded[style], max_new_tokens=5)
    policy.tokenizer.eos_ids = (-1,)  # no early stop: every row has max_new_tokens tokens, as the plain sampler's
    prompts = PROMPTS[style]
    group = policy.sample_batched(prompts, 3, make_generator(0, 0), 0.8)
    assert group.prompts == [p for p in prompts for _ in range(3)]
    by_length: dict[int, list[int]] = {}
    for k, p in enumerate(prompts):
        by_length.setdefault(len(policy.tokenizer.encode_prompt(p)), []).append(k)
    assert len(by_length) >= 2  # the fixture mixes lengths
    generator = make_generator(0, 0)
    for members in by_length.values():
        want = plain_batch_sampling(policy, [prompts[k] for k in members], 3, generator, 0.8)
        for j, k in enumerate(members):
            assert torch.equal(group.completion_ids[3 * k: 3 * k + 3], want[3 * j: 3 * j + 3])


def test_a_batched_evaluation_scores_the_batched_samples(loaded):
    policy = make_policy(loaded["builtin"], max_new_tokens=8)
    acc = ARITHMETIC.accuracy(policy, samples=2, seed=LM_EVAL_SEED, problems=40, batched=True)
    pairs = ARITHMETIC.evaluation_pairs(40, LM_EVAL_SEED)
    group = policy.sample_batched([ARITHMETIC.prompt(a, b, False) for a, b in pairs], 2,
                                  torch.Generator().manual_seed(LM_EVAL_SEED), 1.0)
    assert acc == float(ARITHMETIC.true_reward(group).mean())
    assert 0.2 < acc < 0.6  # the built-in model's mediocre adder


def test_runs_evaluate_batched_and_recordings_say_how_they_were_evaluated(loaded):
    lm = LMTraining(make_policy(loaded["builtin"], max_new_tokens=8), ARITHMETIC_BRIEF, Settings(), held_out=True)
    assert lm.batched_evaluation
    data = recording(lm, "builtin", "built-in tiny GPT", "sum_brief")
    assert data["batched_evaluation"] is True
    assert RecordedRun.from_dict(data).batched_evaluation
    del data["batched_evaluation"]  # a file written before evaluations were batched
    old = RecordedRun.from_dict(data)
    assert not old.batched_evaluation
    assert not old.training(make_policy(loaded["builtin"]), ARITHMETIC_BRIEF).batched_evaluation


def test_the_trl_scripts_rewards_for_correct_and_brief_are_the_apps():
    from grpo_viz import export

    code, names, weights = export._reward_code("sum_brief")
    namespace: dict = {}
    exec("import re\n" + code, namespace)
    prompt = ARITHMETIC_BRIEF.prompt(3, 4, chat=True)
    texts = ["7", "9", "3 + 4 = 7", "The sum of three and four is seven, as everyone knows.", "", " 7. "]
    script = [sum(w * r for w, r in zip(weights, rs))
              for rs in zip(*(namespace[name]([prompt] * len(texts), texts) if name == "correct"
                              else namespace[name](texts) for name in names))]
    assert script == pytest.approx(ARITHMETIC_BRIEF.reward(group_of([prompt] * len(texts), texts)).tolist())
    assert "def brevity" in export.trl_script(Settings(), "sum_brief")


def test_a_worker_trains_with_the_workers_torch_threads(loaded):
    from grpo_viz.training import LM_WORKER_THREADS, LMWorker

    lm = LMTraining(make_policy(loaded["builtin"], max_new_tokens=4), ARITHMETIC, Settings(group_size=2),
                    prompts_per_iteration=1, eval_problems=2, eval_samples=1)
    seen = []
    train_one = lm.train_one

    def counting_train_one():
        seen.append(torch.get_num_threads())
        train_one()

    lm.train_one = counting_train_one
    worker = LMWorker(lm, name="lm-worker threads")
    assert worker.start(2) and worker.join(60)
    assert seen == [LM_WORKER_THREADS] * 2 and worker.snapshot().status == "done"


def test_the_committed_smollm2_recording_is_on_its_default_task_at_the_pages_defaults():
    from grpo_viz.config import default_lm_lr
    from grpo_viz.tasks import default_task
    from grpo_viz.training import LM_EVAL_EVERY, LM_PROMPTS_PER_ITERATION, RUNS_DIR, recorded_runs

    run = recorded_runs("smollm2", default_task("smollm2"), RUNS_DIR)[0]
    assert run.batched_evaluation and run.held_out and run.eval_problems >= 32
    assert (run.settings.lm_lr, run.prompts_per_iteration, run.eval_every) == (
        default_lm_lr("smollm2"), LM_PROMPTS_PER_ITERATION, LM_EVAL_EVERY)
    assert run.settings.max_new_tokens == Settings().max_new_tokens
    (first_it, first), *_, (last_it, last) = run.accuracy
    assert first_it == 0 and last_it == run.iterations and last - first >= 0.3
