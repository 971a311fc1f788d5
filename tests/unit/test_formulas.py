"""The equations are written once, in grpo_viz/formulas.py: the Math reference page and the stage records use them
and spell none of them out again."""

import ast
from pathlib import Path

import pytest

from grpo_viz import formulas
from grpo_viz.objectives import KL_ESTIMATORS, LOSS_TYPES

ROOT = Path(__file__).resolve().parents[2]
USERS = [ROOT / "app_pages" / "5_math_reference.py", ROOT / "grpo_viz" / "stages.py"]


def equations() -> list[str]:
    """Every equation formulas.py holds: its string constants, its dicts' values, and its functions' outputs."""
    out = [v for k, v in vars(formulas).items() if k.isupper() and isinstance(v, str) and k != "HIGHLIGHT"]
    out += [v for k, v in vars(formulas).items() if k.isupper() and isinstance(v, dict)
            and not k.endswith("_PIECES") for v in v.values()]
    out += [formulas.softmax(), formulas.sample("G"), formulas.sample("B"), formulas.policy_term(),
            formulas.policy_term(annotated=True)]
    out += [formulas.kl_definition(e, of) for e in KL_ESTIMATORS for of in ("", "(o_{i,t})")]
    out += [formulas.loss_aggregation(t) for t in LOSS_TYPES]
    return out


def string_literals(path: Path) -> list[str]:
    """The module's string literals (f-strings' literal parts included), docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


@pytest.mark.parametrize("path", USERS, ids=lambda p: p.name)
def test_no_equation_is_written_twice(path):
    assert "formulas." in path.read_text()
    source = "\n".join(string_literals(path))
    for tex in equations():
        assert tex not in source, f"{path.name} spells out formulas' {tex!r}"
    # hallmarks of the symbolic equations (a line with this group's numbers has none of them)
    for hallmark in (r"\sigma_g + 10^{-4}", r"e^{\log\pi_\theta", r"\underbrace{w_{i,t}", r"-\min(w", r"k_3 = e^{d}",
                     r"\frac{\pi_{ref}", r"\tfrac{\pi_{ref}", r"\gamma\lambda A_{t+1}", r"\max\big((V",
                     r"\mathrm{mean}_t \max", r"\theta \leftarrow", r"\mathrm{rew}_{i,t} =", r"\sum_{t=1}^{|o_i|}",
                     r"\sum_t m L", r"\sum_v e^{z_v", r"\mathbb{1}[o_i = k]", r"\approx \mathbb{E}[R"):
        assert hallmark not in source, f"{path.name} writes {hallmark!r} itself"


def test_the_constants_the_lesson_uses_are_unchanged():
    assert formulas.SOFTMAX == r"\pi_\theta(w \mid \text{The cat}) = \frac{e^{z_w / T}}{\sum_{v} e^{z_v / T}}"
    assert formulas.K3 == (r"\mathbb{D}_{KL}[\pi_\theta \| \pi_{ref}] \approx "
                           r"\frac{\pi_{ref}}{\pi_\theta} - \log\frac{\pi_{ref}}{\pi_\theta} - 1")


def test_every_equation_names_its_section_of_math_md():
    for name in ("softmax", "sample", "policy_term", "kl_estimator", "kl_definition", "loss_aggregation"):
        assert "MATH.md" in getattr(formulas, name).__doc__, name
    source = (ROOT / "grpo_viz" / "formulas.py").read_text()
    after = source[source.index("the equations of docs/MATH.md"):]
    for line_no, line in enumerate(after.splitlines()):
        if line and line[0].isupper() and " = " in line and not line.startswith(("SOFTMAX =", "K3 =")):
            rest = "\n".join(after.splitlines()[max(0, line_no - 3):line_no + 3])
            assert "MATH.md" in rest or "the toy" in rest, line
