"""A lean decode step for Llama-family models (Llama, SmolLM2, Qwen2): the sampler's per-token forward without the
model's module machinery.

A decode step reads every weight of the model for G new tokens. Through transformers and PEFT that is ~1,700 small
tensor operations, each passing through module calls, keyword handling and the dynamic cache's bookkeeping; here
it is the same operations on the same weight tensors, in the same order and precision, with a preallocated cache
and the rotary table computed once per group, so a step's logits are the model's own (tests hold them to 1e-5 in
float32). Sampling only: log-probs, the loss and its gradients always come from the model's own forward.

Any other architecture, a PEFT variant other than plain LoRA, or an unusual rotary scaling decodes through the
model itself (``LeanDecoder.for_model`` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ARCHITECTURES = ("llama", "qwen2")
ROPE_TYPES = ("default", "linear", "llama3")  # rotary tables that depend on the position only


@dataclass
class _Projection:
    """y = x Wᵀ + b  (+ Σ_adapters s · (x A_aᵀ) B_aᵀ, computed in the adapters' precision, as PEFT's LoRA does)."""

    weight: Tensor
    bias: Tensor | None
    adapters: tuple[tuple[Tensor, Tensor, float], ...]

    def __call__(self, x: Tensor) -> Tensor:
        y = F.linear(x, self.weight, self.bias)
        if not self.adapters:
            return y
        out = y
        for a, b, scaling in self.adapters:
            out = out + F.linear(F.linear(x.to(a.dtype), a), b) * scaling
        return out.to(y.dtype)


def _projection(module: nn.Module) -> _Projection | None:
    """The module's weights as a ``_Projection``: a plain Linear, or PEFT's LoRA Linear as it is set now."""
    if type(module) is nn.Linear:
        return _Projection(module.weight, module.bias, ())
    base = getattr(module, "base_layer", None)
    if type(base) is not nn.Linear or not hasattr(module, "lora_A"):
        return None
    if module.disable_adapters or module.merged:
        return _Projection(base.weight, base.bias, ())
    adapters = []
    for name in module.active_adapters:
        if name not in module.lora_A:
            continue
        if name in getattr(module, "lora_variant", {}) or not isinstance(module.lora_dropout[name], nn.Identity):
            return None  # DoRA and friends, or dropout: the model's own forward
        adapters.append((module.lora_A[name].weight, module.lora_B[name].weight, float(module.scaling[name])))
    return _Projection(base.weight, base.bias, tuple(adapters))


@dataclass
class _Layer:
    input_norm: Tensor
    q: _Projection
    k: _Projection
    v: _Projection
    o: _Projection
    post_norm: Tensor
    gate: _Projection
    up: _Projection
    down: _Projection


def _causal_lm(model: nn.Module) -> nn.Module:
    """The transformers model under a PEFT wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


