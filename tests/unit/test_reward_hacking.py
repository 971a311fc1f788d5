"""The reward-hacking sweep: beta against a proxy, for GRPO and PPO, and the sentences read off its runs."""

import math
import re
from dataclasses import replace

import pandas as pd
import plotly.graph_objects as go
import pytest

from grpo_viz import hacking
from grpo_viz.config import TOY_REWARDS, Settings
from grpo_viz.training import (HACKED_KEEPS, HACKING_BETAS, HELD_KEEPS, TrainingRun, hacking_outcome,
                               hacking_outcomes, hacking_run, hacking_sweep, proxy_rewards, proxy_spread)

PROXY = proxy_rewards(TOY_REWARDS)  # (1, 0.5, 1.5): barked overrated by 1.5
REF = (0.3, 0.2, 0.5)


@pytest.fixture(scope="module")
def default_sweep() -> pd.DataFrame:
    """The Training page's default sweep: default settings, 50 iterations, HACKING_BETAS."""
    return hacking_sweep(Settings(), HACKING_BETAS, 50, PROXY)


@pytest.fixture(scope="module")
def default_outcomes(default_sweep):
    return hacking_outcomes(default_sweep, TOY_REWARDS, PROXY)


def test_proxy_spread_by_hand():
    # under pi_ref: E[r] = 0.3 + 0.1 + 0.75 = 1.15; E[r^2] = 0.3 + 0.05 + 1.125 = 1.475; var = 1.475 - 1.3225
    assert proxy_spread(REF, PROXY) == pytest.approx(math.sqrt(0.1525), rel=1e-12)
    assert proxy_spread((0, 0, 1), PROXY) == 0.0  # a policy on one word: every group agrees


def test_hacking_run_is_the_training_run_with_sqrt_kl_and_spread():
    settings = Settings(seed=3)
    frame = hacking_run("GRPO", replace(settings, beta=0.7), 0.7, PROXY, 5)
    run = TrainingRun("GRPO", replace(settings, beta=0.7), train_rewards=PROXY)
    run.run(5)
    assert list(frame["iteration"]) == list(range(6))
    assert list(frame["expected_reward"]) == [r["expected_reward"] for r in run.history]
    assert list(frame["kl"]) == [r["kl"] for r in run.history]
    assert (frame["beta"] == 0.7).all() and set(frame["run"]) == {"GRPO · β = 0.7"}
    assert frame["sqrt_kl"].tolist() == pytest.approx([math.sqrt(max(k, 0)) for k in frame["kl"]], rel=1e-12)
    for _, row in frame.iterrows():
        probs = (row["p_sat"], row["p_slept"], row["p_barked"])
        assert row["proxy_spread"] == pytest.approx(proxy_spread(probs, PROXY), rel=1e-9)
    assert frame["proxy_spread"].iloc[0] == pytest.approx(math.sqrt(0.1525), rel=1e-9)  # iteration 0 is pi_ref


def test_the_sweep_trains_every_beta_once_with_beta_in_its_settings():
    seen = []

    def runner(algorithm, settings, beta, train_rewards, iterations):
        seen.append((algorithm, settings.beta, beta, train_rewards, iterations))
        return hacking_run(algorithm, settings, beta, train_rewards, iterations)

    sweep = hacking_sweep(Settings(beta=0.04), {"PPO": [0.5, 0.1, 0.5], "GRPO": [2]}, 2, PROXY, runner=runner)
    assert seen == [("GRPO", 2.0, 2.0, PROXY, 2), ("PPO", 0.1, 0.1, PROXY, 2), ("PPO", 0.5, 0.5, PROXY, 2)]
    assert len(sweep) == 3 * 3
    assert hacking_sweep(Settings(), {"GRPO": [1.0]}, 1)["expected_train_reward"].iloc[0] == pytest.approx(1.15)
    with pytest.raises(ValueError, match="at least one β"):
        hacking_sweep(Settings(), {"GRPO": [], "PPO": []}, 5, PROXY)


def _run(true_end: float, true_start: float = 0.4, algorithm: str = "GRPO", beta: float = 1.0) -> pd.DataFrame:
    """A two-row history that starts at pi_ref's numbers and ends with true reward ``true_end``."""
    row = dict(algorithm=algorithm, beta=beta, expected_train_reward=1.15, p_barked=0.5, kl=0.0, proxy_spread=0.39)
    return pd.DataFrame([{**row, "iteration": 0, "expected_reward": true_start},
                         {**row, "iteration": 50, "expected_reward": true_end, "p_barked": 0.7, "kl": 0.1,
                          "proxy_spread": 0.3}])


@pytest.mark.parametrize("true_end, regime", [
    (0.4 * HELD_KEEPS, "held"), (0.45, "held"), (0.4 * HELD_KEEPS - 1e-6, "partly held"),
    (0.4 * HACKED_KEEPS, "partly held"), (0.4 * HACKED_KEEPS - 1e-6, "hacked"), (0.0, "hacked"),
])
def test_regimes_by_the_share_of_the_true_reward_kept(true_end, regime):
    outcome = hacking_outcome(_run(true_end), TOY_REWARDS, PROXY)
    assert outcome.floor == 0.0  # barked alone: its true reward
    assert outcome.kept == pytest.approx(true_end / 0.4) and outcome.regime == regime


