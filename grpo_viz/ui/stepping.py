"""Stepping through stages: the page-keyed stage cursor with its presenter keys, autoplay, and replaying the
screen a shared link points at."""

from __future__ import annotations

import time

import streamlit as st
import streamlit.components.v2  # noqa: F401  (st.components.v2.component)

from ..stages import SHORT_STAGE_NAMES  # the stage bar's names in presentation mode (one row at 18 px)
from ..config import Settings
from ..explain import count
from .settings import SIDEBAR_NOW, SIDEBAR_WAITING, _is_valid, _warn_url_value


# Presenter keys. Streamlit's button shortcuts do not fire while a widget has focus: after the Presentation switch
# was clicked, or a slider dragged, → and PageDown did nothing (or moved the slider). One listener per browser tab,
# on the window in the capture phase, runs before any widget sees the key and steps the page's stage cursor.
# Not while typing into a text or number box, and not the arrows / Space of a widget reached from the keyboard (Tab):
# a keyboard user still adjusts a slider with its arrows; the widget the mouse last touched gives them up.
#
# A cursor drawn by ``stage_tabs`` is stepped in the browser: every stage is already on the page, each in its own
# container, and Back, Next, the keys and the tab bar (tabs with nothing in them) only choose which container shows:
# one style rule, no widget state, nothing for React to redraw. The script keeps that stage in the URL (Streamlit
# writes the URL from the server's copy of the query string, which does not follow the browser's stage: every write
# is given it), greys Back on the first stage, and shows the last stage's actions (they need the server) in place of
# Next. The server moves the stage only by a numbered command (``goto``: a reload's URL, Next iteration, Reset),
# carried out once. A session's first run draws only the stage in the URL (the first chart comes as soon as it
# would for one stage); once it is drawn the script asks for the others (``everything``). Until they are there, or
# for a cursor drawn by ``stage_cursor``, a step asks the server: the keys click its buttons.
_PRESENTER_KEYS_JS = """
export default function (component) {
  const data = component.data || {};
  const state = window.__grpoVizPresenterKeys || (window.__grpoVizPresenterKeys = {pages: {}});
  state.cursor = data.cursor;
  if (data.tabbed) {
    const page = state.pages[data.cursor] || (state.pages[data.cursor] = {});
    Object.assign(page, {count: data.count, param: data.param, path: location.pathname});
    if (page.goto !== data.goto) { page.goto = data.goto; page.stage = data.stage; page.list = null; }
    state.tabbed = page;
  } else {
    state.tabbed = null;
  }
  if (data.lazy) {  // the stages not drawn yet: ask for them once this one's chart is drawn (30 s: it has none)
    const since = performance.now();
    const ask = () => (document.querySelector('.js-plotly-plot .main-svg') || performance.now() - since > 30000
      ? component.setTriggerValue('everything', true) : requestAnimationFrame(ask));
    requestAnimationFrame(ask);
  }
  clearInterval(state.autoplay);
  if (data.autoplay > 0) state.autoplay = setInterval(() => state.step && state.step(1), data.autoplay * 1000);
  if (state.sync) { state.sync(); return; }

  const tabsOf = () => document.querySelectorAll('.st-key-' + state.cursor + '_tabs [role=tab]');
  const view = (k) => document.querySelector('.st-key-' + state.cursor + '_view_' + k);
  const button = (suffix) => document.querySelector('.st-key-' + state.cursor + '_' + suffix + ' button');
  const clientSide = () => state.tabbed && location.pathname === state.tabbed.path && tabsOf().length > 0;
  const nativeReplace = history.replaceState.bind(history), nativePush = history.pushState.bind(history);
  const withStage = (url) => {
    const page = state.tabbed;
    if (!page || url == null) return url;
    const u = new URL(url, location.href);
    if (u.pathname !== page.path) return url;
    u.searchParams.set(page.param, String(page.stage + 1));
    return u.pathname + u.search + u.hash;
  };
  history.replaceState = (s, t, url) => nativeReplace(s, t, withStage(url));
  history.pushState = (s, t, url) => nativePush(s, t, withStage(url));
  // One stylesheet, never changed: a step only sets attributes on the stages and buttons it changes. Rewriting a
  // stylesheet makes the browser match every rule against the whole page again (every stage of the group is on it).
  const style = document.createElement('style');
  style.textContent = '[data-grpo-hidden]{visibility:hidden;pointer-events:none}'
    + '[data-grpo-hidden] *{visibility:hidden !important}'
    + '[data-grpo-lifted]{position:absolute;left:0;right:0;top:0;pointer-events:none}'
    + '[data-grpo-greyed] button{opacity:.4;pointer-events:none}[data-grpo-gone]{display:none !important}';
  document.head.appendChild(style);
  const MARKS = ['data-grpo-hidden', 'data-grpo-lifted', 'data-grpo-greyed', 'data-grpo-gone'];
  const mark = (el, name, on) => { if (el && el.hasAttribute(name) !== on) el.toggleAttribute(name, on); };
  const unmarkAll = () => document.querySelectorAll(MARKS.map((m) => '[' + m + ']').join(','))
    .forEach((el) => MARKS.forEach((m) => mark(el, m, false)));

  // The tab bar follows once the frame that shows the stage is painted: selecting a tab is React's work on the
  // bar, which would otherwise come before that frame. Until it has, the bar's old tab is not the user's choice.
  const selectTab = (page) => {
    if (page.tabScheduled) return;
    page.tabScheduled = true;
    requestAnimationFrame(() => setTimeout(() => {
      page.tabScheduled = false;
      const tab = tabsOf()[page.stage];
      if (state.tabbed === page && tab && tab.getAttribute('aria-selected') !== 'true') tab.click();
    }, 0));
  };
  // the shown stage, the URL and the buttons follow state.tabbed.stage, the tab bar a frame later
  const show = () => {
    const page = state.tabbed, tabs = tabsOf(), c = state.cursor;
    if (tabs[page.stage] && tabs[page.stage].getAttribute('aria-selected') !== 'true') {
      page.tabWanted = true;
      selectTab(page);
    }
    page.list = tabs[0] && tabs[0].parentElement;
    const last = page.stage === page.count - 1;
    for (let k = 0; k < page.count; k++) {
      const v = view(k);
      if (!v) continue;
      mark(v, 'data-grpo-hidden', k !== page.stage);
      // a hidden stage's block leaves the flow (no gap), laid out at the shown one's width
      const wrapper = v.parentElement;
      if (wrapper && wrapper.matches('[data-testid="stLayoutWrapper"]')) {
        mark(wrapper, 'data-grpo-lifted', k !== page.stage);
      }
    }
    mark(document.querySelector(`.st-key-${c}_back`), 'data-grpo-greyed', page.stage === 0);
    mark(document.querySelector(`.st-key-${c}_next`), 'data-grpo-gone', last);
    document.querySelectorAll(`[class*="st-key-${c}_last_"]`).forEach((el) => mark(el, 'data-grpo-gone', !last));
    // the server's own rule shows the stage it drew first: this one takes over
    document.querySelectorAll(`style[data-stages="${c}"]`).forEach((s) => {
      if (s.sheet && !s.sheet.disabled) s.sheet.disabled = true;
    });
    const url = withStage(location.href);
    if (url !== location.pathname + location.search + location.hash) nativeReplace(history.state, '', url);
  };
  state.sync = () => {
    if (!clientSide()) { unmarkAll(); return; }
    const page = state.tabbed, tabs = Array.from(tabsOf());
    const selected = tabs.findIndex((t) => t.getAttribute('aria-selected') === 'true');
    // the same tab bar with another tab selected: the user chose it (a click, or the tab bar's own arrow keys);
    // a new tab bar (a rerun that redrew it) opens at its server default: the browser's stage wins
    if (selected === page.stage) page.tabWanted = false;
    else if (selected >= 0 && !page.tabWanted && page.list === tabs[0].parentElement) page.stage = selected;
    show();
  };
  // a step the browser can take: to a stage already on the page
  const local = (step) => clientSide() && !!view(state.tabbed.stage + step);
  let passing = false;  // a click let through to the server
  state.step = (step) => {
    if (local(step)) { state.tabbed.stage += step; show(); return true; }
    let target;
    if (clientSide()) {  // to a stage not drawn yet, or on from the last: the server's button
      const to = state.tabbed.stage + step;
      if (to < 0) return false;
      target = to >= state.tabbed.count ? button('last_0') : button(step > 0 ? 'next' : 'back');
    } else {
      target = step > 0 ? (button('next') || button('last_0')) : button('back');
    }
    if (target) { passing = true; target.click(); passing = false; }
    return !!target;
  };
  let queued = false;
  new MutationObserver(() => {
    if (queued || !state.tabbed) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; state.sync(); });
  }).observe(document.body, {childList: true, subtree: true, attributes: true, attributeFilter: ['aria-selected']});
  // Back and Next of a client-side cursor never reach the server
  window.addEventListener('click', (e) => {
    if (passing || !clientSide() || !(e.target instanceof Element)) return;
    const c = state.cursor;
    const step = e.target.closest(`.st-key-${c}_next`) ? 1 : e.target.closest(`.st-key-${c}_back`) ? -1 : 0;
    if (!step || !local(step)) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    state.step(step);
  }, true);

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
    const movable = clientSide() ? (step > 0 || state.tabbed.stage > 0)
      : !!(step > 0 ? (button('next') || button('last_0')) : button('back'));
    if (!movable) return;  // another page, or the first stage
    e.preventDefault();
    e.stopImmediatePropagation();
    swallowSpaceUp = space;
    if (!e.repeat || clicker) state.step(step);
  }, true);
  window.addEventListener('keyup', (e) => {
    if (e.key === ' ' && swallowSpaceUp) { e.preventDefault(); e.stopImmediatePropagation(); swallowSpaceUp = false; }
  }, true);
  state.sync();
}
"""
_presenter_keys_component = st.components.v2.component("grpo_viz.presenter_keys", js=_PRESENTER_KEYS_JS)


