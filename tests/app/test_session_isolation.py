"""Nothing one session does changes what another sees: two AppTest sessions in one server process."""

from .conftest import chart_data, new_app, no_error, next_button


def test_training_in_one_session_leaves_a_fresh_session_unchanged():
    fresh_before = chart_data(new_app(stage="8", mu="2"))

    busy = new_app(stage="8", mu="2")
    for _ in range(5):  # keep five updates in that session
        busy.session_state["stage"] = busy.session_state["stage_picker"] = 7
        busy.run()
        next_button(busy).click().run()
    no_error(busy)
    assert "Iteration 6," in busy.caption[0].value

    fresh_after = new_app(stage="8", mu="2")
    assert "Iteration 1," in fresh_after.caption[0].value
    assert chart_data(fresh_after) == fresh_before


def test_settings_and_stage_are_per_session():
    a = new_app()
    a.slider(key="beta").set_value(0.5).run()
    next_button(a).click().run()
    b = new_app()
    assert b.slider(key="beta").value == 0.04 and b.session_state["stage"] == 0
