"""The stepper's numbers against TRL 1.16's own GRPO code, on tiny random models, to 1e-5.

For every preset and mu in {1, 2, 3}, with LoRA (pi_ref = adapters off) and full finetuning: per-token
log-probs, the loss, its gradient with respect to the log-probs and to the parameters, and the clip fractions
are TRL's ``_get_per_token_logps_and_entropies`` and ``_compute_loss`` run on the app's group, advantages and
pi_old / pi_ref log-probs with the parameters each inner step started from. The optimizer step is TRL's:
gradient norm clipped to max_grad_norm, then AdamW without weight decay, its state carried across iterations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest
import torch
from trl import GRPOConfig

from grpo_viz.config import PRESETS, Settings
from grpo_viz.policies.base import Group
from grpo_viz.policies.loading import load_hf, make_policy
from grpo_viz.stepper import StepRun, grpo_iteration, make_generator

from ..unit.lm_fixtures import build_model
from .trl_stub import (
    last_metric,
    stub_trainer,
    trl_batch,
    trl_log_probs,
    trl_loss,
    trl_policy,
    trl_reference_log_probs,
)

TOL = dict(atol=1e-5, rtol=0.0)
LR = 0.05  # large enough that pi_theta moves away from pi_old within mu steps, so the clip bites
TEMPERATURE = 0.7
MAX_NEW_TOKENS = 6
G = 4
# Qwen2 (rotary positions): prompts of different lengths, so TRL left-pads the shorter one.
# GPT-2 (absolute positions): prompts of equal length; see test_left_padding_shifts_gpt2_positions_in_trl.
PROMPTS = {"qwen2": ("3 + 4 =", "12 + 5 ="), "gpt2": ("The cat", "the mat")}
# completion lengths (through EOS) of the hand-made groups: every width up to 5 < MAX_NEW_TOKENS, so Dr. GRPO's
# denominator (B x max_completion_length) differs from B x the batch's width
LENGTHS = (5, 2, 1, 4, 3, 5, 2, 4)
MUS = (1, 2, 3)
# Adam divides each gradient element by its own running scale, so float32 noise in a near-zero element (GPT-2's
# key bias, whose exact gradient is 0: softmax ignores a shift) becomes a step of up to lr * noise / eps. At LR the
# two implementations' noise alone put such elements up to ~7e-3 apart after six full-finetuning steps; at 1e-3 (the
# app's default is 1e-4) every parameter agrees to ~3e-6.
OPTIMIZER_LR = 1e-3


def length_reward(group: Group) -> torch.Tensor:
    """Characters in each completion: they differ within the groups used here, so the advantages are nonzero."""
    return torch.tensor([float(len(text)) for text in group.texts], dtype=torch.float64)


def settings_for(preset: str, mu: int) -> Settings:
    # float32: TRL's own code runs these models in float32, and the comparison is to 1e-5
    return replace(Settings().with_preset(preset), group_size=G, mu=mu, lm_lr=LR, temperature=TEMPERATURE,
                   lm_max_grad_norm=1.0, lm_precision="float32")


def early_stopping_group(policy, prompts, lengths, seed: int = 0) -> Group:
    """Random completions that stop at EOS after ``lengths`` tokens, padded with EOS as the sampler pads them."""
    generator = torch.Generator().manual_seed(seed)
    eos = policy.tokenizer.eos_id
    ids = torch.randint(3, policy.model.config.vocab_size, (len(lengths), max(lengths)), generator=generator)
    for row, n in enumerate(lengths):
        ids[row, n - 1 :] = eos
    mask = policy.completion_mask(ids)
    rows = [row[:n] for row, n in zip(ids.tolist(), mask.sum(-1).long().tolist())]
    return Group(
        prompts=[p for p in prompts for _ in range(len(lengths) // len(prompts))],
        completion_ids=ids,
        mask=mask,
        texts=[policy.tokenizer.decode(row) for row in rows],
        tokens=[[policy.tokenizer.token_text(i) for i in row] for row in rows],
    )


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is faster on 2 busy cores


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("trl_models")
    return {style: load_hf(str(build_model(root / style, style))) for style in ("gpt2", "qwen2")}


def compare_iteration(loaded_model, finetune: str, preset: str, mu: int) -> dict:
    """One app iteration on a hand-made group, and TRL's numbers for each of its inner steps."""
    policy, reference = trl_policy(loaded_model, finetune, TEMPERATURE, MAX_NEW_TOKENS)
    settings = settings_for(preset, mu)
    group = early_stopping_group(policy, PROMPTS["qwen2"], LENGTHS)
    trace = grpo_iteration(policy, length_reward, settings, make_generator(0, 0), group=group)
    assert not trace.equal_reward_groups.any()
    trainer = stub_trainer(settings, max_completion_length=policy.max_new_tokens)
    batch = trl_batch(policy, group)
    result = {"trace": trace, "ref_logp": trl_reference_log_probs(trainer, reference, batch), "steps": []}
    for step in trace.steps:
        inputs = dict(
            batch,
            advantages=trace.advantages.to(torch.float32),
            # TRL computes pi_old once per generation when it reuses the batch (num_iterations > 1), else uses
            # the log-probs of the step itself, detached
            old_per_token_logps=trace.old_logp if mu > 1 else None,
            ref_per_token_logps=trace.ref_logp,
        )
        with policy.trainable_state_set_to(step.state_before):
            for p in policy.parameters():
                p.grad = None
            loss, logps = trl_loss(trainer, policy.model, inputs)
            (grad_logp,) = torch.autograd.grad(loss, logps, retain_graph=True)
            loss.backward()
            grad_params = [p.grad.detach().clone() for p in policy.parameters()]
            for p in policy.parameters():
                p.grad = None
        result["steps"].append({
            "logp": logps.detach(),
            "loss": loss.detach(),
            "grad_logp": grad_logp,
            "grad_params": grad_params,
            "clip_low": last_metric(trainer, "clip_ratio/low_mean"),
            "clip_high": last_metric(trainer, "clip_ratio/high_mean"),
        })
    return result


