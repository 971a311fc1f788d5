"""Junk in the URL, on every page: a clear warning or a fallback, never a traceback, never NaN on screen."""

import pytest

from .conftest import PAGES, new_app, no_error

JUNK = ["nan", "inf", "-inf", "-1", "1e308", "abc", "", "0", "99999999999999999999", "%00", "1,5", "None"]
PARAMS = [
    "preset", "seed", "group_size", "epsilon_low", "epsilon_high", "beta", "lr", "mu", "temperature", "loss_type",
    "scale_rewards", "kl_estimator", "stage", "model", "task", "iteration", "draw", "present", "iterations",
    "algorithm", "compare", "reward_sat", "ppo_epochs", "gamma", "lam", "value_lr", "hack_algorithm", "hack_beta",
    "proxy_bonus", "hack_iterations", "section", "importance_sampling_level", "kl_ratio_correction",
    "whiten_advantages", "vf_coef", "cliprange_value", "reward_slept", "reward_barked", "lm_lr", "max_new_tokens",
]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("junk", JUNK)
def test_every_parameter_junk_at_once(page, junk):
    at = new_app(page, **{name: junk for name in PARAMS}, unknown_key=junk)
    no_error(at)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(
    "query",
    [
        {"group_size": "1"},
        {"group_size": "100000"},
        {"epsilon_low": "0", "epsilon_high": "0", "mu": "4"},
        {"beta": "100"},
        {"temperature": "0.0001"},
        {"temperature": "1000"},
        {"reward_sat": "1", "reward_slept": "1", "reward_barked": "1"},
    ],
)
def test_degenerate_settings(page, query):
    no_error(new_app(page, **query))
