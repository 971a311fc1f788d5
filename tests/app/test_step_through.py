"""The landing page driven like a lecturer drives it, through AppTest."""

import pytest

from grpo_viz.stepper import STAGES

from .conftest import chart_data, charts, new_app, no_error, next_button, assert_url_warning, open_expander


def stage_title(at):
    return at.markdown[[i for i, m in enumerate(at.markdown) if str(m.value).startswith("#### ")][0]].value


def test_walks_every_stage_forward_and_back(app):
    no_error(app)
    seen = []
    for k, name in enumerate(STAGES):
        assert stage_title(app) == f"#### {k + 1}. {name}"
        assert app.query_params["stage"] == str(k + 1)
        seen.append(chart_data(app))
        no_error(app)
        if k < len(STAGES) - 1:
            next_button(app).click().run()
    assert all(seen[i] != seen[i + 1] for i in range(len(seen) - 1)), "each stage shows a different chart"
    for k in reversed(range(len(STAGES) - 1)):
        app.button[0].click().run()  # Back
        assert stage_title(app) == f"#### {k + 1}. {STAGES[k]}"
    app.button[0].click().run()  # Back on the first stage (the browser greys it) stays there
    assert stage_title(app) == f"#### 1. {STAGES[0]}"


def test_next_iteration_keeps_the_update_and_returns_to_stage_one():
    at = new_app(stage="8")
    assert "Iteration 1," in at.caption[0].value
    after = charts(at)[0]["data"][1]["y"]  # "after update" bars
    next_button(at).click().run()
    assert stage_title(at).startswith("#### 1.") and "Iteration 2," in at.caption[0].value
    assert charts(at)[0]["data"][0]["y"] == pytest.approx(after)  # pi_theta now is last iteration's "after"


def test_new_group_resamples_and_reset_returns_to_start(app):
    before = chart_data(app)
    app.button(key="stage_new_group").click().run()
    assert "group draw 2" in app.caption[0].value and chart_data(app) != before
    next_button(app).click().run()
    app.button(key="stage_reset").click().run()
    assert "Iteration 1, group draw 1" in app.caption[0].value and stage_title(app).startswith("#### 1.")


CONTROLS = [
    ("slider", "group_size", 16),
    ("slider", "epsilon_low", 0.05),
    ("slider", "epsilon_high", 0.3),
    ("slider", "beta", 0.5),
    ("selectbox", "loss_type", "dr_grpo"),
    ("selectbox", "scale_rewards", "none"),
    ("slider", "lr", 3.0),
    ("slider", "mu", 4),
    ("slider", "temperature", 2.0),
    ("number_input", "seed", 7),
    ("number_input", "reward_sat", 0.2),
    ("number_input", "reward_slept", 2.0),
    ("number_input", "reward_barked", -1.0),
    ("selectbox", "preset", "DAPO"),
    ("selectbox", "importance_sampling_level", "sequence"),
    ("checkbox", "kl_ratio_correction", True),
]


def every_stage(at):
    """Charts and equations of all eight stages (the cursor is put back where it was)."""
    shown, where = [], at.session_state["stage"]
    for k in range(len(STAGES)):
        at.session_state["stage"] = at.session_state["stage_picker"] = k
        at.run()
        no_error(at)
        shown.append((chart_data(at), [m.value for m in at.latex]))
    at.session_state["stage"] = at.session_state["stage_picker"] = where
    return shown


@pytest.mark.parametrize("kind,key,value", CONTROLS)
def test_every_sidebar_control_changes_what_is_shown(kind, key, value):
    # second iteration (pi_theta has left pi_ref, so beta acts) with mu = 3 inner steps (so the clip acts)
    at = new_app(stage="8", mu="3", lr="2")
    next_button(at).click().run()
    before = every_stage(at)
    if key in ("importance_sampling_level", "kl_ratio_correction"):
        open_expander(at, "more_options_open")
        before = every_stage(at)
    widget = getattr(at, kind)(key=key)
    (widget.check() if kind == "checkbox" else widget.set_value(value)).run()
    after = every_stage(at)
    assert after != before, f"moving {key} changed nothing"
    if key not in ("loss_type", "importance_sampling_level"):
        # for the one-token toy every loss type, and the GSPO sequence ratio, give the same numbers:
        # only the equations change
        assert [c for c, _ in after] != [c for c, _ in before], f"moving {key} changed no chart"


