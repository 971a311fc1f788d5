"""A student goes from page to page in one session: no page may trip over what another page left in the state."""

from streamlit.testing.v1 import AppTest

from .conftest import PAGES, ROOT, next_button, no_error, switch_section


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
