"""Stepping through stages: the page-keyed stage cursor with its presenter keys, autoplay, and replaying the
screen a shared link points at."""

from __future__ import annotations

import time

import streamlit as st
import streamlit.components.v2  # noqa: F401  (st.components.v2.component)

from ..stages import SHORT_STAGE_NAMES  # the stage bar's names in presentation mode (one row at 18 px)
from ..config import Settings
from ..explain import count
from .settings import _is_valid, _warn_url_value


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


def stage_cursor(
    stages: tuple[str, ...], key: str, last_actions: tuple[tuple[str, object, str], ...] = (),
    on_new_group=None, on_reset=None, query_param: str = "stage",
    reset_help: str = "Back to the starting policy (π_θ = π_ref), iteration 1", hold_next=None,
) -> int:
    """The stage indicator (clickable) and Back / Next / New group / Reset buttons, with keyboard shortcuts.

    The position lives in ``st.session_state[key]`` (each page its own key) and is mirrored to the URL
    parameter ``query_param``.  On the last stage "Next" is replaced by ``last_actions``: (label, callback,
    help) buttons that run the callback and return to stage 1, as Reset does. ``hold_next()``, when given, is asked
    first on every forward click (a key press included): True means it took the click (a prediction's answer was
    revealed) and the stage stays.
    """
    picker = f"{key}_picker"
    if key not in st.session_state:
        raw = st.query_params.get(query_param)
        valid = raw is not None and _is_valid(raw, ("int", 1, len(stages)))
        if raw is not None and not valid:
            _warn_url_value(f"URL parameter `{query_param}={raw[:40]}` is not a {query_param} from 1 to {len(stages)}; "
                            "starting at 1.")
        st.session_state[key] = int(float(raw)) - 1 if valid else 0
        st.session_state[picker] = st.session_state[key]

    def go(stage: int, callback=None):
        if callback is not None:
            callback()
        st.session_state[key] = st.session_state[picker] = stage

    def forward(stage: int, callback=None):
        if hold_next is not None and hold_next():
            return
        go(stage, callback)

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
        row.button("Next ▶", on_click=forward, args=(stage + 1,), type="primary", shortcut="Right",
                   help="Next stage (→ key)", width=NEXT_BUTTON_PX, key=f"{key}_next")
    else:
        for k, (label, callback, help_text) in enumerate(last_actions[:2]):
            row.button(label, on_click=forward if k == 0 else go, args=(0, callback), type="primary",
                       shortcut="Right" if k == 0 else None,
                       help=help_text, width="content", key=f"{key}_last_{k}")
    row.space("stretch")
    row.button("🎲 New group", on_click=on_new_group, shortcut="N", width="content",
               help="Sample another group from the same policy (N key)", key=f"{key}_new_group")
    row.button("↺ Reset", on_click=go, args=(0, on_reset), width=STEP_BUTTON_PX, help=reset_help,
               key=f"{key}_reset")
    st.query_params[query_param] = str(stage + 1)
    return stage


AUTOPLAY_SECONDS = (1.0, 2.0, 3.0, 5.0, 8.0)


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
