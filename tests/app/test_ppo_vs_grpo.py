"""The "PPO vs GRPO" page through AppTest: every stage forward and back, keeping either update, bad URLs."""

import pytest
from streamlit.testing.v1 import AppTest

from grpo_viz.explain_ppo import COMPARE_STAGES

from .conftest import new_app, chart_data, charts, no_error, assert_url_warning, open_expander

PAGE = "app_pages/2_ppo_vs_grpo.py"


def open_page(**query) -> AppTest:
    return new_app(PAGE, **query)


def stage_title(at):
    return next(m.value for m in at.markdown if str(m.value).startswith("#### "))


def callout(at):
    return next(i.value for i in at.info if i.value.startswith("**What differs here.**"))


def test_walks_every_stage_with_both_algorithms_side_by_side():
    at = open_page()
    no_error(at)
    seen = []
    for k, name in enumerate(COMPARE_STAGES):
        assert stage_title(at) == f"#### {k + 1}. {name}"
        assert at.query_params["stage"] == str(k + 1)
        assert callout(at)
        if k > 0:
            assert [c["layout"]["title"]["text"][:4] for c in charts(at)] == ["GRPO", "PPO:"]
        seen.append((chart_data(at), callout(at)))
        no_error(at)
        if k < len(COMPARE_STAGES) - 1:
            at.button(key="cmp_stage_next").click().run()
    assert all(seen[i] != seen[i + 1] for i in range(len(seen) - 1))
    for k in reversed(range(len(COMPARE_STAGES) - 1)):
        at.button(key="cmp_stage_back").click().run()
        assert stage_title(at) == f"#### {k + 1}. {COMPARE_STAGES[k]}"


def test_baseline_and_kl_stages_name_what_differs():
    at = open_page(stage="4")
    text = callout(at)
    assert "group's own mean" in text and "learned critic" in text
    ppo_chart = charts(at)[1]
    assert "baseline V(s) = " in ppo_chart["layout"]["title"]["subtitle"]["text"]
    at = open_page(stage="3")
    assert "**loss**" in callout(at) and "**reward**" in callout(at)


def test_the_table_of_every_number_is_built_only_while_its_box_is_open():
    at = open_page(group_size="5")
    assert not at.dataframe  # closed: no table sent
    open_expander(at, "compare_table_open")
    table = at.dataframe[0].value
    assert table.shape == (5, 15) and table["sample"].tolist() == [1, 2, 3, 4, 5]
    at.button(key="cmp_stage_next").click().run()
    assert at.dataframe[0].value.equals(table)  # same group at every stage
    open_expander(at, "compare_table_open", False)
    no_error(at)
    assert not at.dataframe


@pytest.mark.parametrize("keep", [0, 1])
def test_keeping_either_update_starts_the_next_iteration(keep):
    at = open_page(stage="8")
    after = charts(at)[keep]["data"][1]["y"]  # that side's "after update" bars
    at.button(key=f"cmp_stage_last_{keep}").click().run()
    no_error(at)
    assert stage_title(at).startswith("#### 1.") and "Iteration 2," in at.caption[0].value
    assert charts(at)[0]["data"][0]["y"] == pytest.approx(after)  # pi_theta now is the kept update
    # from iteration 2 on pi_theta has left pi_ref, so the KL stage shows non-zero KL under both
    at.button(key="cmp_stage_next").click().run()
    at.button(key="cmp_stage_next").click().run()
    assert any(abs(v) > 1e-6 for v in charts(at)[1]["data"][0]["y"])


def test_new_group_reset_and_ppo_knobs_change_what_is_shown():
    at = open_page(stage="5")
    before = chart_data(at)
    at.button(key="cmp_stage_new_group").click().run()
    assert "group draw 2" in at.caption[0].value and chart_data(at) != before
    at.button(key="cmp_stage_reset").click().run()
    assert "Iteration 1, group draw 1" in at.caption[0].value
    at = open_expander(open_page(stage="6"), "ppo_options_open")
    before = chart_data(at)
    at.slider(key="ppo_epochs").set_value(1).run()
    assert chart_data(at)[1] != before[1] and set(charts(at)[1]["data"][0]["y"] or [1.0]) == {1.0}
    at = open_expander(open_page(stage="5"), "ppo_options_open")
    before = chart_data(at)
    at.checkbox(key="whiten_advantages").uncheck().run()
    assert chart_data(at)[1] != before[1] and "Whitening is off" in callout(at)
    at.selectbox(key="kl_estimator").set_value("k3").run()
    no_error(at)


