"""The built-in model: a small decoder-only transformer in plain torch, and its word-level tokenizer.

About 0.8M parameters (4 layers, width 128), trained in a few minutes on CPU by
``scripts/train_tiny_lm.py``.  Its ``forward`` answers like a Hugging Face
causal LM (``cache``, ``use_cache``, ``logits_to_keep`` in; ``.logits``, ``.cache``
out, the cache having the few methods of transformers' Cache API that ``lm.py``
calls), so the one sampling loop in ``lm.py`` runs it and any Hugging Face model alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ASSETS = Path(__file__).resolve().parents[2] / "assets"
WEIGHTS_FILE = "tiny_gpt.safetensors"
TOKENIZER_FILE = "tiny_gpt_tokenizer.json"

# A word keeps the space before it (" cat"), as GPT-2's tokens do, so decoding is
# plain concatenation; numbers, tags and punctuation are tokens of their own.
TOKEN_PATTERN = r"<answer>|</answer>| ?[A-Za-z]+| ?\d+|\S| "


class WordTokenizer:
    """A fixed word-level vocabulary: regex pieces in, ids out; unknown pieces become ``<unk>``."""

    BOS, EOS, UNK = "<bos>", "<eos>", "<unk>"

    def __init__(self, vocab: list[str], pattern: str = TOKEN_PATTERN):
        if len(set(vocab)) != len(vocab):
            raise ValueError("The vocabulary lists a token twice.")
        for special in (self.BOS, self.EOS, self.UNK):
            if special not in vocab:
                raise ValueError(f"The vocabulary needs the special token {special}.")
        self.vocab = list(vocab)
        self.pattern = pattern
        self._regex = re.compile(pattern)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.bos_id, self.eos_id, self.unk_id = (self.index[t] for t in (self.BOS, self.EOS, self.UNK))

    def __len__(self) -> int:
        return len(self.vocab)

    def pieces(self, text: str) -> list[str]:
        return self._regex.findall(text)

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        ids = [self.index.get(p, self.unk_id) for p in self.pieces(text)]
        return [self.bos_id, *ids] if add_bos else ids

    def token_text(self, token_id: int) -> str:
        return self.vocab[token_id]

    def decode(self, ids: list[int], skip_special: bool = True) -> str:
        special = {self.bos_id, self.eos_id} if skip_special else set()
        return "".join(self.vocab[i] for i in ids if i not in special)

    def save(self, path: str | Path) -> None:
        data = {"type": "word-level", "pattern": self.pattern, "vocab": self.vocab}
        Path(path).write_text(json.dumps(data, indent=0, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> "WordTokenizer":
        data = json.loads(Path(path).read_text())
        if data.get("type") != "word-level" or "vocab" not in data:
            raise ValueError(f"{path} is not a grpo-viz word-level tokenizer file.")
        return cls(data["vocab"], data.get("pattern", TOKEN_PATTERN))


@dataclass(frozen=True)
class TinyGPTConfig:
    vocab_size: int
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    max_len: int = 64


class KVCache:
    """Every layer's keys and values so far, [B, heads, S, head_dim] each: the part of transformers' Cache API
    (``update``, ``get_seq_length``, ``batch_repeat_interleave``) that ``lm.py`` and the attention below use."""

    def __init__(self):
        self.layers: list[tuple[Tensor, Tensor]] = []

    def get_seq_length(self) -> int:
        return self.layers[0][0].shape[2] if self.layers else 0

    def update(self, keys: Tensor, values: Tensor, layer_idx: int) -> tuple[Tensor, Tensor]:
        """Append this step's keys and values to layer ``layer_idx``'s and return all of them."""
        if layer_idx == len(self.layers):
            self.layers.append((keys, values))
        else:
            past_k, past_v = self.layers[layer_idx]
            self.layers[layer_idx] = (torch.cat([past_k, keys], dim=2), torch.cat([past_v, values], dim=2))
        return self.layers[layer_idx]

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Each row ``repeats`` times: one prompt's keys and values shared by the completions of its group."""
        self.layers = [(k.repeat_interleave(repeats, 0), v.repeat_interleave(repeats, 0)) for k, v in self.layers]


