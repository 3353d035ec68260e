"""Decision sets built from logged data: outcomes, rewards, contexts and guardrail masks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.datasets import data_end
from paynudge.config import PolicySettings
from paynudge.errors import DataError
from reminder_policy.actions import ActionSpace
from reminder_policy.dataset import DecisionSet
from reminder_policy.logged import logged_decisions
from reminder_policy.reward import reward
from simulation.world import World


def test_every_decision_with_a_known_outcome_is_kept_and_the_rest_counted(
    small_world: World, train_decisions: DecisionSet, policy_settings: PolicySettings
) -> None:
    logged = train_decisions.logged
    messages = small_world.tables["messages"]
    assert len(logged) + logged.unresolved == len(messages)
    assert logged.unresolved > 0
    assert (logged.decisions["window_end"] <= data_end(small_world.tables)).all()
    assert logged.decisions["decided_at"].is_monotonic_increasing


def test_rewards_follow_the_formula_from_the_outcomes(
    train_decisions: DecisionSet, policy_settings: PolicySettings
) -> None:
    logged = train_decisions.logged
    costs = ActionSpace.from_settings(policy_settings).costs[logged.action]
    expected = reward(logged.paid, costs, logged.opted_out, logged.churned, policy_settings.reward)
    np.testing.assert_allclose(logged.reward, expected)
    assert 0.15 < logged.paid.mean() < 0.6
    assert logged.opted_out[logged.action == 0].sum() == 0  # no message, no opt-out from it


def test_a_payment_inside_the_window_counts_and_one_after_it_does_not(
    small_world: World, policy_settings: PolicySettings
) -> None:
    tables = {name: table.copy() for name, table in small_world.tables.items()}
    logged = logged_decisions(tables, policy_settings)
    row = int(np.flatnonzero(~logged.paid & (logged.decisions["stage"] == "due"))[0])
    decision = logged.decisions.iloc[row]
    invoice = decision["invoice_id"]
    amount = tables["invoices"].set_index("invoice_id").loc[invoice, "amount"]
    payments = tables["payments"]
    payments = payments[payments["invoice_id"] != invoice]
    extra = pd.DataFrame(
        {
            "payment_id": ["PX1"],
            "invoice_id": [invoice],
            "customer_id": [decision["customer_id"]],
            "paid_at": [decision["decided_at"] + pd.Timedelta(hours=12)],
            "amount": [amount],
            "method": ["card"],
        }
    ).astype(payments.dtypes.to_dict())
    tables["payments"] = pd.concat([payments, extra], ignore_index=True)
    assert logged_decisions(tables, policy_settings).paid[row]
    tables["payments"].loc[tables["payments"]["payment_id"] == "PX1", "paid_at"] = decision[
        "window_end"
    ] + pd.Timedelta(hours=1)
    assert not logged_decisions(tables, policy_settings).paid[row]


def test_contexts_are_finite_and_masks_keep_no_contact(train_decisions: DecisionSet) -> None:
    contexts = train_decisions.contexts
    assert np.isfinite(contexts.to_numpy()).all()
    assert {"late_streak", "stage=due", "days_to_due", "plan=basic"} <= set(contexts.columns)
    assert train_decisions.mask[:, 0].all()
    # The biller's own rules were close to ours: nearly every logged action is still allowed.
    logged = train_decisions.logged
    allowed = train_decisions.mask[np.arange(len(logged)), logged.action]
    assert allowed.mean() > 0.95
    before_due = (logged.decisions["decided_at"] < train_decisions.due_at).to_numpy()
    letters = [i for i, name in enumerate(ActionSpace.from_settings(PolicySettings()).names)
               if name.startswith("letter")]  # fmt: skip
    assert not train_decisions.mask[np.ix_(before_due, letters)].any()


def test_a_data_set_without_messages_is_refused(
    small_world: World, policy_settings: PolicySettings
) -> None:
    tables = {k: v for k, v in small_world.tables.items() if k != "messages"}
    with pytest.raises(DataError, match="messages: the policy learns from logged decisions"):
        logged_decisions(tables, policy_settings)
