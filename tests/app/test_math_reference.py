"""The Math reference page: every section renders with the current numbers, and follows the sidebar."""

import pytest

from .conftest import ROOT, no_error

from streamlit.testing.v1 import AppTest


def reference_page(**query):
    at = AppTest.from_file(str(ROOT / "app_pages" / "5_math_reference.py"), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def test_every_section_renders():
    at = reference_page()
    no_error(at)
    headings = [m.value for m in at.markdown if m.value.startswith("### ")]
    assert headings[:2] == ["### 1. Rewards to advantages", "### 2. Probability ratios and 3. clipping"]
    assert any("Glossary" in h for h in headings) and len(at.dataframe) >= 6
    lengths = next(d.value for d in at.dataframe if "lengths 1 and 3 example" in d.value.columns)
    assert lengths["lengths 1 and 3 example"].tolist() == pytest.approx([(1 + 0.1) / 2, 1.3 / 4, 1.3 / 4, 1.3 / 6])
    # on-policy the advantages sum to 0, so the toy's loss is 0: shown as 0, not as float noise like -4e-17
    assert lengths["this group's loss"].tolist() == [0.0] * 4


def test_the_spec_it_cites_ships_with_the_repository():
    caption = next(c.value for c in reference_page().caption if "MATH.md" in c.value)
    cited = caption.split("`")[1]
    assert (ROOT / cited).is_file() and "## GRPO" in (ROOT / cited).read_text()


def test_numbers_follow_the_settings():
    before = reference_page().dataframe[0].value
    after = reference_page(seed="3").dataframe[0].value
    assert not before.equals(after)
    no_error(reference_page(beta="nan", mu="4"))
