"""The only Streamlit-aware helpers: the settings sidebar bound to the URL, the stage cursor, formula cards.

Pages import this; the core (``grpo_viz.objectives`` and friends) never does.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import math
import mimetypes
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace

import streamlit as st
import streamlit.components.v2  # noqa: F401  (st.components.v2.component)

from .. import charts
from ..explain import count
from ..config import DEFAULT_PRESET, PRESET_FIELDS, PRESETS, TOY_REWARDS, TOY_WORDS, Settings
from ..objectives import LOSS_TYPES, SCALE_REWARDS
from ..policies.loading import LoadedModel, load_model

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
    box = container.expander(label, key=key, on_change="rerun")
    with box:
        yield box
    for name in settings:
        _setting_to_url(name, st.session_state[name])


def settings_sidebar() -> Settings:
    """Draw every knob in the sidebar (each kept in a URL parameter of the same name) and return the Settings."""
    warn_bad_query_params()
    _fresh_preset_from_url()
    sb = st.sidebar
    sb.header("Settings")
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


def settings_notices(settings: Settings) -> None:
    """Plain words for settings that are legal but degenerate."""
    if settings.epsilon_low == 0 or settings.epsilon_high == 0:
        st.info("ε = 0 makes the clip band a single edge at 1: as soon as the policy moves on a sample in the "
                "direction its advantage pushes, that sample is clipped and stops contributing gradient.", icon="ℹ️")


def latex_lines(lines: list[str]) -> None:
    """Equations one under the other, typeset as one block: one KaTeX render per card, not one per line."""
    if lines:
        st.latex(r"\begin{gathered}" + r"\\[0.6em]".join(lines) + r"\end{gathered}")


def settings_dict(settings: Settings) -> dict:
    return {f.name: getattr(settings, f.name) for f in fields(settings)}


__all__ = ["QUERY_SPECS", "invalid_query_params", "latex_lines", "settings_dict", "settings_notices",
           "settings_sidebar"]


_COLLECTION_INTERVAL_S = 30.0
_collector_started = False
_collector_lock = threading.Lock()


def _heap_release() -> Callable[[], object]:
    """glibc's ``malloc_trim(0)`` where there is one (Linux); elsewhere nothing to do."""
    try:
        return functools.partial(ctypes.CDLL("libc.so.6").malloc_trim, 0)
    except (OSError, AttributeError):
        return lambda: None


def _on_runtime_loop(work: Callable[[object], object], runtime=None, timeout_s: float = 5.0) -> object | None:
    """``work(runtime)`` run on the Streamlit runtime's event loop (its session objects are not thread-safe), waited
    for; None outside a Streamlit server, when the server is stopping, or on a Streamlit whose internals differ."""
    try:
        if runtime is None:
            from streamlit.runtime import Runtime

            runtime = Runtime.instance()
        loop = runtime._get_async_objs().eventloop
    except Exception:
        return None
    done, result = threading.Event(), [None]

    def run() -> None:
        try:
            result[0] = work(runtime)
        except Exception:
            result[0] = None
        finally:
            done.set()

    try:
        loop.call_soon_threadsafe(run)
    except RuntimeError:  # the server is stopping: its loop is closed
        return None
    done.wait(timeout_s)
    return result[0]


def forget_timed_out_sessions(runtime=None, timeout_s: float = 5.0) -> int:
    """Shut down the closed sessions whose reconnection time (``server.disconnectedSessionTTL``) has passed.

    Streamlit keeps a closed session for that time in case the tab reconnects, but it reaps expired ones only when
    its session storage is next written, i.e. when another tab disconnects: after the last student of a lecture
    leaves, every session of the lecture would stay in memory until the next one. Returns how many sessions were
    shut down; 0 outside a Streamlit server or on a Streamlit whose internals differ (then its own lazy reaping
    applies).
    """

    def reap(runtime) -> int:
        reaped = 0
        for _, info in runtime._session_mgr._session_storage._cache.expire():
            reaped += 1
            info.session.shutdown()
        return reaped

    return _on_runtime_loop(reap, runtime, timeout_s) or 0