def test_mu_one_explains_the_ratio_is_one_and_mu_four_clips():
    at = new_app(stage="4")
    text = " ".join(m.value for m in at.markdown)
    assert "exactly 1" in text
    assert set(charts(at)[0]["data"][0]["y"]) == {1.0}
    at = new_app(stage="5", mu="4")
    assert "no gradient" in " ".join(m.value for m in at.markdown)
    assert any(d["name"] == "samples (x = clipped)" and "x" in d["marker"]["symbol"] for d in charts(at)[0]["data"])


def test_equal_rewards_say_no_gradient_without_nan():
    at = new_app(stage="3", reward_sat="1", reward_slept="1", reward_barked="1")
    no_error(at)
    assert any("no policy gradient" in w.value for w in at.warning)
    assert set(charts(at)[0]["data"][0]["y"]) == {0.0}


def test_presets_apply_and_reset():
    at = new_app()
    at.selectbox(key="preset").set_value("GSPO").run()
    assert at.slider(key="epsilon_low").value == pytest.approx(3e-4)
    assert open_expander(at, "more_options_open").selectbox(key="importance_sampling_level").value == "sequence"
    at.slider(key="beta").set_value(0.2).run()
    assert any("beta" in c.value for c in at.caption)
    reset = [b for b in at.button if b.label == "Reset to preset"][0]
    reset.click().run()
    assert at.slider(key="beta").value == 0.0


def test_preset_in_url_sets_the_rest():
    at = new_app(preset="DAPO")
    assert at.slider(key="epsilon_high").value == pytest.approx(0.28) and at.slider(key="beta").value == 0.0


@pytest.mark.parametrize(
    "query",
    [
        {"group_size": "1"},
        {"group_size": "100000"},
        {"beta": "nan"},
        {"beta": "100"},
        {"epsilon_low": "-1"},
        {"temperature": "inf"},
        {"temperature": "0"},
        {"lr": "abc"},
        {"mu": "2.5"},
        {"seed": "-3"},
        {"loss_type": "ppo"},
        {"preset": "nope"},
        {"stage": "99"},
        {"stage": ""},
        {"reward_sat": "nan"},
    ],
)
def test_bad_query_parameters_warn_and_fall_back(query):
    at = new_app(**query)
    assert_url_warning(at, next(iter(query)))


def test_unknown_query_parameters_are_ignored():
    at = new_app(foo="bar", epsilon_low="0")
    no_error(at)
    assert any("ε = 0" in i.value for i in at.info)


def test_the_app_sends_figures_without_plotlys_template():
    """Streamlit's theme styles the charts; Plotly's default template was only serialization work per click."""
    at = new_app()
    specs = charts(at)
    assert specs and all("template" not in spec["layout"] for spec in specs)


def test_predict_first_asks_then_next_reveals_and_scores():
    """With Predict first on, Advantages shows its question and no chart; Next reveals the answer and scores the
    guess, then moves on; a question left unanswered only states the answer."""
    at = new_app(stage="3", predict="true")
    no_error(at)
    assert at.toggle(key="predict").value
    assert not charts(at) and any("predict first" in str(m.value) for m in at.markdown)
    run = at.session_state["toy_run"]
    settings, reward_fn = run.trace_key[0], run.trace_key[4]
    trace = run.trace(settings, reward_fn)
    up = sorted({w for w, a in zip(trace.group.texts, trace.advantages.tolist()) if a > 0})
    at.session_state["guess_0_0_2"] = up  # iteration 0, draw 0, stage 3 (index 2)
    next_button(at).click().run()
    no_error(at)
    assert charts(at), "the answer is revealed with the stage's chart"
    assert any(str(m.value).startswith("✅ Right: ") and "1 of 1 right" in str(m.value) for m in at.markdown)
    assert at.query_params["stage"] == "3"
    next_button(at).click().run()  # now Next moves on
    assert at.query_params["stage"] == "4"


def test_an_unanswered_question_states_the_answer_without_a_score():
    at = new_app(stage="8", predict="true", mu="3")
    assert not charts(at)
    next_button(at).click().run()
    no_error(at)
    assert any(str(m.value).startswith("The answer: ") for m in at.markdown)
    assert not any("predictions:" in str(m.value) for m in at.markdown)
