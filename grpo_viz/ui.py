"""The only Streamlit-aware helpers: the settings sidebar bound to the URL, the stage cursor, formula cards.

Pages import this; the core (``grpo_viz.objectives`` and friends) never does.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace

import streamlit as st

from .config import DEFAULT_PRESET, PRESET_FIELDS, PRESETS, TOY_REWARDS, TOY_WORDS, Settings
from .objectives import LOSS_TYPES, SCALE_REWARDS

DEFAULTS = Settings()

# Every URL parameter a widget is bound to, with what a valid value looks like:
# ("float"|"int", low, high) or ("choice", options).  The widgets below use the
# same bounds, so a value that passes here is one the widget accepts.
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


def _check_url_once() -> None:
    """Warn (for the whole session) about URL values the widgets will ignore."""
    if "url_warnings" not in st.session_state:
        st.session_state.url_warnings = invalid_query_params(st.query_params.to_dict())
    for message in st.session_state.url_warnings:
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


def settings_sidebar() -> Settings:
    """Draw every knob in the sidebar (each bound to a URL parameter of the same name) and return the Settings."""
    _check_url_once()
    _fresh_preset_from_url()
    sb = st.sidebar
    sb.header("Settings")
    preset = sb.selectbox("Preset", list(PRESETS), key="preset", bind="query-params", on_change=_apply_preset,
                          help="A published GRPO variant (MATH.md section 6). Choosing one sets the objective options below.")
    group_size = sb.slider("Group size G", 2, 64, DEFAULTS.group_size, key="group_size", bind="query-params",
                           help="Completions sampled per prompt. The baseline is their mean reward.")
    col1, col2 = sb.columns(2)
    epsilon_low = col1.slider("ε low", 0.0, 0.5, DEFAULTS.epsilon_low, step=0.0001, format="%.4f",
                              key="epsilon_low", bind="query-params", help="Clip band lower edge: 1 − ε_low.")
    epsilon_high = col2.slider("ε high", 0.0, 0.5, DEFAULTS.epsilon_high, step=0.0001, format="%.4f",
                               key="epsilon_high", bind="query-params", help="Clip band upper edge: 1 + ε_high.")
    beta = sb.slider("β (KL weight)", 0.0, 1.0, DEFAULTS.beta, step=0.001, format="%.3f", key="beta",
                     bind="query-params", help="Weight of the k3 KL to the reference in the loss. 0 = no reference model.")
    col1, col2 = sb.columns(2)
    loss_type = col1.selectbox("Loss type", LOSS_TYPES, key="loss_type", bind="query-params",
                               help="How per-token losses are averaged (MATH.md section 5).")
    scale_rewards = col2.selectbox("Reward scaling", SCALE_REWARDS, key="scale_rewards", bind="query-params",
                                   help="Divide r − μ by the group's std, the batch's std, or nothing (Dr. GRPO).")
    lr = sb.slider("Learning rate η", 0.01, 5.0, DEFAULTS.lr, step=0.01, key="lr", bind="query-params",
                   help="Plain SGD step size on the toy's logits.")
    mu = sb.slider("μ (updates per group)", 1, 8, DEFAULTS.mu, key="mu", bind="query-params",
                   help="Gradient steps on one sampled group. With μ = 1 the ratio is always exactly 1.")
    temperature = sb.slider("Temperature T", 0.1, 3.0, DEFAULTS.temperature, step=0.05, key="temperature",
                            bind="query-params", help="Logits are divided by T for sampling and every log-prob.")
    seed = sb.number_input("Seed", 0, 2**31 - 1, DEFAULTS.seed, key="seed", bind="query-params",
                           help="Same seed, same groups: a link reproduces the run.")
    sb.subheader("Reward per word")
    rewards = tuple(
        col.number_input(f"“{w}”", -10.0, 10.0, r, step=0.1, key=f"reward_{w}", bind="query-params")
        for col, w, r in zip(sb.columns(len(TOY_WORDS)), TOY_WORDS, TOY_REWARDS)
    )
    with sb.expander("More objective options"):
        level = st.selectbox("Importance sampling level", ("token", "sequence"), key="importance_sampling_level",
                             bind="query-params", help="'sequence' is GSPO: one length-normalized ratio per completion.")
        kl_ratio_correction = st.checkbox("KL ratio correction", key="kl_ratio_correction",
                                          value=DEFAULTS.kl_ratio_correction,
                                          help="Multiply the KL term by the ratio w (DeepSeek-V3.2; TRL's default).")
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


def settings_notices(settings: Settings) -> None:
    """Plain words for settings that are legal but degenerate."""
    if settings.epsilon_low == 0 or settings.epsilon_high == 0:
        st.info("ε = 0 makes the clip band a single edge at 1: as soon as the policy moves on a sample in the "
                "direction its advantage pushes, that sample is clipped and stops contributing gradient.", icon="ℹ️")


def latex_lines(lines: list[str]) -> None:
    for line in lines:
        st.latex(line)


def settings_dict(settings: Settings) -> dict:
    return {f.name: getattr(settings, f.name) for f in fields(settings)}


__all__ = ["QUERY_SPECS", "invalid_query_params", "latex_lines", "settings_dict", "settings_notices",
           "settings_sidebar"]


# ----------------------------------------------------------------- the stage cursor and the toy session


def _init_stage(n_stages: int) -> None:
    if "stage" in st.session_state:
        return
    raw = st.query_params.get("stage")
    valid = raw is not None and _is_valid(raw, ("int", 1, n_stages))
    if raw is not None and not valid:
        message = f"URL parameter `stage={raw[:40]}` is not a stage from 1 to {n_stages}; starting at stage 1."
        st.session_state.setdefault("url_warnings", []).append(message)
        st.warning(message, icon="⚠️")
    stage = int(float(raw)) - 1 if valid else 0
    st.session_state.stage = stage
    st.session_state.stage_picker = stage


def _set_stage(stage: int) -> None:
    st.session_state.stage = stage
    st.session_state.stage_picker = stage


def _picked_stage() -> None:
    st.session_state.stage = st.session_state.stage_picker


def _then_first_stage(callback):
    def run():
        if callback is not None:
            callback()
        _set_stage(0)
    return run


def stage_cursor(stages: tuple[str, ...], on_last_next=None, on_new_group=None, on_reset=None) -> int:
    """The stage indicator (clickable), Back / Next / New group buttons with keyboard shortcuts; returns the stage.

    "Next" on the last stage becomes "Next iteration" (``on_last_next``), and it and "Reset" return to stage 1.
    """
    _init_stage(len(stages))
    stage = st.session_state.stage
    st.segmented_control(
        "Stage", list(range(len(stages))), format_func=lambda i: f"{i + 1}. {stages[i]}", key="stage_picker",
        required=True, on_change=_picked_stage, label_visibility="collapsed", width="stretch",
    )
    cols = st.columns([1, 1.4, 1.2, 1.2, 3])
    cols[0].button("◀ Back", on_click=_set_stage, args=(max(stage - 1, 0),), disabled=stage == 0,
                   shortcut="Left", help="Previous stage (← key)", width="stretch")
    if stage < len(stages) - 1:
        cols[1].button("Next ▶", on_click=_set_stage, args=(stage + 1,), type="primary", shortcut="Right",
                       help="Next stage (→ key)", width="stretch", key="next")
    else:
        cols[1].button("Next iteration ▶", on_click=_then_first_stage(on_last_next), type="primary", shortcut="Right",
                       help="Keep the updated policy and sample a new group from it (→ key)", width="stretch", key="next")
    cols[2].button("🎲 New group", on_click=on_new_group, shortcut="N", width="stretch",
                   help="Sample another group from the same policy (N key)")
    cols[3].button("↺ Reset policy", on_click=_then_first_stage(on_reset), width="stretch",
                   help="Back to the starting policy (π_θ = π_ref), iteration 0")
    st.query_params["stage"] = str(stage + 1)
    return stage


def compact_page() -> None:
    """Less empty space above the content, so stepper, chart and formula fit one projected screen."""
    st.markdown(
        "<style>.block-container{padding-top:2.2rem;padding-bottom:1rem}"
        ".stMainBlockContainer{padding-top:2.2rem}</style>",
        unsafe_allow_html=True,
    )
