"""The language-model policy: built-in tiny GPT, tiny random Hugging Face models, loading errors, isolation."""

from __future__ import annotations

import copy
import math
import threading
from dataclasses import replace

import pytest
import torch

from grpo_viz.config import Settings
from grpo_viz.policies.base import Group
from grpo_viz.policies.lm import LanguageModelPolicy, parameter_checksum
from grpo_viz.policies.loading import load_builtin, load_hf, load_model, make_policy
from grpo_viz.policies.tiny_gpt import TinyGPT, TinyGPTConfig, WordTokenizer
from grpo_viz.stepper import StepRun, grpo_iteration, make_generator
from grpo_viz.tasks import ARITHMETIC, TASKS

from .lm_fixtures import build_model

LM_SETTINGS = replace(Settings(), group_size=4, mu=2, beta=0.04)


@pytest.fixture(scope="module")
def builtin():
    return load_builtin()


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {style: build_model(root / style, style) for style in ("gpt2", "qwen2")}


# ----------------------------------------------------------------- the built-in model


def test_tiny_gpt_kv_cache_gives_the_same_logits_as_a_full_forward():
    torch.manual_seed(0)
    model = TinyGPT(TinyGPTConfig(vocab_size=11, n_layer=2, d_model=32, max_len=16)).eval()
    ids = torch.randint(0, 11, (3, 9))
    full = model(ids).logits
    out = model(ids[:, :4], use_cache=True)
    steps = [out.logits]
    for t in range(4, 9):
        out = model(ids[:, t : t + 1], cache=out.cache, use_cache=True)
        steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    # several new tokens after a cache use the shifted causal mask
    out = model(ids[:, :4], use_cache=True)
    torch.testing.assert_close(model(ids[:, 4:], cache=out.cache).logits, full[:, 4:],
                               atol=1e-5, rtol=1e-5)


def test_builtin_model_is_small_and_its_tokenizer_round_trips(builtin):
    assert builtin.num_parameters <= 2_000_000
    tok: WordTokenizer = builtin.tokenizer
    for text in ("The cat sat on the mat.", "3+4=<answer>7</answer>", "12+5=17"):
        assert tok.decode(tok.encode(text)) == text
    assert tok.encode("The zebra")[1] == tok.unk_id


def test_builtin_samples_a_seeded_group_with_the_mask_through_the_first_eos(builtin):
    policy = make_policy(builtin, max_new_tokens=10)
    group = policy.sample_group(["3+4="], 8, torch.Generator().manual_seed(1), 1.0)
    again = policy.sample_group(["3+4="], 8, torch.Generator().manual_seed(1), 1.0)
    assert torch.equal(group.completion_ids, again.completion_ids)
    assert group.completion_ids.shape[0] == 8 and group.completion_ids.shape[1] <= 10
    eos = builtin.tokenizer.eos_id
    for row, mask, tokens in zip(group.completion_ids.tolist(), group.mask.tolist(), group.tokens):
        n = int(sum(mask))
        assert mask == [1.0] * n + [0.0] * (len(mask) - n)
        if eos in row:
            assert n == row.index(eos) + 1 and tokens[-1] == "<eos>"
        assert len(tokens) == n


def test_completion_mask_counts_the_first_eos_and_nothing_after(builtin):
    policy = make_policy(builtin)
    e = builtin.tokenizer.eos_id
    ids = torch.tensor([[5, 6, e, e, e], [e, e, e, e, e], [5, 5, 5, 5, 5], [5, e, 6, e, 7]])
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.float32)
    assert torch.equal(policy.completion_mask(ids), expected)


def test_log_probs_are_the_teacher_forced_token_log_probs(builtin):
    policy = make_policy(builtin, max_new_tokens=6)
    group = policy.sample_group(["The cat", "2+2="], 3, torch.Generator().manual_seed(0), 0.7)
    logp = policy.log_probs(group, 0.7)
    assert logp.shape == group.mask.shape and logp.requires_grad
    assert torch.all(logp[group.mask == 0] == 0) and torch.all(logp[group.mask == 1] < 0)
    tok = builtin.tokenizer
    i = 4  # a row of the second prompt
    prompt = tok.encode("2+2=", add_bos=True)
    n = int(group.mask[i].sum())
    seq = prompt + group.completion_ids[i, :n].tolist()
    for t in range(n):
        logits = builtin.model(torch.tensor([seq[: len(prompt) + t]])).logits[0, -1]
        want = torch.log_softmax(logits / 0.7, -1)[seq[len(prompt) + t]]
        assert float(logp[i, t].detach()) == pytest.approx(float(want), abs=1e-5)
    # At the start pi_theta is pi_ref, so their log-probs agree exactly.
    torch.testing.assert_close(policy.reference_log_probs(group, 0.7), logp.detach())