def presenter_keys(cursor_key: str, tabbed: dict | None = None, autoplay_seconds: float | None = None,
                   on_everything_change=None) -> None:
    """PageDown / PageUp (a presenter's clicker), → / ← and Space (Shift+Space back) step the stage cursor
    ``cursor_key`` whatever has focus, except while typing into a text or number box. Installed once per browser
    tab; each page's mount only says which cursor the keys drive, and for a ``stage_tabs`` cursor (``tabbed``: its
    stage count, URL parameter, the server's stage and the number of the server's last move) where the server
    last put it, and whether it drew only that stage (``lazy``: the script then asks for the rest, which calls
    ``on_everything_change``). ``autoplay_seconds``: step forward by itself this often. The mount itself takes no
    room (its container is hidden by ``compact_page``'s CSS)."""
    _presenter_keys_component(key="presenter_keys", height=0, on_everything_change=on_everything_change or _nothing,
                              data={"cursor": cursor_key, "tabbed": tabbed is not None, **(tabbed or {}),
                                    "autoplay": autoplay_seconds or 0})


def _nothing() -> None:
    """A trigger's callback where the page needs none (the component API wants one for each trigger)."""


STEP_BUTTON_PX, NEXT_BUTTON_PX = 125, 200  # Next, the click of a lecture, stands out; a phone fits Back and Next