def test_floor_and_nothing_to_hack():
    # a bonus of 1 ties barked with sat in the proxy: the worst tied word sets the floor
    assert hacking_outcome(_run(0.2), TOY_REWARDS, proxy_rewards(TOY_REWARDS, bonus=1.0)).floor == 0.0
    # no bonus: the proxy is the true reward, its favourite (sat, 1.0) is better than pi_ref's 0.4
    outcome = hacking_outcome(_run(0.6), TOY_REWARDS, TOY_REWARDS)
    assert outcome.kept is None and outcome.regime == "nothing to hack"
    assert "cannot lower the true reward" in hacking.regime_rule([outcome], "barked")
    assert "holds it" not in hacking.outcome_sentence(outcome, "barked")


def test_default_betas_show_all_three_regimes(default_outcomes):
    """The page's defaults, measured: per algorithm the smallest beta is hacked, the middle one partly holds and
    the largest holds; PPO holds at a beta where GRPO does not (GRPO's KL is weighed against unit advantages)."""
    regimes = {(o.algorithm, o.beta): o.regime for o in default_outcomes}
    for algorithm, betas in HACKING_BETAS.items():
        assert [regimes[(algorithm, b)] for b in betas] == ["hacked", "partly held", "held"], regimes
    shared = set(HACKING_BETAS["GRPO"]) & set(HACKING_BETAS["PPO"])
    assert any(regimes[("PPO", b)] == "held" and regimes[("GRPO", b)] != "held" for b in shared)


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+|\d+", text.replace("**", ""))]


def test_each_sentence_carries_its_runs_numbers(default_sweep, default_outcomes):
    for o in default_outcomes:
        run = default_sweep[(default_sweep["algorithm"] == o.algorithm) & (default_sweep["beta"] == o.beta)]
        first, last = run.iloc[0], run.iloc[-1]
        text = hacking.outcome_sentence(o, "barked")
        assert text.startswith(f"With **β = {o.beta:g}**, {o.algorithm}'s true E[r] ends at "
                               f"**{last['expected_reward']:.3f}** (start {first['expected_reward']:.3f}, keeps "
                               f"{last['expected_reward'] / first['expected_reward']:.0%}) and π(barked) at "
                               f"**{last['p_barked']:.3f}** (start {first['p_barked']:.3f}), KL {last['kl']:.3f}")
        # "holds it" only when the run kept at least HELD_KEEPS of its true reward
        assert text.endswith("β holds it.") == (last["expected_reward"] >= HELD_KEEPS * first["expected_reward"])
        assert ("does not stop the hack" in text) == (last["expected_reward"] < HACKED_KEEPS * first["expected_reward"])
    table = hacking.outcome_table(default_outcomes, "barked")
    assert list(table["verdict"]) == [o.regime for o in default_outcomes]
    assert list(table["true E[r]"]) == [o.true_end for o in default_outcomes]


def test_comparison_and_scale_sentences_follow_the_runs(default_outcomes):
    text = hacking.comparison_sentence(default_outcomes)
    for algorithm in ("GRPO", "PPO"):
        held = hacking.smallest_holding(default_outcomes, algorithm)
        assert held is not None and f"the smallest β that holds {algorithm} is **{held.beta:g}**" in text
    only_small = [o for o in default_outcomes if o.regime == "hacked"]
    text = hacking.comparison_sentence(only_small)
    assert "no β of GRPO's (0.04) holds the policy" in text and "no β of PPO's (0.05) holds the policy" in text
    grpo = max((o for o in default_outcomes if o.algorithm == "GRPO"), key=lambda o: o.beta)
    scale = hacking.scale_sentence(default_outcomes)
    assert f"σ = {grpo.spread_start:.3f}" in scale and f"PPO's β ≈ {grpo.beta * grpo.spread_start:.2f}" in scale
    assert f"σ {'fell' if grpo.spread_end < grpo.spread_start else 'rose'} to {grpo.spread_end:.3f}" in scale
    assert hacking.scale_sentence([o for o in default_outcomes if o.algorithm == "PPO"]) == ""


def test_overoptimization_chart(default_sweep):
    fig = hacking.overoptimization_chart(default_sweep)
    assert isinstance(fig, go.Figure)
    n_runs = sum(len(b) for b in HACKING_BETAS.values())
    assert len(fig.data) == 2 * n_runs  # proxy and true per run
    assert fig.layout.title.text == hacking.OVEROPTIMIZATION_TITLE
    assert [a.text for a in fig.layout.annotations][:2] == ["GRPO", "PPO"]
    first = default_sweep[(default_sweep["algorithm"] == "GRPO") & (default_sweep["beta"] == 0.04)]
    proxy, true = fig.data[0], fig.data[1]
    assert proxy.name == true.name == "GRPO · β = 0.04" and proxy.showlegend and not true.showlegend
    assert list(proxy.x) == pytest.approx(first["sqrt_kl"].tolist()) and true.line.dash == "dot"
    assert list(true.y) == pytest.approx(first["expected_reward"].tolist())
    sizes = list(proxy.marker.size)
    assert sizes[-1] == 12 and sizes[0] == 7 and sizes.count(7) == 10 and sizes.count(0) == 40  # every 5th
    ppo = [d for d in fig.data if d.name.startswith("PPO")]
    assert {d.xaxis for d in ppo} == {"x2"} and len(ppo) == 2 * len(HACKING_BETAS["PPO"])
    assert [s.y0 for s in fig.layout.shapes] == pytest.approx([0.4, 0.4])  # pi_ref's true reward, both panels
