"""Settings bound to the URL: what a valid URL value looks like, the warnings for the rest, and the sidebars
(the shared knobs with their presets, PPO's own, the language model's) whose widgets keep them in the URL."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from types import SimpleNamespace

import streamlit as st

from ..config import DEFAULT_PRESET, PRESET_FIELDS, PRESETS, TOY_REWARDS, TOY_WORDS, Settings, default_lm_lr
from ..objectives import LOSS_TYPES, SCALE_REWARDS
from ..tasks import default_task
from .models import model_choices


DEFAULTS = Settings()

# Every URL parameter a widget is bound to, with what a valid value looks like:
# ("float"|"int", low, high) or ("choice", options).  The widgets below use the
# same bounds, so a value that passes here is one the widget accepts.
BOOL_SPEC = ("choice", ("true", "false", "True", "False"))
QUERY_SPECS: dict[str, tuple] = {
    "preset": ("choice", tuple(PRESETS)),
    "seed": ("int", 0, 2**31 - 1),
    "group_size": ("int", 2, 64),
    "epsilon_low": ("float", 0.0, 0.5),
    "epsilon_high": ("float", 0.0, 0.5),
    "beta": ("float", 0.0, 1.0),
    "lr": ("float", 0.01, 5.0),
    "mu": ("int", 1, 8),
    "temperature": ("float", 0.1, 3.0),
    "loss_type": ("choice", LOSS_TYPES),
    "scale_rewards": ("choice", SCALE_REWARDS),
    "importance_sampling_level": ("choice", ("token", "sequence")),
    "kl_ratio_correction": BOOL_SPEC,
    **{f"reward_{w}": ("float", -10.0, 10.0) for w in TOY_WORDS},
}


def _describe(spec: tuple) -> str:
    if spec[0] == "choice":
        return "one of " + ", ".join(f"'{o}'" for o in spec[1])
    kind = "a whole number" if spec[0] == "int" else "a number"
    return f"{kind} from {spec[1]:g} to {spec[2]:g}"


def _is_valid(raw: str, spec: tuple) -> bool:
    if spec[0] == "choice":
        return raw in spec[1]
    try:
        value = float(raw)
    except ValueError:
        return False
    if not math.isfinite(value) or not spec[1] <= value <= spec[2]:
        return False
    return spec[0] == "float" or value == int(value)


def invalid_query_params(params: dict[str, str], specs: dict[str, tuple] = QUERY_SPECS) -> list[str]:
    """One sentence for each known URL parameter whose value cannot be used."""
    problems = []
    for name, spec in specs.items():
        if name in params and not _is_valid(params[name], spec):
            problems.append(
                f"URL parameter `{name}={params[name][:40]}` is not {_describe(spec)}; using the default instead."
            )
    return problems


def warn_bad_query_params(specs: dict[str, tuple] = QUERY_SPECS, session_key: str = "url_warnings") -> None:
    """Warn about URL values in ``specs`` the widgets will ignore: computed once a session, shown on every run."""
    if session_key not in st.session_state:
        st.session_state[session_key] = invalid_query_params(st.query_params.to_dict(), specs)
    for message in st.session_state[session_key]:
        st.warning(message, icon="⚠️")


def _warn_url_value(message: str) -> None:
    """Warn now about a URL value read after ``warn_bad_query_params`` ran, and on every later run with its warnings."""
    st.session_state.setdefault("url_warnings", []).append(message)
    st.warning(message, icon="⚠️")


def _apply_preset() -> None:
    for name in PRESET_FIELDS:
        st.session_state[name] = getattr(PRESETS[st.session_state.preset], name)


def _fresh_preset_from_url() -> None:
    """A link that names a preset but not every option gets the preset's values for the rest."""
    if st.session_state.get("_preset_seeded"):
        return
    st.session_state._preset_seeded = True
    preset = st.query_params.get("preset")
    if preset in PRESETS and preset != DEFAULT_PRESET:
        for name in PRESET_FIELDS:
            if name not in st.query_params:
                st.session_state[name] = getattr(PRESETS[preset], name)