def live_session_ids(runtime=None, timeout_s: float = 5.0) -> set[str] | None:
    """Ids of the sessions the server holds: connected ones, and closed ones still within their reconnection time.
    None outside a Streamlit server."""
    return _on_runtime_loop(lambda runtime: {info.session.id for info in runtime._session_mgr.list_sessions()},
                            runtime, timeout_s)


class FreezingCollector:
    """Full garbage collections that skip the objects of the imports, without keeping a closed session alive.

    A full collection walks every tracked object: ~380k after the app's imports (torch, transformers, plotly,
    pandas), 166-200 ms holding the GIL, which stalls every student's click; after ``gc.freeze()`` it skips
    those and takes a few ms. But a frozen object is never collected, and its references keep whatever it points
    to: a session alive at the freeze (its objects form reference cycles) would stay in memory after it closed.
    So each freeze remembers the sessions alive at that moment, and once any of them is gone the next collection
    unfreezes, collects everything and freezes again: one full collection, as often as the plain collector at
    most, and none while a lecture's sessions stay open. ``live_sessions`` returns the live session ids, or None
    outside a server (then every collection is a plain full one).
    """

    def __init__(self, live_sessions: Callable[[], set[str] | None] = live_session_ids) -> None:
        self.live_sessions = live_sessions
        self.frozen_with: set[str] | None = None  # the sessions alive at the last freeze; None: nothing frozen

    def collect(self) -> None:
        live = self.live_sessions()
        if live is None:
            gc.collect()
        elif self.frozen_with is None or self.frozen_with - live:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.frozen_with = live
        else:
            gc.collect()  # the frozen objects are skipped


def start_garbage_collector(interval_s: float = _COLLECTION_INTERVAL_S) -> None:
    """Once per server process: a full garbage collection every ``interval_s`` seconds, in a background thread.

    It replaces Streamlit's ``gc.collect(2)`` after every script run, turned off in .streamlit/config.toml
    (``runner.postScriptGC = false``): with torch, plotly and pandas loaded a full collection walks ~380k
    objects, 166-200 ms holding the GIL, which was paid after every click of every student. A closed session's
    state is mostly reference cycles, which only a full collection frees; every 30 s is soon enough for memory.
    The imports' objects are frozen out of the walk (``FreezingCollector``), so a collection takes a few ms while
    no session that was alive at the freeze has closed.

    Closed sessions past their reconnection time are shut down first (``forget_timed_out_sessions``). After each
    collection glibc is asked to hand freed heap pages back to the system (``malloc_trim``): without
    it, the memory of closed sessions stayed in the allocator's free lists and the server's resident size kept
    the high-water mark of every past lecture.
    """
    global _collector_started
    with _collector_lock:
        if _collector_started:
            return
        _collector_started = True

    release, collector = _heap_release(), FreezingCollector()

    def collect_forever() -> None:
        while True:
            time.sleep(interval_s)
            forget_timed_out_sessions()
            collector.collect()
            release()

    threading.Thread(target=collect_forever, name="grpo-viz-gc", daemon=True).start()


def compact_page() -> None:
    """Less empty space above the content, so stepper, chart and formula fit one projected screen."""
    st.markdown(
        "<style>.block-container{padding-top:2.2rem;padding-bottom:1rem}"
        ".stMainBlockContainer{padding-top:2.2rem}.katex-display{overflow-x:auto;overflow-y:hidden}"
        # a stage card's equations with this group's numbers: smaller than KaTeX's 1.21em so they fit the card,
        # and smaller still in a narrow card (cqw: % of the card's width), as the objective in a narrow main area;
        # never below 12 px: on a phone the formula scrolls sideways rather than shrinking out of reach
        ".st-key-presenter_keys{display:none}"  # the presenter keys' mount: script only
        "[class*='st-key-card_'],.st-key-objective{container-type:inline-size}"
        "[class*='st-key-card_'] .katex{font-size:clamp(12px,4.4cqw,1.0em)}"
        ".st-key-objective .katex{font-size:clamp(12px,2.05cqw,1.21em)}"
        # the step-through's Markdown table: one line per sample, compact, scrolling sideways if it must
        ".st-key-sample_table table{font-size:0.85rem;display:block;overflow-x:auto}"
        ".st-key-sample_table th,.st-key-sample_table td{white-space:nowrap;padding:0.2rem 0.5rem}</style>",
        unsafe_allow_html=True,
    )


