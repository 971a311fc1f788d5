"""The Lab page: every experiment opens from its URL without error, and a Run click draws it."""

import pytest

from grpo_viz.lab import EXPERIMENTS

from .conftest import charts, new_app, no_error

CLICK_RUN_UP_TO_S = 30  # a longer experiment's full run is minutes of a CI machine's time


@pytest.mark.parametrize("key", list(EXPERIMENTS))
def test_every_experiment_opens(key):
    at = new_app("app_pages/6_lab.py", experiment=key)
    no_error(at)
    assert any(EXPERIMENTS[key].claim[:30] in str(m.value) for m in at.markdown)
    if not charts(at):
        run = at.button(key=f"run_{key}")
        if EXPERIMENTS[key].seconds > CLICK_RUN_UP_TO_S:
            return  # the unit tests run a shorter version of it; here the page offers its Run button
        run.click().run()
        no_error(at)
    assert charts(at)
    assert at.dataframe