def _start_stage(stages: tuple[str, ...], key: str, query_param: str) -> None:
    """The session's first stage: the URL's ``query_param`` (from 1), or the first; a junk value is warned about."""
    if key in st.session_state:
        return
    raw = st.query_params.get(query_param)
    valid = raw is not None and _is_valid(raw, ("int", 1, len(stages)))
    if raw is not None and not valid:
        _warn_url_value(f"URL parameter `{query_param}={raw[:40]}` is not a {query_param} from 1 to {len(stages)}; "
                        "starting at 1.")
    st.session_state[key] = int(float(raw)) - 1 if valid else 0
    st.session_state[f"{key}_picker"] = st.session_state[key]


def _step_buttons(stages, key, stage, go, forward, last_actions, on_new_group, on_reset, reset_help, client_side):
    """Back, Next (on the last stage ``last_actions`` instead), New group and Reset, in one flex row, not six
    columns: a column is a block of its own for the server to send and the browser to lay out. Stepping on the left,
    the group's actions pushed right; on a phone the row wraps. ``client_side``: every one is drawn, and the
    presenter keys' script shows Next or the last actions, and greys Back, for the stage the browser shows."""
    row = st.container(horizontal=True, vertical_alignment="center")
    row.button("◀ Back", on_click=go, args=(max(stage - 1, 0),), disabled=stage == 0 and not client_side,
               shortcut=None if client_side else "Left", help="Previous stage (← key)", width=STEP_BUTTON_PX,
               key=f"{key}_back")
    if stage < len(stages) - 1 or client_side:
        # without the script (AppTest), Next on the last stage is its first action
        args = (stage + 1,) if stage < len(stages) - 1 else (0, last_actions[0][1] if last_actions else None)
        row.button("Next ▶", on_click=forward, args=args, type="primary", shortcut=None if client_side else "Right",
                   help="Next stage (→ key)", width=NEXT_BUTTON_PX, key=f"{key}_next")
    if stage == len(stages) - 1 or client_side:
        for k, (label, callback, help_text) in enumerate(last_actions[:2]):
            row.button(label, on_click=forward if k == 0 else go, args=(0, callback), type="primary",
                       shortcut=None if client_side or k else "Right",
                       help=help_text, width="content", key=f"{key}_last_{k}")
    row.space("stretch")
    row.button("🎲 New group", on_click=on_new_group, shortcut="N", width="content",
               help="Sample another group from the same policy (N key)", key=f"{key}_new_group")
    row.button("↺ Reset", on_click=go, args=(0, on_reset), width=STEP_BUTTON_PX, help=reset_help,
               key=f"{key}_reset")


