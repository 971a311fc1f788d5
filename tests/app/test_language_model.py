"""The toy-vs-language-model page through AppTest: the built-in model steps through every stage beside the toy."""

import json

from streamlit.testing.v1 import AppTest

from grpo_viz.stages import SHORT_STAGE_NAMES
from grpo_viz.stepper import STAGES

from .conftest import ROOT, no_error, next_button


def lm_page(**query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / "4_language_model.py"), default_timeout=90)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def token_chart(at: AppTest) -> dict:
    """The LM's token heatmap (the chart whose trace is a heatmap)."""
    specs = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    return next(f for f in specs if f["data"] and f["data"][0]["type"] == "heatmap")


def test_default_tiny_model_steps_through_every_stage_beside_the_toy():
    at = lm_page()
    no_error(at)
    assert at.selectbox(key="model").value == "builtin" and at.selectbox(key="task").value == "sum"
    seen = []
    for k, name in enumerate(STAGES):
        no_error(at)
        assert at.query_params["stage"] == str(k + 1)
        assert any(m.value == f"**{k + 1}. {name}**" for m in at.markdown)
        heat = token_chart(at)
        z = heat["data"][0]["z"]
        assert len(z) == 8 and all(row[0] is not None for row in z)  # G = 8 completions, each with >= 1 token
        seen.append((heat["layout"]["title"]["text"], z))
        if k < len(STAGES) - 1:
            next_button(at, "lm_stage").click().run()
    assert len({title for title, _ in seen}) == len(STAGES), "each stage colours the tokens by its own quantity"
    assert any("Next-token" in e.label for e in at.expander)
    assert len(at.dataframe) >= 1 and at.dataframe[-1].value.shape[0] == 8

    next_button(at, "lm_stage").click().run()  # Next iteration: both runs keep their update
    no_error(at)
    assert at.query_params["stage"] == "1"
    assert any("iteration 2" in m.value for m in at.markdown if m.value.startswith("#### "))


def test_a_model_path_that_does_not_exist_gets_a_clear_message_and_the_toy_still_works(tmp_path):
    at = lm_page(model="hf", model_path=str(tmp_path / "nope"))
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [f"There is no folder at {tmp_path / 'nope'}. Give an existing model "
                                           "folder or a cached Hugging Face model id."]
    assert len(at.get("plotly_chart")) == 1  # the toy's chart is still there


def test_a_folder_that_is_not_a_model_and_an_empty_path(tmp_path):
    at = lm_page(model="hf", model_path=str(tmp_path))
    assert not at.exception
    assert "no config.json" in at.error[0].value
    at = lm_page(model="hf")
    assert not at.exception
    assert any("Type a model folder" in str(e.value) for e in at.error)


def test_task_and_settings_change_the_lm_view():
    at = lm_page(task="sum_length", mu="3", stage="4")
    no_error(at)
    assert token_chart(at)["data"][0]["colorbar"]["title"]["text"] == "w_t"
    assert "true reward" in at.dataframe[-1].value.columns
    toy_words = lm_page(task="toy")
    no_error(toy_words)
    assert any("The cat" in c.value for c in toy_words.caption)


def test_bad_url_values_warn_instead_of_failing():
    at = lm_page(model="gpt9", task="poetry", lm_lr="fast")
    assert not at.exception
    warnings = " ".join(str(w.value) for w in at.warning)
    assert "model=gpt9" in warnings and "task=poetry" in warnings and "lm_lr=fast" in warnings


def test_presentation_mode_toggles_to_the_stepper_and_the_two_columns():
    at = lm_page(present="1")
    no_error(at)
    assert at.toggle(key="present").value and at.query_params["present"] == "1"
    assert not at.get("download_button") and not at.get("arrow_data_frame")  # no table, tour or export
    stage_bar = [f"{k + 1}. {SHORT_STAGE_NAMES.get(name, name)}" for k, name in enumerate(STAGES)]
    assert [t.label for t in at.tabs] == [*stage_bar, "Chart", "Explanation"]
    at.toggle(key="present").set_value(False).run()
    no_error(at)
    assert "present" not in at.query_params and at.get("download_button")
    assert [t.label for t in at.tabs] == [f"{k + 1}. {name}" for k, name in enumerate(STAGES)]  # the stage bar


def test_loss_and_gradient_says_what_the_gradient_norm_clip_did():
    """TRL's max_grad_norm (1 by default for language models): the stage gives the norm and whether it was rescaled;
    switched off in the sidebar, it says nothing about it."""
    at = lm_page(stage=str(STAGES.index("Loss & gradient") + 1))
    no_error(at)
    notes = [i.value for i in at.info if "max_grad_norm = 1" in i.value]
    assert len(notes) == 1 and ("rescaled" in notes[0] or "unchanged" in notes[0]), [i.value for i in at.info]
    at.select_slider(key="lm_max_grad_norm").set_value(0.0).run()
    no_error(at)
    assert not [i.value for i in at.info if "max_grad_norm" in i.value]


def test_once_the_browser_asks_every_stage_is_drawn_in_its_own_container():
    at = lm_page(stage="2", mu="2")
    assert [m.value for m in at.markdown if m.value.startswith("**") and ". " in m.value[:6]] == [f"**2. {STAGES[1]}**"]
    at.session_state["lm_stage_everything"] = True  # what the presenter keys' script asks for after the first chart
    at.run()
    no_error(at)
    assert [m.value for m in at.markdown if m.value.startswith("**") and ". " in m.value[:6]] == [
        f"**{k + 1}. {name}**" for k, name in enumerate(STAGES)]
    heatmaps = [f for f in (json.loads(el.proto.spec) for el in at.get("plotly_chart"))
                if f["data"] and f["data"][0]["type"] == "heatmap"]
    assert len({h["layout"]["title"]["text"] for h in heatmaps}) == len(STAGES)  # each stage its own token chart
    # the inner-step sliders of the stages that have one move together
    sliders = [s for s in at.slider if s.key.startswith("lm_inner_step_")]
    assert len(sliders) == 4
    sliders[0].set_value(1).run()
    assert {s.value for s in at.slider if s.key.startswith("lm_inner_step_")} == {1}
    assert at.query_params["stage"] == "2"