def _setting_from_url(name: str) -> None:
    """Once a session: ``session_state[name]`` from a valid URL value, or the setting's default."""
    if name not in st.session_state:
        raw, default = st.query_params.get(name), getattr(DEFAULTS, name)
        valid = raw is not None and _is_valid(raw, ALL_QUERY_SPECS[name])
        st.session_state[name] = _parse_url_value(raw, default) if valid else default


def _setting_to_url(name: str, value: object) -> None:
    """The setting in the URL while it differs from its default (a default-only link stays short)."""
    if value == getattr(DEFAULTS, name):
        st.query_params.pop(name, None)
    else:
        st.query_params[name] = str(value).lower() if isinstance(value, bool) else str(value)


def _parse_url_value(raw: str, like: object) -> object:
    """A URL value already checked by ``_is_valid``, as the type of ``like``."""
    if isinstance(like, bool):
        return raw.lower() == "true"
    if isinstance(like, (int, float)):
        return type(like)(float(raw))
    return raw


# A session's first run on a page stepped in the browser draws its first chart before the sidebar's widgets: the
# browser loads and lays out each kind of widget on its first use, and the ~60 of the sidebar held the first chart
# back by 1.5-2 s. The sidebar's settings come from the URL (and a preset link's values) exactly as its widgets
# would give them, and its widgets come with the run the browser asks for once that chart is drawn
# (``stepping.stage_tabs``). Only a browser asks: Streamlit's frontend sends its time zone with each run, AppTest
# and protocol-level clients do not, so their sidebar is drawn at once.
SIDEBAR_WAITING = "_sidebar_waiting"  # this run's sidebar waits for the first chart
SIDEBAR_NOW = "_sidebar_now"  # from now on the sidebar draws its widgets: the first chart is drawn


def sidebar_waiting() -> bool:
    """True while this run's sidebar waits for the first chart (``settings_sidebar(wait_for_first_chart=True)``)."""
    return bool(st.session_state.get(SIDEBAR_WAITING))


def _wait_for_first_chart(wanted: bool) -> bool:
    """Whether this run's sidebar waits: a page that steps in the browser asked for it, a browser drives the session,
    no chart of this session was drawn yet, and every URL value of the sidebar's widgets is one they take as it is
    (a bad one is left to the widgets and their warnings)."""
    waiting = (wanted and st.context.timezone is not None and not st.session_state.get(SIDEBAR_NOW)
               and not invalid_query_params(st.query_params.to_dict()))
    st.session_state[SIDEBAR_WAITING] = waiting
    return waiting


def _bound_value(name: str, default: object) -> object:
    """What the widget bound to URL parameter ``name`` starts a session at: the URL's value (checked already), else
    one put in session_state before it (a preset link's), else its default."""
    raw = st.query_params.get(name)
    if raw is not None:
        return _parse_url_value(raw, default)
    return st.session_state.get(name, default)


def _settings_before_widgets() -> Settings:
    """The shared knobs as ``settings_sidebar``'s widgets will give them, without drawing them."""
    for name in ("seed", "importance_sampling_level", "kl_ratio_correction"):
        _setting_from_url(name)
        _setting_to_url(name, st.session_state[name])
    names = ("group_size", "epsilon_low", "epsilon_high", "beta", "loss_type", "scale_rewards", "lr", "mu",
             "temperature")
    state = st.session_state
    return replace(
        DEFAULTS, **{name: _bound_value(name, getattr(DEFAULTS, name)) for name in names},
        seed=int(state.seed), importance_sampling_level=state.importance_sampling_level,
        kl_ratio_correction=bool(state.kl_ratio_correction),
        rewards=tuple(float(_bound_value(f"reward_{w}", r)) for w, r in zip(TOY_WORDS, TOY_REWARDS)),
    )


def _seed_input(container) -> int:
    """The seed, synced to the URL by hand: Streamlit 1.67's bound integer number_input crashes on `seed=inf`."""
    _setting_from_url("seed")
    seed = int(container.number_input("Seed", 0, 2**31 - 1, key="seed",
                                      help="Same seed, same groups: a link reproduces the run."))
    _setting_to_url("seed", seed)
    return seed


