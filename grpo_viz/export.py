"""Take the current screen elsewhere: CSV of an iteration's trace, and the same settings as a TRL GRPOConfig."""

from __future__ import annotations

import re

import pandas as pd

from . import tasks
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


TRL_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
# The app trains a Hugging Face model through LoRA adapters (policies.loading.make_policy's defaults).
LORA_RANK, LORA_ALPHA = 8, 16
TRL_TASKS = ("sum", "sum_brief", "sum_format", "sum_length")


def trl_config_kwargs(settings: Settings, max_completion_length: int | None = None,
                      learning_rate: float | None = None) -> dict:
    """The TRL GRPOConfig arguments that mean the same as these settings (TRL's own names).

    The language model's settings: Adam's step ``lm_lr``, its gradient-norm clip and ``max_new_tokens``, unless
    ``learning_rate`` / ``max_completion_length`` are given.
    """
    return dict(
        learning_rate=settings.lm_lr if learning_rate is None else learning_rate,
        num_generations=settings.group_size,
        per_device_train_batch_size=settings.group_size,  # one whole group per optimizer step, as in the app
        num_iterations=settings.mu,
        beta=settings.beta,
        epsilon=settings.epsilon_low,
        epsilon_high=settings.epsilon_high,
        loss_type=settings.loss_type,
        scale_rewards=settings.scale_rewards,
        importance_sampling_level=settings.importance_sampling_level,
        use_bias_correction_kl=settings.kl_ratio_correction,
        temperature=settings.temperature,
        max_completion_length=settings.max_new_tokens if max_completion_length is None else max_completion_length,
        seed=settings.seed,
        max_grad_norm=float(getattr(settings, "lm_max_grad_norm", 1.0)),
    )


# How the app trains beyond the objective's settings: (argument, value, why), where TRL's default differs.
TRL_PLUMBING = (
    ("lr_scheduler_type", "constant", "TRL decays the learning rate linearly by default; the app keeps it fixed"),
    ("optim", "adamw_torch", "AdamW with weight_decay 0 (TRL's default) is plain Adam, the app's optimizer"),
    ("weight_decay", 0.0, None),
    ("gradient_checkpointing", False, "TRL's default True only saves memory"),
    ("disable_dropout", True, "the app samples and scores in eval mode"),
    ("logging_steps", 1, None),
    ("report_to", "none", None),
    ("use_cpu", True, "delete this line and the next to train on a GPU in bf16"),
    ("bf16", False, None),
)


def trl_config_code(settings: Settings, max_completion_length: int | None = None,
                    learning_rate: float | None = None, extra: dict | None = None, indent: str = "") -> str:
    """``config = GRPOConfig(...)``: these settings, the app's optimizer and schedule, and ``extra`` (name: code)."""
    lines = [f"{k}={v!r}," for k, v in trl_config_kwargs(settings, max_completion_length, learning_rate).items()]
    lines += [f"{k}={v!r}," + (f"  # {why}" if why else "") for k, v, why in TRL_PLUMBING]
    lines += [f"{k}={v}," for k, v in (extra or {}).items()]
    body = "".join(f"{indent}    {line}\n" for line in lines)
    return f'{indent}config = GRPOConfig(\n{indent}    output_dir="grpo-out",\n{body}{indent})'


def _regex(pattern: re.Pattern) -> str:
    """``re.compile(...)`` source for ``pattern``, as a raw string when it can be one."""
    text = pattern.pattern
    literal = f'r"{text}"' if '"' not in text and not text.endswith("\\") else repr(text)
    return f"re.compile({literal}" + (", re.DOTALL)" if pattern.flags & re.DOTALL else ")")


