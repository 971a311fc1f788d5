"""Predict, then reveal: each question's answer is read off the trace, and scoring names it."""

import pytest

from grpo_viz.config import Settings, TOY_WORDS
from grpo_viz.explain import toy_numbers
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.predict import NONE, prediction
from grpo_viz.stepper import grpo_iteration, make_generator
from grpo_viz.tasks import word_reward


def trace_and_toy(mu: int):
    policy = ToyPolicy()
    settings = Settings(mu=mu)
    trace = grpo_iteration(policy, word_reward(TOY_WORDS, settings.rewards), settings, make_generator(0, 0, 0))
    return trace, toy_numbers(trace, policy)


def test_advantages_asks_which_words_are_pushed_up():
    trace, _ = trace_and_toy(1)
    p = prediction("Advantages", trace, 0, TOY_WORDS)
    up = {w for w, a in zip(trace.group.texts, trace.advantages.tolist()) if a > 0}
    assert p.answer == up and p.multiple
    assert p.score(sorted(up)) == (True, f"Right: {', '.join(w for w in p.options if w in up)}.")
    right, sentence = p.score(["barked"])
    assert not right and sentence.startswith("Not quite: the answer is")
    assert p.score(None) == (False, f"The answer: {', '.join(w for w in p.options if w in up)}.")


@pytest.mark.parametrize("mu, step", [(1, 0), (2, 0), (2, 1)])
def test_clip_asks_whose_samples_are_clipped_at_the_step_shown(mu, step):
    trace, _ = trace_and_toy(mu)
    p = prediction("Clip", trace, step, TOY_WORDS)
    t = trace.steps[step].trace
    clipped = {w for w, c in zip(trace.group.texts, (t.is_low_clipped | t.is_high_clipped)[:, 0].tolist()) if c}
    assert p.answer == (clipped or {NONE})
    if step == 0:
        assert p.answer == {NONE}  # every ratio is 1 on the first inner step
    assert f"inner step {step + 1}" in p.question


def test_update_asks_which_word_gains_most():
    trace, toy = trace_and_toy(3)
    p = prediction("Update", trace, 2, TOY_WORDS, toy.probs_old, toy.probs_after)
    gains = (toy.probs_after - toy.probs_old).tolist()
    assert p.answer == {TOY_WORDS[gains.index(max(gains))]} and not p.multiple
    assert p.score(next(iter(p.answer)))[0]
    assert prediction("Score", trace, 0, TOY_WORDS) is None
