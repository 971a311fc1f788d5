"""Tiny random Hugging Face models (GPT-2 and Qwen2 style) with a word-level tokenizer, built in a folder."""

from __future__ import annotations

import string
from pathlib import Path

WORDS = ["The", "cat", "sat", "slept", "barked", "on", "the", "mat", ".", "+", "=", "<answer>", "</answer>",
         *[str(n) for n in range(19)]]


# transformers loads a Qwen2 folder's tokenizer as its own byte-level BPE class whatever tokenizer.json holds;
# with no merges it splits text into characters ("Ġ" marks a leading space), so that vocabulary needs them.
CHARACTERS = sorted(set(string.ascii_letters + string.digits + "+=.<>/") | {"Ġ"})


def build_tokenizer(folder: Path, characters: bool = False):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<eos>", "<bos>", *WORDS]
    if characters:
        words += [c for c in CHARACTERS if c not in words]
    vocab = {t: i for i, t in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", bos_token="<bos>",
                                   pad_token="<eos>")
    fast.save_pretrained(folder)
    return fast


def build_model(folder: Path, style: str = "gpt2", seed: int = 0) -> Path:
    """Save a random ~50k-parameter causal LM of ``style`` ('gpt2', 'qwen2' or 'llama') and its tokenizer to
    ``folder``."""
    import torch
    import transformers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(folder, characters=style in ("qwen2", "llama"))
    common = dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    if style == "gpt2":
        config = transformers.GPT2Config(n_positions=64, n_embd=32, n_layer=2, n_head=2, **common)
        model = transformers.GPT2LMHeadModel(config)
    elif style in ("qwen2", "llama"):  # grouped keys/values and tied embeddings; Qwen2 with q/k/v biases, Llama
        # (SmolLM2's architecture) without
        config_class, model_class = {"qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
                                     "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM)}[style]
        config = config_class(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=True, **common)
        model = model_class(config)
    else:
        raise ValueError(style)
    model.save_pretrained(folder)
    return folder


def load_test_models(root: Path) -> dict:
    """The model kinds a test of the language-model path runs on: random GPT-2, Qwen2 and Llama folders built under
    ``root`` and loaded as a visitor's folder would be, and the repository's built-in tiny GPT."""
    from grpo_viz.policies.loading import load_builtin, load_hf

    models = {style: load_hf(str(build_model(root / style, style))) for style in ("gpt2", "qwen2", "llama")}
    models["builtin"] = load_builtin()
    return models
