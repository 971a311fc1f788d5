"""The only Streamlit-aware code; the core (``grpo_viz.objectives`` and friends) never imports it.

Split by concern, each name re-exported here so a page imports from ``grpo_viz.ui``:

- ``settings``: URL parameters (what a valid value looks like, warnings for the rest) and the sidebars bound to them
- ``stepping``: the stage cursor with its presenter keys, autoplay, replaying a shared link
- ``presentation``: the compact page layout, presentation mode, the charts' style
- ``training``: Play's timer, training to a target under a progress bar, the session's language-model worker
- ``models``: the language models loaded once per server process
- ``cards``: settings notices, a card's equations, the self-study tour
- ``exports``: download buttons and the TRL script
- ``memory``: the server's garbage collector and the forgetting of closed sessions
"""

from .cards import latex_lines, settings_notices, tour_card
from .exports import deferred, export_row
from .memory import (_heap_release, forget_timed_out_sessions,
                     start_garbage_collector)
from .models import load_chosen_model, shared_model
from .presentation import (PRESENT_CHART_PX, PRESENTATION_CSS, chart_style, compact_page, presentation_on,
                           presentation_toggle)
from .settings import (ALL_QUERY_SPECS, BOOL_SPEC, DEFAULTS, FLAG_SPEC, LM_MODELS, LM_QUERY_SPECS, PPO_QUERY_SPECS,
                       QUERY_SPECS, invalid_query_params, lazy_expander, lm_sidebar, ppo_sidebar, settings_dict,
                       settings_sidebar, sidebar_waiting, warn_bad_query_params)
from .stepping import (AUTOPLAY_SECONDS, MAX_REPLAY_ITERATIONS, NEXT_BUTTON_PX, SHORT_STAGE_NAMES, STEP_BUTTON_PX,
                       autoplay_controls, autoplay_due, presenter_keys, replay_from_url, stage_cursor)
from .training import (LM_POLL_S, PLAY_INTERVAL_S, TICKS_PER_RUN, PlayTimer, poll_seconds, rerun_if_worker_switched,
                       restart_lm_training, session_lm_worker, session_replay_worker, session_worker_slot,
                       start_lm_worker, start_reproduction, stop_lm_worker, train_to)

__all__ = [
    "ALL_QUERY_SPECS", "AUTOPLAY_SECONDS", "BOOL_SPEC", "DEFAULTS", "FLAG_SPEC", "LM_MODELS",
    "LM_QUERY_SPECS", "MAX_REPLAY_ITERATIONS", "NEXT_BUTTON_PX", "PLAY_INTERVAL_S", "PPO_QUERY_SPECS",
    "PRESENTATION_CSS", "PRESENT_CHART_PX", "PlayTimer", "QUERY_SPECS", "SHORT_STAGE_NAMES", "STEP_BUTTON_PX",
    "TICKS_PER_RUN", "LM_POLL_S", "rerun_if_worker_switched", "session_lm_worker", "session_worker_slot",
    "start_lm_worker", "stop_lm_worker", "session_replay_worker", "start_reproduction", "poll_seconds", "autoplay_controls", "autoplay_due", "chart_style", "compact_page",
    "deferred", "export_row", "forget_timed_out_sessions", "invalid_query_params", "latex_lines", "lazy_expander",
    "lm_sidebar", "load_chosen_model", "presentation_on", "presentation_toggle",
    "presenter_keys", "replay_from_url", "restart_lm_training", "settings_dict",
    "settings_notices", "settings_sidebar", "sidebar_waiting", "shared_model", "stage_cursor", "start_garbage_collector",
    "tour_card", "train_to", "warn_bad_query_params",
]
