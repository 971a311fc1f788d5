"""A session's first run on a stepping page draws its first chart before the sidebar's widgets, with the settings read
from the URL as the widgets would give them (ui.settings, "sidebar waiting"). In real Chromium: the chart drawn
before the widgets holds the same data after they arrive, and the widgets show the URL's values."""

import json

import pytest

from .conftest import DRAWN_JS, SETTLED_JS

pytestmark = pytest.mark.browser

# the first stage's charts (keyed "<chart>_0"), by key, as Plotly holds them (x, y and z of every trace)
CHART_DATA_JS = """() => Object.fromEntries(Array.from(document.querySelectorAll('.js-plotly-plot'))
  .map(p => [((p.closest('[class*="st-key-"]') || {className: ''}).className.match(/st-key-(\\S+_0)(\\s|$)/) || [])[1],
             JSON.stringify((p.data || []).map(t => [t.x, t.y, t.z]))])
  .filter(([key]) => key))"""

CASES = {
    "step_through": ("group_size=5&beta=0.1&mu=3&seed=7&temperature=0.7&epsilon_low=0.3",
                     {"Group size G": "5", "Temperature T": "0.70"}),
    "ppo_vs_grpo": ("group_size=6&seed=3&beta=0.2", {"Group size G": "6"}),
    "language_model": ("group_size=4&seed=2&max_new_tokens=8", {"Group size G": "4",
                                                                            "Max new tokens": "8"}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_first_chart_drawn_before_the_sidebar_is_the_one_its_settings_give(browser, app_url, name):
    query, widgets = CASES[name]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{app_url}/{name}?{query}&stage=1")
    page.wait_for_function(DRAWN_JS, timeout=120_000)
    first = page.evaluate(CHART_DATA_JS)
    for label, value in widgets.items():
        slider = page.get_by_role("slider", name=label)
        slider.wait_for(timeout=120_000)
        assert slider.get_attribute("aria-valuetext") == value, (label, slider.get_attribute("aria-valuetext"))
    page.wait_for_function(SETTLED_JS, timeout=60_000)
    page.wait_for_timeout(500)
    after = page.evaluate(CHART_DATA_JS)
    # the sidebar's arrival changed nothing the first charts show (Toy vs LM's first run draws the toy's only)
    assert first and {key: after.get(key) for key in first} == first
    if name == "language_model":  # and then the model's tokens: G = 4 completions of at most 8 tokens
        rows = json.loads(after["lm_tokens_0"])[0][2]  # the heatmap's z: a row of cells per completion
        assert len(rows) == 4 and 1 <= len(rows[0]) <= 8, rows
    for key, value in (kv.split("=") for kv in query.split("&")):
        assert f"{key}={value}" in page.url  # the URL keeps every setting
    assert page.locator("[data-testid='stException']").count() == 0
    context.close()