# ----------------------------------------------------------------- PPO knobs and a page-keyed stage cursor (issue 4)

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


# Presenter keys. Streamlit's button shortcuts do not fire while a widget has focus: after the Presentation switch
# was clicked, or a slider dragged, → and PageDown did nothing (or moved the slider). One listener per browser tab,
# on the window in the capture phase, runs before any widget sees the key and clicks the stage cursor's Back / Next.
# Not while typing into a text or number box, and not the arrows / Space of a widget reached from the keyboard (Tab):
# a keyboard user still adjusts a slider with its arrows; the widget the mouse last touched gives them up.
_PRESENTER_KEYS_JS = """
export default function (component) {
  const data = component.data || {};
  const state = window.__grpoVizPresenterKeys || (window.__grpoVizPresenterKeys = {});
  state.cursor = data.cursor;
  if (state.installed) return;
  state.installed = true;
  const TYPED = ['text', 'number', 'search', 'email', 'password', 'tel', 'url', 'date', 'time', 'datetime-local',
                 'month', 'week'];
  const typing = (el) => !!el && (el.isContentEditable || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT'
    || (el.tagName === 'INPUT' && TYPED.includes((el.getAttribute('type') || 'text').toLowerCase())));
  const ARROWED = '[role=slider],[role=radio],[role=tab],[role=option],[role=listbox],[role=combobox],'
    + '[role=menuitem],[role=spinbutton],input[type=range]';
  // the element the mouse put the focus on: pressed on it (or on its label, thumb or track) just before
  let pointer = {at: 0, on: null};
  window.addEventListener('pointerdown', (e) => { pointer = {at: Date.now(), on: e.target}; }, true);
  window.addEventListener('focusin', (e) => {
    const on = pointer.on instanceof Element ? pointer.on : null;
    const near = on && (on.contains(e.target) || e.target.contains(on) || !!on.closest('label')?.contains(e.target));
    state.mouseFocused = near && Date.now() - pointer.at < 1000 ? e.target : null;
  }, true);
  const button = (suffix) => document.querySelector('.st-key-' + state.cursor + '_' + suffix + ' button');
  let swallowSpaceUp = false;
  window.addEventListener('keydown', (e) => {
    if (!state.cursor || e.defaultPrevented || e.ctrlKey || e.altKey || e.metaKey || e.isComposing) return;
    const clicker = e.key === 'PageDown' || e.key === 'PageUp';
    const space = e.key === ' ';
    let step = 0;
    if (e.key === 'PageDown' || e.key === 'ArrowRight' || (space && !e.shiftKey)) step = 1;
    else if (e.key === 'PageUp' || e.key === 'ArrowLeft' || (space && e.shiftKey)) step = -1;
    if (!step) return;
    const el = document.activeElement;
    if (typing(el)) return;
    const fromKeyboard = el && el !== document.body && el !== state.mouseFocused;
    if (!clicker && fromKeyboard && (space || el.closest(ARROWED))) return;
    const target = step > 0 ? (button('next') || button('last_0')) : button('back');
    if (!target) return;  // another page, or the first stage
    e.preventDefault();
    e.stopImmediatePropagation();
    swallowSpaceUp = space;
    if (!e.repeat || clicker) target.click();
  }, true);
  window.addEventListener('keyup', (e) => {
    if (e.key === ' ' && swallowSpaceUp) { e.preventDefault(); e.stopImmediatePropagation(); swallowSpaceUp = false; }
  }, true);
}
"""
_presenter_keys_component = st.components.v2.component("grpo_viz.presenter_keys", js=_PRESENTER_KEYS_JS)


