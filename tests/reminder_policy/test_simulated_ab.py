"""The simulated A/B and the accuracy of off-policy estimates against the ground truth."""

from __future__ import annotations

import numpy as np

from paynudge.config import PolicySettings
from reminder_policy import baselines, ope
from reminder_policy.dataset import DecisionSet
from reminder_policy.learner import ContextualBandit
from reminder_policy.pipeline import estimated_rewards, policy_distributions
from reminder_policy.simulated_ab import METRICS, TrueOutcomes, compare_policies, gap_closed


def test_truth_agrees_with_what_the_logged_actions_brought(
    held_out_decisions: DecisionSet, held_out_truth: TrueOutcomes
) -> None:
    """Realised rewards of the logged actions match their expected rewards (3 standard errors)."""
    logged = held_out_decisions.logged
    rows = np.arange(len(logged))
    expected = held_out_truth.expected_reward[rows, logged.action]
    error = logged.reward - expected
    assert abs(error.mean()) < 3 * error.std() / np.sqrt(len(error)) + 0.02 * expected.mean()
    paid = held_out_truth.paid_window[rows, logged.action]
    assert abs(logged.paid.mean() - paid.mean()) < 0.015


def test_learned_policy_beats_the_ladder_and_the_oracle_beats_everyone(
    held_out_decisions: DecisionSet,
    held_out_truth: TrueOutcomes,
    learned_policy: ContextualBandit,
) -> None:
    policies = policy_distributions(learned_policy, held_out_decisions)
    policies["oracle"] = baselines.oracle(held_out_truth.expected_reward, held_out_decisions.mask)
    table = compare_policies(policies, held_out_decisions, held_out_truth, n_bootstrap=100)
    assert set(table.index) == {"learned", "ladder", "always_email", "uniform", "oracle"}
    for metric in METRICS:
        assert (table[f"{metric}_low"] <= table[metric] + 1e-12).all()
        assert (table[metric] <= table[f"{metric}_high"] + 1e-12).all()
    reward = table["mean_reward"]
    assert reward["oracle"] == reward.max()
    assert reward["learned"] > table.loc["ladder", "mean_reward_high"]
    assert table.loc["learned", "on_time_rate"] > table.loc["ladder", "on_time_rate"]
    assert 0.2 < gap_closed(table) < 1.0


def test_dr_estimates_land_near_the_simulated_true_values(
    held_out_decisions: DecisionSet,
    held_out_truth: TrueOutcomes,
    learned_policy: ContextualBandit,
    policy_settings: PolicySettings,
) -> None:
    """The ladder within 5% of its true value; the learned policy (importance weights near 50
    where it leaves the logging ladder) inside its bootstrap interval and within 10% here; the
    benchmark shows both at full size."""
    logged = held_out_decisions.logged
    q_hat = estimated_rewards(held_out_decisions, policy_settings)
    policies = policy_distributions(learned_policy, held_out_decisions)
    arrays = {"reward": logged.reward, "action": logged.action, "pscore": logged.pscore}
    for name, tolerance in (("ladder", 0.05), ("learned", 0.10)):
        truth = ope.policy_value(policies[name], held_out_truth.expected_reward)
        estimate = ope.bootstrap_interval(
            "dr", n_bootstrap=300, action_dist=policies[name], estimated_rewards=q_hat, **arrays
        )
        assert abs(estimate.value - truth) < tolerance * abs(truth), (name, estimate, truth)
        assert estimate.low <= truth <= estimate.high, (name, estimate, truth)
