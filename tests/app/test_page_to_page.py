"""A student goes from page to page in one session: no page may trip over what another page left in the state."""

from streamlit.testing.v1 import AppTest

from ..plotly_json import decoded
from .conftest import PAGES, ROOT, charts, new_app, next_button, no_error, switch_section


def test_every_page_then_every_page_again_in_one_session():
    """The language model's page, every page, and the LM page again, with one Next click wherever there is a stage
    cursor. (The Training page's Run button was keyed "lm_run", like the LM page's StepRun: leaving Training took
    the StepRun with it, and the LM page then failed with an AttributeError. Found by the load test.)"""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    tour = ["app_pages/4_language_model.py", *PAGES, "app_pages/4_language_model.py"]
    for page in tour:
        at.switch_page(page)
        at.run()
        no_error(at)
        steppers = {b.key[: -len("_next")] for b in at.button if b.key and b.key.endswith("_next")}
        for key in steppers:
            next_button(at, key).click().run()
            no_error(at)
        if page.endswith("3_training.py"):  # its sections are tabs: open each (the LM one holds the Training run)
            for section in ("Language model", "Reward hacking", "Toy training"):
                no_error(switch_section(at, section))
            at.query_params.pop("section", None)


def test_every_chart_as_served_is_the_chart_plotly_validates(monkeypatch):
    """The suite validates every figure (GRPO_VIZ_VALIDATE_FIGURES=1); the server does not, and constructs a figure
    only when something reads it (charts._BuiltFigure). Every stage of every stepping page, and a Training step,
    send the same charts either way."""
    from grpo_viz import charts as chart_builders

    def walk() -> list:
        seen = []
        for page, key in (("app_pages/1_step_through.py", "stage"), ("app_pages/2_ppo_vs_grpo.py", "cmp_stage"),
                          ("app_pages/4_language_model.py", "lm_stage")):
            at = new_app(page, mu="2")
            for _ in range(8):
                no_error(at)
                seen.append(decoded(charts(at)))
                next_button(at, key).click().run()
        at = new_app("app_pages/3_training.py")
        at.button(key="step").click().run()
        no_error(at)
        return seen + [decoded(charts(at))]

    validated = walk()
    monkeypatch.setattr(chart_builders, "VALIDATE_FIGURES", False)
    assert walk() == validated