def presenter_keys(cursor_key: str) -> None:
    """PageDown / PageUp (a presenter's clicker), → / ← and Space (Shift+Space back) step the stage cursor
    ``cursor_key`` whatever has focus, except while typing into a text or number box. Installed once per browser
    tab; each page's mount only says which cursor the keys drive. The mount itself takes no room (its container is
    hidden by ``compact_page``'s CSS)."""
    _presenter_keys_component(key="presenter_keys", data={"cursor": cursor_key}, height=0)


STEP_BUTTON_PX, NEXT_BUTTON_PX = 125, 200  # Next, the click of a lecture, stands out; a phone fits Back and Next
# The stage bar's names in presentation mode, where the bar must stay one row at 18 px type.
SHORT_STAGE_NAMES = {"Sample group": "Sample", "Advantages": "Advantage", "Loss & gradient": "Gradient",
                     "Where the KL enters": "KL", "Ratios & clip": "Ratio & clip"}


def stage_cursor(
    stages: tuple[str, ...], key: str, last_actions: tuple[tuple[str, object, str], ...] = (),
    on_new_group=None, on_reset=None, query_param: str = "stage",
    reset_help: str = "Back to the starting policy (π_θ = π_ref), iteration 1",
) -> int:
    """The stage indicator (clickable) and Back / Next / New group / Reset buttons, with keyboard shortcuts.

    The position lives in ``st.session_state[key]`` (each page its own key) and is mirrored to the URL
    parameter ``query_param``.  On the last stage "Next" is replaced by ``last_actions``: (label, callback,
    help) buttons that run the callback and return to stage 1, as Reset does.
    """
    picker = f"{key}_picker"
    if key not in st.session_state:
        raw = st.query_params.get(query_param)
        valid = raw is not None and _is_valid(raw, ("int", 1, len(stages)))
        if raw is not None and not valid:
            _warn_url_value(f"URL parameter `{query_param}={raw[:40]}` is not a stage from 1 to {len(stages)}; "
                            "starting at 1.")
        st.session_state[key] = int(float(raw)) - 1 if valid else 0
        st.session_state[picker] = st.session_state[key]

    def go(stage: int, callback=None):
        if callback is not None:
            callback()
        st.session_state[key] = st.session_state[picker] = stage

    def picked():
        st.session_state[key] = st.session_state[picker]

    stage = st.session_state[key]
    presenting = bool(st.session_state.get("present"))
    labels = [SHORT_STAGE_NAMES.get(name, name) if presenting else name for name in stages]
    # One row in presentation mode (a projector is 1024 px wide): the short names, never wrapped.
    st.segmented_control("Stage", list(range(len(stages))), format_func=lambda i: f"{i + 1}. {labels[i]}",
                         key=picker, required=True, on_change=picked, label_visibility="collapsed", width="stretch",
                         wrap=not presenting)
    presenter_keys(key)
    # One flex row, not six columns: a column is a block of its own for the server to send and the browser to lay
    # out, on every click. Stepping on the left, the group's actions pushed right; on a phone the row wraps.
    row = st.container(horizontal=True, vertical_alignment="center")
    row.button("◀ Back", on_click=go, args=(max(stage - 1, 0),), disabled=stage == 0, shortcut="Left",
               help="Previous stage (← key)", width=STEP_BUTTON_PX, key=f"{key}_back")
    if stage < len(stages) - 1:
        row.button("Next ▶", on_click=go, args=(stage + 1,), type="primary", shortcut="Right",
                   help="Next stage (→ key)", width=NEXT_BUTTON_PX, key=f"{key}_next")
    else:
        for k, (label, callback, help_text) in enumerate(last_actions[:2]):
            row.button(label, on_click=go, args=(0, callback), type="primary", shortcut="Right" if k == 0 else None,
                       help=help_text, width="content", key=f"{key}_last_{k}")
    row.space("stretch")
    row.button("🎲 New group", on_click=on_new_group, shortcut="N", width="content",
               help="Sample another group from the same policy (N key)", key=f"{key}_new_group")
    row.button("↺ Reset", on_click=go, args=(0, on_reset), width=STEP_BUTTON_PX, help=reset_help,
               key=f"{key}_reset")
    st.query_params[query_param] = str(stage + 1)
    return stage


# ----------------------------------------------------------------- presentation mode and autoplay (issue 6)

