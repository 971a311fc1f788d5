"""Every conditional sentence of the stepping pages appears exactly in the states it describes.

The matrix is (iteration 1, 2) x (mu 1, 3) x (beta 0, 0.04) on the toy at its default seed, every stage, every
inner step; what each sentence claims is checked against the trace itself (ratios, clip flags, KL, loss, gradients).
The last test walks the Step through page with AppTest.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

import pytest
import torch

from grpo_viz import explain, lm_view
from grpo_viz.config import TOY_WORDS, Settings
from grpo_viz.explain_ppo import PPO_TOUR
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.stepper import STAGES, StepRun
from grpo_viz.tasks import TASKS, word_reward
from grpo_viz.ui import QUERY_SPECS

MATRIX = list(itertools.product((1, 2), (1, 3), (0.0, 0.04)))


def run_at(iteration: int, mu: int, beta: float):
    settings = replace(Settings(), mu=mu, beta=beta)
    reward_fn = word_reward(TOY_WORDS, settings.rewards)
    run = StepRun(ToyPolicy())
    for _ in range(iteration - 1):
        run.trace(settings, reward_fn)
        run.advance()
    trace = run.trace(settings, reward_fn)
    return trace, explain.toy_numbers(trace, run.policy)


@pytest.fixture(scope="module")
def states():
    return {key: run_at(*key) for key in MATRIX}


def text(stage: str, trace, k: int, toy) -> str:
    return explain.stage_text(STAGES.index(stage), trace, k, toy)


@pytest.mark.parametrize("key", MATRIX, ids=lambda k: f"it{k[0]}-mu{k[1]}-beta{k[2]:g}")
def test_each_conditional_sentence_matches_its_state(states, key):
    iteration, mu, beta = key
    trace, toy = states[key]
    assert trace.mu == mu
    for k in range(mu):
        step = trace.steps[k]
        t = step.trace
        ratios_moved = float((t.ratio - 1).abs().max()) > 0
        n_clipped = int((t.is_low_clipped | t.is_high_clipped).sum())
        at_ref = torch.equal(step.logp, trace.ref_logp)

        ratios = text("Ratios", trace, k, toy)
        assert ("every ratio is exactly 1" in ratios) == (not ratios_moved) == (k == 0)
        assert ("Set **μ ≥ 2**" in ratios) == (mu == 1)
        assert ("inner-step slider" in ratios) == (mu > 1 and k == 0)
        assert ("have moved away from 1" in ratios) == ratios_moved

        clip = text("Clip", trace, k, toy)
        assert ("No sample is outside the band" in clip) == (n_clipped == 0)
        assert ("carries **no gradient**" in clip) == (n_clipped > 0)
        assert ("with μ = 1 every ratio is 1" in clip) == (mu == 1)
        assert ("The policy has moved" in clip) == (n_clipped == 0 and k > 0)

        kl = text("KL", trace, k, toy)
        assert ("β = 0, so there is no KL term" in kl) == (beta == 0)
        assert ("π_θ is still π_ref here, so every KL term is 0" in kl) == (beta > 0 and at_ref)
        if beta > 0 and at_ref:
            assert float(t.kl.abs().max()) == 0
        assert ("has moved away from π_ref in earlier iterations" in kl) == (beta > 0 and k == 0 and iteration > 1)
        assert ("on this group π_θ has moved away from π_ref" in kl) == (beta > 0 and k > 0)
        assert at_ref == (iteration == 1 and k == 0)

        loss = text("Loss & gradient", trace, k, toy)
        reads_zero = f"{float(t.loss):.6f}" in ("0.000000", "-0.000000")
        pushed = float(step.grad_logp.abs().max()) > 0
        assert ("L is 0 but the gradient is not" in loss) == (reads_zero and pushed)
        # it reads 0 exactly when on-policy with no KL to add: the advantages cancel within the group
        assert reads_zero == (k == 0 and (beta == 0 or iteration == 1))
        if reads_zero:
            assert abs(float(trace.advantages.sum())) < 1e-9

        for stage in STAGES:
            fills = explain.empty_until_more_updates(STAGES.index(stage), trace, k)
            assert fills == (mu == 1 and (stage in ("Ratios", "Clip") or (stage == "KL" and at_ref))), stage

    advantages = text("Advantages", trace, 0, toy)
    assert ("Every reward in the group is equal" in advantages) == trace.all_rewards_equal


@pytest.mark.parametrize("key", MATRIX, ids=lambda k: f"it{k[0]}-mu{k[1]}-beta{k[2]:g}")
def test_the_update_card_says_which_inner_step_and_why_a_good_word_went_down(states, key):
    iteration, mu, beta = key
    trace, toy = states[key]
    update = STAGES.index("Update")
    last = mu - 1  # the pages show the last inner step at Update
    words = text("Update", trace, last, toy)
    latex = " ".join(explain.stage_latex(update, trace, last, toy))
    assert (rf"\text{{inner step {mu} of }}\mu = {mu}" in latex) == (mu > 1)
    assert (r"\text{over all" in latex) == (mu > 1)
    assert (f"The logits' lines show inner step {mu} of {mu} (the last)" in words) == (mu > 1)

    # which words with A > 0 had their logit lowered, at which steps, and were their samples all clipped there
    expected = {}
    for j, word in enumerate(TOY_WORDS):
        rows = [i for i, w in enumerate(trace.group.texts) if w == word]
        if rows and float(trace.advantages[rows[0]]) > 0:
            down = [k for k, g in enumerate(toy.grad_logits) if float(g[j]) > 0]
            if down:
                expected[word] = all(bool(trace.steps[k].trace.is_high_clipped[rows].all()) for k in down)
    for word in TOY_WORDS:
        said = f"**{word}** (A > 0) is pushed down" in words
        assert said == (mu > 1 and word in expected), word
    for word, all_clipped in expected.items():
        if mu > 1:
            assert ("so it carries no gradient" in words or "so they carry no gradient" in words) == all_clipped
            assert ("the KL pull toward π_ref" in words) == (beta > 0)


def test_sat_pushed_down_at_steps_2_and_3_is_explained_by_its_clipped_samples(states):
    trace, toy = states[(1, 3, 0.04)]
    words = text("Update", trace, 2, toy)
    assert ("At inner steps 2 and 3 **sat** (A > 0) is pushed down: both its samples are clipped (w > 1 + ε_high), "
            "so they carry no gradient") in words


def test_the_group_mean_is_r_bar_and_mu_is_only_the_number_of_updates(states):
    trace, toy = states[(1, 3, 0.04)]
    lines = " ".join(explain.stage_latex(STAGES.index("Advantages"), trace, 0, toy))
    assert r"\bar r = \frac{2.5000}{8} = 0.3125" in lines and r"\mu" not in lines
    assert "group mean r̄" in explain.sample_columns(trace, 0, STAGES.index("Advantages"))
    assert not any("μ" in c for s in explain.STAGE_COLUMNS.values() for c in s)
    assert "r̄, σ_g" in explain.SYMBOLS and "μ (mu)" in explain.SYMBOLS


def test_one_click_fills_ratios_clip_and_kl_at_the_default_state():
    """The button's target, μ = SHOW_MU at the default settings' iteration 1, at the inner step the page shows."""
    default, _ = run_at(1, 1, Settings().beta)
    for stage in ("Ratios", "Clip", "KL"):
        assert explain.empty_until_more_updates(STAGES.index(stage), default, 0)
    trace, toy = run_at(1, explain.SHOW_MU, Settings().beta)
    t = trace.steps[-1].trace
    assert float((t.ratio - 1).abs().max()) > 0.4
    assert int((t.is_low_clipped | t.is_high_clipped).sum()) == 7
    assert float(t.kl.max()) > 0.09
    for stage in ("Ratios", "Clip", "KL"):
        assert not explain.empty_until_more_updates(STAGES.index(stage), trace, trace.mu - 1)
    assert f"μ = {explain.SHOW_MU}" in explain.SHOW_MU_LABEL


# what each "try this" asks a control to be set to: (pattern in the text, the URL spec of the control)
ASKED_VALUES = (
    (r"temperature T to ([\d.]+)", "temperature"),
    (r"μ to (\d+)", "mu"),
    (r"[εβ] (?:low and ε high )?to ([\d.]+)", "epsilon_low"),
    (r"raise β to ([\d.]+)", "beta"),
    (r"learning rate η \([\d.]+ → ([\d.]+)\)", "lr"),
    (r"G to (\d+)", "group_size"),
    (r"reward of “\w+” to ([\d.]+)", "reward_slept"),
)


def test_every_try_this_asks_for_values_the_controls_can_take():
    tries = [t[0] for t in explain.TOUR.values()] + [t[0] for t in PPO_TOUR.values()] + [explain.TRAINING_TOUR[0]]
    tries += [lm_view.tour(name, task)[0] for name in STAGES for task in TASKS.values()]
    found = 0
    for sentence in tries:
        assert "learning rate to 0" not in sentence and "η to 0" not in sentence
        for pattern, spec in ASKED_VALUES:
            for value in re.findall(pattern, sentence):
                _, low, high = QUERY_SPECS[spec]
                assert low <= float(value) <= high, (sentence, spec, value)
                found += 1
    assert found >= 8


def test_the_language_model_view_reveals_stage_by_stage(states):
    trace, _ = states[(1, 3, 0.04)]
    seen = []
    for stage, name in enumerate(STAGES):
        columns = list(lm_view.completion_table(trace, 0, None, stage).columns)
        labels = lm_view.row_labels(trace, stage)
        assert any("r=" in label for label in labels) == (stage >= STAGES.index("Score")), name
        assert ("reward r" in columns) == (stage >= STAGES.index("Score"))
        assert ("advantage A" in columns) == (stage >= STAGES.index("Advantages"))
        assert ("mean ratio w" in columns) == (stage >= STAGES.index("Ratios"))
        assert ("clipped tokens" in columns) == (stage >= STAGES.index("Clip"))
        assert ("mean k3" in columns) == (stage >= STAGES.index("KL"))
        assert ("mean loss L" in columns) == (stage >= STAGES.index("Loss & gradient"))
        assert set(seen) <= set(columns)
        seen = columns
    assert list(lm_view.completion_table(trace, 0).columns) == seen  # no stage: every column


def test_the_language_model_try_this_knows_its_task():
    for name in STAGES:
        assert lm_view.tour(name, TASKS["toy"]) == explain.TOUR[name]
    score = lm_view.tour("Score", TASKS["sum"])[0]
    assert "the language model's do not" in score and TASKS["sum"].description in score
    assert "word rewards" in lm_view.tour("Advantages", TASKS["sum"])[0]
    assert lm_view.tour("Score", TASKS["sum"])[1:] == explain.TOUR["Score"][1:]


# ----------------------------------------------------------------- one pass over the Step through page


def test_step_through_page_tells_the_truth_and_fills_the_empty_stages():
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import ROOT, next_button, no_error

    at = AppTest.from_file(str(ROOT / "app_pages" / "1_step_through.py"), default_timeout=90).run()
    page_text = lambda: " ".join(str(m.value) for m in at.markdown)  # noqa: E731
    latex_text = lambda: " ".join(str(m.value) for m in at.latex)  # noqa: E731
    for k, name in enumerate(STAGES):
        no_error(at)
        shows_button = any(b.key == f"show_mu_{k}" for b in at.button)
        assert shows_button == (name in ("Ratios", "Clip", "KL")), name
        assert ("L is 0 but the gradient is not" in page_text()) == (name == "Loss & gradient")
        if name == "Advantages":
            assert r"\bar r" in latex_text() and r"\mu_g" not in latex_text()
        if k < len(STAGES) - 1:
            next_button(at, "stage").click().run()

    # back to Clip, then the one click
    at.session_state["stage"] = at.session_state["stage_picker"] = STAGES.index("Clip")
    at.run()
    at.button(key=f"show_mu_{STAGES.index('Clip')}").click().run()
    no_error(at)
    assert at.slider(key="mu").value == explain.SHOW_MU and at.query_params["mu"] == str(explain.SHOW_MU)
    assert "2 samples with A > 0 have w > 1 + ε_high and 5 with A < 0 have w < 1 − ε_low" in page_text()
    assert not any(b.key.startswith("show_mu") for b in at.button)

    at.session_state["stage"] = at.session_state["stage_picker"] = STAGES.index("Update")
    at.run()
    no_error(at)
    assert r"\text{inner step 2 of }\mu = 2\text{ (the last):}" in latex_text()
    assert "**sat** (A > 0) is pushed down: both its samples are clipped" in page_text()


def test_ppo_vs_grpo_fills_its_clip_and_kl_stages_in_one_click():
    from streamlit.testing.v1 import AppTest

    from grpo_viz.explain_ppo import COMPARE_STAGES
    from tests.app.conftest import ROOT, no_error

    at = AppTest.from_file(str(ROOT / "app_pages" / "2_ppo_vs_grpo.py"), default_timeout=90)
    at.query_params["stage"] = str(COMPARE_STAGES.index("Ratios & clip") + 1)
    at.run()
    no_error(at)
    info = lambda: " ".join(str(i.value) for i in at.info)  # noqa: E731
    assert "GRPO takes μ = 1 step on the group (0 samples clipped at the last)" in info()
    assert "none of its samples can be clipped" in info()
    at.button(key="show_mu").click().run()
    no_error(at)
    assert at.slider(key="mu").value == explain.SHOW_MU
    assert "GRPO takes μ = 2 steps on the group (7 samples clipped at the last)" in info()
    assert "none of its samples can be clipped" not in info()

    at.session_state["cmp_stage"] = at.session_state["cmp_stage_picker"] = COMPARE_STAGES.index("Where the KL enters")
    at.run()
    assert "every KL is 0" in info()
    at.button(key="show_next_iteration").click().run()
    no_error(at)
    assert "every KL is 0" not in info() and not any(b.key == "show_next_iteration" for b in at.button)
    assert any("Iteration 2" in str(c.value) for c in at.caption)