def stage_cursor(
    stages: tuple[str, ...], key: str, last_actions: tuple[tuple[str, object, str], ...] = (),
    on_new_group=None, on_reset=None, query_param: str = "stage",
    reset_help: str = "Back to the starting policy (π_θ = π_ref), iteration 1", hold_next=None,
) -> int:
    """The stage indicator (clickable) and Back / Next / New group / Reset buttons, with keyboard shortcuts; every
    step asks the server (``stage_tabs`` steps in the browser).

    The position lives in ``st.session_state[key]`` (each page its own key) and is mirrored to the URL
    parameter ``query_param``.  On the last stage "Next" is replaced by ``last_actions``: (label, callback,
    help) buttons that run the callback and return to stage 1, as Reset does. ``hold_next()``, when given, is asked
    first on every forward click (a key press included): True means it took the click (a prediction's answer was
    revealed) and the stage stays.
    """
    picker = f"{key}_picker"
    if st.session_state.pop(SIDEBAR_WAITING, False):  # nothing asks for the rest here: the page's run, with the sidebar
        st.session_state[SIDEBAR_NOW] = True
        st.rerun()
    _start_stage(stages, key, query_param)

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
    _step_buttons(stages, key, stage, go, forward, last_actions, on_new_group, on_reset, reset_help, False)
    st.query_params[query_param] = str(stage + 1)
    return stage


