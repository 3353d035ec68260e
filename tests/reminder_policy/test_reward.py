from __future__ import annotations

import numpy as np

from paynudge.config import RewardSettings
from reminder_policy.reward import reward, window_days


def test_reward_formula_weighs_each_outcome() -> None:
    s = RewardSettings(paid_value=10.0, opt_out_penalty=3.0, churn_penalty=30.0)
    r = reward(
        paid=np.array([1, 0, 1, 0]),
        cost=np.array([0.5, 0.0, 1.5, 0.0]),
        opted_out=np.array([0, 1, 0, 0]),
        churned=np.array([0, 0, 1, 0]),
        settings=s,
    )
    np.testing.assert_allclose(r, [9.5, -3.0, 10.0 - 1.5 - 30.0, 0.0])


def test_reward_is_linear_so_probabilities_give_the_expectation() -> None:
    s = RewardSettings()
    rng = np.random.default_rng(0)
    p_paid, p_out, p_churn = 0.4, 0.1, 0.05
    n = 200_000
    draws = reward(
        rng.random(n) < p_paid, np.full(n, 0.2), rng.random(n) < p_out, rng.random(n) < p_churn, s
    )
    expected = reward(np.array(p_paid), np.array(0.2), np.array(p_out), np.array(p_churn), s)
    assert abs(draws.mean() - float(expected)) < 4 * draws.std() / np.sqrt(n)


def test_window_days_per_stage_with_a_default() -> None:
    s = RewardSettings(stage_window_days={"due": 3.0}, default_window_days=7.0)
    np.testing.assert_allclose(window_days(np.array(["due", "later"]), s), [3.0, 7.0])
