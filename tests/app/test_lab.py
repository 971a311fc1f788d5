"""The Lab page: every experiment opens from its URL without error, and a Run click draws it."""

import pytest

from grpo_viz.lab import EXPERIMENTS

from .conftest import charts, new_app, no_error


@pytest.mark.parametrize("key", list(EXPERIMENTS))
def test_every_experiment_opens(key):
    at = new_app("app_pages/6_lab.py", experiment=key)
    no_error(at)
    assert any(EXPERIMENTS[key].claim[:30] in str(m.value) for m in at.markdown)
    if not charts(at):
        at.button(key=f"run_{key}").click().run()
        no_error(at)
    assert charts(at)
    assert at.dataframe