@contextmanager
def lazy_expander(container, label: str, key: str, settings: tuple[str, ...]) -> Iterator:
    """A collapsed expander whose widgets are built only while it is open; its ``settings`` stay in the URL.

    Every widget costs each full rerun of every page, open or not: the PPO options alone were 1.3 ms of a 10 ms
    PPO vs GRPO click. Built lazily, the widgets cannot be bound to the URL (Streamlit drops a bound widget's URL
    parameter when it is not drawn), so ``settings`` (keys of ``Settings`` and of ``ALL_QUERY_SPECS``) are synced
    by hand, as the seed is: each starts once a session from a valid URL value or its default, keeps its value while hidden
    (``persist_state="session"`` on the widget), and is written to the URL when it differs from the default.
    The caller draws the widgets when ``box.open``, with ``key=<setting>`` and no default of their own.
    """
    for name in settings:
        _setting_from_url(name)
    if sidebar_waiting():  # nothing drawn: the settings are synced all the same
        yield SimpleNamespace(open=False)
    else:
        box = container.expander(label, key=key, on_change="rerun")
        with box:
            yield box
    for name in settings:
        _setting_to_url(name, st.session_state[name])


def settings_sidebar(wait_for_first_chart: bool = False) -> Settings:
    """Draw every knob in the sidebar (each kept in a URL parameter of the same name) and return the Settings.

    ``wait_for_first_chart``: a page stepped in the browser, whose session's first run may draw the widgets later
    (``SIDEBAR_WAITING``); the Settings are the same either way.
    """
    warn_bad_query_params()
    _fresh_preset_from_url()
    sb = st.sidebar
    sb.header("Settings")
    if _wait_for_first_chart(wait_for_first_chart):
        return _settings_before_widgets()
    preset = sb.selectbox("Preset", list(PRESETS), key="preset", bind="query-params", on_change=_apply_preset,
                          help="A published GRPO variant (Math reference page, section 6). Choosing one sets the objective options below.")
    group_size = sb.slider("Group size G", 2, 64, DEFAULTS.group_size, key="group_size", bind="query-params",
                           help="Completions sampled per prompt. The baseline is their mean reward.")
    pair = sb.container(horizontal=True, wrap=False)  # side by side in one flex row: two columns are three blocks
    epsilon_low = pair.slider("ε low", 0.0, 0.5, DEFAULTS.epsilon_low, step=0.0001, format="%.4f",
                              key="epsilon_low", bind="query-params", help="Clip band lower edge: 1 − ε_low.")
    epsilon_high = pair.slider("ε high", 0.0, 0.5, DEFAULTS.epsilon_high, step=0.0001, format="%.4f",
                               key="epsilon_high", bind="query-params", help="Clip band upper edge: 1 + ε_high.")
    beta = sb.slider("β (KL weight)", 0.0, 1.0, DEFAULTS.beta, step=0.001, format="%.3f", key="beta",
                     bind="query-params", help="Weight of the k3 KL to the reference in the loss. 0 = no reference model.")
    pair = sb.container(horizontal=True, wrap=False)
    loss_type = pair.selectbox("Loss type", LOSS_TYPES, key="loss_type", bind="query-params",
                               help="How per-token losses are averaged (Math reference page, section 5).")
    scale_rewards = pair.selectbox("Reward scaling", SCALE_REWARDS, key="scale_rewards", bind="query-params",
                                   help="Divide r − r̄ (r̄: the group's mean reward) by the group's std, the "
                                        "batch's std, or nothing (Dr. GRPO).")
    lr = sb.slider("Learning rate η", 0.01, 5.0, DEFAULTS.lr, step=0.01, key="lr", bind="query-params",
                   help="Plain SGD step size on the toy's logits.")
    mu = sb.slider("μ (updates per group)", 1, 8, DEFAULTS.mu, key="mu", bind="query-params",
                   help="Gradient steps on one sampled group. With μ = 1 the ratio is always exactly 1.")
    temperature = sb.slider("Temperature T", 0.1, 3.0, DEFAULTS.temperature, step=0.05, key="temperature",
                            bind="query-params", help="Logits are divided by T for sampling and every log-prob.")
    seed = _seed_input(sb)
    sb.subheader("Reward per word")
    row = sb.container(horizontal=True, wrap=False)
    rewards = tuple(row.number_input(f"“{w}”", -10.0, 10.0, r, step=0.1, key=f"reward_{w}", bind="query-params")
                    for w, r in zip(TOY_WORDS, TOY_REWARDS))
    with lazy_expander(sb, "More objective options", "more_options_open", ("importance_sampling_level",
                                                                            "kl_ratio_correction")) as more:
        if more.open:
            st.selectbox("Importance sampling level", ("token", "sequence"), key="importance_sampling_level",
                         persist_state="session",
                         help="'sequence' is GSPO: one length-normalized ratio per completion.")
            st.checkbox("KL ratio correction", key="kl_ratio_correction", persist_state="session",
                        help="Multiply the KL term by the ratio w (DeepSeek-V3.2; TRL's default).")
    level = st.session_state.importance_sampling_level
    kl_ratio_correction = st.session_state.kl_ratio_correction
    settings = replace(
        DEFAULTS,
        group_size=int(group_size), epsilon_low=float(epsilon_low), epsilon_high=float(epsilon_high),
        beta=float(beta), loss_type=loss_type, scale_rewards=scale_rewards, lr=float(lr), mu=int(mu),
        temperature=float(temperature), seed=int(seed), rewards=tuple(float(r) for r in rewards),
        importance_sampling_level=level, kl_ratio_correction=bool(kl_ratio_correction),
    )
    changed = settings.preset_differences(preset)
    if changed:
        sb.caption("Changed from the preset: " + ", ".join(f"{k} {v[0]:g} → {v[1]:g}" if isinstance(v[0], float)
                                                           else f"{k} {v[0]} → {v[1]}" for k, v in changed.items()))
        sb.button("Reset to preset", on_click=_apply_preset)
    return settings