def test_a_grpo_iteration_on_the_builtin_model_is_finite_and_leaves_the_policy_unchanged(builtin):
    policy = make_policy(builtin, max_new_tokens=6)
    before = parameter_checksum(policy.model)
    trace = grpo_iteration(policy, ARITHMETIC.reward, LM_SETTINGS, make_generator(0, 0), prompts=["3+5="])
    assert trace.mu == 2 and parameter_checksum(policy.model) == before
    for step in trace.steps:
        assert math.isfinite(float(step.trace.loss))
        assert torch.isfinite(step.grad_logp).all()
    assert torch.allclose(trace.steps[0].trace.ratio, torch.ones_like(trace.steps[0].trace.ratio))
    if not trace.all_rewards_equal:  # the second inner step moved the policy, so the ratios moved
        assert float((trace.steps[1].trace.ratio - 1).abs().max()) > 0


def test_next_token_probs_under_pi_old_pi_theta_and_pi_ref(builtin):
    policy = make_policy(builtin, max_new_tokens=4)
    run = StepRun(policy)
    settings = replace(LM_SETTINGS, lm_lr=0.05, mu=1)
    trace = None
    for seed in range(10):  # find a group that carries a gradient
        trace = run.trace(replace(settings, seed=seed), ARITHMETIC.reward, ["3+4="])
        if not trace.all_rewards_equal:
            break
    group = trace.group
    old = policy.next_token_probs(group, 0, 1.0, state=trace.state_before)
    new = policy.next_token_probs(group, 0, 1.0, state=trace.state_after)
    ref = policy.next_token_probs(group, 0, 1.0, reference=True)
    assert old.shape == (group.completion_ids.shape[1], len(builtin.tokenizer))
    torch.testing.assert_close(old.sum(-1), torch.ones(old.shape[0]))
    torch.testing.assert_close(old, ref)  # nothing trained yet: pi_old = pi_ref
    assert not torch.allclose(old, new)
    assert parameter_checksum(policy.model) == parameter_checksum(builtin.model)  # the probe put the state back


def _train(run: StepRun, iterations: int) -> list[torch.Tensor]:
    for it in range(iterations):
        run.trace(replace(LM_SETTINGS, seed=it), ARITHMETIC.reward, ["1+2="])
        run.advance()
    return run.policy.trainable_state()


def test_sessions_are_isolated_and_the_shared_weights_never_change(builtin):
    shared = parameter_checksum(builtin.model)
    a, b = make_policy(builtin, max_new_tokens=4), make_policy(builtin, max_new_tokens=4)
    _train(StepRun(a), 3)
    assert parameter_checksum(a.model) != shared
    assert parameter_checksum(builtin.model) == shared
    assert parameter_checksum(b.model) == shared


