"""The language model's fast paths against the plain computation they replace.

- log-probs: the prompt read once and its keys/values shared by the group's completions, against one full forward
  of every prompt + completion, in the same precision (1e-5 in float32), for pi_theta and pi_ref;
- the GRPO loss and its parameter gradients through that shared prompt, against the same from full forwards;
- sampling: the shared prompt and the KV cache draw the same tokens as re-reading every whole sequence each step,
  and the lean decode step of Llama-family models gives the model's own logits;
- bfloat16 keeps the iteration self-consistent: on-policy ratios exactly 1, pi_theta = pi_ref exactly before the first
  update, the same tensors shared by every session, and float32 one setting away;
- the suite turns a deprecation warning from grpo_viz code (or from a model it calls) into an error.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest
import torch

from grpo_viz.config import Settings
from grpo_viz.objectives import group_advantages, grpo_loss
from grpo_viz.policies.decode import LeanDecoder
from grpo_viz.policies.loading import make_policy
from grpo_viz.stepper import grpo_iteration, make_generator

from .lm_fixtures import load_test_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPTS = {"builtin": ["3+4=", "The cat"], "gpt2": ["The cat", "the mat ."], "qwen2": ["3 + 4 =", "12 + 5 ="],
           "llama": ["3 + 4 =", "12 + 5 ="]}
TEMPERATURE = 0.8
# bfloat16 keeps 8 bits of mantissa: two ways of summing the same products differ by a few of its units
TOL = {"float32": dict(atol=1e-5, rtol=0.0), "bfloat16": dict(atol=2e-2, rtol=0.0)}
GRAD_TOL = {"float32": dict(atol=1e-6, rtol=1e-4), "bfloat16": dict(atol=1e-3, rtol=5e-2)}
CASES = [("builtin", "float32"), ("gpt2", "float32"), ("gpt2", "bfloat16"), ("qwen2", "float32"),
         ("qwen2", "bfloat16"), ("llama", "float32"), ("llama", "bfloat16")]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return load_test_models(tmp_path_factory.mktemp("fast_path"))


def moved_policy(loaded_model, precision: str, max_new_tokens: int = 6):
    """A policy whose trainable weights have moved away from pi_ref, so pi_theta and pi_ref differ."""
    policy = make_policy(loaded_model, max_new_tokens=max_new_tokens, precision=precision)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
    return policy


def sampled_group(policy, style: str, group_size: int = 3):
    return policy.sample_group(PROMPTS[style], group_size, make_generator(0, 0), TEMPERATURE)


@pytest.mark.parametrize("style, precision", CASES)
def test_shared_prompt_log_probs_equal_a_full_forward_of_each_sequence(loaded, style, precision):
    policy = moved_policy(loaded[style], precision)
    assert policy.precision == precision
    group = sampled_group(policy, style)
    fast, plain = policy.log_probs(group, TEMPERATURE), policy.full_forward_log_probs(group, TEMPERATURE)
    torch.testing.assert_close(fast, plain, **TOL[precision])
    assert fast.requires_grad
    torch.testing.assert_close(policy.reference_log_probs(group, TEMPERATURE),
                               policy.full_forward_log_probs(group, TEMPERATURE, reference=True), **TOL[precision])


@pytest.mark.parametrize("style, precision", CASES)
def test_loss_and_gradients_through_the_shared_prompt_equal_the_full_forwards(loaded, style, precision):
    """The gradient reaches the adapters (or weights) through the prompt's keys/values as through a full forward."""
    policy = moved_policy(loaded[style], precision)
    group = sampled_group(policy, style)
    ref = policy.reference_log_probs(group, TEMPERATURE)
    advantages = group_advantages(torch.arange(group.batch_size, dtype=torch.float64) % 3, 3).float()

    def loss_and_grads(logp):
        loss = grpo_loss(logp, None, ref, advantages, group.mask, beta=0.04).loss
        return loss.detach(), torch.autograd.grad(loss, policy.parameters())

    fast_loss, fast_grads = loss_and_grads(policy.log_probs(group, TEMPERATURE))
    plain_loss, plain_grads = loss_and_grads(policy.full_forward_log_probs(group, TEMPERATURE))
    torch.testing.assert_close(fast_loss, plain_loss, **TOL[precision])
    assert any(float(g.abs().max()) > 0 for g in plain_grads)
    for fast, plain in zip(fast_grads, plain_grads, strict=True):
        torch.testing.assert_close(fast, plain, **GRAD_TOL[precision])


