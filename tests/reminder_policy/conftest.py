"""Fixtures for the policy tests: decision sets of a training world and a held-out world.

The training world is the suite's shared ``small_world`` (4,000 customers x 12 months); the
held-out world has its own seed, so policies are judged on customers they never saw.
"""

from __future__ import annotations

import pytest

from paynudge.config import PolicySettings
from reminder_policy.dataset import DecisionSet, decision_set
from reminder_policy.learner import ContextualBandit
from reminder_policy.pipeline import fit_policy
from reminder_policy.simulated_ab import TrueOutcomes, true_outcomes
from simulation.truth import GroundTruth
from simulation.world import World, make_config, simulate_world


@pytest.fixture(scope="session")
def policy_settings() -> PolicySettings:
    return PolicySettings()


@pytest.fixture(scope="session")
def train_decisions(small_world: World, policy_settings: PolicySettings) -> DecisionSet:
    return decision_set(small_world.tables, policy_settings)


@pytest.fixture(scope="session")
def held_out_world() -> World:
    return simulate_world(make_config(n_customers=4000, n_months=12, seed=12))


@pytest.fixture(scope="session")
def held_out_decisions(held_out_world: World, policy_settings: PolicySettings) -> DecisionSet:
    return decision_set(held_out_world.tables, policy_settings)


@pytest.fixture(scope="session")
def held_out_truth(
    held_out_world: World, held_out_decisions: DecisionSet, policy_settings: PolicySettings
) -> TrueOutcomes:
    return true_outcomes(
        GroundTruth.from_world(held_out_world),
        held_out_decisions,
        policy_settings,
        held_out_world.tables["messages"],
    )


@pytest.fixture(scope="session")
def learned_policy(
    train_decisions: DecisionSet, policy_settings: PolicySettings
) -> ContextualBandit:
    return fit_policy(train_decisions, policy_settings)
