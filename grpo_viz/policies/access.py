"""Which language models a server loads: its operator decides, not a visitor's link.

A page's URL chooses a model (``?model=...``), and a URL is anyone's to write. So what a choice may load is the
operator's setting, read from the server's environment each time a page asks:

``GRPO_VIZ_ALLOW_LOCAL_MODELS``
    ``1``: the sidebar offers "Hugging Face model", where a visitor types a folder on the server's disk or a hub id
    in its local cache. ``0``: that choice does not exist, no path in a URL is ever looked at, and the message is the
    same whatever the URL names. Unset means ``1``: someone running ``streamlit run app.py`` on their own machine
    loads their own folders. The Dockerfile and deploy/ set ``0``.
``GRPO_VIZ_MODELS``
    The models the server offers beside the built-in tiny GPT and SmolLM2, as ``name=path`` entries separated by
    ``;`` or new lines (``qwen=/models/Qwen2.5-0.5B-Instruct; gpt2=/models/gpt2``). Each name becomes a choice
    (``?model=qwen``) whichever way ``GRPO_VIZ_ALLOW_LOCAL_MODELS`` is set; its path is never shown to visitors.
``GRPO_VIZ_MAX_MODEL_MB``
    The largest model the server loads, in MB of float32 weights (how the app holds them). Unset: half the memory
    the machine has available when the load is asked for (psutil), the other half left for loading's transient
    copies and the sessions that train on it. A model's size is read from its weight files' headers before any
    weight is loaded.

Plain Python (no Streamlit): ``grpo_viz/ui/models.py`` asks it, and the unit tests set the environment by hand.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

ALLOW_LOCAL_ENV = "GRPO_VIZ_ALLOW_LOCAL_MODELS"
OFFERED_ENV = "GRPO_VIZ_MODELS"
MAX_MB_ENV = "GRPO_VIZ_MAX_MODEL_MB"

BUILTIN_CHOICES = {
    "builtin": "Built-in tiny GPT (0.8M, instant)",
    "smollm2": "SmolLM2-135M-Instruct (LoRA)",
}
LOCAL_CHOICE = "hf"
LOCAL_LABEL = "Hugging Face model (local folder or cached id)"
OFFERED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")

FLOAT32_BYTES = 4
SMOLLM2_PARAMETERS = 134_515_008  # SmolLM2-135M-Instruct (tied embeddings), counted on the converted model
FREE_MEMORY_FRACTION = 0.5  # of what is available when no limit is set
MB = 1_000_000
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class LoadRequest:
    """What a choice loads: ``kind`` for ``loading.load_model`` ("builtin", "smollm2", "hf"), the folder or hub id,
    and the name the page shows. ``offered``: a model from the operator's list (its path stays on the server)."""

    kind: str
    source: str = ""
    name: str = ""
    offered: bool = False


@dataclass(frozen=True)
class ModelAccess:
    """The operator's settings: may visitors name local models, which models the server offers, the size limit."""

    allow_local: bool = True
    offered: tuple[tuple[str, str], ...] = ()  # (name, path), in the operator's order
    max_bytes: int | None = None  # None: a fraction of the memory available at load time
    problems: tuple[str, ...] = ()  # entries of the settings that were ignored, for the server's log

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ModelAccess:
        env = os.environ if env is None else env
        problems: list[str] = []
        allow_text = env.get(ALLOW_LOCAL_ENV, "").strip().lower()
        allow_local = True
        if allow_text in _OFF:
            allow_local = False
        elif allow_text and allow_text not in _ON:
            # A typo in a safety switch leaves it safe.
            allow_local = False
            problems.append(f"{ALLOW_LOCAL_ENV}={allow_text!r} is not 1 or 0; local models stay off.")
        offered = _parse_offered(env.get(OFFERED_ENV, ""), problems)
        max_bytes = None
        max_text = env.get(MAX_MB_ENV, "").strip()
        if max_text:
            try:
                max_mb = float(max_text)
                if not math.isfinite(max_mb) or max_mb <= 0:
                    raise ValueError
                max_bytes = int(max_mb * MB)
            except ValueError:
                problems.append(f"{MAX_MB_ENV}={max_text!r} is not a positive number of MB; using the default limit.")
        return cls(allow_local=allow_local, offered=offered, max_bytes=max_bytes, problems=tuple(problems))

    def choices(self) -> dict[str, str]:
        """The sidebar's model choices (URL value -> label): built-in and SmolLM2, the operator's models, and the
        local-folder choice only where the operator allows it."""
        out = dict(BUILTIN_CHOICES)
        out.update({name: f"{name} (offered by this server)" for name, _ in self.offered})
        if self.allow_local:
            out[LOCAL_CHOICE] = LOCAL_LABEL
        return out

    def request(self, choice: str, source: str = "") -> LoadRequest:
        """What ``choice`` loads, or ``ValueError`` with a sentence that depends only on the settings (never on
        whether ``source`` exists)."""
        if choice in BUILTIN_CHOICES:
            return LoadRequest(choice, "", BUILTIN_CHOICES[choice])
        offered = dict(self.offered)
        if choice in offered:
            return LoadRequest("hf", offered[choice], choice, offered=True)
        if choice == LOCAL_CHOICE and self.allow_local:
            return LoadRequest("hf", source.strip(), source.strip())
        raise ValueError(self.refusal())

    def refusal(self) -> str:
        names = ", ".join(self.choices())
        return (f"This server loads only the models it offers ({names}); it does not load models named in a link. "
                f"Whoever runs the server can offer more ({OFFERED_ENV}) or allow local folders "
                f"({ALLOW_LOCAL_ENV}=1).")

    def limit_bytes(self, available: int | None = None) -> int:
        """The operator's limit, or ``FREE_MEMORY_FRACTION`` of the memory available now."""
        if self.max_bytes is not None:
            return self.max_bytes
        if available is None:
            import psutil

            available = psutil.virtual_memory().available
        return int(available * FREE_MEMORY_FRACTION)

    def check_size(self, request: LoadRequest, *, available: int | None = None) -> int | None:
        """Raise ``ValueError`` when the model ``request`` names needs more memory than the limit; return its size
        in bytes (None when it cannot be told before loading, e.g. a folder the loader will reject anyway)."""
        size = request_bytes(request)
        if size is None:
            return None
        limit = self.limit_bytes(available)
        if size > limit:
            why = (f"the limit its operator set ({MAX_MB_ENV})" if self.max_bytes is not None
                   else f"half the memory this machine has free now ({MAX_MB_ENV} sets another limit)")
            raise ValueError(f"{request.name or 'This model'} needs about {size / MB:,.0f} MB in memory as float32, "
                             f"more than this server's limit of {limit / MB:,.0f} MB: {why}.")
        return size


