"""Build the raw tables (the observable export) and the ground-truth tables from an engine run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from paynudge.vocabulary import CHANNELS, CHURN_REASONS, OFFERS, RESPONSE_TYPES, TONES
from simulation.clock import to_dates, to_timestamps
from simulation.dunning import Engine
from simulation.outcomes import click_times, payment_columns
from simulation.population import customer_ids, customers_table, format_ids

LETTER = CHANNELS.index("letter")


def _names(vocabulary: tuple[str, ...], codes: np.ndarray) -> np.ndarray:
    names = np.array([*vocabulary, None], dtype=object)
    return names[np.where(codes >= 0, codes, len(vocabulary))]


def invoice_numbers(engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    """Issued invoice rows, and every row's public number (-1 where never issued)."""
    rows = np.flatnonzero(engine.inv.issued)
    numbers = np.full(engine.bills.size, -1, dtype=np.int64)
    numbers[rows] = np.arange(1, rows.size + 1)
    return rows, numbers


def invoice_ids(numbers: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Public invoice ids (``INV`` + 10 digits) of invoice numbers."""
    return format_ids("INV", numbers, 10)


def build_tables(
    engine: Engine, epoch: pd.Timestamp, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """The six raw tables, exactly as a biller's export would carry them."""
    people, bills, cust = engine.people, engine.bills, engine.cust
    horizon = engine.horizon_at
    opted_out = cust.opted_out_at < horizon
    customers = customers_table(people, opted_out, to_dates(people.signup_day, epoch), rng)
    rows, number = invoice_numbers(engine)
    invoices = pd.DataFrame(
        {
            "invoice_id": invoice_ids(number[rows]),
            "customer_id": customer_ids(bills.customer[rows]),
            "issue_date": to_dates(bills.issue_day[rows], epoch),
            "due_date": to_dates(bills.due_day[rows], epoch),
            "amount": bills.amount_cents[rows] / 100.0,
            "fee_amount": bills.fee_cents[rows] / 100.0,
            "usage_amount": bills.usage_cents[rows] / 100.0,
            "discount_amount": bills.discount_cents[rows] / 100.0,
        }
    )
    pay = payment_columns(engine)
    payments = pd.DataFrame(
        {
            "payment_id": format_ids("PAY", np.arange(1, len(pay["invoice"]) + 1), 10),
            "invoice_id": invoice_ids(number[pay["invoice"]]),
            "customer_id": customer_ids(bills.customer[pay["invoice"]]),
            "paid_at": to_timestamps(pay["at"], epoch),
            "amount": pay["cents"] / 100.0,
            "method": pay["method"],
        }
    )
    decisions = engine.log.columns("decisions")
    messages = messages_table(engine, decisions, number, epoch)
    return {
        "customers": customers,
        "invoices": invoices,
        "payments": payments,
        "messages": messages,
        "responses": responses_table(engine, number, epoch),
        "churn": churn_table(engine, epoch),
    }


def messages_table(
    engine: Engine, d: dict[str, np.ndarray], number: np.ndarray, epoch: pd.Timestamp
) -> pd.DataFrame:
    """Logged decisions, no-contact included; letters' reading is not observable."""
    if not d:
        d = {
            key: np.zeros(0, dtype=np.int64)
            for key in ("invoice", "customer", "stage", "channel", "tone", "offer")
        }
        d |= {
            key: np.zeros(0)
            for key in ("propensity", "decided_at", "sent_at", "delivered_at", "opened_at")
        }
    policy = engine.p.logging_policy
    clicked = click_times(engine, d) if len(d["invoice"]) else np.zeros(0)
    horizon = engine.horizon_at

    def observed(days: np.ndarray) -> np.ndarray:
        return np.where(days < horizon, days, np.inf)

    observable_open = observed(np.where(d["channel"] == LETTER, np.inf, d["opened_at"]))
    return pd.DataFrame(
        {
            "message_id": format_ids("M", np.arange(1, len(d["invoice"]) + 1), 10),
            "invoice_id": invoice_ids(number[d["invoice"]]),
            "customer_id": customer_ids(d["customer"]),
            "stage": np.array(policy.stage_names, dtype=object)[d["stage"]],
            "channel": _names(CHANNELS, d["channel"]),
            "tone": _names(TONES, d["tone"]),
            "offer": _names(OFFERS, d["offer"]),
            "decided_at": to_timestamps(d["decided_at"], epoch),
            "sent_at": to_timestamps(d["sent_at"], epoch),
            "delivered_at": to_timestamps(observed(d["delivered_at"]), epoch),
            "opened_at": to_timestamps(observable_open, epoch),
            "clicked_at": to_timestamps(clicked, epoch),
            "propensity": d["propensity"],
            "logging_policy": np.full(len(d["invoice"]), policy.name, dtype=object),
        }
    )


def responses_table(engine: Engine, number: np.ndarray, epoch: pd.Timestamp) -> pd.DataFrame:
    """Customer responses: replies to messages plus disputes (opened and resolved)."""
    inv, horizon = engine.inv, engine.horizon_at
    columns = engine.log.columns("responses")
    empty = np.zeros(0, dtype=np.int64)
    if not columns:
        columns = {
            k: empty for k in ("type", "customer", "invoice", "message", "channel", "promised_day")
        }
        columns["at"] = np.zeros(0)
    disputed = np.flatnonzero(inv.issued & (inv.dispute_start < np.minimum(inv.paid_at, horizon)))
    resolved = disputed[inv.dispute_end[disputed] < horizon]
    parts = [
        columns,
        _dispute_part(engine, disputed, inv.dispute_start[disputed], "dispute"),
        _dispute_part(engine, resolved, inv.dispute_end[resolved], "dispute_resolved"),
    ]
    merged = {key: np.concatenate([part[key] for part in parts]) for key in columns}
    keep = merged["at"] < horizon
    merged = {key: value[keep] for key, value in merged.items()}
    order = np.argsort(merged["at"], kind="stable")
    merged = {key: value[order] for key, value in merged.items()}
    promised = np.where(merged["promised_day"] >= 0, merged["promised_day"], 0)
    promised_date = to_dates(promised, epoch).where(merged["promised_day"] >= 0, pd.NaT)
    return pd.DataFrame(
        {
            "response_id": format_ids("R", np.arange(1, len(order) + 1), 10),
            "customer_id": customer_ids(merged["customer"]),
            "invoice_id": invoice_ids(number[merged["invoice"]]),
            "message_id": format_ids(
                "M", np.where(merged["message"] >= 0, merged["message"] + 1, -1), 10
            ),
            "type": np.array(RESPONSE_TYPES, dtype=object)[merged["type"]],
            "occurred_at": to_timestamps(merged["at"], epoch),
            "channel": _names(CHANNELS, merged["channel"]),
            "promised_date": promised_date,
        }
    )


def _dispute_part(
    engine: Engine, rows: np.ndarray, at: np.ndarray, kind: str
) -> dict[str, np.ndarray]:
    n = rows.size
    return {
        "type": np.full(n, RESPONSE_TYPES.index(kind)),
        "customer": engine.bills.customer[rows],
        "invoice": rows,
        "message": np.full(n, -1),
        "at": at,
        "channel": np.full(n, -1),
        "promised_day": np.full(n, -1),
    }


def churn_table(engine: Engine, epoch: pd.Timestamp) -> pd.DataFrame:
    """One row per customer whose contract ended before the horizon."""
    cust = engine.cust
    gone = np.flatnonzero(cust.churned_at < engine.horizon_at)
    return pd.DataFrame(
        {
            "customer_id": customer_ids(gone),
            "churned_at": to_timestamps(cust.churned_at[gone], epoch),
            "reason": np.array(CHURN_REASONS, dtype=object)[cust.churn_reason[gone]],
        }
    )
