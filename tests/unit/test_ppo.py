"""PPO on the toy and training over many iterations: hand-computed GAE and PPO loss, then whole runs."""

import io
import math

import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from grpo_viz import charts
from grpo_viz.config import Settings, TOY_WORDS
from grpo_viz.export import compare_csv
from grpo_viz.objectives import gae, ppo_loss, ppo_token_rewards
from grpo_viz.policies.base import Group
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.ppo import CompareRun, ToyValue, ppo_iteration
from grpo_viz.stepper import grpo_iteration, make_generator
from grpo_viz.tasks import word_reward
from grpo_viz.training import (DEFAULT_ITERATIONS, Experiment, TrainingRun, iterations_to_reach, proxy_rewards,
                               reward_hacking_specs, run_specs, train)

f64 = dict(dtype=torch.float64)


# ----------------------------------------------------------------- by hand


def test_token_rewards_and_gae_by_hand():
    # one completion of two tokens; pi_theta = (0.5, 0.25), pi_ref = (0.25, 0.5); score 1; beta 0.1, k1
    logp = torch.log(torch.tensor([[0.5, 0.25]], **f64))
    ref_logp = torch.log(torch.tensor([[0.25, 0.5]], **f64))
    mask = torch.ones(1, 2, **f64)
    rew = ppo_token_rewards(torch.tensor([1.0], **f64), logp, ref_logp, mask, beta=0.1, estimator="k1")
    # k1 = log pi - log pi_ref = (+ln 2, -ln 2); rew = -0.1 k1, plus the score on the last token
    assert rew[0].tolist() == pytest.approx([-0.1 * math.log(2), 0.1 * math.log(2) + 1.0])

    # GAE with gamma 1, lambda 0.5 on rewards (0, 1) and values (0.5, 0.8), V = 0 after the last token:
    #   delta_1 = 1 + 0 - 0.8 = 0.2            A_1 = 0.2
    #   delta_0 = 0 + 0.8 - 0.5 = 0.3          A_0 = 0.3 + 1 * 0.5 * 0.2 = 0.4
    #   R = A + V = (0.9, 1.0)
    advantages, returns = gae(torch.tensor([[0.0, 1.0]], **f64), torch.tensor([[0.5, 0.8]], **f64), mask,
                              gamma=1.0, lam=0.5)
    assert advantages[0].tolist() == pytest.approx([0.4, 0.2])
    assert returns[0].tolist() == pytest.approx([0.9, 1.0])


def test_ppo_loss_by_hand():
    # two one-token samples: pi_theta/pi_old = 0.75/0.5 = 1.5 (A = +1) and 0.3/0.5 = 0.6 (A = -1), epsilon 0.2
    logp = torch.log(torch.tensor([[0.75], [0.3]], **f64))
    old_logp = torch.log(torch.tensor([[0.5], [0.5]], **f64))
    advantages = torch.tensor([[1.0], [-1.0]], **f64)
    values = torch.tensor([[0.5], [0.5]], **f64)
    old_values = torch.zeros(2, 1, **f64)
    returns = torch.tensor([[1.0], [-1.0]], **f64)
    mask = torch.ones(2, 1, **f64)
    t = ppo_loss(logp, old_logp, advantages, values, old_values, returns, mask, epsilon=0.2, cliprange_value=0.2,
                 vf_coef=0.1, whiten_advantages=False)
    assert t.ratio[:, 0].tolist() == pytest.approx([1.5, 0.6])
    assert t.clipped_ratio[:, 0].tolist() == pytest.approx([1.2, 0.8])
    # max(-A w, -A w~): max(-1.5, -1.2) = -1.2 and max(0.6, 0.8) = 0.8, both on the clipped branch
    assert t.policy_loss_per_token[:, 0].tolist() == pytest.approx([-1.2, 0.8])
    assert t.is_clipped[:, 0].tolist() == [True, True]
    assert float(t.policy_loss) == pytest.approx(-0.2)
    # V' = 0.5 clipped to V_old ± 0.2 = 0.2: max((0.5-1)^2, (0.2-1)^2) = 0.64; max((0.5+1)^2, (0.2+1)^2) = 2.25
    assert t.value_loss_per_token[:, 0].tolist() == pytest.approx([0.32, 1.125])
    assert float(t.value_loss) == pytest.approx(0.7225)
    assert float(t.loss) == pytest.approx(-0.2 + 0.1 * 0.7225)
    # whitening (+1, -1): mean 0, Bessel variance 2, so A = ±1/sqrt(2)
    w = ppo_loss(logp, old_logp, advantages, values, old_values, returns, mask, whiten_advantages=True)
    assert w.advantages[:, 0].tolist() == pytest.approx([1 / math.sqrt(2), -1 / math.sqrt(2)])


