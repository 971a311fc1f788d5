"""The exported TRL script learns: it runs in TRL on a tiny model, offline, and its rewards spread.

Also: the script's reward functions are the app's, and the app's converted SmolLM2 folder loads by path in
transformers and in TRL's own loader.
"""

from __future__ import annotations

import ast
import json
import os
import runpy
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from grpo_viz import export, tasks
from grpo_viz.config import DEFAULT_PRESET, Settings

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# A word-level vocabulary that is nearly all numbers: a random model's completions often end in the right sum.
NUMBERS = [str(n) for n in range(19)]
VOCAB = ["<unk>", "<eos>", "<bos>", "user", "assistant", ":", *NUMBERS]
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant :{% endif %}")


def build_digit_model(folder: Path, seed: int = 0) -> Path:
    """A random ~20k-parameter Llama with a chat template and a vocabulary of numbers, saved to ``folder``."""
    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>",
                                                bos_token="<bos>", pad_token="<eos>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=len(VOCAB), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True,
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory) -> Path:
    folder = build_digit_model(tmp_path_factory.mktemp("digit_model") / "model")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)  # as TRL loads it: numbers decode as numbers
    assert tokenizer.decode([VOCAB.index("7"), VOCAB.index("12"), 1], skip_special_tokens=True) == "7 12"
    assert "assistant :" in tokenizer.apply_chat_template([{"role": "user", "content": "hi"}],
                                                          add_generation_prompt=True, tokenize=False)
    return folder