@pytest.mark.parametrize("preset", ["GRPO (DeepSeekMath)", "Dr. GRPO", "DAPO", "GSPO", "TRL defaults"])
def test_every_preset_every_stage(preset):
    at = open_page(preset=preset, mu="3")
    for k in range(len(COMPARE_STAGES)):
        at.session_state["cmp_stage"] = at.session_state["cmp_stage_picker"] = k
        at.run()
        no_error(at)
        assert charts(at)


def test_equal_rewards_warn_without_nan():
    at = open_page(stage="5", reward_sat="1", reward_slept="1", reward_barked="1")
    no_error(at)
    assert any("no policy" in w.value for w in at.warning)


@pytest.mark.parametrize("query", [{"stage": "99"}, {"stage": "x"}, {"kl_estimator": "k9"}, {"ppo_epochs": "0"},
                                   {"gamma": "2"}, {"value_lr": "nan"}, {"lam": "abc"}, {"vf_coef": "-1"},
                                   {"whiten_advantages": "maybe"}])
def test_bad_query_parameters_warn_and_fall_back(query):
    at = open_page(**query)
    assert_url_warning(at, next(iter(query)))


def test_ppo_options_are_built_only_while_open_and_stay_in_the_url():
    at = open_page(stage="6")
    default_charts = chart_data(at)
    assert "ppo_epochs" not in {s.key for s in at.slider}  # closed: its eight widgets cost nothing
    open_expander(at, "ppo_options_open")
    at.slider(key="ppo_epochs").set_value(2).run()
    at.checkbox(key="whiten_advantages").uncheck().run()
    changed = chart_data(at)
    assert changed != default_charts
    open_expander(at, "ppo_options_open", False)
    assert "ppo_epochs" not in {s.key for s in at.slider}
    assert chart_data(at) == changed  # hidden, the values still apply
    assert at.query_params["ppo_epochs"] == "2" and at.query_params["whiten_advantages"] == "false"
    # a link with them reproduces the screen in a new session, and the widgets open on them
    link = open_page(stage="6", ppo_epochs="2", whiten_advantages="false")
    assert chart_data(link) == changed
    open_expander(link, "ppo_options_open")
    assert link.slider(key="ppo_epochs").value == 2 and link.checkbox(key="whiten_advantages").value is False
    # back to the default: the parameter leaves the URL
    link.slider(key="ppo_epochs").set_value(4).run()
    assert "ppo_epochs" not in link.query_params
    no_error(link)


def test_presentation_mode_toggles_to_the_stepper_and_the_two_charts():
    at = open_page(present="1")
    no_error(at)
    assert at.toggle(key="present").value and at.query_params["present"] == "1"
    assert all("equations" in e.label for e in at.main.expander)  # no table, tour or export
    assert not [b for b in at.get("download_button")]
    at.button(key="cmp_stage_next").click().run()
    assert [c["layout"]["height"] for c in charts(at)] == [290, 290]  # sized for a 720 px projector
    at.toggle(key="present").set_value(False).run()
    no_error(at)
    assert "present" not in at.query_params and at.get("download_button")
    assert [c["layout"]["height"] for c in charts(at)] == [400, 400]


def test_once_the_browser_asks_every_stage_is_drawn_in_its_own_container():
    at = open_page(stage="3")
    assert [m.value for m in at.markdown if str(m.value).startswith("#### ")] == [f"#### 3. {COMPARE_STAGES[2]}"]
    at.session_state["cmp_stage_everything"] = True  # what the presenter keys' script asks for after the first chart
    at.run()
    no_error(at)
    titles = [m.value for m in at.markdown if str(m.value).startswith("#### ")]
    assert titles == [f"#### {k + 1}. {name}" for k, name in enumerate(COMPARE_STAGES)]
    # one shared chart on the first stage, a GRPO / PPO pair on each of the others, each its own
    assert len(charts(at)) == 1 + 2 * (len(COMPARE_STAGES) - 1)
    assert at.query_params["stage"] == "3"
