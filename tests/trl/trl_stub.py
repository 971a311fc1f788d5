"""TRL 1.16's own GRPO code, run outside its trainer: a GRPOTrainer stub with only what its methods read.

``GRPOTrainer.__init__`` needs a dataset, a reward function and an accelerate setup; the methods under test
(``_get_per_token_logps_and_entropies``, ``_compute_loss``, ``_tokenize_prompts``) read a few attributes, set
here by hand to what ``GRPOConfig`` would give for the app's settings, on one process without vLLM.
"""

from __future__ import annotations

import contextlib
import copy
from collections import defaultdict
from types import SimpleNamespace

import torch
from torch import Tensor, nn
from trl import GRPOTrainer
from trl.trainer.utils import add_fused_lm_head, pad, use_adapter

from grpo_viz.config import Settings
from grpo_viz.policies.base import Group
from grpo_viz.policies.lm import LanguageModelPolicy


class OneProcessAccelerator:
    """What ``accelerate.Accelerator`` does for these methods on a single CPU process."""

    num_processes = 1
    is_main_process = True
    sync_gradients = True
    device = torch.device("cpu")

    def autocast(self):
        return contextlib.nullcontext()

    def reduce(self, tensor: Tensor, reduction: str = "sum") -> Tensor:
        return tensor

    def gather(self, tensor: Tensor) -> Tensor:
        return tensor

    gather_for_metrics = gather

    def unwrap_model(self, model: nn.Module) -> nn.Module:
        return model


def stub_trainer(settings: Settings | None = None, max_completion_length: int = 1, tokenizer=None) -> GRPOTrainer:
    """A GRPOTrainer whose loss options are the app's ``settings`` (GRPOConfig field by field), training mode."""
    settings = settings or Settings()
    trainer = object.__new__(GRPOTrainer)
    trainer.accelerator = OneProcessAccelerator()
    trainer.loss_type = settings.loss_type
    trainer.epsilon_low = settings.epsilon_low
    trainer.epsilon_high = settings.epsilon_high
    trainer.beta = settings.beta
    trainer.importance_sampling_level = settings.importance_sampling_level
    trainer.max_completion_length = max_completion_length
    trainer.args = SimpleNamespace(
        use_bias_correction_kl=settings.kl_ratio_correction,
        delta=None,
        steps_per_generation=1,
        gradient_accumulation_steps=1,
    )
    trainer.top_entropy_quantile = 1.0
    trainer.aux_loss_enabled = False
    trainer.off_policy_mask_threshold = None
    trainer.use_vllm = False
    trainer.vllm_importance_sampling_correction = False
    trainer._entropy_bonus_enabled = False
    trainer.model = SimpleNamespace(training=True)  # _compute_loss reads self.model.training for its mode
    trainer.current_gradient_accumulation_steps = 1
    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    # _tokenize_prompts
    trainer.processing_class = tokenizer
    trainer._is_vlm = False
    trainer.environment_factories = None
    trainer.tools = None
    trainer.chat_template = None
    trainer.chat_template_kwargs = {}
    return trainer


def add_trl_lm_head(model: nn.Module, temperature: float) -> nn.Module:
    """Patch ``model`` as GRPOTrainer.__init__ does: its fused LM head returns log-probs at ``temperature``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    add_fused_lm_head(base, temperature=temperature, outputs=("log_probs", "entropy"))
    return model


def trl_policy(loaded, finetune: str, temperature: float, max_new_tokens: int) -> tuple[LanguageModelPolicy, nn.Module]:
    """A fresh app policy whose model also answers TRL's fused forward, and TRL's reference for it.

    TRL's reference is the same PEFT model with its adapters off (``use_adapter(model, None)``) for LoRA, and a
    separate copy of the starting weights for full finetuning.
    """
    from grpo_viz.policies.loading import make_policy

    policy = make_policy(loaded, finetune=finetune, max_new_tokens=max_new_tokens, precision="float32")
    add_trl_lm_head(policy.model, temperature)
    if finetune == "lora":
        reference = policy.model
    else:
        reference = add_trl_lm_head(copy.deepcopy(loaded.model), temperature)
    return policy, reference


def trl_batch(policy: LanguageModelPolicy, group: Group) -> dict[str, Tensor]:
    """The app's group as TRL's ``_generate_and_score_completions`` lays it out.

    Prompt ids (the app's own ``encode_prompt``) left-padded with an attention mask, completions right-padded
    with the pad token after their first EOS, and the completion mask.
    """
    tok = policy.tokenizer.tokenizer
    pad_id = tok.pad_token_id
    prompt_ids = [torch.tensor(policy.tokenizer.encode_prompt(p)) for p in group.prompts]
    prompt_mask = [torch.ones_like(ids) for ids in prompt_ids]
    completion_mask = group.mask.long()
    return {
        "prompt_ids": pad(prompt_ids, padding_value=pad_id, padding_side="left"),
        "prompt_mask": pad(prompt_mask, padding_value=0, padding_side="left"),
        "completion_ids": group.completion_ids.masked_fill(completion_mask == 0, pad_id),
        "completion_mask": completion_mask,
        "num_items_in_batch": completion_mask.sum(),
    }


def trl_log_probs(trainer: GRPOTrainer, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """TRL's per-token log-probs of the completions, [B, T], 0 on padding."""
    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    logps, _, _ = trainer._get_per_token_logps_and_entropies(
        model, input_ids, attention_mask, batch["completion_ids"].size(1)
    )
    return logps


@torch.no_grad()
def trl_reference_log_probs(trainer: GRPOTrainer, reference: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """TRL's ref_per_token_logps: adapters disabled on a PEFT policy, else the separate reference model."""
    if hasattr(reference, "peft_config"):
        with use_adapter(reference, adapter_name="ref" if "ref" in reference.peft_config else None):
            return trl_log_probs(trainer, reference, batch)
    return trl_log_probs(trainer, reference, batch)


def trl_loss(trainer: GRPOTrainer, model: nn.Module, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """(loss, per-token log-probs) from TRL's ``_compute_loss``; the log-probs are the very tensor the loss used,
    so ``torch.autograd.grad(loss, logps)`` is TRL's gradient with respect to them."""
    captured = {}
    method = GRPOTrainer._get_per_token_logps_and_entropies.__get__(trainer)

    def capturing(*args, **kwargs):
        logps, entropies, aux = method(*args, **kwargs)
        captured["logps"] = logps
        return logps, entropies, aux

    trainer._get_per_token_logps_and_entropies = capturing
    try:
        loss = trainer._compute_loss(model, inputs)
    finally:
        del trainer._get_per_token_logps_and_entropies
    return loss, captured["logps"]


def last_metric(trainer: GRPOTrainer, name: str) -> float:
    return trainer._metrics["train"][name][-1]
