"""Any causal language model as a GRPO policy: the built-in tiny GPT or a Hugging Face model.

The same ``Policy`` interface as the toy, with more tokens and a bigger vocabulary:

- ``sample_group``: for each prompt, G completions drawn token by token from
  softmax(logits / T) with a seeded ``torch.Generator``, up to ``max_new_tokens``,
  stopping at end-of-sequence.  The prompt is read once and its keys/values (the KV
  cache) are shared by the G completions, which then add one token per forward
  (Llama-family models through ``decode.LeanDecoder``: the same arithmetic, without
  the modules' per-call machinery).
  ``mask[i, t] = 1`` for real tokens up to and including the first EOS.
- ``log_probs``: log pi_theta(o_{i,t} | q, o_{i,<t}) = log_softmax(logits / T)[o_{i,t}],
  differentiable, 0 on padding.  Per prompt, one forward of the prompt (batch 1)
  and one of the G completions on top of its keys/values: the gradient flows
  through the shared prompt too, and the result equals one full forward of each
  prompt + completion (``full_forward_log_probs``, which the tests compare it with).
- ``reference_log_probs``: the same under pi_ref, which is either a separate
  read-only model (the shared base weights) or, for LoRA, the same model with
  its adapters switched off (TRL's trick with PEFT: no second copy).

A LoRA policy computes in ``precision`` (float32 or bfloat16): the frozen base weights
are swapped for a shared bfloat16 copy, while the adapters, the gradients and Adam stay
float32.  Sampling, pi_old, pi_theta and pi_ref then all run the same arithmetic, so
on-policy ratios are exactly 1 and pi_theta = pi_ref before the first update.

A model only has to answer ``model(input_ids=..., cache=..., use_cache=..., logits_to_keep=...)``
with ``.logits`` and ``.cache`` (transformers' Cache API): Hugging Face causal LMs and ``TinyGPT`` both do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .base import Group, Policy
from .decode import LeanDecoder
from .tiny_gpt import WordTokenizer

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class TokenizerAdapter:
    """The few tokenizer operations a policy needs, for a ``WordTokenizer`` or a Hugging Face tokenizer."""

    def __init__(self, tokenizer, eos_ids: Sequence[int] = (), chat: bool = False):
        self.tokenizer = tokenizer
        self.is_hf = not isinstance(tokenizer, WordTokenizer)
        base_eos = tokenizer.eos_id if not self.is_hf else tokenizer.eos_token_id
        ids = [i for i in (base_eos, *eos_ids) if i is not None]
        if not ids:
            raise ValueError("The tokenizer has no end-of-sequence token, so a completion could never end.")
        self.eos_ids = tuple(dict.fromkeys(int(i) for i in ids))
        self.eos_id = self.eos_ids[0]
        self.chat = bool(chat and self.is_hf and getattr(tokenizer, "chat_template", None))
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def encode_prompt(self, prompt: str) -> list[int]:
        """The prompt's ids exactly as TRL makes them: the chat template for instruct models, else the tokenizer's own."""
        if prompt not in self._cache:
            if not self.is_hf:
                ids = self.tokenizer.encode(prompt, add_bos=True)
            elif self.chat:
                ids = self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
                )
                if isinstance(ids, dict) or hasattr(ids, "keys"):  # some versions return a BatchEncoding
                    ids = ids["input_ids"]
                ids = list(ids)
            else:
                # as TRL tokenizes a plain-text prompt: the tokenizer's own special tokens, none added by hand
                ids = self.tokenizer(prompt)["input_ids"]
            if not ids:
                raise ValueError("The prompt is empty after tokenization: give the model at least one token to start from.")
            self._cache[prompt] = list(ids)
        return self._cache[prompt]

    def token_text(self, token_id: int) -> str:
        if not self.is_hf:
            return self.tokenizer.token_text(token_id)
        return self.tokenizer.decode([token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def decode(self, ids: Sequence[int]) -> str:
        if not self.is_hf:
            return self.tokenizer.decode(list(ids))
        return self.tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)


@dataclass
class TokenDistribution:
    """The next-token distribution at one position of one completion, under one policy."""

    probs: Tensor  # [V]

    def top(self, k: int) -> list[tuple[int, float]]:
        values, ids = self.probs.topk(min(k, self.probs.numel()))
        return list(zip(ids.tolist(), values.tolist()))


class LanguageModelPolicy(Policy):
    """pi_theta = a causal LM's softmax(logits / T); pi_ref beside it, read-only."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        reference: nn.Module | None = None,
        *,
        max_new_tokens: int = 24,
        name: str = "language model",
        eos_ids: Sequence[int] = (),
        chat: bool = False,
        default_prompt: str = "The cat",
        base_weights_in: Callable[[torch.dtype], dict[int, nn.Parameter]] | None = None,
        precision: str = "float32",
    ):
        """``reference=None`` means the model is a PEFT model whose pi_ref is "adapters disabled".

        ``base_weights_in(dtype)`` maps each frozen float32 weight (by ``id``) to a shared copy in ``dtype``: with it
        the policy can compute in bfloat16 (``set_precision``); without it (full finetuning) it stays float32.
        """
        self.model = model
        self.reference = reference
        self.tokenizer = tokenizer if isinstance(tokenizer, TokenizerAdapter) else TokenizerAdapter(tokenizer, eos_ids, chat)
        if reference is None and not hasattr(model, "disable_adapter"):
            raise ValueError("Without a reference model the policy must be a PEFT (LoRA) model, whose base is pi_ref.")
        self.max_new_tokens = int(max_new_tokens)
        self.name = name
        self.default_prompt = default_prompt
        self._params = [p for p in model.parameters() if p.requires_grad]
        if not self._params:
            raise ValueError("The policy model has no trainable parameters.")
        self._base_weights_in = base_weights_in if reference is None else None
        # (module, name, float32 weight) of every frozen floating weight: what set_precision swaps
        self._frozen = [(module, name, w) for module in model.modules() for name, w in module._parameters.items()
                        if w is not None and not w.requires_grad and w.is_floating_point()]
        self._precision = "float32"
        self.set_precision(precision)

    # ------------------------------------------------------------ precision
    @property
    def precision(self) -> str:
        """The precision the forwards run in: "float32", or "bfloat16" (a LoRA policy's frozen base weights)."""
        return self._precision

    @property
    def can_use_bfloat16(self) -> bool:
        """Only a LoRA policy: full finetuning would have Adam step bfloat16 weights, whose rounding eats small steps."""
        return self._base_weights_in is not None

    def set_precision(self, precision: str) -> None:
        """Compute in ``precision`` from now on (a policy that cannot use bfloat16 stays float32)."""
        if precision not in PRECISIONS:
            raise ValueError(f"The precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
        if precision == "bfloat16" and not self.can_use_bfloat16:
            precision = "float32"
        if precision == self._precision:
            return
        with self.lock:  # a forward of another thread must not see half the weights swapped
            weights = {} if precision == "float32" else self._base_weights_in(PRECISIONS[precision])
            for module, name, w in self._frozen:
                module._parameters[name] = weights.get(id(w), w)
            self._precision = precision

    def adopt(self, settings) -> None:
        self.set_precision(settings.lm_precision)

    # ------------------------------------------------------------ sampling
    @staticmethod
    def _read_prompt(model: nn.Module, prompt_ids: list[int], rows: int) -> tuple[Tensor, object]:
        """The prompt read once (batch 1): [rows, V] logits of the first completion token, and its keys/values
        repeated for ``rows`` completions (the cache they continue from)."""
        # the last position as an index, not logits_to_keep=1: slicing [:, -1:] keeps the prompt's batch stride, and
        # torch's bfloat16 linear then copies the whole vocabulary matrix (~40x slower than on a compact row)
        last = torch.tensor([len(prompt_ids) - 1])
        out = model(input_ids=torch.tensor([prompt_ids]), use_cache=True, logits_to_keep=last)
        cache = out.cache
        cache.batch_repeat_interleave(rows)
        return out.logits[:, -1].expand(rows, -1), cache

    @torch.no_grad()
    def _sample_one_prompt(self, prompt_ids: list[int], group_size: int, generator: torch.Generator,
                           temperature: float) -> Tensor:
        """[G, t] sampled ids; after a row's first EOS its remaining positions repeat EOS (padding)."""
        logits, cache = self._read_prompt(self.model, prompt_ids, group_size)
        return self._decode(logits, cache, generator, temperature)

    @torch.no_grad()
    def _decode(self, logits: Tensor, cache, generator: torch.Generator, temperature: float) -> Tensor:
        """[rows, t] ids sampled on from each row's first-token ``logits`` [rows, V] and its ``cache``."""
        eos = torch.tensor(self.tokenizer.eos_ids)
        group_size = logits.shape[0]
        lean = LeanDecoder.for_model(self.model, cache, group_size, self.max_new_tokens)
        finished = torch.zeros(group_size, dtype=torch.bool)
        tokens = []
        for step in range(self.max_new_tokens):
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)[:, 0]
            nxt = torch.where(finished, torch.full_like(nxt, self.tokenizer.eos_id), nxt)
            tokens.append(nxt)
            finished |= torch.isin(nxt, eos)
            if bool(finished.all()) or step == self.max_new_tokens - 1:
                break
            if lean is not None:
                logits = lean.step(nxt)
            else:
                logits = self.model(input_ids=nxt[:, None], cache=cache, use_cache=True).logits[:, -1]
        return torch.stack(tokens, dim=1)

    def completion_mask(self, ids: Tensor) -> Tensor:
        """1 for every token up to and including the first EOS of each row, 0 after it."""
        is_eos = torch.isin(ids, torch.tensor(self.tokenizer.eos_ids)).long()
        eos_before = torch.cumsum(is_eos, dim=1) - is_eos  # EOS tokens strictly before t
        return (eos_before == 0).to(torch.float32)

    def sample_group(self, prompts: list[str] | None, group_size: int, generator: torch.Generator,
                     temperature: float) -> Group:
        prompts = list(prompts or [self.default_prompt])
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1.")
        chunks = [self._sample_one_prompt(self.tokenizer.encode_prompt(p), group_size, generator, temperature)
                  for p in prompts]
        return self._group(prompts, group_size, chunks)

    @torch.no_grad()
    def sample_batched(self, prompts: list[str], samples: int, generator: torch.Generator,
                       temperature: float) -> Group:
        """``sample_group``'s rows (``samples`` per prompt, prompt after prompt) with the prompts of one token length
        read and continued in one batch: an evaluation of many short prompts in a few forwards instead of one
        decode loop per prompt. Its random stream differs from ``sample_group``'s."""
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1.")
        encoded = [self.tokenizer.encode_prompt(p) for p in prompts]
        by_length: dict[int, list[int]] = {}
        for k, ids in enumerate(encoded):
            by_length.setdefault(len(ids), []).append(k)
        rows: dict[int, Tensor] = {}
        for length, members in by_length.items():
            last = torch.tensor([length - 1])
            out = self.model(input_ids=torch.tensor([encoded[k] for k in members]), use_cache=True,
                             logits_to_keep=last)
            out.cache.batch_repeat_interleave(samples)
            ids = self._decode(out.logits[:, -1].repeat_interleave(samples, dim=0), out.cache, generator,
                               temperature)
            for j, k in enumerate(members):
                rows[k] = ids[j * samples : (j + 1) * samples]
        return self._group(prompts, samples, [rows[k] for k in range(len(prompts))])

    def _group(self, prompts: list[str], samples: int, chunks: list[Tensor]) -> Group:
        """The completions sampled for each prompt (``chunks[k]``: prompt k's ``samples`` rows of token ids) as one
        Group, prompt after prompt, padded with EOS to the longest."""
        width = max(c.shape[1] for c in chunks)
        ids = torch.full((len(prompts) * samples, width), self.tokenizer.eos_id, dtype=torch.long)
        for k, c in enumerate(chunks):
            ids[k * samples : (k + 1) * samples, : c.shape[1]] = c
        mask = self.completion_mask(ids)
        lengths = mask.sum(-1).long().tolist()
        return Group(
            prompts=[p for p in prompts for _ in range(samples)],
            completion_ids=ids,
            mask=mask,
            texts=[self.tokenizer.decode(row[:n]) for row, n in zip(ids.tolist(), lengths)],
            tokens=[[self.tokenizer.token_text(i) for i in row[:n]] for row, n in zip(ids.tolist(), lengths)],
        )

    # ------------------------------------------------------------ log-probs
    def _prompt_chunks(self, group: Group) -> list[tuple[int, int, str]]:
        """(start, end, prompt) for each run of consecutive rows that share a prompt."""
        chunks, start = [], 0
        for i in range(1, group.batch_size + 1):
            if i == group.batch_size or group.prompts[i] != group.prompts[start]:
                chunks.append((start, i, group.prompts[start]))
                start = i
        return chunks

    def _logits(self, model: nn.Module, prompt_ids: list[int], completion_ids: Tensor) -> Tensor:
        """[n, T, V] logits that predict each completion token (teacher forcing on prompt + completion).

        The prompt is the same for the n completions: it is read once (batch 1, with gradient) and its keys/values
        are shared by the n rows, which read only their own T - 1 tokens on top of them (position t's logits
        predict token t + 1; the prompt's last position predicts token 1). Causal attention: padding after a row's
        EOS cannot change the logits before it, so no attention mask.
        """
        n, T = completion_ids.shape
        first, cache = self._read_prompt(model, prompt_ids, n)
        if T == 1:
            return first[:, None]
        rest = model(input_ids=completion_ids[:, :-1], cache=cache, use_cache=True).logits
        return torch.cat([first[:, None], rest], dim=1)

    def _full_logits(self, model: nn.Module, prompt_ids: list[int], completion_ids: Tensor) -> Tensor:
        """The same [n, T, V] logits from one plain forward of each prompt + completion (no cache): the reference
        every faster path is tested against."""
        n, T = completion_ids.shape
        x = torch.cat([torch.tensor([prompt_ids]).expand(n, -1), completion_ids[:, :-1]], dim=1)
        return model(input_ids=x, use_cache=False, logits_to_keep=T).logits[:, -T:]

    def _log_probs_with(self, model: nn.Module, group: Group, temperature: float, full: bool = False) -> Tensor:
        rows = []
        logits_of = self._full_logits if full else self._logits
        for start, end, prompt in self._prompt_chunks(group):
            ids = group.completion_ids[start:end]
            logits = logits_of(model, self.tokenizer.encode_prompt(prompt), ids)
            logp = torch.log_softmax(logits.float() / temperature, dim=-1)
            rows.append(logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1))
        return torch.cat(rows) * group.mask.to(torch.float32)

    def full_forward_log_probs(self, group: Group, temperature: float, reference: bool = False) -> Tensor:
        """``log_probs`` (or, with ``reference``, ``reference_log_probs``) computed the plain way: one forward of each
        whole prompt + completion, in the current precision, with gradient unless ``reference``."""
        if reference:
            with torch.no_grad(), self._reference_model() as ref:
                return self._log_probs_with(ref, group, temperature, full=True)
        return self._log_probs_with(self.model, group, temperature, full=True)

    def log_probs(self, group: Group, temperature: float) -> Tensor:
        return self._log_probs_with(self.model, group, temperature)

    @contextlib.contextmanager
    def _reference_model(self):
        if self.reference is not None:
            yield self.reference
        else:
            # switching the adapters off changes the session's model for a moment: no other thread may use it then
            with self.lock, self.model.disable_adapter():
                yield self.model

    @torch.no_grad()
    def reference_log_probs(self, group: Group, temperature: float) -> Tensor:
        with self._reference_model() as ref:
            return self._log_probs_with(ref, group, temperature)

    # ------------------------------------------------------------ training
    def parameters(self) -> list[Tensor]:
        return self._params

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        # Adam, not SGD: a transformer's parameters have very different gradient scales.
        return torch.optim.Adam(self._params, lr=lr)

    def learning_rate(self, settings) -> float:
        # settings.lr is the toy's SGD step on three logits (about 1); Adam on a transformer needs ~1e-3.
        return settings.lm_lr

    def max_grad_norm(self, settings) -> float:
        # TRL clips a transformer's gradient norm by default; the toy's hand-checkable SGD does not.
        return settings.lm_max_grad_norm

    @property
    def max_completion_length(self) -> int:
        return self.max_new_tokens

    def clone(self) -> "LanguageModelPolicy":
        raise NotImplementedError("Make a new session policy with grpo_viz.policies.loading.make_policy instead.")

    # ------------------------------------------------------------ inspection
    @torch.no_grad()
    def log_probs_under(self, group: Group, temperature: float, state: list[Tensor]) -> Tensor:
        """log pi(o_{i,t} | ...) with the trainable tensors temporarily set to ``state`` (e.g. after the update)."""
        with self.trainable_state_set_to(state):
            return self.log_probs(group, temperature)

    @torch.no_grad()
    def next_token_probs(self, group: Group, row: int, temperature: float, state: list[Tensor] | None = None,
                         reference: bool = False) -> Tensor:
        """[T, V]: pi(. | q, o_{row,<t}) at every position t of one completion.

        ``reference=True`` uses pi_ref; otherwise pi_theta with its trainable tensors
        temporarily set to ``state`` (e.g. pi_old = a trace's ``state_before``).
        """
        prompt = group.prompts[row]
        ids = group.completion_ids[row : row + 1]
        if reference:
            with self._reference_model() as ref:
                logits = self._logits(ref, self.tokenizer.encode_prompt(prompt), ids)
        else:
            with self.trainable_state_set_to(state):
                logits = self._logits(self.model, self.tokenizer.encode_prompt(prompt), ids)
        return torch.softmax(logits[0].float() / temperature, dim=-1)


def parameter_checksum(module: nn.Module) -> float:
    """A cheap fingerprint of every parameter and buffer: sum of |x| weighted by position, in float64."""
    total = 0.0
    for k, t in enumerate(list(module.parameters()) + list(module.buffers())):
        total += (k + 1) * float(t.detach().double().abs().sum())
    return total