def plain_sampling(policy, prompt: str, group_size: int, generator: torch.Generator) -> torch.Tensor:
    """The straightforward sampler: every step reads the G whole sequences again (no cache), EOS not special."""
    prompt_ids = torch.tensor([policy.tokenizer.encode_prompt(prompt)]).expand(group_size, -1)
    x = prompt_ids
    for _ in range(policy.max_new_tokens):
        logits = policy.model(input_ids=x, use_cache=False).logits[:, -1]
        nxt = torch.multinomial(torch.softmax(logits.float() / TEMPERATURE, -1), 1, generator=generator)
        x = torch.cat([x, nxt], dim=1)
    return x[:, prompt_ids.shape[1]:]


@pytest.mark.parametrize("style", ["builtin", "gpt2", "qwen2", "llama"])
def test_sampling_with_the_shared_prompt_and_the_kv_cache_draws_the_plain_samplers_tokens(loaded, style):
    policy = moved_policy(loaded[style], "float32")
    policy.tokenizer.eos_ids = (-1,)  # no early stop: every row has max_new_tokens tokens, as the plain sampler's
    for draw in range(3):
        group = policy.sample_group(PROMPTS[style][:1], 4, make_generator(0, draw), TEMPERATURE)
        want = plain_sampling(policy, PROMPTS[style][0], 4, make_generator(0, draw))
        assert torch.equal(group.completion_ids, want)


@pytest.mark.parametrize("style, precision", [("qwen2", "float32"), ("qwen2", "bfloat16"), ("llama", "float32"),
                                              ("llama", "bfloat16")])
def test_the_lean_decode_step_gives_the_models_own_logits(loaded, style, precision):
    """Four decode steps of the lean step against the model's own forward with its cache, from the same prompt:
    log-probs to 1e-5 in float32 (bfloat16: the same arithmetic, held to its tolerance), the adapters moved."""
    policy = moved_policy(loaded[style], precision)
    prompt_ids = policy.tokenizer.encode_prompt(PROMPTS[style][0])
    with torch.no_grad():
        first, cache = policy._read_prompt(policy.model, prompt_ids, 3)
        _, lean_cache = policy._read_prompt(policy.model, prompt_ids, 3)
        lean = LeanDecoder.for_model(policy.model, lean_cache, rows=3, steps=4)
        assert lean is not None
        nxt = first.float().argmax(-1)
        for _ in range(4):
            want = policy.model(input_ids=nxt[:, None], cache=cache, use_cache=True).logits[:, -1]
            got = lean.step(nxt)
            torch.testing.assert_close(torch.log_softmax(got.float(), -1), torch.log_softmax(want.float(), -1),
                                       **TOL[precision])
            nxt = want.float().argmax(-1)
        with policy.model.disable_adapter():  # pi_ref's decode: the adapters off, as the model's own forward
            lean = LeanDecoder.for_model(policy.model, policy._read_prompt(policy.model, prompt_ids, 3)[1], 3, 1)
            assert all(not layer.q.adapters for layer in lean.layers)


@pytest.mark.parametrize("style", ["builtin", "gpt2"])
def test_other_architectures_decode_through_the_model_itself(loaded, style):
    policy = make_policy(loaded[style], max_new_tokens=4, precision="float32")
    with torch.no_grad():
        _, cache = policy._read_prompt(policy.model, policy.tokenizer.encode_prompt(PROMPTS[style][0]), 2)
    assert LeanDecoder.for_model(policy.model, cache, rows=2, steps=4) is None