def toy_group(words):
    ids = torch.tensor([[TOY_WORDS.index(w)] for w in words])
    return Group(prompts=["The cat"] * len(words), completion_ids=ids, mask=torch.ones(len(words), 1, **f64),
                 texts=list(words), tokens=[[w] for w in words])


def test_ppo_iteration_by_hand_and_leaves_the_models_alone():
    # pi = (0.3, 0.2, 0.5) = pi_ref, so KL = 0; V = 0; beta = 0.04; one epoch, whitening off, lr 1, value_lr 0.5
    policy, value = ToyPolicy(), ToyValue()
    settings = Settings(group_size=4, ppo_epochs=1, whiten_advantages=False, value_lr=0.5)
    group = toy_group(["sat", "barked", "slept", "barked"])
    trace = ppo_iteration(policy, value, word_reward(TOY_WORDS, settings.rewards), settings, make_generator(0),
                          group=group)
    assert trace.token_rewards[:, 0].tolist() == pytest.approx([1.0, 0.0, 0.5, 0.0])  # KL is 0 at the start
    assert trace.advantages_raw[:, 0].tolist() == pytest.approx([1.0, 0.0, 0.5, 0.0])  # A = rew - V, V = 0
    assert trace.returns[:, 0].tolist() == pytest.approx([1.0, 0.0, 0.5, 0.0])
    # dL/dlogp_i = -A_i / 4 (mean over 4 tokens, w = 1); dL/dz = sum_i dL/dlogp_i (onehot_i - pi)
    p = torch.tensor([0.3, 0.2, 0.5], **f64)
    adv = [1.0, 0.0, 0.5, 0.0]
    expected = sum(-a / 4 * (torch.nn.functional.one_hot(torch.tensor(TOY_WORDS.index(w)), 3).to(torch.float64) - p)
                   for a, w in zip(adv, group.texts))
    assert trace.epochs[0].grad_params[0].tolist() == pytest.approx(expected.tolist())
    # the value loss 0.5 mean((V - R)^2) has gradient mean(V - R) = -0.375, times vf_coef 0.1; V = 0 + 0.5 * 0.0375
    assert trace.value_after == pytest.approx(0.5 * 0.1 * 0.375)
    assert float(value) == 0.0 and torch.allclose(policy.probs(), p)


