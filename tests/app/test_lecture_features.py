"""Issue 6 on the landing page: shareable URLs, presentation mode, autoplay, tour, formula card, export."""

import pytest

from grpo_viz.stepper import STAGES

from .conftest import chart_data, charts, new_app, no_error, next_button


def test_a_link_with_iteration_and_draw_rebuilds_the_same_screen():
    at = new_app()
    for _ in range(3):
        at.session_state["stage"] = at.session_state["stage_picker"] = len(STAGES) - 1
        at.run()
        next_button(at).click().run()
    assert "Iteration 4," in at.caption[0].value
    shown = chart_data(at)
    link = {k: at.query_params[k] for k in ("iteration", "draw", "stage")}
    assert link == {"iteration": "4", "draw": "1", "stage": "1"}
    again = new_app(**link)
    no_error(again)
    assert "Iteration 4," in again.caption[0].value and chart_data(again) == shown


def test_settings_in_the_link_set_the_widgets():
    at = new_app(group_size="16", beta="0.1", epsilon_high="0.28", mu="3", loss_type="dapo", seed="5", stage="4")
    no_error(at)
    assert at.slider(key="group_size").value == 16 and at.slider(key="mu").value == 3
    assert at.slider(key="beta").value == pytest.approx(0.1) and at.selectbox(key="loss_type").value == "dapo"
    assert at.number_input(key="seed").value == 5
    assert len(charts(at)[0]["data"][0]["x"]) + len(charts(at)[0]["data"][1]["x"]) == 16


@pytest.mark.parametrize("query", [{"iteration": "0"}, {"iteration": "1e9"}, {"draw": "x"}, {"present": "yes"}])
def test_bad_iteration_or_draw_warn(query):
    at = new_app(**query)
    no_error(at)
    if "present" not in query:
        assert any(next(iter(query)) in w.value for w in at.warning)


def sample_table_shown(at) -> bool:
    return any(m.value.startswith("|") and "completion" in m.value for m in at.markdown)


def test_presentation_mode_shows_only_stepper_chart_and_formula():
    at = new_app(present="1")
    no_error(at)
    assert at.toggle(key="present").value
    # no table, tour or export on the projector (the sidebar's own expander is hidden with the sidebar)
    assert not sample_table_shown(at) and [e.label for e in at.expander] == ["More objective options"]
    assert charts(at) and at.latex
    at.toggle(key="present").set_value(False).run()
    assert sample_table_shown(at) and "present" not in at.query_params


def test_presentation_link_reads_like_the_other_switches():
    assert new_app(present="true").toggle(key="present").value
    assert not new_app(present="false").toggle(key="present").value
    at = new_app(present="yes please")
    no_error(at)
    assert not at.toggle(key="present").value
    assert any("`present=yes please` is not 1 or 0" in w.value for w in at.warning)


def test_autoplay_steps_in_the_browser():
    """Stages are stepped in the browser: autoplay is the presenter keys' timer, at the chosen speed."""
    import json

    at = new_app(present="1")
    assert json.loads(at.get("bidi_component")[0].proto.json)["autoplay"] == 0
    at.toggle(key="autoplay").set_value(True).run()
    assert json.loads(at.get("bidi_component")[0].proto.json)["autoplay"] == 3.0


def test_autoplay_advances_a_stage_per_tick_while_predicting():
    """With Predict first the server holds the stage (a question waits for its answer): a tick is a rerun."""
    at = new_app(present="1", predict="true")
    at.toggle(key="autoplay").set_value(True).run()
    assert at.session_state["stage"] == 0
    at.session_state["autoplay_last"] = 0.0  # the last tick was long ago
    at.run()
    assert at.session_state["stage"] == 1
    at.run()  # a rerun right away is not a tick
    assert at.session_state["stage"] == 1


def test_formula_card_tour_glossary_and_export_on_every_stage():
    at = new_app(mu="2")
    for k, name in enumerate(STAGES):
        at.session_state["stage"] = at.session_state["stage_picker"] = k
        at.run()
        no_error(at)
        assert r"\boxed" in at.latex[0].value or name == "Score"
        labels = [e.label for e in at.expander]
        assert any(label.startswith("**Check yourself:**") for label in labels)
        assert "What every symbol means" in labels
        assert any("Try this" in i.value for i in at.info)
        assert at.get("download_button") and not at.code  # the TRL script shows on request


def trl_code(at) -> str:
    """Switch on "Take it to TRL" and return the script shown."""
    at.toggle(key="show_trl").set_value(True).run()
    no_error(at)
    return next(c.value for c in at.code if "GRPOConfig(" in c.value)


def test_trl_script_uses_the_current_settings():
    at = new_app(preset="DAPO")
    code = trl_code(at)
    assert "epsilon_high=0.28" in code and "loss_type='dapo'" in code and "beta=0.0" in code
    # it trains the language-model sum task, as the one line above it says, at a constant learning rate
    assert "reward_funcs=[correct]" in code and "lr_scheduler_type='constant'" in code
    assert "trains SmolLM2-135M-Instruct with GRPO on the sum task" in at.toggle(key="show_trl").label


@pytest.mark.parametrize("page", ["app_pages/2_ppo_vs_grpo.py", "app_pages/4_language_model.py"])
def test_other_stepping_pages_have_tour_and_export(page):
    at = new_app(page)
    no_error(at)
    assert any("Try this" in i.value for i in at.info)
    assert any(e.label.startswith("**Check yourself:**") for e in at.expander)
    assert at.get("download_button") and "GRPOConfig(" in trl_code(at)


def test_training_page_has_tour_and_export():
    at = new_app("app_pages/3_training.py")
    no_error(at)
    assert any("Try this" in i.value for i in at.info)
    assert at.get("download_button") and "GRPOConfig(" in trl_code(at)
