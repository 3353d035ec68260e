"""A decision set: logged decisions with their contexts, allowed actions and send times.

Everything the learner and the evaluators need, built from a validated data set by the same
code that serves live decisions: catalogue features at the decision time
(:func:`features.datasets.features_at`), the guardrails with inputs read from the history
(consent, opt-outs, hardship, open disputes and pending promises of the invoice, contact counts
in the trailing windows) and the policy context (:mod:`reminder_policy.context`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.datasets import features_at
from paynudge.config import PolicySettings
from paynudge.vocabulary import CHANNELS, consent_column, opt_out_column
from reminder_policy.context import days_to_due, policy_contexts
from reminder_policy.guardrails import GuardrailInputs, apply_guardrails
from reminder_policy.logged import LoggedDecisions, logged_decisions

Scorer = Callable[[pd.DataFrame], pd.DataFrame | None]
"""Maps catalogue features to model-score columns (late-payment, churn), or None."""


@dataclass(frozen=True)
class DecisionSet:
    """Logged decisions plus what a policy sees and may do at each of them."""

    logged: LoggedDecisions
    contexts: pd.DataFrame
    mask: np.ndarray
    """(n, n_actions) actions the guardrails allow."""
    send_at: pd.DatetimeIndex
    """The logged send time of contacts, else the earliest allowed send time."""
    due_at: pd.DatetimeIndex
    attempts: np.ndarray
    """Contacts about the same invoice before the decision."""
    reasons: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return len(self.logged)

    def subset(self, rows: np.ndarray) -> DecisionSet:
        index = np.arange(len(self))[rows]
        return replace(
            self,
            logged=self.logged.subset(index),
            contexts=self.contexts.iloc[index].reset_index(drop=True),
            mask=self.mask[index],
            send_at=self.send_at[index],
            due_at=self.due_at[index],
            attempts=self.attempts[index],
            reasons=tuple(self.reasons[i] for i in index),
        )


def local_due_end(
    invoice_id: pd.Series, invoices: pd.DataFrame, customers: pd.DataFrame
) -> pd.DatetimeIndex:
    """End of each invoice's due date in its customer's time zone, as UTC instants."""
    bills = invoices.set_index(invoices["invoice_id"].astype(object))
    due = pd.to_datetime(bills.loc[invoice_id, "due_date"]).to_numpy() + np.timedelta64(1, "D")
    zones = bills.loc[invoice_id, "customer_id"].map(
        customers.set_index(customers["customer_id"].astype(object))["timezone"]
    )
    out = np.empty(len(due), dtype="datetime64[ns]")
    for zone, rows in pd.Series(np.arange(len(due))).groupby(zones.to_numpy()).groups.items():
        local = pd.DatetimeIndex(due[rows]).tz_localize(
            str(zone), ambiguous=False, nonexistent="shift_forward"
        )
        out[rows] = local.tz_convert("UTC").tz_localize(None).to_numpy()
    return pd.DatetimeIndex(out).tz_localize("UTC")


def _trailing_counts(
    keys: np.ndarray, times: np.ndarray, at_keys: np.ndarray, at: np.ndarray, window: np.int64
) -> np.ndarray:
    """Events with the same key in ``[at - window, at)`` for each query (times in ns)."""
    order = np.lexsort((times, keys))
    k, t = keys[order], times[order]

    def position(key: np.ndarray, time: np.ndarray) -> np.ndarray:
        # Sort on (key, time) as one structured search: searchsorted per key block.
        combined = np.rec.fromarrays([k, t])
        query = np.rec.fromarrays([key, time])
        return np.searchsorted(combined, query, side="left")

    return position(at_keys, at) - position(at_keys, at - window)


def _contact_counts(tables: dict[str, pd.DataFrame], logged: LoggedDecisions) -> pd.DataFrame:
    messages = tables["messages"]
    sent = messages[messages["sent_at"].notna()]
    decisions = logged.decisions
    at = decisions["decided_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    times = sent["sent_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    day, week = np.int64(86_400 * 10**9), np.int64(7 * 86_400 * 10**9)
    invoices = pd.Index(pd.unique(np.concatenate([sent["invoice_id"], decisions["invoice_id"]])))
    customers = pd.Index(pd.unique(np.concatenate([sent["customer_id"], decisions["customer_id"]])))
    sent_invoice = invoices.get_indexer(sent["invoice_id"].astype(object))
    sent_customer = customers.get_indexer(sent["customer_id"].astype(object))
    invoice = invoices.get_indexer(decisions["invoice_id"])
    customer = customers.get_indexer(decisions["customer_id"])
    calls = (sent["channel"] == "call").to_numpy()
    return pd.DataFrame(
        {
            "calls_7d": _trailing_counts(sent_invoice[calls], times[calls], invoice, at, week),
            "messages_invoice_7d": _trailing_counts(sent_invoice, times, invoice, at, week),
            "messages_customer_24h": _trailing_counts(sent_customer, times, customer, at, day),
            "attempts": _trailing_counts(sent_invoice, times, invoice, at, at.max() - at.min() + 1),
        }
    )


def _invoice_states(
    tables: dict[str, pd.DataFrame], logged: LoggedDecisions, customers: pd.DataFrame
) -> pd.DataFrame:
    """Open dispute and pending-promise end of each decision's invoice, from the responses."""
    decisions = logged.decisions
    out = pd.DataFrame(
        {
            "dispute_open": np.zeros(len(decisions), dtype=bool),
            "promise_until": pd.Series(pd.NaT, index=decisions.index, dtype="datetime64[ns, UTC]"),
        },
        index=decisions.index,
    )
    responses = tables.get("responses")
    if responses is None or responses.empty:
        return out
    keyed = decisions[["invoice_id", "decided_at"]].reset_index(names="row")
    events = responses[responses["invoice_id"].notna()].copy()
    events["invoice_id"] = events["invoice_id"].astype(object)
    pairs = keyed.merge(events, on="invoice_id")
    pairs = pairs[pairs["occurred_at"] < pairs["decided_at"]]
    sign = pairs["type"].map({"dispute": 1, "dispute_resolved": -1}).fillna(0)
    balance = sign.groupby(pairs["row"]).sum()
    out.loc[balance.index[balance > 0], "dispute_open"] = True
    promises = pairs[(pairs["type"] == "promise_to_pay") & pairs["promised_date"].notna()]
    if not promises.empty:
        zones = promises["customer_id"].map(
            customers.set_index(customers["customer_id"].astype(object))["timezone"]
        )
        ends = pd.Series(pd.NaT, index=promises.index, dtype="datetime64[ns, UTC]")
        for zone, rows in promises.groupby(zones).groups.items():
            local = pd.DatetimeIndex(promises.loc[rows, "promised_date"]) + pd.Timedelta(days=1)
            ends.loc[rows] = local.tz_localize(
                str(zone), ambiguous=False, nonexistent="shift_forward"
            ).tz_convert("UTC")
        latest = ends.groupby(promises["row"]).max()
        out.loc[latest.index, "promise_until"] = latest.to_numpy()
    return out