def test_same_group_under_both_algorithms_and_whitening_matches_grpo_at_beta_zero():
    run = CompareRun(ToyPolicy())
    settings = Settings(beta=0.0)
    grpo, ppo = run.traces(settings, word_reward(TOY_WORDS, settings.rewards))
    assert grpo.group is ppo.group
    # the group is exactly the one the step-through page draws for (seed, iteration 0, draw 0)
    alone = grpo_iteration(ToyPolicy(), word_reward(TOY_WORDS, settings.rewards), settings, make_generator(0, 0, 0))
    assert alone.group.texts == grpo.group.texts
    # with beta = 0, whitening over the batch is GRPO's group normalization (up to the 1e-4 / 1e-8 epsilons)
    assert ppo.advantages[:, 0].tolist() == pytest.approx(grpo.advantages.tolist(), abs=1e-3)
    # the page's per-sample table and its CSV describe this very group
    assert compare_csv(CompareRun(ToyPolicy())) == ""  # nothing shown yet
    table = pd.read_csv(io.StringIO(compare_csv(run)))
    assert table["word"].tolist() == list(grpo.group.texts) and len(table.columns) == 15
    assert table["GRPO A"].tolist() == pytest.approx(grpo.advantages.tolist())
    assert table["PPO A (used)"].tolist() == pytest.approx(ppo.advantages[:, 0].tolist())
    assert "-0.0," not in compare_csv(run)  # on-policy k1 is -0.0 in float arithmetic
    run.advance("PPO")
    assert torch.allclose(run.policy.logits.detach(), ppo.state_after[0]) and float(run.value) == ppo.value_after
    run.reset()
    assert run.iteration == 0 and float(run.value) == 0.0


# ----------------------------------------------------------------- many iterations


@pytest.mark.parametrize("algorithm", ["GRPO", "PPO"])
def test_default_settings_learn_the_best_word(algorithm):
    history = train(algorithm, Settings(seed=0), DEFAULT_ITERATIONS)
    reached = iterations_to_reach(history, "sat", 0.9)
    assert reached is not None and reached <= DEFAULT_ITERATIONS
    assert history["p_sat"].iloc[-1] >= 0.9
    assert len(history) == DEFAULT_ITERATIONS + 1  # iteration 0 is the start


@pytest.mark.parametrize("algorithm", ["GRPO", "PPO"])
def test_large_beta_keeps_the_policy_closer_to_the_reference(algorithm):
    free = train(algorithm, Settings(beta=0.0), DEFAULT_ITERATIONS)
    held = train(algorithm, Settings(beta=1.0), DEFAULT_ITERATIONS)
    assert held["kl"].iloc[-1] < free["kl"].iloc[-1]


@pytest.mark.parametrize("algorithm", ["GRPO", "PPO"])
def test_reward_hacking_at_beta_zero(algorithm):
    experiment = Experiment(reward_hacking_specs(Settings(), algorithm, 1.0))
    experiment.step(DEFAULT_ITERATIONS)
    free, held = (run.frame() for run in experiment.runs)
    assert free["expected_train_reward"].iloc[-1] > free["expected_train_reward"].iloc[0]  # proxy up
    assert free["expected_reward"].iloc[-1] < free["expected_reward"].iloc[0]  # true reward down
    assert free["p_barked"].iloc[-1] > 0.95  # collapsed onto the overrated word
    assert held["kl"].iloc[-1] < free["kl"].iloc[-1] and held["expected_reward"].iloc[-1] > free["expected_reward"].iloc[-1]
    assert proxy_rewards((1.0, 0.5, 0.0)) == (1.0, 0.5, 1.5)


def test_history_is_capped_and_compare_makes_two_runs_per_algorithm():
    run = TrainingRun("GRPO", Settings(), max_iterations=3)
    run.run(10)
    assert run.iteration == 3 and run.done and len(run.history) == 4
    with pytest.raises(ValueError, match="limit"):
        run.step()
    specs = run_specs(Settings(), ["GRPO", "PPO"], ("beta", 0.0, 0.04))
    assert [s.label for s in specs] == ["GRPO · β = 0", "GRPO · β = 0.04", "PPO · β = 0", "PPO · β = 0.04"]
    assert [s.settings.beta for s in specs] == [0.0, 0.04, 0.0, 0.04]
    with pytest.raises(ValueError, match="algorithm"):
        run_specs(Settings(), [])
    with pytest.raises(ValueError, match="group"):
        TrainingRun("PPO", Settings(group_size=1))