def _parse_offered(text: str, problems: list[str]) -> tuple[tuple[str, str], ...]:
    entries: dict[str, str] = {}
    for raw in re.split(r"[;\n]", text):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        name, sep, path = (part.strip() for part in entry.partition("="))
        if not sep or not path:
            problems.append(f"{OFFERED_ENV}: {entry!r} is not name=path; ignored.")
        elif not OFFERED_NAME.match(name) or name in BUILTIN_CHOICES or name == LOCAL_CHOICE:
            problems.append(f"{OFFERED_ENV}: {name!r} cannot name a model (letters, digits, _ . -, at most 40, "
                            f"not {', '.join([*BUILTIN_CHOICES, LOCAL_CHOICE])}); ignored.")
        elif name in entries:
            problems.append(f"{OFFERED_ENV}: {name!r} is listed twice; the first entry stays.")
        else:
            entries[name] = str(Path(path).expanduser())
    return tuple(entries.items())


# ----------------------------------------------------------------- a model's size before it loads


def request_bytes(request: LoadRequest) -> int | None:
    """The float32 bytes the model ``request`` names takes in memory, read before loading it."""
    if request.kind == "builtin":
        return None  # 3 MB in assets/
    if request.kind == "smollm2":
        return SMOLLM2_PARAMETERS * FLOAT32_BYTES
    folder = model_folder(request.source)
    return None if folder is None else folder_float32_bytes(folder)


def model_folder(source: str) -> Path | None:
    """A local folder, or the snapshot folder of a hub id in the local Hugging Face cache (nothing downloaded)."""
    text = source.strip()
    if not text:
        return None
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if text.startswith(("/", ".", "~")) or path.exists():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(text, "config.json")
    except Exception:  # a malformed id: the loader gives the sentence for it
        return None
    return Path(config).parent if isinstance(config, str) else None


def folder_float32_bytes(folder: Path) -> int | None:
    """Parameters x 4 bytes, from the safetensors headers (each file's first bytes), or, for pytorch_model.bin
    files, their size scaled from the dtype config.json names to float32."""
    shards = _weight_files(folder, "model.safetensors")
    if shards:
        try:
            return sum(_safetensors_parameters(f) for f in shards) * FLOAT32_BYTES
        except (OSError, ValueError, KeyError, TypeError, AttributeError, struct.error):
            return None  # not a readable safetensors file: the loader says what is wrong with it
    shards = _weight_files(folder, "pytorch_model.bin")
    if not shards:
        return None
    stored = sum(f.stat().st_size for f in shards)
    return stored * FLOAT32_BYTES // _config_dtype_bytes(folder)


def _weight_files(folder: Path, single: str) -> list[Path]:
    if (folder / single).is_file():
        return [folder / single]
    index = folder / f"{single}.index.json"
    if not index.is_file():
        return []
    try:
        weight_map = json.loads(index.read_text()).get("weight_map", {})
    except (OSError, json.JSONDecodeError, AttributeError):
        return []
    return [folder / name for name in sorted(set(weight_map.values())) if (folder / name).is_file()]


def _safetensors_parameters(path: Path) -> int:
    """The number of parameters in a safetensors file: its header is an 8-byte little-endian length and JSON."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(min(length, 100_000_000)))
    return sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")


def _config_dtype_bytes(folder: Path) -> int:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return FLOAT32_BYTES
    dtype = str(config.get("torch_dtype") or config.get("dtype") or "float32")
    return 2 if dtype in ("float16", "bfloat16") else FLOAT32_BYTES