def test_one_sessions_overlapping_requests_are_serialized(builtin):
    """Two of a session's script threads at once (Streamlit starts one per click, the last may still compute).

    Before the policy's lock: "one of the variables needed for gradient computation has been modified by an
    inplace operation" on the page, found by the load test and by pressing N quickly on the LM page.
    """
    expected = _train(StepRun(make_policy(builtin, max_new_tokens=4)), 4)
    policy = make_policy(builtin, max_new_tokens=4)
    run = StepRun(policy)
    probe = run.trace(LM_SETTINGS, ARITHMETIC.reward, ["3+4="])
    errors, done = [], threading.Event()

    def train():
        try:
            _train(run, 4)
        except Exception as err:  # noqa: BLE001 - the assertion below shows it
            errors.append(err)
        finally:
            done.set()

    def inspect():  # what the LM page does while it draws: swap in pi_old and pi_theta, read, swap back
        while not done.is_set():
            try:
                policy.log_probs_under(probe.group, 1.0, probe.state_after)
                policy.next_token_probs(probe.group, 0, 1.0, state=probe.state_before)
            except Exception as err:  # noqa: BLE001
                errors.append(err)
                return

    threads = [threading.Thread(target=train), threading.Thread(target=inspect)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for got, want in zip(policy.trainable_state(), expected, strict=True):
        assert torch.equal(got, want)  # as if the requests had come one after the other
    assert copy.deepcopy(policy).lock is not policy.lock  # a copy guards its own tensors

def test_grpo_improves_the_builtin_model_on_a_sum():
    """A few iterations on three prompts (with TRL's gradient-norm clip) raise their completions' expected reward."""
    loaded = load_builtin()
    policy = make_policy(loaded, max_new_tokens=8)
    run = StepRun(policy)
    prompt = ["2+3=", "4+4=", "1+6="]

    def mean_reward() -> float:
        group = policy.sample_group(prompt, 64, make_generator(99), 1.0)
        return float(ARITHMETIC.reward(group).mean())

    start = mean_reward()
    settings = replace(Settings(), group_size=8, beta=0.0, lm_lr=5e-4)
    assert settings.lm_max_grad_norm == 1.0
    for it in range(8):
        run.trace(replace(settings, seed=it), ARITHMETIC.reward, prompt)
        run.advance()
    assert policy.optimizer_state is not None  # Adam's moments carried from one iteration to the next
    assert mean_reward() > start + 0.1


# ----------------------------------------------------------------- Hugging Face models


@pytest.mark.parametrize("style", ["gpt2", "qwen2"])
@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_a_tiny_hf_model_loads_samples_and_trains(hf_folders, style, finetune):
    loaded = load_hf(str(hf_folders[style]), finetune=finetune)
    assert loaded.kind == "hf" and loaded.info["model_type"] == style
    shared = parameter_checksum(loaded.model)
    policy = make_policy(loaded, max_new_tokens=5)
    if finetune == "lora":
        assert policy.reference is None and len(policy.parameters()) < len(list(loaded.model.parameters()))
    group = policy.sample_group(["The cat"], 4, torch.Generator().manual_seed(0), 1.0)
    assert group.completion_ids.shape[0] == 4 and group.mask[:, 0].eq(1).all()
    torch.testing.assert_close(policy.reference_log_probs(group, 1.0), policy.log_probs(group, 1.0).detach())
    run = StepRun(policy)
    settings = replace(LM_SETTINGS, lm_lr=0.05)
    reward = lambda g: torch.tensor([float(len(t)) for t in g.texts], dtype=torch.float64)  # noqa: E731
    trace = run.trace(settings, reward, ["The cat"])
    assert all(math.isfinite(float(s.trace.loss)) for s in trace.steps)
    run.advance()
    assert parameter_checksum(loaded.model) == shared, "training a session must not touch the shared weights"
    if not trace.all_rewards_equal:
        after = policy.log_probs(group, 1.0).detach()
        assert not torch.allclose(after, policy.reference_log_probs(group, 1.0))


def test_the_same_hf_model_twice_gives_independent_lora_sessions(hf_folders):
    loaded = load_hf(str(hf_folders["gpt2"]))
    a, b = make_policy(loaded), make_policy(loaded)
    b_start = [p.clone() for p in b.parameters()]
    with torch.no_grad():
        for p in a.parameters():
            p.add_(1.0)
    assert all(torch.equal(p, q) for p, q in zip(b.parameters(), b_start))
    # the shared base tensors are the very same objects, not copies: in float32 the loaded ones, in bfloat16 the
    # loaded model's one bfloat16 copy
    base = dict(loaded.model.named_parameters())["transformer.h.0.mlp.c_fc.weight"]
    a.set_precision("float32")
    assert any(p is base for p in a.model.parameters())
    a.set_precision("bfloat16")
    assert any(p is loaded.weights_in(torch.bfloat16)[id(base)] for p in a.model.parameters())


def test_loading_errors_are_plain_sentences(tmp_path, hf_folders):
    with pytest.raises(ValueError, match="no folder"):
        load_hf(str(tmp_path / "does-not-exist"))
    with pytest.raises(ValueError, match="not a model: it has no config.json"):
        load_hf(str(tmp_path))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="is a file"):
        load_hf(str(tmp_path / "notes.txt"))
    with pytest.raises(ValueError, match="local Hugging Face cache"):
        load_hf("nobody-has/this-model-xyz")
    with pytest.raises(ValueError, match="Give a model folder"):
        load_hf("   ")
    with pytest.raises(ValueError, match="Unknown model kind"):
        load_model("gpt5")

    corrupt = build_model(tmp_path / "corrupt", "gpt2")
    weights = corrupt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_hf(str(corrupt))

    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((hf_folders["gpt2"] / "config.json").read_text())
    with pytest.raises(ValueError, match="no weights"):
        load_hf(str(no_weights))


def test_a_policy_without_a_reference_must_be_peft(builtin):
    with pytest.raises(ValueError, match="PEFT"):
        LanguageModelPolicy(builtin.model, builtin.tokenizer, reference=None)


