"""The lesson's slides: each builds from the core, stays short, and says only what its run shows."""

import pytest
import torch

from grpo_viz import formulas, lesson
from grpo_viz.config import TOY_REWARDS, TOY_START_PROBS


def slide(key: str) -> lesson.Slide:
    return next(s for s in lesson.SLIDES if s.key == key)


def control_values(s: lesson.Slide) -> list:
    if s.control is None:
        return [None]
    c = s.control
    return [c.low, c.default, c.high]


@pytest.mark.parametrize("key", [s.key for s in lesson.SLIDES])
def test_every_slide_builds_one_chart_and_a_short_text_at_every_control_value(key):
    s = slide(key)
    for value in control_values(s):
        view = lesson.build(s, value)
        assert view.figure.to_dict()["data"], key
        assert 0 < lesson.word_count(view.text) <= lesson.MAX_WORDS, (key, value, view.text)
        assert r"\boxed" in view.equations[0] or key in ("ppo", "next"), "the objective boxes the slide's term"
        assert "nan" not in view.text.lower().split()


def test_the_story_runs_in_its_order():
    assert [s.key for s in lesson.SLIDES] == ["ppo", "softmax", "advantage", "clip", "kl", "grpo", "lm", "hacking",
                                                "next"]
    assert len({s.title for s in lesson.SLIDES}) == len(lesson.SLIDES)


def test_advantage_is_reward_minus_the_value_of_the_state():
    view = lesson.advantage_slide()
    value = sum(p * r for p, r in zip(TOY_START_PROBS, TOY_REWARDS))
    assert value == pytest.approx(0.4)
    assert "V = 0.40" in view.text and "sat +0.60" in view.text and "barked −0.40" in view.text


def test_softmax_slide_shows_the_policy_at_its_temperature():
    assert "sat 0.30, slept 0.20, barked 0.50" in lesson.softmax_slide(1.0).text
    sharp = torch.softmax(torch.log(torch.tensor(TOY_START_PROBS)) / 0.5, 0).tolist()
    assert f"barked {sharp[2]:.2f}" in lesson.softmax_slide(0.5).text and "sharpens" in lesson.softmax_slide(0.5).text
    assert "flattens" in lesson.softmax_slide(2.0).text


@pytest.mark.parametrize("epsilon", [0.05, 0.2, 0.4, 0.6])
def test_the_clip_sentence_counts_the_clipped_samples_of_the_chart(epsilon):
    trace = lesson.clip_iteration(epsilon)
    last = trace.steps[-1].trace
    w, A = last.ratio[:, 0], last.advantages
    clipped = int((((w > 1 + epsilon) & (A > 0)) | ((w < 1 - epsilon) & (A < 0))).sum())  # by the definition
    text = lesson.clip_slide(epsilon).text
    if clipped:
        assert f"{clipped} of {trace.group.batch_size} samples are clipped" in text
        assert "No sample" not in text
    else:
        assert "No sample is past the band" in text
    assert trace.mu == lesson.CLIP_MU


def test_the_clip_slider_spans_from_every_sample_clipped_to_none():
    counts = [int((lambda t: (t.is_low_clipped | t.is_high_clipped).sum())(lesson.clip_iteration(e).steps[-1].trace))
              for e in (0.05, 0.2, 0.6)]
    assert counts[0] > counts[1] > 0 == counts[2]


def test_the_kl_penalty_holds_ppo_nearer_the_reference():
    text = lesson.kl_slide(0.5).text
    held = lesson.trained_probs("PPO", 0.5, lesson.KL_ITERATIONS)[-1]
    free = lesson.trained_probs("PPO", 0.0, lesson.KL_ITERATIONS)[-1]
    assert held["kl"] < free["kl"]
    assert f"KL = {held['kl']:.3f}" in text and f"KL = {free['kl']:.3f}" in text


def test_a_group_with_no_spread_says_it_teaches_nothing():
    said_equal = said_spread = False
    for draw in range(20):
        view = lesson.grpo_slide(2, draw)
        group_texts = view.figure.to_dict()["data"][0]["x"]
        equal = len({t.split(" ", 1)[1] for t in group_texts}) == 1
        assert ("σ = 0, every advantage is 0" in view.text) == equal
        said_equal |= equal
        said_spread |= not equal
    assert said_equal and said_spread