def run_script(script: str, folder: Path, model: Path, max_steps: int) -> tuple[list[dict], float]:
    """Run ``script`` as ``python3 script.py MODEL MAX_STEPS`` offline in ``folder``; (log history, seconds)."""
    path = folder / "grpo_trl.py"
    path.write_text(script)
    env = {**os.environ, **OFFLINE, "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(path), str(model), str(max_steps)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds


def test_exported_script_learns_on_a_tiny_model_offline(tmp_path, digit_model):
    """Two GRPO steps in TRL with the app's settings: completions get different rewards, so there is a gradient."""
    settings = replace(Settings().with_preset(DEFAULT_PRESET), group_size=16, mu=1, max_new_tokens=3, seed=0,
                       temperature=1.0, lm_lr=1e-4)
    history, seconds = run_script(export.trl_script(settings), tmp_path, digit_model, max_steps=2)
    steps = [h for h in history if "reward" in h]
    print(f"{seconds:.1f} s;", [(h["step"], h["reward"], h["reward_std"]) for h in steps])
    assert [h["step"] for h in steps] == [1, 2]
    assert all(h["learning_rate"] == pytest.approx(1e-4) for h in steps)  # constant, not decayed
    assert max(h["completions/max_length"] for h in steps) <= 3  # max_completion_length = max new tokens
    assert max(h["reward_std"] for h in steps) > 0  # the rewards have spread
    assert min(h["frac_reward_zero_std"] for h in steps) < 1


def script_namespace(task: str = "sum") -> dict:
    """The exported script's functions, without running its training (it trains under __main__ only)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grpo_trl.py"
        path.write_text(export.trl_script(Settings(), task))
        return runpy.run_path(str(path), run_name="grpo_trl")


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_script_reward_is_the_apps_exact_match():
    ns = script_namespace("sum")
    prompt = tasks.ARITHMETIC.prompt(3, 4, chat=True)
    assert prompt.startswith("What is 3+4? ")
    assert ns["correct"]([user(prompt)], [assistant("<answer>7</answer>")]) == [1.0]
    assert ns["correct"]([user(prompt)], [assistant("<answer>8</answer>")]) == [0.0]
    assert ns["correct"]([prompt, prompt], ["3 + 4 = 7", "seven"]) == [1.0, 0.0]  # plain text too
    completions = ["7", " 7.", "<answer> 7 </answer> 9", "It is 12, no, 7", "-7", "<answer>x</answer> 7", "", "70"]
    app = [float(tasks.extracted_answer(c) == tasks.expected_sum(prompt)) for c in completions]
    assert ns["correct"]([user(prompt)] * len(completions), [assistant(c) for c in completions]) == app
    assert app == [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0]


def test_script_rewards_of_the_r1_and_length_tasks():
    ns = script_namespace("sum_format")
    prompt = tasks.ARITHMETIC_FORMAT.prompt(3, 4, chat=True)
    good, bare = assistant("<answer>7</answer>"), assistant("7")
    assert ns["format_ok"]([good, bare, assistant("<answer>8</answer>")]) == [1.0, 0.0, 1.0]
    assert ns["correct"]([user(prompt)] * 2, [good, bare]) == [1.0, 1.0]
    script = export.trl_script(Settings(), "sum_format")
    assert "reward_funcs=[correct, format_ok]" in script and "reward_weights=[1.0, 0.5]" in script
    assert "Put only the final number inside <answer></answer>." in script
    ns = script_namespace("sum_length")
    assert ns["length_proxy"]([[5] * 4, [5] * 8, [5] * 12]) == [0.5, 1.0, 1.0]
    script = export.trl_script(Settings(), "sum_length")
    assert "reward_funcs=[length_proxy, correct]" in script and "reward_weights=[1.0, 0.0]" in script


def test_script_carries_the_apps_settings():
    settings = replace(Settings().with_preset("DAPO"), group_size=6, mu=3, lm_lr=3e-4, max_new_tokens=12,
                       temperature=0.7, seed=5)
    script = export.trl_script(settings)
    for text in ("learning_rate=0.0003", "num_generations=6", "per_device_train_batch_size=6",
                 "num_iterations=3", "epsilon_high=0.28", "loss_type='dapo'", "beta=0.0", "max_completion_length=12",
                 "temperature=0.7", "seed=5", "lr_scheduler_type='constant'", "optim='adamw_torch'",
                 "weight_decay=0.0", "report_to='none'", "use_cpu=True", "bf16=False",
                 f"max_grad_norm={float(getattr(settings, 'lm_max_grad_norm', 1.0))!r}",
                 '[{"role": "user", "content": p}]', 'MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"'):
        assert text in script, text
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(script))
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(script)) if isinstance(node, ast.ImportFrom)}
    assert imported == {"json", "re", "sys", "datasets", "peft", "trl", "LoraConfig", "Dataset", "GRPOConfig",
                        "GRPOTrainer"}  # self-contained: nothing from grpo_viz
    toy = export.trl_script(settings, "toy")  # the toy's word reward could not learn on SmolLM2
    assert "reward_funcs=[correct]" in toy and "sat / slept / barked" in toy
    with pytest.raises(ValueError):
        export.trl_script(settings, "no such task")


@pytest.fixture(scope="module")
def smollm2_folder(tmp_path_factory) -> Path:
    """The app's converted SmolLM2 in a temporary cache (copied from the app's cache when it has one)."""
    pytest.importorskip("gguf")
    from grpo_viz.policies import loading

    try:
        loading.smollm2_gguf()
    except ValueError as err:
        pytest.skip(str(err))
    cache = tmp_path_factory.mktemp("grpo_viz_cache")
    existing = loading.CACHE_DIR / loading.SMOLLM2_NAME
    if (existing / "model.safetensors").is_file() and (existing / "config.json").is_file():
        shutil.copytree(existing, cache / loading.SMOLLM2_NAME)
    folder = loading.convert_smollm2(cache_dir=cache)
    assert folder == cache / loading.SMOLLM2_NAME
    return folder


def test_converted_smollm2_loads_by_path_in_transformers_and_trl(smollm2_folder):
    import transformers
    from trl.trainer.utils import create_model_from_path

    config = json.loads((smollm2_folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    model = transformers.AutoModelForCausalLM.from_pretrained(smollm2_folder)
    assert type(model).__name__ == "LlamaForCausalLM"
    del model
    model = create_model_from_path(str(smollm2_folder))  # what GRPOTrainer(model=<path>) calls
    assert type(model).__name__ == "LlamaForCausalLM"

    # A folder converted before config.json had "architectures" is repaired in place on the next call.
    del config["architectures"]
    (smollm2_folder / "config.json").write_text(json.dumps(config))
    from grpo_viz.policies.loading import convert_smollm2

    assert convert_smollm2(cache_dir=smollm2_folder.parent) == smollm2_folder
    assert json.loads((smollm2_folder / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert type(create_model_from_path(str(smollm2_folder))).__name__ == "LlamaForCausalLM"