def settings_dict(settings: Settings) -> dict:
    return {f.name: getattr(settings, f.name) for f in fields(settings)}


PPO_QUERY_SPECS: dict[str, tuple] = {
    "kl_estimator": ("choice", ("k1", "k2", "k3")),
    "ppo_epochs": ("int", 1, 8),
    "gamma": ("float", 0.0, 1.0),
    "lam": ("float", 0.0, 1.0),
    "cliprange_value": ("float", 0.0, 1.0),
    "vf_coef": ("float", 0.0, 1.0),
    "value_lr": ("float", 0.01, 5.0),
    "whiten_advantages": BOOL_SPEC,
}
ALL_QUERY_SPECS = {**QUERY_SPECS, **PPO_QUERY_SPECS}


def ppo_sidebar(settings: Settings) -> Settings:
    """PPO's own knobs (MATH.md, PPO section) in a sidebar expander, each kept in a URL parameter of its name.

    PPO shares β, ε (ε_low: PPO's clip is symmetric), the learning rate, G, T and the seed with GRPO.
    """
    warn_bad_query_params(PPO_QUERY_SPECS, "ppo_url_warnings")
    with lazy_expander(st.sidebar, "PPO options (critic, GAE, epochs)", "ppo_options_open",
                       tuple(PPO_QUERY_SPECS)) as box:
        if box.open:
            st.selectbox(
                "KL estimator in the reward", ("k1", "k2", "k3"), key="kl_estimator", persist_state="session",
                help="PPO subtracts β·KL from each token's reward. k1 = log π_θ − log π_ref (RLHF default, can be "
                     "negative); k3 is GRPO's non-negative estimator.")
            st.slider("PPO epochs per batch", 1, 8, key="ppo_epochs", persist_state="session",
                      help="Gradient steps on one sampled batch (GRPO's μ).")
            pair = st.container(horizontal=True, wrap=False)
            pair.slider("γ (discount)", 0.0, 1.0, step=0.01, key="gamma", persist_state="session",
                        help="GAE discount. The toy's completions are one token, so γ only matters for LMs.")
            pair.slider("λ (GAE)", 0.0, 1.0, step=0.01, key="lam", persist_state="session",
                        help="GAE's bias-variance knob. One-token completions: A = rew − V whatever λ is.")
            st.slider("Critic learning rate", 0.01, 5.0, step=0.01, key="value_lr", persist_state="session",
                      help="SGD step size of the value V(s), separate from the policy's η.")
            pair = st.container(horizontal=True, wrap=False)
            pair.slider("vf_coef", 0.0, 1.0, step=0.01, key="vf_coef", persist_state="session",
                        help="Weight of the value loss in the total loss L = L^π + vf_coef · L^V.")
            pair.slider("Value clip c_v", 0.0, 1.0, step=0.01, key="cliprange_value", persist_state="session",
                        help="The value may move at most c_v from V_old per batch before its loss stops giving "
                             "gradient.")
            st.checkbox("Whiten advantages", key="whiten_advantages", persist_state="session",
                        help="A ← (A − mean) / std over the batch's tokens (RLHF default).")
    state = st.session_state
    return replace(
        settings, kl_estimator=state.kl_estimator, ppo_epochs=int(state.ppo_epochs), gamma=float(state.gamma),
        lam=float(state.lam), value_lr=float(state.value_lr), vf_coef=float(state.vf_coef),
        cliprange_value=float(state.cliprange_value), whiten_advantages=bool(state.whiten_advantages),
    )