AUTOPLAY_SECONDS = (1.0, 2.0, 3.0, 5.0, 8.0)


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


# Presentation mode: 18 px type at the least (captions, labels and buttons included), no sidebar or header, and
# tight gaps, so each stage of a stepping page fits 1280 x 720 and 1024 x 768 without scrolling. The pages size their
# charts for it (PRESENT_CHART_PX) and put a stage's equations beside its text.
PRESENTATION_CSS = (
    "section[data-testid='stSidebar'],[data-testid='stSidebarCollapsedControl'],header[data-testid='stHeader']"
    "{display:none}"
    "html{font-size:18px}"
    ".stMainBlockContainer,.block-container{max-width:100%;padding:0.5rem 1.5rem 0.25rem 1.5rem}"
    ".stMainBlockContainer [data-testid='stVerticalBlock']{gap:0.45rem}"
    ".stMainBlockContainer [data-testid='stHorizontalBlock']{gap:0.75rem}"
    "[data-testid='stCaptionContainer'],[data-testid='stWidgetLabel'] p,[data-testid='stMarkdownContainer'] small,"
    ".stMainBlockContainer button p,.stMainBlockContainer button div,.stMainBlockContainer kbd,"
    "[data-testid='stSliderThumbValue'],[data-testid='stSliderTickBar'] div,[role='tab'] p,summary p,summary span"
    "{font-size:1rem !important}"
    ".stMainBlockContainer .stButton button,[data-testid='stButtonGroup'] button"
    "{min-height:2.2rem;padding-top:0.1rem;padding-bottom:0.1rem}"
    "[data-testid='stButtonGroup'] button{padding-left:0.5rem;padding-right:0.5rem}"
    ".stMainBlockContainer h4{padding:0.1rem 0 0.2rem 0;font-size:1.3rem}"
    ".stMainBlockContainer h5{padding:0;font-size:1.1rem}"
    ".st-key-objective .katex-display{margin:0;padding:0.2em 0 0.35em 0}"
    ".st-key-objective .katex{font-size:clamp(12px,1.9cqw,1.1em)}"
    "[class*='st-key-card_'] .katex-display{margin:0.15em 0;padding:0.2em 0}"
    "[class*='st-key-card_'] .katex{font-size:1em}"
    # a card's equations beside its text: as large as the column lets them be (their widest line is ~21 em), never
    # cut; 17 px in a 1280 px window, ~14 px at 1024
    "[class*='st-key-card_'] [data-testid='stColumn']{container-type:inline-size}"
    "[class*='st-key-card_'] [data-testid='stColumn'] .katex{font-size:clamp(12px,4.6cqw,1em)}"
    "[data-testid='stAlert'] [data-testid='stAlertContainer']{padding:0.5rem 0.75rem}"
    ".stTabs [data-baseweb='tab-list'] button{height:2rem}"
)
PRESENT_CHART_PX = 420  # a stage chart beside its card, with the stepper and objective above it, at 720 px


def chart_style(presenting: bool, figure_px: int | None = None) -> None:
    """Every chart this script run (or fragment rerun) builds from here on: a projector's text sizes when
    ``presenting``, a screen's otherwise, in the browser theme's colours (``charts.set_presentation``)."""
    theme = st.context.theme.type
    charts.set_presentation(presenting, dark=theme == "dark" if theme else None, figure_px=figure_px)


def presentation_on() -> bool:
    """Whether presentation mode is on, before its switch is drawn (a page sizes its header row by it)."""
    return _flag_from_url("present")


def presentation_toggle(container) -> bool:
    """The "Presentation mode" switch (URL `present=1`, or `present=true`), drawn in ``container``: 18 px type, no
    sidebar, just stepper, chart and formula, fitting a 1280 x 720 or 1024 x 768 projector. A junk URL value's
    warning goes to the page, full width, as the other URL warnings do, not into the switch's narrow column."""
    _flag_from_url("present")
    on = container.toggle("Presentation mode", key="present", help="Large type for a projector; the sidebar "
                          "hides. Settings stay as they are. Keys: PageDown / PageUp, → / ← or Space step "
                          "(Shift+Space back), N new group.")
    if on:
        st.query_params["present"] = "1"
        container.markdown(f"<style>{PRESENTATION_CSS}</style>", unsafe_allow_html=True)
    elif "present" in st.query_params:
        del st.query_params["present"]
    return on