def test_training_figures():
    experiment = Experiment(run_specs(Settings(), ["GRPO", "PPO"]))
    experiment.step(3)
    runs = experiment.columns()
    ref = [0.3, 0.2, 0.5]
    fig = charts.training_probability_chart(TOY_WORDS, runs, ref)
    assert isinstance(fig, go.Figure) and len(fig.data) == 2 * 3  # runs x words
    # pi_ref: one dashed line per run and word across the whole panel, there from iteration 0 on
    assert [(sh.xref, sh.x0, sh.x1, sh.y0) for sh in fig.layout.shapes[:3]] == [("x domain", 0, 1, r) for r in ref]
    assert {d.mode for d in fig.data} == {"lines"}
    at_start = Experiment(run_specs(Settings(), ["GRPO"])).columns()
    assert {d.mode for d in charts.training_probability_chart(TOY_WORDS, at_start, ref).data} == {"lines+markers"}
    assert charts.training_metric_chart(at_start, "kl", "KL", "KL").data[0].mode == "lines+markers"  # a dot, not nothing
    fig = charts.simplex_chart(TOY_WORDS, runs, ref)
    assert fig.data[0].a == (0.3,) and len(fig.data[1].a) == 4  # start, then GRPO's path of 4 points
    fig = charts.training_metric_chart(runs, "value_loss", "value loss", "loss")
    assert [d.name for d in fig.data] == ["PPO"] and fig.data[0].y[0] is None  # GRPO has no critic; no NaN
    assert len(charts.clip_fraction_chart(runs).data) == 4
    assert [d.name for d in charts.value_chart(runs).data][0] == "PPO"
    hack = Experiment(reward_hacking_specs(Settings(), "GRPO", 1.0))
    hack.step(2)
    assert len(charts.reward_hacking_chart(hack.columns()).data) == 4
    fig = charts.ppo_reward_chart(["sat", "barked"], [1.0, 0.0], [-0.01, 0.02], value=0.3)
    assert list(fig.data[2].y) == pytest.approx([0.99, 0.02])
    fig = charts.ppo_advantage_chart(["sat", "barked"], [0.7, -0.3], [0.7071, -0.7071], True)
    assert len(fig.data) == 2
    fig = charts.ppo_kl_chart(["sat", "barked"], [0.1, -0.2], 0.5)
    assert list(fig.data[1].y) == pytest.approx([-0.05, 0.1])


def test_the_value_clip_is_centred_on_the_frozen_v_old():
    """V_old stays where the batch was sampled through every epoch (a copy, not a view of V), as old_logp does.

    The critic's steps by hand (NumPy): the value loss 0.5 * mean(max((V - R)^2, (clip(V, V_old +- c_v) - R)^2))
    has gradient 0 in V wherever the clipped branch wins (clip flat, V outside V_old +- c_v)."""
    import numpy as np

    settings = Settings(value_lr=8.0)
    trace = ppo_iteration(ToyPolicy(), ToyValue(), word_reward(TOY_WORDS, settings.rewards), settings,
                          make_generator(0, 0, 0))
    returns = trace.returns[:, 0].numpy()
    v_old, c_v = 0.0, settings.cliprange_value
    v, seen, clip_fractions = v_old, [], []
    for _ in range(settings.ppo_epochs):
        seen.append(v)
        v_clipped = min(max(v, v_old - c_v), v_old + c_v)
        clipped_wins = (v_clipped - returns) ** 2 > (v - returns) ** 2
        clip_fractions.append(clipped_wins.mean())
        grad = np.where(clipped_wins, (v_clipped - returns) * (v_clipped == v), v - returns).mean()
        v -= settings.value_lr * settings.vf_coef * grad
    assert [float(e.values[0, 0]) for e in trace.epochs] == pytest.approx(seen, abs=1e-12)
    assert trace.value_after == pytest.approx(v, abs=1e-12) == pytest.approx(0.1375, abs=1e-12)
    assert [float(e.trace.value_clip_fraction) for e in trace.epochs] == pytest.approx(clip_fractions)
    assert clip_fractions == [0.0, 0.375, 0.0, 0.375]
    assert float(trace.values.abs().max()) == 0.0  # the trace's V_old is the critic before the batch
