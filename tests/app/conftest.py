"""AppTest helpers: run the real app.py and read its charts' data (AppTest has no Plotly accessor)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "app_pages").glob("*.py"))


STEP_THROUGH = "app_pages/1_step_through.py"
LANDING = None  # the page "/" opens: the lesson


def new_app(page: str | None = STEP_THROUGH, **query) -> AppTest:
    """app.py (its st.navigation) on ``page`` (default Step through, the page most tests drive; ``LANDING``: the page
    "/" opens), with these URL parameters."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    if page is not None:
        at.switch_page(page)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def open_expander(at: AppTest, key: str, open_: bool = True) -> AppTest:
    """Click a lazily built expander (``on_change="rerun"``) open or shut, as a browser would."""
    at.session_state[key] = open_
    return at.run()


def switch_section(at: AppTest, section: str) -> AppTest:
    """Click a Training tab: the tab's state, and the URL the browser would now show (AppTest sends its URL every
    run)."""
    at.session_state["section"] = section
    at.query_params["section"] = section
    return at.run()


def charts(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def chart_data(at: AppTest) -> list:
    """Every chart's traces (data only), for asserting that something changed."""
    return [c["data"] for c in charts(at)]


def no_error(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    text = " ".join(str(m.value) for m in at.markdown) + " ".join(str(m.value) for m in at.latex)
    assert "nan" not in text.lower().replace("nano", "").split(), text


@pytest.fixture
def app():
    return new_app()


def next_button(at: AppTest, key: str = "stage"):
    """The forward button of a stage cursor: "Next", or on the last stage its first action ("Next iteration")."""
    keys = {b.key for b in at.button}
    return at.button(key=f"{key}_next") if f"{key}_next" in keys else at.button(key=f"{key}_last_0")


def assert_url_warning(at: AppTest, name: str) -> None:
    """The page ran cleanly, warned about URL parameter ``name`` by name, and still drew its charts."""
    no_error(at)
    assert any(f"`{name}=" in w.value for w in at.warning), [w.value for w in at.warning]
    assert charts(at)
