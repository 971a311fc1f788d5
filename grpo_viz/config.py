"""Every knob of grpo-viz in one dataclass, and the named presets of MATH.md section 6."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from .objectives import IMPORTANCE_SAMPLING_LEVELS, KL_ESTIMATORS, LOSS_TYPES, SCALE_REWARDS

# The toy's state and its three candidate next words, with the default reward
# of each: one clearly good, one partly good, one wrong.
TOY_STATE = "The cat"
TOY_WORDS = ("sat", "slept", "barked")
TOY_REWARDS = (1.0, 0.5, 0.0)
# Starting probabilities are round numbers so every figure can be checked by hand;
# the wrong word starts as the most likely one, so learning is visible.
TOY_START_PROBS = (0.3, 0.2, 0.5)


@dataclass(frozen=True)
class Preset:
    """The objective's options that define a published GRPO variant."""

    loss_type: str
    scale_rewards: str
    epsilon_low: float
    epsilon_high: float
    beta: float
    importance_sampling_level: str
    kl_ratio_correction: bool


PRESETS: dict[str, Preset] = {
    "GRPO (DeepSeekMath)": Preset("grpo", "group", 0.2, 0.2, 0.04, "token", False),
    "Dr. GRPO": Preset("dr_grpo", "none", 0.2, 0.2, 0.0, "token", False),
    "DAPO": Preset("dapo", "group", 0.2, 0.28, 0.0, "token", False),
    "GSPO": Preset("grpo", "group", 3e-4, 4e-4, 0.0, "sequence", False),
    "TRL defaults": Preset("dapo", "group", 0.2, 0.2, 0.0, "token", True),
}
DEFAULT_PRESET = "GRPO (DeepSeekMath)"
PRESET_FIELDS = tuple(f.name for f in fields(Preset))


@dataclass(frozen=True)
class Settings:
    """Every setting of one GRPO/PPO iteration.  Defaults are the DeepSeekMath preset."""

    # objective (MATH.md sections 1-5)
    loss_type: str = "grpo"
    scale_rewards: str = "group"
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    beta: float = 0.04
    importance_sampling_level: str = "token"
    kl_ratio_correction: bool = False
    # sampling and optimisation
    group_size: int = 8
    mu: int = 1  # inner updates on one sampled group
    lr: float = 1.0  # plain SGD on the toy's logits, so every update can be checked by hand
    max_grad_norm: float = 0.0  # the toy's gradient-norm clip; 0 = off, so its steps stay checkable by hand
    temperature: float = 1.0
    seed: int = 0
    rewards: tuple[float, ...] = TOY_REWARDS
    # PPO (MATH.md PPO section)
    kl_estimator: str = "k1"
    ppo_epochs: int = 4
    gamma: float = 1.0
    lam: float = 0.95
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    value_lr: float = 0.5
    whiten_advantages: bool = True
    # language model: Adam on a transformer wants a far smaller step than SGD on three logits; this is the built-in
    # model's (full finetuning), a LoRA model starts at LORA_LM_LR (``default_lm_lr``)
    lm_lr: float = 3e-4
    lm_max_grad_norm: float = 1.0  # TRL's default max_grad_norm; 0 = off
    max_new_tokens: int = 16  # a short answer's room, and SmolLM2's rambling cut short (each token costs a decode step)
    lm_precision: str = "bfloat16"  # a LoRA model's frozen weights; "float32" is exact to 1e-5 against TRL

    def with_preset(self, name: str) -> "Settings":
        """These settings with the objective options of preset ``name``."""
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
        return replace(self, **asdict(PRESETS[name]))

    def preset_differences(self, name: str) -> dict[str, tuple[object, object]]:
        """{field: (preset value, current value)} for the objective options that differ from preset ``name``."""
        preset = asdict(PRESETS[name])
        return {k: (v, getattr(self, k)) for k, v in preset.items() if getattr(self, k) != v}

    def validate(self) -> list[str]:
        """Plain sentences describing every setting that cannot be used (empty when all is well)."""
        problems = []
        if self.loss_type not in LOSS_TYPES:
            problems.append(f"loss_type must be one of {', '.join(LOSS_TYPES)}.")
        if self.scale_rewards not in SCALE_REWARDS:
            problems.append(f"scale_rewards must be one of {', '.join(SCALE_REWARDS)}.")
        if self.importance_sampling_level not in IMPORTANCE_SAMPLING_LEVELS:
            problems.append("importance_sampling_level must be 'token' or 'sequence'.")
        if self.kl_estimator not in KL_ESTIMATORS:
            problems.append(f"kl_estimator must be one of {', '.join(KL_ESTIMATORS)}.")
        if self.group_size < 2:
            problems.append(
                f"The group size is {self.group_size}: GRPO needs at least 2 samples per group, "
                "because each sample is compared with the group's mean."
            )
        for name in ("epsilon_low", "epsilon_high", "beta", "lr", "cliprange_value", "vf_coef", "value_lr",
                     "max_grad_norm", "lm_max_grad_norm"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                problems.append(f"{name} must be a finite number >= 0 (it is {value}).")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            problems.append(f"temperature must be a finite number > 0 (it is {self.temperature}).")
        if self.lm_precision not in ("float32", "bfloat16"):
            problems.append(f"lm_precision must be 'float32' or 'bfloat16' (it is {self.lm_precision!r}).")
        if self.mu < 1 or self.ppo_epochs < 1:
            problems.append("mu and ppo_epochs must be at least 1.")
        if not all(math.isfinite(r) for r in self.rewards):
            problems.append("every reward must be a finite number.")
        return problems


# LoRA trains a few adapter weights that start at zero (B = 0): they need a larger Adam step than full finetuning
# to move the model as far in as many iterations, and the built-in model, fully finetuned, falls apart at this one.
LORA_LM_LR = 1e-3


def default_lm_lr(model_kind: str) -> float:
    """The Adam step a model starts with: ``Settings.lm_lr`` for the built-in model, ``LORA_LM_LR`` for a LoRA one."""
    return Settings.lm_lr if model_kind == "builtin" else LORA_LM_LR


def preset_matching(settings: Settings) -> str | None:
    """The name of the preset whose objective options ``settings`` has exactly, if any."""
    for name in PRESETS:
        if not settings.preset_differences(name):
            return name
    return None


__all__ = [
    "PRESETS",
    "PRESET_FIELDS",
    "DEFAULT_PRESET",
    "Preset",
    "LORA_LM_LR",
    "Settings",
    "TOY_REWARDS",
    "TOY_START_PROBS",
    "TOY_STATE",
    "TOY_WORDS",
    "default_lm_lr",
    "preset_matching",
]