@dataclass
class CausalLMOutput:
    """What ``lm.py`` reads from any causal LM's forward: [B, L, V] logits and the KV cache."""

    logits: Tensor
    cache: KVCache | None = None


class SelfAttention(nn.Module):
    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x: Tensor, cache: KVCache | None, layer_idx: int) -> Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_head, D // self.n_head).permute(2, 0, 3, 1, 4)
        past = cache is not None and len(cache.layers) > layer_idx  # this layer already holds earlier tokens
        if cache is not None:
            k, v = cache.update(k, v, layer_idx)
        if not past:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif L == 1:  # one new token attends to everything before it: no mask needed
            y = F.scaled_dot_product_attention(q, k, v)
        else:  # several new tokens after a cache: causal, shifted by the cache length
            S = k.shape[2]
            mask = torch.ones(L, S, dtype=torch.bool, device=x.device).tril(diagonal=S - L)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, L, D))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(), nn.Linear(4 * cfg.d_model, cfg.d_model))

    def forward(self, x: Tensor, cache: KVCache | None, layer_idx: int) -> Tensor:
        x = x + self.attn(self.ln1(x), cache, layer_idx)
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """Token + position embeddings, ``n_layer`` blocks, a final LayerNorm, and an output layer tied to the embedding."""

    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def forward(
        self, input_ids: Tensor, cache: KVCache | None = None, use_cache: bool = False,
        logits_to_keep: int | Tensor = 0,
        **_ignored,
    ) -> CausalLMOutput:
        """``cache`` holds the keys and values of the tokens before ``input_ids`` (updated in place); with
        ``use_cache`` and no cache a new one is started. ``logits_to_keep``: logits of the last k > 0 positions only, or
        of the positions a 1-D tensor lists."""
        if use_cache and cache is None:
            cache = KVCache()
        start = 0 if cache is None else cache.get_seq_length()
        length = input_ids.shape[1]
        if start + length > self.config.max_len:
            raise ValueError(f"The built-in model reads at most {self.config.max_len} tokens; this input has {start + length}.")
        positions = torch.arange(start, start + length, device=input_ids.device)
        x = self.tok_emb(input_ids) + self.pos_emb(positions)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        if isinstance(logits_to_keep, Tensor):  # the positions to keep, as transformers takes them
            x = x[:, logits_to_keep]
        elif logits_to_keep > 0:
            x = x[:, -logits_to_keep:]
        # Tied output layer: logits = h E^T, so the model has one vocabulary matrix, not two.
        logits = F.linear(self.ln_f(x), self.tok_emb.weight)
        return CausalLMOutput(logits=logits, cache=cache if use_cache else None)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def save_tiny_gpt(model: TinyGPT, tokenizer: WordTokenizer, folder: str | Path = ASSETS) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"config": json.dumps(asdict(model.config))}
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, folder / WEIGHTS_FILE, metadata)
    tokenizer.save(folder / TOKENIZER_FILE)


def load_tiny_gpt(folder: str | Path = ASSETS) -> tuple[TinyGPT, WordTokenizer]:
    """The built-in model and tokenizer from ``folder`` (``assets/`` by default), in eval mode."""
    from safetensors import safe_open

    folder = Path(folder)
    weights, vocab = folder / WEIGHTS_FILE, folder / TOKENIZER_FILE
    for path in (weights, vocab):
        if not path.is_file():
            raise ValueError(f"The built-in model needs {path}, which is missing: run `python scripts/train_tiny_lm.py`.")
    try:
        with safe_open(str(weights), framework="pt") as f:
            cfg = TinyGPTConfig(**json.loads(f.metadata()["config"]))
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # a truncated or foreign file: say which and why
        raise ValueError(f"{weights} could not be read as the built-in model's weights ({err}).") from err
    tokenizer = WordTokenizer.load(vocab)
    if cfg.vocab_size != len(tokenizer):
        raise ValueError(f"{weights} expects {cfg.vocab_size} tokens but {vocab} has {len(tokenizer)}: they do not belong together.")
    model = TinyGPT(cfg)
    model.load_state_dict(state)
    return model.eval(), tokenizer