def _reward_code(task_key: str) -> tuple[str, list[str], list[float] | None]:
    """The script's reward functions for ``task_key`` (source), the names TRL optimizes, and its reward_weights."""
    code = f'''SUM_IN_PROMPT = {_regex(tasks.SUM_IN_PROMPT)}
ANSWER_TAG = {_regex(tasks.ANSWER_TAG)}
NUMBER = {_regex(tasks.NUMBER)}


def text(message):
    """A conversational prompt or completion (a list of messages) as the text of its last message."""
    return message[-1]["content"] if isinstance(message, list) else message


def expected_sum(prompt):
    """a + b for a prompt that contains "a+b", else None."""
    m = SUM_IN_PROMPT.search(prompt)
    return None if m is None else int(m.group(1)) + int(m.group(2))


def extracted_answer(completion):
    """The number inside <answer></answer> if there is one, else the last number in the completion."""
    tagged = ANSWER_TAG.search(completion)
    if tagged:
        return int(tagged.group(1))
    numbers = NUMBER.findall(completion)
    return int(numbers[-1]) if numbers else None


def correct(prompts, completions, **kwargs):
    """1 if the completion's answer equals a + b of its prompt, else 0."""
    rewards = []
    for prompt, completion in zip(prompts, completions):
        target = expected_sum(text(prompt))
        rewards.append(float(target is not None and extracted_answer(text(completion)) == target))
    return rewards
'''
    if task_key == "sum":
        return code, ["correct"], None
    if task_key == "sum_format":
        code += f'''

# DeepSeek-R1's format: the whole completion is the answer inside the tags.
FORMAT = {_regex(tasks.FORMAT)}


def format_ok(completions, **kwargs):
    """DeepSeek-R1's format reward: 1 if the completion is exactly <answer>...</answer>, else 0."""
    return [float(bool(FORMAT.match(text(completion)))) for completion in completions]
'''
        return code, ["correct", "format_ok"], [w for w, _ in tasks.ARITHMETIC_FORMAT.reward.parts]
    if task_key == "sum_brief":
        brevity = tasks.ARITHMETIC_BRIEF.reward.parts[1][1]
        code += f'''

def brevity(completions, **kwargs):
    """A proxy for "just the answer": 1 up to {brevity.short} characters, 0 from {brevity.long} on, a line between."""
    return [min(max(({brevity.long} - len(text(c).strip())) / {brevity.long - brevity.short}, 0.0), 1.0)
            for c in completions]
'''
        return code, ["correct", "brevity"], [w for w, _ in tasks.ARITHMETIC_BRIEF.reward.parts]
    if task_key == "sum_length":
        target = tasks.ARITHMETIC_LENGTH.reward.target_tokens
        code += f'''

def length_proxy(completion_ids, **kwargs):
    """The hackable proxy: min(tokens / {target}, 1), the end-of-sequence token counted."""
    return [min(len(ids) / {target}, 1.0) for ids in completion_ids]
'''
        return code, ["length_proxy", "correct"], [1.0, 0.0]  # correctness logged beside the proxy, not optimized
    raise ValueError(f"No TRL script for task {task_key!r}; choose one of {', '.join(TRL_TASKS)}.")


def trl_script(settings: Settings, task: str = "sum") -> str:
    """A runnable TRL script that trains SmolLM2 on the language-model task ``task`` with these settings.

    The prompts are the app's chat prompts for every single-digit sum, one user message each, so TRL applies
    the chat template as the app does; the reward functions are the app's, written out. The toy's "The cat"
    task (``task="toy"``) exports the sum task instead, and says why: SmolLM2 never starts a completion with
    sat / slept / barked, so every reward would be 0 and nothing would be learned.
    """
    note = ""
    if task == "toy":
        note = ("# (The toy's reward, for a first word sat / slept / barked, is 0 for every SmolLM2 completion:\n"
                "# there would be nothing to learn, so this script trains the sum task.)\n")
        task = "sum"
    code, names, weights = _reward_code(task)
    spec = tasks.TASKS[task]
    template = spec.prompt("{a}", "{b}", chat=True)
    if template.format(a=3, b=4) != spec.prompt(3, 4, chat=True):
        raise ValueError(f"The prompts of task {task!r} cannot be written as one template.")
    extra = {} if weights is None else {"reward_weights": repr(weights)}
    extra.update(num_train_epochs="1", max_steps="max_steps")  # max_steps, when > 0, ends the run first
    what = f'the sum task, reward "{spec.title.removeprefix("Sum: ")}"'
    return f'''"""Trains {TRL_MODEL.split("/")[-1]} with GRPO on {what}, with the app's settings."""
# {spec.description}
{note}#
#   pip install trl peft datasets
#   python3 grpo_trl.py [MODEL] [MAX_STEPS]
#
# MODEL: a Hugging Face hub id or a local model folder. Offline, give the app's converted SmolLM2 folder:
#   python3 -c "from grpo_viz.policies.loading import convert_smollm2; print(convert_smollm2())"
# MAX_STEPS: optimizer steps (default -1: one pass over the 100 sums, mu steps on each sampled group).
# The last line printed is the trainer's log history as JSON (reward, reward_std, loss, ... per step).
import json
import re
import sys

# The model to train: a Hugging Face hub id or a local model folder (the first command-line argument overrides it).
MODEL = "{TRL_MODEL}"

{code}

def main():
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    model = sys.argv[1] if len(sys.argv) > 1 else MODEL
    max_steps = int(sys.argv[2]) if len(sys.argv) > 2 else -1
    # Every single-digit sum as the app asks it, as one user message: TRL applies the chat template, as the app does.
    prompts = [{template!r}.format(a=a, b=b) for a in range(10) for b in range(10)]
    dataset = Dataset.from_dict({{"prompt": [[{{"role": "user", "content": p}}] for p in prompts]}})
{trl_config_code(settings, extra=extra, indent="    ")}
    # The app's LoRA: adapters on the attention's query and value projections; pi_ref is the model without them.
    lora = LoraConfig(r={LORA_RANK}, lora_alpha={LORA_ALPHA}, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                      task_type="CAUSAL_LM")
    trainer = GRPOTrainer(model=model, reward_funcs=[{", ".join(names)}], args=config, train_dataset=dataset,
                          peft_config=lora)
    trainer.train()
    print(json.dumps(trainer.state.log_history))


if __name__ == "__main__":
    main()
'''