@pytest.fixture(scope="module")
def compared(loaded):
    """compare_iteration for (finetune, preset, mu) on the Qwen2 model, computed once per module."""
    cache = {}

    def get(finetune: str, preset: str, mu: int) -> dict:
        key = (finetune, preset, mu)
        if key not in cache:
            cache[key] = compare_iteration(loaded["qwen2"], finetune, preset, mu)
        return cache[key]

    return get


matrix = pytest.mark.parametrize(
    "finetune, preset, mu", [(f, p, m) for f in ("lora", "full") for p in PRESETS for m in MUS]
)


@matrix
def test_per_token_log_probs_equal_trls(compared, finetune, preset, mu):
    """pi_theta before each inner step, and pi_ref (TRL: use_adapter(None) for LoRA, its ref model otherwise)."""
    result = compared(finetune, preset, mu)
    trace = result["trace"]
    torch.testing.assert_close(result["ref_logp"], trace.ref_logp, **TOL)
    torch.testing.assert_close(result["steps"][0]["logp"], trace.old_logp, **TOL)
    for step, trl in zip(trace.steps, result["steps"], strict=True):
        torch.testing.assert_close(trl["logp"], step.logp, **TOL)


@matrix
def test_loss_equals_trls(compared, finetune, preset, mu):
    result = compared(finetune, preset, mu)
    for step, trl in zip(result["trace"].steps, result["steps"], strict=True):
        torch.testing.assert_close(trl["loss"], step.trace.loss.to(trl["loss"].dtype), **TOL)


@matrix
def test_gradient_wrt_log_probs_equals_trls(compared, finetune, preset, mu):
    result = compared(finetune, preset, mu)
    for step, trl in zip(result["trace"].steps, result["steps"], strict=True):
        torch.testing.assert_close(trl["grad_logp"], step.grad_logp, **TOL)


@matrix
def test_parameter_gradients_equal_trls_before_norm_clipping(compared, finetune, preset, mu):
    result = compared(finetune, preset, mu)
    for step, trl in zip(result["trace"].steps, result["steps"], strict=True):
        assert len(trl["grad_params"]) == len(step.grad_params)
        for want, got in zip(trl["grad_params"], step.grad_params):
            torch.testing.assert_close(got, want, **TOL)


@matrix
def test_clip_fractions_equal_trls_clip_ratio_metrics(compared, finetune, preset, mu):
    """clip_ratio/low_mean and clip_ratio/high_mean: over real tokens, or over completions for GSPO."""
    result = compared(finetune, preset, mu)
    for step, trl in zip(result["trace"].steps, result["steps"], strict=True):
        assert float(step.trace.clip_low_fraction) == pytest.approx(trl["clip_low"], abs=1e-6)
        assert float(step.trace.clip_high_fraction) == pytest.approx(trl["clip_high"], abs=1e-6)


@pytest.mark.parametrize("level", ["token", "sequence"])
def test_the_comparison_covers_clipping_both_ways(compared, level):
    """Some inner step clips on each side, at each importance-sampling level: the clip comparison is not 0 == 0."""
    presets = [p for p in PRESETS if PRESETS[p].importance_sampling_level == level]
    steps = [s for f in ("lora", "full") for p in presets for s in compared(f, p, 3)["steps"]]
    assert max(s["clip_low"] for s in steps) > 0
    assert max(s["clip_high"] for s in steps) > 0