@pytest.mark.parametrize("style", ["gpt2", "qwen2", "llama"])
def test_a_bfloat16_iteration_is_self_consistent(loaded, style):
    """Sampling, pi_old, pi_theta and pi_ref in one precision: ratios exactly 1 on-policy and pi_theta = pi_ref
    exactly before the first update; the second inner step has moved."""
    policy = make_policy(loaded[style], max_new_tokens=6, precision="float32")
    settings = replace(Settings(), group_size=4, mu=2, lm_lr=0.05, lm_precision="bfloat16")
    trace = grpo_iteration(policy, lambda g: torch.tensor([float(len(t)) for t in g.texts]), settings,
                           make_generator(0, 0), prompts=PROMPTS[style])
    assert policy.precision == "bfloat16"  # the iteration adopted the settings' precision
    assert torch.equal(trace.ref_logp, trace.old_logp)
    assert torch.equal(trace.steps[0].trace.ratio, torch.ones_like(trace.steps[0].trace.ratio))
    assert not torch.equal(trace.steps[1].logp, trace.old_logp)


def test_precision_switches_both_ways_and_the_bfloat16_weights_are_shared(loaded):
    a = moved_policy(loaded["qwen2"], "float32")
    group = sampled_group(a, "qwen2")
    before = a.log_probs(group, TEMPERATURE).detach()
    a.set_precision("bfloat16")
    in_bf16 = a.log_probs(group, TEMPERATURE).detach()
    assert not torch.equal(in_bf16, before)
    a.set_precision("float32")
    assert torch.equal(a.log_probs(group, TEMPERATURE).detach(), before)
    # one bfloat16 copy of the frozen weights for every session, never a copy each
    b, c = make_policy(loaded["qwen2"], precision="bfloat16"), make_policy(loaded["qwen2"], precision="bfloat16")
    frozen = lambda p: {id(w) for w in p.model.parameters() if not w.requires_grad}  # noqa: E731
    assert frozen(b) == frozen(c)
    assert all(w.dtype == torch.bfloat16 for w in b.model.parameters() if not w.requires_grad)
    assert all(w.dtype == torch.float32 for w in b.parameters())  # the adapters, their gradients and Adam: float32
    assert all(w.dtype == torch.float32 for w in loaded["qwen2"].model.parameters())


def test_full_finetuning_stays_float32(loaded):
    policy = make_policy(loaded["builtin"], precision="bfloat16")
    assert not policy.can_use_bfloat16 and policy.precision == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        policy.set_precision("float16")
    assert "lm_precision must be" in " ".join(replace(Settings(), lm_precision="fp8").validate())


def test_logits_to_keep_as_positions(loaded):
    model = loaded["builtin"].model
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    full = model(ids).logits
    torch.testing.assert_close(model(ids, logits_to_keep=torch.tensor([4])).logits, full[:, 4:])
    torch.testing.assert_close(model(ids, logits_to_keep=2).logits, full[:, 3:])


# ----------------------------------------------------------------- deprecations fail the suite


def test_a_deprecation_warning_from_grpo_viz_code_is_an_error():
    """pyproject's filterwarnings: what grpo_viz code warns as deprecated fails the test that ran it."""
    for category in (DeprecationWarning, FutureWarning):
        with pytest.raises(category):
            warnings.warn_explicit("old API", category, "lm.py", 1, module="grpo_viz.policies.lm")


def test_a_deprecated_argument_passed_to_a_model_is_an_error(loaded):
    """transformers warns at its caller's caller, nn.Module's __call__, when grpo_viz passes a model a deprecated
    keyword (as the sampler once passed past_key_values): that is an error too."""
    model = loaded["qwen2"].model
    ids = torch.tensor([[3, 4, 5]])
    with pytest.raises(FutureWarning, match="past_key_values"):
        model(input_ids=ids, past_key_values=None, use_cache=False)