def autoplay_controls() -> float | None:
    """Autoplay switch and speed; returns seconds per stage, or None when off."""
    cols = st.columns([1.3, 1.2])  # "Autoplay" and its help icon need ~150 px, or the label is cut to "Autop…"
    playing = cols[0].toggle("Autoplay", key="autoplay", help="Step forward by itself; at the last stage it keeps the "
                             "update and starts the next iteration.")
    seconds = cols[1].select_slider("Seconds per stage", AUTOPLAY_SECONDS, value=3.0, key="autoplay_seconds",
                                    disabled=not playing, label_visibility="collapsed",
                                    format_func=lambda s: f"{s:g} s per stage")
    return float(seconds) if playing else None


def autoplay_due(seconds: float | None) -> bool:
    """True once per `seconds` while autoplay is on (fragment reruns for clicks do not count as ticks)."""
    if seconds is None:
        st.session_state.pop("autoplay_last", None)
        return False
    now = time.monotonic()
    last = st.session_state.setdefault("autoplay_last", now)
    if now - last >= 0.9 * seconds:
        st.session_state.autoplay_last = now
        return True
    return False


MAX_REPLAY_ITERATIONS = 500


def replay_from_url(run, settings: Settings, reward_fn) -> None:
    """Once per session: rebuild the run a shared link points at (URL `iteration` and `draw`, both from 1)."""
    if st.session_state.get("_replayed"):
        return
    st.session_state._replayed = True
    params = st.query_params
    target = {}
    for name, high in (("iteration", MAX_REPLAY_ITERATIONS), ("draw", 10_000)):
        raw = params.get(name)
        if raw is None:
            continue
        if _is_valid(raw, ("int", 1, high)):
            target[name] = int(float(raw)) - 1
        else:
            _warn_url_value(f"URL parameter `{name}={raw[:40]}` is not a whole number from 1 to {high}; starting at 1.")
    if target:
        with st.spinner(f"Replaying {count(target.get('iteration', 0), 'iteration')} to reach the shared screen…"):
            run.replay(settings, reward_fn, target.get("iteration", 0), target.get("draw", 0))


# ----------------------------------------------------------------- the language-model page (issue 5)

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
}


def lm_sidebar(task_titles: dict[str, str]) -> dict:
    """The language model's own knobs under the shared ones: model, task, Adam step, completion length."""
    warn_bad_query_params({**LM_QUERY_SPECS, "task": ("choice", tuple(task_titles))}, "lm_url_warnings")
    sb = st.sidebar
    sb.header("Language model")
    # No format_func: a bound selectbox writes its displayed text to the URL, and short keys make short links.
    kind = sb.selectbox("Model", list(LM_MODELS), key="model", bind="query-params",
                        help="The policy on the right. " + "; ".join(f"{k}: {v}" for k, v in LM_MODELS.items())
                             + ". Each browser session trains its own copy; the loaded weights are shared read-only.")
    sb.caption(LM_MODELS[kind])
    source = ""
    if kind == "hf":
        source = sb.text_input("Folder or cached model id", key="model_path", bind="query-params",
                               placeholder="/path/to/model or org/name",
                               help="Offline only: a folder with config.json + weights + tokenizer, or a hub id "
                                    "already in the local Hugging Face cache. No code from the folder is run.")
    task = sb.selectbox("Task", list(task_titles), key="task", bind="query-params",
                        help="Prompts and the reward GRPO optimizes. "
                             + "; ".join(f"{k}: {v}" for k, v in task_titles.items()))
    sb.caption(task_titles[task])
    lm_lr = sb.select_slider("LM learning rate (Adam)", [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 5e-2],
                             value=DEFAULTS.lm_lr, key="lm_lr", bind="query-params", format_func=lambda v: f"{v:g}",
                             help="Adam's step on the LM's trainable weights (η above is the toy's SGD step).")
    max_grad_norm = sb.select_slider(
        "Max gradient norm", [0.0, 0.1, 0.3, 1.0, 3.0, 10.0], value=DEFAULTS.lm_max_grad_norm, key="lm_max_grad_norm",
        bind="query-params", format_func=lambda v: "off" if v == 0 else f"{v:g}",
        help="Before each Adam step the gradient of all trainable weights is rescaled to this norm when it is "
             "longer (TRL's max_grad_norm, default 1). The Loss & gradient stage shows the norm before and after.")
    max_new_tokens = sb.slider("Max new tokens", 1, 64, DEFAULTS.max_new_tokens, key="max_new_tokens",
                               bind="query-params", help="Sampling stops at end-of-sequence or after this many tokens.")
    return {"kind": kind, "source": (source or "").strip(), "task": task, "lm_lr": float(lm_lr),
            "lm_max_grad_norm": float(max_grad_norm), "max_new_tokens": int(max_new_tokens)}