@pytest.mark.parametrize("style", ["gpt2", "qwen2"])
@pytest.mark.parametrize("finetune", ["lora", "full"])
@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.5])
def test_sampled_groups_log_probs_equal_trls_at_any_temperature(loaded, style, finetune, temperature):
    """The app's own sampler's group, two prompts (left-padded by TRL for Qwen2), at this temperature."""
    policy, reference = trl_policy(loaded[style], finetune, temperature, MAX_NEW_TOKENS)
    with torch.no_grad():  # move LoRA's B off zero so that pi_theta differs from pi_ref
        for p in policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    group = policy.sample_group(list(PROMPTS[style]), G, make_generator(0, 0), temperature)
    trainer = stub_trainer(max_completion_length=policy.max_new_tokens)
    batch = trl_batch(policy, group)
    with torch.no_grad():
        torch.testing.assert_close(trl_log_probs(trainer, policy.model, batch), policy.log_probs(group, temperature),
                                   **TOL)
    ref = trl_reference_log_probs(trainer, reference, batch)
    torch.testing.assert_close(ref, policy.reference_log_probs(group, temperature), **TOL)
    assert not torch.allclose(ref, policy.log_probs(group, temperature).detach(), atol=1e-3)


def test_left_padding_shifts_gpt2_positions_in_trl(loaded):
    """Where the app and TRL 1.16 differ: TRL left-pads prompts of unequal length and passes no position ids, so a
    model with absolute positions (GPT-2) scores every token at a shifted position; the app has no padding.
    With position ids counted from the attention mask (as generation does) TRL's forward gives the app's numbers."""
    policy, _ = trl_policy(loaded["gpt2"], "full", 1.0, MAX_NEW_TOKENS)
    prompts = ["The cat", "3 + 4 ="]  # 2 and 4 tokens
    group = policy.sample_group(prompts, G, make_generator(0, 0), 1.0)
    trainer = stub_trainer(max_completion_length=policy.max_new_tokens)
    batch = trl_batch(policy, group)
    with torch.no_grad():
        app = policy.log_probs(group, 1.0)
        trl = trl_log_probs(trainer, policy.model, batch)
        assert (trl - app).abs().max() > 1e-2
        input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        labels[:, : batch["prompt_ids"].size(1)] = -100
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        out = policy.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                           labels=labels, fused_lm_head=True)
        torch.testing.assert_close(out.log_probs[:, -group.completion_ids.size(1):], app, **TOL)


# ----------------------------------------------------------------- prompts


@pytest.mark.parametrize("style, prompts", [("gpt2", ["The cat", "3 + 4 ="]), ("qwen2", ["3 + 4 =", "12 + 5 ="])])
def test_plain_prompt_ids_are_trls_tokenize_prompts(loaded, style, prompts):
    policy = make_policy(loaded[style], finetune="lora", max_new_tokens=MAX_NEW_TOKENS)
    trainer = stub_trainer(tokenizer=loaded[style].tokenizer)
    prompt_ids, _, _ = trainer._tokenize_prompts(prompts)
    assert [policy.tokenizer.encode_prompt(p) for p in prompts] == [list(ids) for ids in prompt_ids]


def test_chat_prompt_ids_are_trls_tokenize_prompts(tmp_path):
    import transformers

    folder = build_model(tmp_path / "chat", "gpt2")
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = (
        "{% for message in messages %}<bos> {{ message['content'] }} <eos> {% endfor %}"
        "{% if add_generation_prompt %}<bos>{% endif %}"
    )
    tokenizer.save_pretrained(folder)
    loaded = load_hf(str(folder))
    assert loaded.chat
    policy = make_policy(loaded, finetune="lora", max_new_tokens=MAX_NEW_TOKENS)
    trainer = stub_trainer(tokenizer=loaded.tokenizer)
    prompts = ["The cat", "3 + 4 ="]
    prompt_ids, _, _ = trainer._tokenize_prompts([[{"role": "user", "content": p}] for p in prompts])
    assert [policy.tokenizer.encode_prompt(p) for p in prompts] == [list(ids) for ids in prompt_ids]
    assert policy.tokenizer.encode_prompt("The cat")[-1] == loaded.tokenizer.bos_token_id  # the generation prompt


# ----------------------------------------------------------------- the optimizer step