FLAG_SPEC = ("choice", ("1", "0", *BOOL_SPEC[1]))


def _flag_from_url(key: str) -> bool:
    """An on/off URL switch (1 or true, 0 or false) read once per session into session_state[key]; anything else
    is off, with a warning."""
    if key not in st.session_state:
        raw = st.query_params.get(key)
        if raw is not None and not _is_valid(raw, FLAG_SPEC):
            _warn_url_value(f"URL parameter `{key}={raw[:40]}` is not 1 or 0 (true or false); leaving it off.")
        st.session_state[key] = raw in ("1", "true", "True")
    return bool(st.session_state[key])


LM_MODELS = {
    "builtin": "Built-in tiny GPT (0.8M, instant)",
    "smollm2": "SmolLM2-135M-Instruct (LoRA)",
    "hf": "Hugging Face model (local folder or cached id)",
}
LM_QUERY_SPECS: dict[str, tuple] = {
    "model": ("choice", tuple(LM_MODELS)),
    "lm_lr": ("float", 1e-5, 0.05),
    "lm_max_grad_norm": ("float", 0.0, 100.0),
    "max_new_tokens": ("int", 1, 64),
    "lm_precision": ("choice", ("bfloat16", "float32")),
}


def _defaults_follow_model() -> None:
    """The model selectbox's callback: a task or Adam step still at the last model's default is forgotten, so its
    widget starts again at the new model's default (one the user chose stays)."""
    state = st.session_state
    before = state.get("lm_model_before")
    for key, default in (("task", default_task), ("lm_lr", default_lm_lr)):
        if before is not None and key in state and state[key] == default(before):
            del state[key]


LM_LR_STEPS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 5e-2)
GRAD_NORM_STEPS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)
PRECISIONS = ("bfloat16", "float32")


def _lm_lr_text(v: float) -> str:
    return f"{v:g}"


def _grad_norm_text(v: float) -> str:
    return "off" if v == 0 else f"{v:g}"


def _lm_choice_before_widgets(models: dict[str, str], task_titles: dict[str, str]) -> dict | None:
    """``lm_sidebar``'s choice as its widgets will give it, without drawing them; None when the URL holds a value
    they may not take as it is (or a folder to load): then they are drawn at once."""
    url = st.query_params

    def chosen(name: str, options, text=str, default=None):
        raw = url.get(name)
        if raw is None:
            return st.session_state.get(name, default)
        return next((option for option in options if text(option) == raw), KeyError)

    kind = chosen("model", list(models), default=next(iter(models)))
    if kind is KeyError or kind == "hf":
        return None
    tasks = list(task_titles)
    task = chosen("task", tasks, default=default_task(kind) if default_task(kind) in tasks else tasks[0])
    lm_lr = chosen("lm_lr", LM_LR_STEPS, _lm_lr_text, default_lm_lr(kind))
    max_grad_norm = chosen("lm_max_grad_norm", GRAD_NORM_STEPS, _grad_norm_text, DEFAULTS.lm_max_grad_norm)
    max_new_tokens = chosen("max_new_tokens", [str(n) for n in range(1, 65)], default=str(DEFAULTS.max_new_tokens))
    precision = chosen("lm_precision", PRECISIONS, default=DEFAULTS.lm_precision)
    if KeyError in (task, lm_lr, max_grad_norm, max_new_tokens, precision):
        return None
    st.session_state["lm_model_before"] = kind
    return {"kind": kind, "source": "", "task": task, "lm_lr": float(lm_lr), "lm_max_grad_norm": float(max_grad_norm),
            "max_new_tokens": int(max_new_tokens), "lm_precision": precision}