def decision_set(
    tables: dict[str, pd.DataFrame],
    settings: PolicySettings,
    *,
    scorer: Scorer | None = None,
    backend_url: str = "duckdb://",
    grace_days: float = 0.0,
) -> DecisionSet:
    """The logged decisions of ``tables`` with contexts, guardrail masks and send times."""
    logged = logged_decisions(tables, settings)
    decisions = logged.decisions
    spine = decisions[["customer_id", "invoice_id"]].assign(cutoff=decisions["decided_at"])
    features = features_at(tables, spine, backend_url=backend_url, grace_days=grace_days)
    customers = tables["customers"]
    due_at = local_due_end(decisions["invoice_id"], tables["invoices"], customers)
    counts = _contact_counts(tables, logged)
    states = _invoice_states(tables, logged, customers)
    zone = decisions["customer_id"].map(
        customers.set_index(customers["customer_id"].astype(object))["timezone"]
    )
    guard_frame = pd.DataFrame(
        {
            "send_at": decisions["decided_at"],
            "timezone": zone.to_numpy(dtype=object),
            "due_at": due_at,
            **{consent_column(c): features[consent_column(c)].astype(bool) for c in CHANNELS},
            **{opt_out_column(c): features[opt_out_column(c)].astype(bool) for c in CHANNELS},
            **counts.drop(columns="attempts"),
            "dispute_open": states["dispute_open"].astype(bool),
            "hardship": features["hardship_90d"].astype(bool),
            "paid": False,
            "promise_until": states["promise_until"],
            "send_before": decisions["window_end"],
        }
    )
    guard = apply_guardrails(GuardrailInputs.from_frame(guard_frame), settings.guardrails)
    logged_send = pd.DatetimeIndex(decisions["sent_at"])
    send_at = pd.DatetimeIndex(np.where(logged_send.isna(), guard.send_at, logged_send))
    stages = tuple(settings.reward.stage_window_days)
    contexts = policy_contexts(
        features,
        decisions["stage"],
        days_to_due(decisions["decided_at"], due_at),
        stages,
        scorer(features) if scorer is not None else None,
    )
    return DecisionSet(
        logged=logged,
        contexts=contexts.reset_index(drop=True),
        mask=guard.allowed,
        send_at=send_at.tz_convert("UTC") if send_at.tz is not None else send_at.tz_localize("UTC"),
        due_at=due_at,
        attempts=counts["attempts"].to_numpy(),
        reasons=tuple(guard.reasons()),
    )
