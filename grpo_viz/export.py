"""Take the current screen elsewhere: CSV of an iteration's trace, and the same settings as a TRL GRPOConfig."""

from __future__ import annotations

import pandas as pd

from .config import Settings
from .explain import sample_table
from .explain_ppo import compare_table
from .stepper import STAGES, IterationTrace


def trace_csv(trace: IterationTrace) -> str:
    """Every per-sample number of every inner step of one iteration, as CSV (one row per sample and step)."""
    frames = []
    for k in range(trace.mu):
        frame = sample_table(trace, k, len(STAGES) - 2)
        frame.insert(0, "inner_step", k + 1)
        frame["loss"] = float(trace.steps[k].trace.loss)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True).to_csv(index=False)


def compare_csv(run) -> str:
    """The PPO vs GRPO page's per-sample table of the group ``run`` (a ``CompareRun``) last showed, as CSV."""
    return "" if run.shown is None else compare_table(*run.shown).to_csv(index=False)


def history_csv(history: list[dict]) -> str:
    return pd.DataFrame(history).to_csv(index=False)


def frame_csv(table) -> str:
    """``table.frame()`` (a training run or experiment) as CSV."""
    return table.frame().to_csv(index=False)


def trl_config_kwargs(settings: Settings, max_completion_length: int = 1, learning_rate: float | None = None) -> dict:
    """The TRL GRPOConfig arguments that mean the same as these settings (TRL's own names)."""
    return dict(
        learning_rate=settings.lr if learning_rate is None else learning_rate,
        num_generations=settings.group_size,
        per_device_train_batch_size=settings.group_size,  # one whole group per device step
        num_iterations=settings.mu,
        beta=settings.beta,
        epsilon=settings.epsilon_low,
        epsilon_high=settings.epsilon_high,
        loss_type=settings.loss_type,
        scale_rewards=settings.scale_rewards,
        importance_sampling_level=settings.importance_sampling_level,
        use_bias_correction_kl=settings.kl_ratio_correction,
        temperature=settings.temperature,
        max_completion_length=max_completion_length,
        seed=settings.seed,
    )


def trl_config_code(settings: Settings, max_completion_length: int = 1, learning_rate: float | None = None) -> str:
    kwargs = trl_config_kwargs(settings, max_completion_length, learning_rate)
    args = ",\n".join(f"    {k}={v!r}" for k, v in kwargs.items())
    return f'config = GRPOConfig(\n    output_dir="grpo-out",\n{args},\n)'


def trl_script(settings: Settings, words: tuple[str, ...], rewards: tuple[float, ...]) -> str:
    """A short, runnable TRL script that trains a real model on the toy's task with these settings."""
    table = ", ".join(f"{w!r}: {r!r}" for w, r in zip(words, rewards))
    return f'''# pip install trl datasets   (scale out later with: accelerate launch this_script.py)
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

REWARD = {{{table}}}


def word_reward(completions, **kwargs):
    """The toy's reward: the first word of each completion, looked up in the table (0 if absent)."""
    firsts = [(c.strip().split() or [""])[0].strip(".,!") for c in completions]
    return [REWARD.get(w, 0.0) for w in firsts]


dataset = Dataset.from_dict({{"prompt": ["The cat"] * 256}})
# The toy's η is plain SGD on three logits; a transformer under AdamW wants a far smaller step.
{trl_config_code(settings, max_completion_length=4, learning_rate=1e-6)}
trainer = GRPOTrainer(
    model="HuggingFaceTB/SmolLM2-135M-Instruct",
    reward_funcs=word_reward,
    args=config,
    train_dataset=dataset,
)
trainer.train()
'''