@st.cache_resource(show_spinner=False, max_entries=4)
def shared_model(kind: str, source: str) -> LoadedModel:
    """Loaded once per server process and never trained: every session makes its own policy on top of it."""
    return load_model(kind, source)


def load_chosen_model(choice: dict) -> tuple[LoadedModel | None, str | None]:
    """The model ``lm_sidebar`` chose, from the shared cache: (LoadedModel, None), or (None, a sentence to show)."""
    if choice["kind"] == "hf" and not choice["source"]:
        return None, "Type a model folder (or a Hugging Face id already in the local cache) in the sidebar."
    label = "SmolLM2 (the first load converts the GGUF once, about 20 s)" if choice["kind"] == "smollm2" else "the model"
    try:
        with st.spinner(f"Loading {label}…"):
            return shared_model(choice["kind"], choice["source"]), None
    except ValueError as err:
        return None, str(err)


# ----------------------------------------------------------------- self-study and export, on every stepping page


def tour_card(tour: tuple[str, str, str]) -> None:
    """A stage's "try this" prompt and its "check yourself" question, whose answer opens on click."""
    try_this, question, answer = tour
    left, right = st.columns(2)
    left.info(f"**Try this:** {try_this}", icon="🧪")
    with right.expander(f"**Check yourself:** {question}"):
        st.markdown(answer)


def deferred(build: Callable[[object], str], source: object, attribute: str | None = None) -> Callable[[], str]:
    """A download's data, made only when it is clicked: ``build(source)`` (or ``build(source.attribute)``).

    ``source`` is held weakly. Streamlit keeps a download button's callable after a session that timed out on
    disconnect is dropped (that session is never shut down), and a lambda written in a page holds the page's
    globals: the session's runs, policies and language-model copy, ~17 MB that never came back. Built here, the
    callable holds only a weak reference and a function of the shared core.
    """
    ref = weakref.ref(source)

    def make() -> str:
        obj = ref()
        if obj is None:  # the session moved on: this button is stale
            return ""
        return build(obj if attribute is None else getattr(obj, attribute))

    return make


def export_row(downloads: list[tuple[str, object, str, bool]], trl_script: str) -> None:
    """Download buttons ((label, data or a ``deferred`` callable, file name, enabled)) and a TRL script that
    trains the language-model task with these settings, with one line that says what it trains.

    The script is shown only on request: a code block loads Streamlit's 1.5 MB syntax highlighter, ~0.4 s of
    every student's first page load, even inside a closed expander.
    """
    downloads = [*downloads, ("⬇ These settings as a TRL script", trl_script, "grpo_trl.py", True)]
    row = st.container(horizontal=True)
    for label, data, file_name, enabled in downloads:
        row.download_button(label, data, file_name, mimetypes.guess_type(file_name)[0], width="stretch",
                            key=f"download_{file_name}", disabled=not enabled)
    # The script's first line is its docstring, "Trains <model> ... with the app's settings."
    what = trl_script.split("\n", 1)[0].strip('"').rstrip(".")
    if st.toggle(f"Take it to TRL: a script that {what[:1].lower()}{what[1:]}", key="show_trl"):
        st.code(trl_script, language="python")