def lm_sidebar(task_titles: dict[str, str]) -> dict:
    """The language model's own knobs under the shared ones: model, task, Adam step, completion length."""
    models = model_choices()  # the server's operator decides which models a link may choose (policies/access.py)
    specs = {**LM_QUERY_SPECS, "model": ("choice", tuple(models)), "task": ("choice", tuple(task_titles))}
    warn_bad_query_params(specs, "lm_url_warnings")
    if sidebar_waiting():
        choice = _lm_choice_before_widgets(models, task_titles)
        if choice is not None:
            return choice
    sb = st.sidebar
    sb.header("Language model")
    # No format_func: a bound selectbox writes its displayed text to the URL, and short keys make short links.
    kind = sb.selectbox("Model", list(models), key="model", bind="query-params",
                        help="The policy on the right. " + "; ".join(f"{k}: {v}" for k, v in models.items())
                             + ". Each browser session trains its own copy; the loaded weights are shared read-only.",
                        on_change=_defaults_follow_model)
    st.session_state["lm_model_before"] = kind
    sb.caption(models[kind])
    source = ""
    if kind == "hf":
        source = sb.text_input("Folder or cached model id", key="model_path", bind="query-params",
                               placeholder="/path/to/model or org/name",
                               help="Offline only: a folder with config.json + weights + tokenizer, or a hub id "
                                    "already in the local Hugging Face cache. No code from the folder is run.")
    tasks = list(task_titles)
    task = sb.selectbox("Task", tasks, index=tasks.index(default_task(kind)) if default_task(kind) in tasks else 0,
                        key="task", bind="query-params",
                        help="Prompts and the reward GRPO optimizes. "
                             + "; ".join(f"{k}: {v}" for k, v in task_titles.items()))
    sb.caption(task_titles[task])
    lm_lr = sb.select_slider("LM learning rate (Adam)", LM_LR_STEPS,
                             value=default_lm_lr(kind), key="lm_lr", bind="query-params", format_func=_lm_lr_text,
                             help="Adam's step on the LM's trainable weights (η above is the toy's SGD step). Each "
                                  "model starts at its own: LoRA's adapters, which start at zero, take a larger "
                                  "one than full finetuning of the built-in model.")
    max_grad_norm = sb.select_slider(
        "Max gradient norm", GRAD_NORM_STEPS, value=DEFAULTS.lm_max_grad_norm, key="lm_max_grad_norm",
        bind="query-params", format_func=_grad_norm_text,
        help="Before each Adam step the gradient of all trainable weights is rescaled to this norm when it is "
             "longer (TRL's max_grad_norm, default 1). The Loss & gradient stage shows the norm before and after.")
    max_new_tokens = sb.slider("Max new tokens", 1, 64, DEFAULTS.max_new_tokens, key="max_new_tokens",
                               bind="query-params", help="Sampling stops at end-of-sequence or after this many tokens.")
    precision = sb.selectbox(
        "Precision", PRECISIONS, index=PRECISIONS.index(DEFAULTS.lm_precision),
        key="lm_precision", bind="query-params",
        help="What a LoRA model computes in: bfloat16 (its frozen weights in one shared bfloat16 copy; faster on a CPU "
             "with bfloat16 instructions; log-probs about 0.02 from float32's) or float32 (exact to 1e-5 against "
             "TRL). Sampling, π_old, π_θ and π_ref always use the same one; adapters, gradients and Adam stay "
             "float32. Full finetuning (the built-in model) is always float32.")
    return {"kind": kind, "source": (source or "").strip(), "task": task, "lm_lr": float(lm_lr),
            "lm_max_grad_norm": float(max_grad_norm), "max_new_tokens": int(max_new_tokens),
            "lm_precision": precision}