def test_trl_defaults_preset_and_norm_limit_are_grpoconfigs_defaults():
    defaults = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
    preset = PRESETS["TRL defaults"]
    assert preset.loss_type == defaults["loss_type"]
    assert preset.scale_rewards == defaults["scale_rewards"]
    assert preset.epsilon_low == defaults["epsilon"]
    assert preset.epsilon_high == (defaults["epsilon_high"] or defaults["epsilon"])
    assert preset.beta == defaults["beta"]
    assert preset.importance_sampling_level == defaults["importance_sampling_level"]
    assert preset.kl_ratio_correction == defaults["use_bias_correction_kl"]
    assert Settings().lm_max_grad_norm == defaults["max_grad_norm"]
    assert defaults["weight_decay"] == 0.0  # so TRL's AdamW is Adam
    adam = torch.optim.Adam([torch.zeros(1)]).defaults
    assert (adam["betas"], adam["eps"]) == ((defaults["adam_beta1"], defaults["adam_beta2"]), defaults["adam_epsilon"])


def reproduce_with_trl(loaded_model, finetune: str, preset: str, *, max_grad_norm: float | None = 1.0,
                       carry_adam: bool = True) -> dict:
    """Two app iterations of mu = 3 steps, and the same steps taken from the same start with TRL's loss gradients,
    ``clip_grad_norm_(max_grad_norm)`` and ``AdamW(weight_decay=0)``; the largest differences along the way."""
    policy, reference = trl_policy(loaded_model, finetune, TEMPERATURE, MAX_NEW_TOKENS)
    settings = replace(settings_for(preset, 3), lm_lr=OPTIMIZER_LR)
    trainer = stub_trainer(settings, max_completion_length=policy.max_new_tokens)
    params = [torch.nn.Parameter(p.detach().clone()) for p in policy.parameters()]
    run = StepRun(policy)
    out = {"state": 0.0, "grad_norm": 0.0, "grad_norm_clipped": 0.0, "norms": [], "policy": policy,
           "settings": settings}
    optimizer = None
    for _ in range(2):
        if optimizer is None or not carry_adam:
            optimizer = torch.optim.AdamW(params, lr=OPTIMIZER_LR, weight_decay=0.0)
        trace = run.trace(settings, length_reward, list(PROMPTS["gpt2"]))
        assert not trace.all_rewards_equal
        batch = trl_batch(policy, trace.group)
        with policy.trainable_state_set_to([p.detach() for p in params]), torch.no_grad():
            old_logp = trl_log_probs(trainer, policy.model, batch)  # TRL: once per generation when mu > 1
        inputs = dict(batch, advantages=trace.advantages.to(torch.float32), old_per_token_logps=old_logp,
                      ref_per_token_logps=trl_reference_log_probs(trainer, reference, batch))
        for step in trace.steps:
            with policy.trainable_state_set_to([p.detach() for p in params]):
                for p in policy.parameters():
                    p.grad = None
                loss, _ = trl_loss(trainer, policy.model, inputs)
                loss.backward()
                for mine, p in zip(params, policy.parameters()):
                    mine.grad = p.grad.detach().clone()
                    p.grad = None
            norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
            if max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            clipped = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
            out["norms"].append(norm)
            out["grad_norm"] = max(out["grad_norm"], abs(step.grad_norm - norm) / max(norm, 1.0))
            out["grad_norm_clipped"] = max(out["grad_norm_clipped"],
                                           abs(step.grad_norm_clipped - clipped) / max(clipped, 1.0))
            optimizer.step()
            optimizer.zero_grad()
            for got, want in zip(step.state_after, params, strict=True):
                out["state"] = max(out["state"], float((got - want.detach()).abs().max()))
        run.advance()
    return out


@pytest.mark.parametrize("finetune", ["lora", "full"])
@pytest.mark.parametrize("preset", list(PRESETS))
def test_optimizer_steps_equal_trls_clip_grad_norm_and_adamw_over_two_iterations(loaded, finetune, preset):
    """From the same start, TRL's loss gradients, clip_grad_norm_(1.0) and AdamW(weight_decay=0) reach every
    inner step's state_after, through mu = 3 steps and two iterations with Adam's state carried over."""
    out = reproduce_with_trl(loaded["gpt2"], finetune, preset)
    assert out["policy"].max_grad_norm(out["settings"]) == 1.0
    assert len(out["norms"]) == 6
    assert out["grad_norm"] < 1e-5 and out["grad_norm_clipped"] < 1e-5  # relative to max(norm, 1)
    assert out["state"] < 1e-5


def test_the_optimizer_comparison_sees_a_missing_norm_clip_and_a_fresh_adam(loaded):
    """The state comparison is not blind to the two things it checks: the norm clip bites here, and without it,
    or with Adam restarted at the second iteration, the reproduction misses the app's parameters."""
    assert max(reproduce_with_trl(loaded["gpt2"], "full", "DAPO")["norms"]) > 1.0
    assert reproduce_with_trl(loaded["gpt2"], "full", "DAPO", max_grad_norm=None)["state"] > 1e-4
    assert reproduce_with_trl(loaded["gpt2"], "full", "DAPO", carry_adam=False)["state"] > 1e-4