def _hidden_stages(key: str) -> str:
    """CSS that hides every stage of cursor ``key`` but ``{stage}``: laid out at the shown one's width (their charts
    are drawn at their size before they show, so showing one redraws nothing), invisible (some of Streamlit's own
    blocks set ``visibility: visible``, hence the rule for every descendant), clipped by the stages' container."""
    hidden = f'[class*="st-key-{key}_view_"]:not(.st-key-{key}_view_{{stage}})'
    wrapper = f'.st-key-{key}_views [data-testid="stLayoutWrapper"]:has(> {hidden})'  # out of the flow, no gap
    return (f"{wrapper}{{position:absolute;left:0;right:0;top:0;pointer-events:none}}"
            f"{hidden}{{visibility:hidden;pointer-events:none}}{hidden} *{{visibility:hidden !important}}")


def stage_tabs(
    stages: tuple[str, ...], key: str, last_actions: tuple[tuple[str, object, str], ...] = (),
    on_new_group=None, on_reset=None, query_param: str = "stage",
    reset_help: str = "Back to the starting policy (π_θ = π_ref), iteration 1",
    autoplay_seconds: float | None = None,
) -> tuple[list, int]:
    """Back / Next / New group / Reset, a tab bar of the stages, and a container per stage, stepped in the browser:
    returns the containers (the page draws each stage into its own; None for a stage not drawn in this run) and
    the stage the server last put the cursor on.

    Back, Next, the tab bar and the presenter keys only choose which container shows, without a round trip; the
    browser keeps the stage in the URL parameter ``query_param`` (``presenter_keys``). The server moves the stage on
    a session's first run (the URL's stage), on ``last_actions`` (shown on the last stage in place of Next; they run
    their callback and return to stage 1) and on Reset; each move is numbered so the browser carries it out once.
    A session's first run draws only its stage (and its sidebar's widgets wait, ``settings.SIDEBAR_WAITING``); the
    browser asks for the rest once that one's chart is drawn.
    Without the script (AppTest), only the server's stage is drawn, and Back and Next move it.
    """
    _start_stage(stages, key, query_param)
    moves, everything = f"{key}_moves", f"{key}_everything"
    st.session_state.setdefault(moves, 0)

    def go(stage: int, callback=None):
        if callback is not None:
            callback()
        st.session_state[key] = st.session_state[f"{key}_picker"] = stage
        st.session_state[moves] += 1

    def draw_everything():
        st.session_state[everything] = st.session_state[SIDEBAR_NOW] = True

    stage = st.session_state[key]
    drawn = st.session_state.get(everything, False)
    if drawn and st.session_state.pop(SIDEBAR_WAITING, False):
        st.rerun()  # a fragment's run: the whole page's instead, with the sidebar that waited for the first chart
    presenter_keys(key, {"count": len(stages), "param": query_param, "stage": stage, "goto": st.session_state[moves],
                         "lazy": not drawn, "hidden": _hidden_stages(key)}, autoplay_seconds,
                   on_everything_change=draw_everything)
    _step_buttons(stages, key, stage, go, go, last_actions, on_new_group, on_reset, reset_help, True)
    presenting = bool(st.session_state.get("present"))
    # One row in presentation mode (a projector is 1024 px wide): the short names.
    labels = [f"{i + 1}. {SHORT_STAGE_NAMES.get(name, name) if presenting else name}" for i, name in enumerate(stages)]
    st.tabs(labels, default=labels[stage], key=f"{key}_tabs")  # the stage bar: its tabs hold nothing
    views = st.container(key=f"{key}_views")
    # the server's stage shows until the script shows the browser's, with the same rule
    views.markdown(f'<style data-stages="{key}">{_hidden_stages(key).replace("{stage}", str(stage))}</style>',
                   unsafe_allow_html=True)
    st.query_params[query_param] = str(stage + 1)
    return [views.container(key=f"{key}_view_{k}") if drawn or k == stage else None
            for k in range(len(stages))], stage


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