@pytest.mark.parametrize("draw", [0, 10, 27, 34])  # 27: all wrong; 34: every answer 2 tokens long
def test_the_language_model_slide_states_its_groups_numbers(draw):
    """The sentence's counts, advantages and token lengths are the trace's; every token of an answer carries its A_i."""
    from grpo_viz.stages import lengths

    trace = lesson.lm_iteration(draw)
    view = lesson.lm_slide(draw)
    rewards, adv, n = trace.rewards.tolist(), trace.advantages.tolist(), lengths(trace)
    assert trace.group.batch_size == lesson.LM_GROUP == 8 and trace.settings.loss_type == "grpo"
    assert trace.group.texts and all(len(t) == k for t, k in zip(trace.group.tokens, n))
    assert max(n) <= lesson.LM_NEW_TOKENS
    assert "8 answers to “3+4=”" in view.text
    right = [i for i, r in enumerate(rewards) if r == 1]
    wrong = [i for i, r in enumerate(rewards) if r == 0]
    assert len(right) + len(wrong) == 8
    if not right or not wrong:
        assert f"all score r = {rewards[0]:g}, so σ = 0" in view.text and all(a == 0 for a in adv)
    else:
        assert f"; {len(right)} {'is' if len(right) == 1 else 'are'} right." in view.text
        up, down = {round(adv[i], 6) for i in right}, {round(adv[i], 6) for i in wrong}
        assert len(up) == len(down) == 1 and min(up) > 0 > max(down)
        span = lambda rows: (f"{min(n[i] for i in rows)}" if len({n[i] for i in rows}) == 1
                             else f"{min(n[i] for i in rows)}–{max(n[i] for i in rows)}")
        assert f"{adv[right[0]]:+.2f} on {'the' if len(right) == 1 else 'each'} right one's {span(right)}" in view.text
        assert (f"{adv[wrong[0]]:+.2f}".replace("-", "−") + f" on {'the' if len(wrong) == 1 else 'each'} wrong one's "
                f"{span(wrong)}") in view.text
        assert f"{adv[right[0]]:+.3f}" in view.equations[1] and f"{adv[wrong[0]]:+.3f}" in view.equations[1]
    if min(n) == max(n):
        assert f"all {n[0]} tokens weigh 1/{n[0]} each" in view.text
    else:
        assert f"{max(n)} tokens weigh 1/{max(n)} each, {min(n)} weigh 1/{min(n)}." in view.text
    assert "|o_i| = (" + ",".join(map(str, n)) + ")" in view.equations[2]
    # the chart: one row per answer, its A_i on every one of its tokens
    z = view.figure.to_dict()["data"][0]["z"]
    for i, row in enumerate(z):
        assert [v for v in row if v is not None] == pytest.approx([adv[i]] * n[i])
    # the loss "grpo" weighs a token of answer i by 1/(G |o_i|), as the sentence says
    from grpo_viz.objectives import _aggregate

    step = trace.steps[0].trace
    for i in range(8):
        one_hot = torch.zeros_like(step.per_token_loss)
        one_hot[i, 0] = 1.0
        assert float(_aggregate(one_hot, step.mask, step.loss_type, 0)) == pytest.approx(1 / (8 * n[i]))


def test_the_language_model_slide_at_its_defaults():
    """The lecturer's screen: half the group right, answers of 2 to 6 tokens."""
    text = lesson.build(slide("lm")).text
    assert text.startswith("8 answers to “3+4=”; 4 are right.")
    assert "+0.94 on each right one's 2–4, −0.94 on each wrong one's 2–6" in text
    assert "6 tokens weigh 1/6 each, 2 weigh 1/2" in text


@pytest.mark.parametrize("beta", [0.0, 1.5, 3.0])
def test_the_hacking_slide_states_its_runs_outcome(beta):
    """The verdict is the Training page's (one rule): with GRPO, β = 3 holds the policy and β = 0 does not."""
    from grpo_viz.hacking import verdict

    _, outcomes = lesson.hacking_runs(beta)
    run, free = outcomes[beta], outcomes[0.0]
    text = lesson.hacking_slide(beta).text
    assert f"→ {run.true_end:.2f}" in text and f"π(barked) {run.p_end:.2f}" in text
    assert f"β {verdict(run)}" + (f" (β = 0: true {free.true_end:.2f})" if beta else ".") in text
    assert (run.regime == "held") == (beta == 3.0)
    assert free.regime == "hacked"


def test_formulas_box_only_the_terms_in_focus():
    assert r"\boxed" not in formulas.ppo_objective()
    clip = formulas.ppo_objective({"clip"})
    assert clip.count(r"\boxed") == 1 and r"\boxed{\color{#e4572e}{\mathrm{clip}" in clip
    assert formulas.grpo_objective({"min"}).count(r"\boxed") == 1
