"""Simulated A/B: policies compared on held-out simulated decisions by the world's ground truth.

Each held-out decision (the state the biller's logged history reached) is answered one step
ahead: for every action, the simulation's ground truth gives the exact chance of a payment in
the stage window, by the due date and within 30 days of it, of an opt-out and of a churn, hence
the expected reward. A policy's figures are the means of ``sum_a pi(a|x) m(x, a)`` over the
decisions, with 95% intervals from a bootstrap over customers (decisions of one customer are
not independent). The oracle picks the best allowed action knowing the truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from paynudge.config import PolicySettings
from reminder_policy.actions import ActionSpace
from reminder_policy.dataset import DecisionSet
from reminder_policy.reward import reward
from simulation.truth import GroundTruth, action_probabilities

METRICS = (
    "mean_reward",
    "on_time_rate",
    "paid_30d_rate",
    "contact_cost_per_invoice",
    "opt_out_rate",
    "churn_rate",
)
"""on_time_rate: decisions before the due moment whose invoice is paid by it; paid_30d_rate:
paid within 30 days of the due date; rates per decision; cost per distinct invoice."""


@dataclass(frozen=True)
class TrueOutcomes:
    """Ground-truth probabilities (n, n_actions) of each outcome and the expected reward."""

    paid_window: np.ndarray
    pay_by_due: np.ndarray
    pay_30d: np.ndarray
    opt_out: np.ndarray
    churn: np.ndarray
    cost: np.ndarray
    expected_reward: np.ndarray


def true_outcomes(
    truth: GroundTruth, data: DecisionSet, settings: PolicySettings, messages: pd.DataFrame
) -> TrueOutcomes:
    """What every action would bring at every decision, by the simulation's ground truth.

    ``messages`` is the logged history: a reminder opened shortly before a decision still
    works on the payment chances of every action.
    """
    decisions = data.logged.decisions
    p = action_probabilities(
        truth,
        decisions["invoice_id"],
        data.send_at,
        data.attempts,
        start=decisions["decided_at"],
        deadlines={"window": decisions["window_end"], "due": 0.0, "due_30d": 30.0},
        history=messages,
    )
    cost = np.broadcast_to(ActionSpace.from_settings(settings).costs, p["p_window"].shape)
    value = reward(p["p_window"], cost, p["p_opt_out"], p["p_churn"], settings.reward)
    return TrueOutcomes(
        paid_window=p["p_window"],
        pay_by_due=p["p_due"],
        pay_30d=p["p_due_30d"],
        opt_out=p["p_opt_out"],
        churn=p["p_churn"],
        cost=np.asarray(cost),
        expected_reward=value,
    )


def _per_decision(dist: np.ndarray, outcomes: TrueOutcomes) -> dict[str, np.ndarray]:
    def expect(matrix: np.ndarray) -> np.ndarray:
        return np.einsum("na,na->n", dist, matrix)

    return {
        "mean_reward": expect(outcomes.expected_reward),
        "on_time_rate": expect(outcomes.pay_by_due),
        "paid_30d_rate": expect(outcomes.pay_30d),
        "contact_cost_per_invoice": expect(outcomes.cost),
        "opt_out_rate": expect(outcomes.opt_out),
        "churn_rate": expect(outcomes.churn),
    }


def compare_policies(
    policies: Mapping[str, np.ndarray],
    data: DecisionSet,
    outcomes: TrueOutcomes,
    *,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per policy: each metric with its 95% bootstrap interval (``_low``, ``_high``)."""
    decisions = data.logged.decisions
    customer = pd.factorize(decisions["customer_id"])[0]
    n_customers = customer.max() + 1
    before_due = (decisions["decided_at"] < data.due_at).to_numpy()
    n_invoices = decisions["invoice_id"].nunique()
    rng = np.random.default_rng(seed)
    weights = rng.poisson(1.0, size=(n_bootstrap, n_customers)).astype(np.float64)
    rows = []
    for name, dist in policies.items():
        values = _per_decision(dist, outcomes)
        row: dict[str, object] = {"policy": name}
        for metric, per in values.items():
            use = before_due if metric == "on_time_rate" else np.ones(len(per), dtype=bool)
            sums = np.bincount(customer[use], weights=per[use], minlength=n_customers)
            counts = np.bincount(customer[use], minlength=n_customers).astype(np.float64)
            if metric == "contact_cost_per_invoice":
                counts = counts * n_invoices / len(per)
            point = sums.sum() / counts.sum()
            draws = (weights @ sums) / np.maximum(weights @ counts, 1e-12)
            row[metric] = point
            row[f"{metric}_low"], row[f"{metric}_high"] = np.quantile(draws, [0.025, 0.975])
        rows.append(row)
    return pd.DataFrame(rows).set_index("policy")


def gap_closed(table: pd.DataFrame, learned: str = "learned") -> float:
    """Share of the ladder-to-oracle reward gap the learned policy closes."""
    ladder, oracle = table.loc["ladder", "mean_reward"], table.loc["oracle", "mean_reward"]
    return float((table.loc[learned, "mean_reward"] - ladder) / (oracle - ladder))