class LeanDecoder:
    """Decode steps of a Llama-family model continuing a prompt's keys/values.

    One layer, for the new tokens' hidden states x [n, d] at position p:
        h = RMSNorm(x);  q, k, v = h W_qᵀ, h W_kᵀ, h W_vᵀ  (plus LoRA where the policy has it);
        q, k = RoPE(q, p), RoPE(k, p);  K, V = the cache with k, v appended;
        x = x + softmax(q Kᵀ / √d_head) V W_oᵀ;  x = x + (SiLU(h' W_gateᵀ) ⊙ h' W_upᵀ) W_downᵀ,  h' = RMSNorm(x);
    then logits = RMSNorm(x) W_headᵀ.
    """

    def __init__(self, lm: nn.Module, layers: list[_Layer], head: _Projection, cache, rows: int, steps: int):
        body = lm.model
        self.layers, self.head = layers, head
        self.embed = body.embed_tokens.weight
        self.final_norm = body.norm.weight
        config = lm.config
        self.eps = float(config.rms_norm_eps)
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        dtype = self.embed.dtype
        self.start = self.position = cache.get_seq_length()
        length = self.position + steps
        # the prompt's keys/values, copied once into buffers with room for every step
        self.keys, self.values = [], []
        for layer in cache.layers:
            k = torch.empty(rows, self.kv_heads, length, self.head_dim, dtype=layer.keys.dtype)
            v = torch.empty_like(k)
            k[:, :, : self.position] = layer.keys
            v[:, :, : self.position] = layer.values
            self.keys.append(k)
            self.values.append(v)
        positions = torch.arange(self.position, length)[None]
        cos, sin = body.rotary_emb(torch.empty(0, dtype=dtype), positions)
        self.cos, self.sin = cos[0], sin[0]  # [steps, d_head]

    @classmethod
    def for_model(cls, model: nn.Module, cache, rows: int, steps: int) -> "LeanDecoder | None":
        """A decoder for ``model`` continuing ``cache`` (its prompt's keys/values, ``rows`` rows) for up to ``steps``
        more tokens, or None when the model is not one this step reproduces exactly."""
        lm = _causal_lm(model)
        config = getattr(lm, "config", None)
        body = getattr(lm, "model", None)
        if config is None or body is None or getattr(config, "model_type", None) not in ARCHITECTURES:
            return None
        rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
        if (rope.get("rope_type", rope.get("type", "default")) not in ROPE_TYPES
                or getattr(config, "hidden_act", None) != "silu" or getattr(config, "pretraining_tp", 1) != 1
                or any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or ())):
            return None
        cache_layers = getattr(cache, "layers", None)
        if not cache_layers or len(cache_layers) != len(body.layers) or not hasattr(body, "rotary_emb"):
            return None
        layers = []
        for block in body.layers:
            attn, mlp = block.self_attn, block.mlp
            parts = [_projection(m) for m in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj,
                                              mlp.gate_proj, mlp.up_proj, mlp.down_proj)]
            if any(p is None for p in parts):
                return None
            q, k, v, o, gate, up, down = parts
            layers.append(_Layer(block.input_layernorm.weight, q, k, v, o, block.post_attention_layernorm.weight,
                                 gate, up, down))
        head = _projection(lm.lm_head)
        return None if head is None else cls(lm, layers, head, cache, rows, steps)

    def _rms_norm(self, x: Tensor, weight: Tensor) -> Tensor:
        """RMSNorm(x) = w ⊙ x / √(mean(x²) + ε), computed in float32 and rounded back, as the model does."""
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * x32.to(x.dtype)

    def _rope(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """RoPE(x) = x cos + rotate_half(x) sin, rotate_half(x) = (−x₂, x₁) for x's two halves."""
        half = self.head_dim // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

    @torch.no_grad()
    def step(self, ids: Tensor) -> Tensor:
        """[n, V] logits after the tokens ``ids`` [n], whose keys/values join the cache."""
        n, p = ids.shape[0], self.position
        cos, sin = self.cos[p - self.start], self.sin[p - self.start]
        x = F.embedding(ids, self.embed)
        for layer, keys, values in zip(self.layers, self.keys, self.values):
            h = self._rms_norm(x, layer.input_norm)
            q = self._rope(layer.q(h).view(n, self.heads, self.head_dim), cos, sin)
            keys[:, :, p] = self._rope(layer.k(h).view(n, self.kv_heads, self.head_dim), cos, sin)
            values[:, :, p] = layer.v(h).view(n, self.kv_heads, self.head_dim)
            attended = F.scaled_dot_product_attention(q[:, :, None], keys[:, :, : p + 1], values[:, :, : p + 1],
                                                      enable_gqa=True)
            x = x + layer.o(attended.reshape(n, self.heads * self.head_dim))
            h = self._rms_norm(x, layer.post_norm)
            x = x + layer.down(F.silu(layer.gate(h)) * layer.up(h))
        self.position += 1
        return self.head(self._rms_norm(x, self.final_norm))