# ----------------------------------------------------------------- tasks and rewards


def _group(prompts, texts):
    n = len(texts)
    return Group(prompts=prompts, completion_ids=torch.zeros(n, 3, dtype=torch.long),
                 mask=torch.tensor([[1.0] * k + [0.0] * (3 - k) for k in (1, 2, 3, 3)][:n]),
                 texts=texts, tokens=[[t] for t in texts])


def test_arithmetic_format_and_proxy_rewards():
    g = _group(["3+4="] * 4, ["7", "<answer>7</answer>", "8", "The answer is <answer>6</answer> ok"])
    assert TASKS["sum"].reward(g).tolist() == [1.0, 1.0, 0.0, 0.0]
    assert TASKS["sum_format"].reward(g).tolist() == [1.0, 1.5, 0.0, 0.0]
    hack = TASKS["sum_length"]
    assert hack.is_hackable and not TASKS["sum"].is_hackable
    assert hack.reward(g).tolist() == [1 / 8, 2 / 8, 3 / 8, 3 / 8]
    assert hack.true_reward(g).tolist() == [1.0, 1.0, 0.0, 0.0]
    chat = _group(["What is 3+4? Answer with just the number."] * 2, ["3 + 4 = 7", "It is 12."])
    assert TASKS["sum"].reward(chat).tolist() == [1.0, 0.0]
    toy = TASKS["toy"].with_word_rewards(("sat", "slept", "barked"), (1.0, 0.5, -1.0))
    assert toy.reward(_group(["The cat"] * 3, [" sat on the mat.", " barked.", " is black."])).tolist() == [1.0, -1.0, 0.0]


def test_task_prompts_are_reproducible():
    t = TASKS["sum"]
    assert t.prompts(3, 5) == t.prompts(3, 5) and t.prompts(3, 5, n=4) != t.prompts(3, 6, n=4)
    assert t.prompts(0, 0)[0].endswith("=")
    assert t.prompts(0, 0, chat=True)[0].startswith("What is")
    assert TASKS["toy"].prompts(0, 0) == ["The cat"]


def test_builtin_model_starts_mediocre_at_sums(builtin):
    """The corpus makes it a 20-60% adder at T = 1: room for GRPO to show improvement."""
    acc = ARITHMETIC.accuracy(make_policy(builtin, max_new_tokens=6), samples=4, seed=0, problems=30)
    assert 0.2 <= acc <= 0.6, acc


def test_lm_training_follows_the_stepper_and_records_accuracy_at_0_every_k_and_on_request(builtin):
    from grpo_viz.charts import lm_accuracy_chart, lm_reward_chart, running_mean
    from grpo_viz.training import LMTraining

    policy = make_policy(builtin, max_new_tokens=6)
    settings = replace(Settings(), group_size=4)
    lm = LMTraining(policy, TASKS["sum_length"], settings, prompts_per_iteration=2, eval_every=2, max_iterations=5)
    # the same iterations as a bare StepRun driven like scripts/measure_lm_grpo.py
    bare = StepRun(make_policy(builtin, max_new_tokens=6))
    for _ in range(3):
        bare.trace(settings, TASKS["sum_length"].reward, TASKS["sum_length"].prompts(0, bare.iteration, n=2))
        bare.advance()
    lm.step(3)
    assert [r["mean_reward"] for r in bare.history] == lm.columns()["mean_reward"]
    lm.evaluate_now()
    lm.evaluate_now()  # once per iteration
    lm.step(10)  # capped at max_iterations
    assert lm.iteration == 5 and lm.done
    cols = lm.columns()
    assert cols["iteration"] == [1, 2, 3, 4, 5] and all(len(v) == 5 for v in cols.values())
    assert all(0 <= v <= 1 for v in cols["true_reward"] + cols["clip_low"] + cols["clip_high"])
    assert [it for it, _ in lm.accuracy] == [0, 2, 3, 4]
    assert lm.seconds_per_iteration > 0
    assert running_mean([1, None, 3, float("nan"), 5], window=2) == [1, 1, 3, 3, 5]
    fig = lm_reward_chart(cols["iteration"], cols["mean_reward"], cols["true_reward"], window=3)
    assert [len(d.x) for d in fig.data] == [5] * 4
    assert len(lm_accuracy_chart(*zip(*lm.accuracy)).data[0].x) == 4
    with pytest.raises(ValueError):
        LMTraining(policy, TASKS["sum"], settings, prompts_per_iteration=0)
