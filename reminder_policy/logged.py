"""Logged reminder decisions with their outcomes and rewards: what the policy learns from.

Every row of the ``messages`` table is one decision (no contact included) with the propensity
the logging policy gave its action. Its outcomes come from the other tables: a payment within
the stage's window, an opt-out answering the message, a churn within the churn window (see
:mod:`reminder_policy.reward`). Decisions whose windows run past the end of the data have no
known outcome yet: they are left out and counted, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.datasets import data_end
from paynudge.config import PolicySettings
from paynudge.errors import DataError
from reminder_policy.actions import ActionSpace, action_codes
from reminder_policy.reward import reward, window_days

DAY = pd.Timedelta(days=1)
AMOUNT_TOLERANCE = 0.005
"""Payments within half a cent of the amount settle an invoice."""
NON_PAYMENT = "non_payment"


@dataclass(frozen=True)
class LoggedDecisions:
    """Decisions (one row each) with action, propensity, outcomes and reward as arrays."""

    decisions: pd.DataFrame
    """message_id, customer_id, invoice_id, stage, decided_at, sent_at, window_end."""
    action: np.ndarray
    pscore: np.ndarray
    paid: np.ndarray
    opted_out: np.ndarray
    churned: np.ndarray
    cost: np.ndarray
    reward: np.ndarray
    unresolved: int
    """Decisions left out because their outcome window ends after the data does."""

    def __len__(self) -> int:
        return len(self.decisions)

    def subset(self, rows: np.ndarray) -> LoggedDecisions:
        """The decisions at ``rows`` (positions or a boolean mask)."""
        return LoggedDecisions(
            decisions=self.decisions.iloc[rows].reset_index(drop=True),
            action=self.action[rows],
            pscore=self.pscore[rows],
            paid=self.paid[rows],
            opted_out=self.opted_out[rows],
            churned=self.churned[rows],
            cost=self.cost[rows],
            reward=self.reward[rows],
            unresolved=self.unresolved,
        )


def settled_at(invoices: pd.DataFrame, payments: pd.DataFrame) -> pd.Series:
    """When each invoice's payments first add up to its amount (by invoice_id; NaT: never)."""
    ordered = payments.sort_values("paid_at", kind="stable")
    key = ordered["invoice_id"].astype(object)
    so_far = ordered["amount"].groupby(key).cumsum()
    amount = key.map(invoices.set_index(invoices["invoice_id"].astype(object))["amount"])
    done = ordered[(so_far >= amount - AMOUNT_TOLERANCE).to_numpy()]
    return done.groupby(done["invoice_id"].astype(object))["paid_at"].min()


def _paid_within(
    decisions: pd.DataFrame, tables: dict[str, pd.DataFrame], plan_offered: np.ndarray
) -> np.ndarray:
    """Settled in the window, or (once a plan was offered) any payment in it: a plan started."""
    settled = decisions["invoice_id"].map(settled_at(tables["invoices"], tables["payments"]))
    inside = (settled > decisions["decided_at"]) & (settled <= decisions["window_end"])
    pairs = decisions[["invoice_id", "decided_at", "window_end"]].reset_index(names="row")
    pairs = pairs[plan_offered].merge(
        tables["payments"][["invoice_id", "paid_at"]], on="invoice_id"
    )
    hit = (pairs["paid_at"] > pairs["decided_at"]) & (pairs["paid_at"] <= pairs["window_end"])
    paid = inside.to_numpy(dtype=bool)
    paid[pairs.loc[hit, "row"].to_numpy()] = True
    return paid


def _plan_offered(messages: pd.DataFrame, decisions: pd.DataFrame) -> np.ndarray:
    """Whether an instalment plan was offered on the invoice at or before each decision."""
    offers = messages.loc[messages["offer"] == "instalment_plan", ["invoice_id", "decided_at"]]
    first = offers.groupby(offers["invoice_id"].astype(object))["decided_at"].min()
    return (decisions["invoice_id"].map(first) <= decisions["decided_at"]).to_numpy(dtype=bool)


def _churned_within(decisions: pd.DataFrame, churn: pd.DataFrame | None, days: float) -> np.ndarray:
    """A churn within ``days`` of the decision; disconnections for non-payment do not count
    (the missing payment is already in the reward)."""
    if churn is None or churn.empty:
        return np.zeros(len(decisions), dtype=bool)
    voluntary = churn[churn["reason"] != NON_PAYMENT]
    keyed = voluntary.set_index(voluntary["customer_id"].astype(object))["churned_at"]
    churned_at = decisions["customer_id"].map(keyed)
    after = churned_at > decisions["decided_at"]
    return (after & (churned_at <= decisions["decided_at"] + days * DAY)).to_numpy(dtype=bool)


def _opted_out(decisions: pd.DataFrame, responses: pd.DataFrame | None) -> np.ndarray:
    if responses is None or responses.empty:
        return np.zeros(len(decisions), dtype=bool)
    quits = responses.loc[responses["type"] == "opt_out", "message_id"].dropna()
    return decisions["message_id"].isin(set(quits)).to_numpy(dtype=bool)


def logged_decisions(tables: dict[str, pd.DataFrame], settings: PolicySettings) -> LoggedDecisions:
    """The logged decisions of a validated data set, with outcomes and rewards."""
    messages = tables.get("messages")
    if messages is None or messages.empty:
        raise DataError(
            "messages: the policy learns from logged decisions, but the data set has no "
            "messages table (one row per decision with its propensity)"
        )
    end = data_end(tables)
    decisions = messages[
        ["message_id", "customer_id", "invoice_id", "stage", "decided_at", "sent_at"]
    ].copy()
    for column in ("message_id", "customer_id", "invoice_id"):
        decisions[column] = decisions[column].astype(object)
    decisions["window_end"] = decisions["decided_at"] + pd.to_timedelta(
        window_days(decisions["stage"], settings.reward), unit="D"
    )
    horizon = np.maximum(
        decisions["window_end"], decisions["decided_at"] + settings.reward.churn_window_days * DAY
    )
    known = (horizon <= end).to_numpy()
    decisions = decisions[known].sort_values("decided_at", kind="stable")
    kept = messages.loc[decisions.index]
    decisions = decisions.reset_index(drop=True)
    action = action_codes(kept["channel"].to_numpy(), kept["tone"], kept["offer"])
    cost = ActionSpace.from_settings(settings).costs[action]
    paid = _paid_within(decisions, tables, _plan_offered(messages, decisions))
    opted_out = _opted_out(decisions, tables.get("responses"))
    churned = _churned_within(decisions, tables.get("churn"), settings.reward.churn_window_days)
    return LoggedDecisions(
        decisions=decisions,
        action=action,
        pscore=kept["propensity"].to_numpy(dtype=np.float64),
        paid=paid,
        opted_out=opted_out,
        churned=churned,
        cost=cost,
        reward=reward(paid, cost, opted_out, churned, settings.reward),
        unresolved=int((~known).sum()),
    )
