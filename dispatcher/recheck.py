"""The guardrails the dispatcher re-checks with what it sees locally, before planning and sending.

The decision service applies every rule already; the dispatcher re-checks the ones its own state
knows better or more recently (paid invoices, opt-outs and suppressions, quiet hours, contact
caps, disputes, consent, letters and offers before the due date) with
:func:`reminder_policy.guardrails.violations`, an implementation written apart from the service's.
Counts are taken from the messages table at each row's own instant, vectorised over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from dispatcher.stages import local_midnights
from dispatcher.state import (
    CONSENT_COLUMNS,
    OPT_OUT_COLUMNS,
    Customer,
    Invoice,
    Message,
    Suppression,
)
from paynudge.config import GuardrailSettings
from paynudge.vocabulary import CHANNELS
from reminder_policy.actions import action_codes
from reminder_policy.guardrails import GuardrailInputs, violations
from reminder_policy.local_time import NAT

CONTACTED: tuple[str, ...] = ("sending", "sent", "reconcile")
"""Message states that count as a contact (a flagged one may have gone out: the safe side)."""
INVOICE_WINDOW = pd.Timedelta(days=7)
CUSTOMER_WINDOW = pd.Timedelta(hours=24)
"""The windows the guardrail caps are defined over (max_*_7d / _week, max_*_day)."""
_CONTACT_AT = func.coalesce(Message.sent_at, Message.sending_at)
COUNT_COLUMNS = ("calls_7d", "messages_invoice_7d", "messages_customer_24h", "attempts")
"""Not-a-time as int64 nanoseconds: a contact without an instant never counts."""


def situation(session: Session, invoice_ids: Sequence[str]) -> pd.DataFrame:
    """Invoice and customer columns the rules need, one row per invoice id (in order)."""
    columns = [
        Invoice.invoice_id, Invoice.customer_id, Invoice.issue_date, Invoice.due_date,
        Invoice.amount, Invoice.paid_at, Invoice.dispute_opened_at, Invoice.dispute_resolved_at,
        Customer.timezone, Customer.language, Customer.name, Customer.email, Customer.phone,
        *(getattr(Customer, c) for c in (*CONSENT_COLUMNS, *OPT_OUT_COLUMNS)),
    ]  # fmt: skip
    rows = session.execute(
        select(*columns)
        .join(Customer, Customer.customer_id == Invoice.customer_id)
        .where(Invoice.invoice_id.in_(list(invoice_ids)))
    ).all()
    frame = pd.DataFrame(rows, columns=[c.key for c in columns]).set_index("invoice_id")
    return frame.loc[list(invoice_ids)].reset_index()


def contact_counts(session: Session, rows: pd.DataFrame, at: pd.DatetimeIndex) -> pd.DataFrame:
    """Per row (``invoice_id``, ``customer_id``) the contacts strictly before its instant: calls
    about the invoice in 7 days, messages about it in 7 days, messages to the customer in 24 h,
    and all contacts about it (``attempts``)."""
    customers = rows["customer_id"].unique().tolist()
    history = session.execute(
        select(Message.invoice_id, Message.customer_id, Message.channel, _CONTACT_AT).where(
            Message.customer_id.in_(customers), Message.status.in_(CONTACTED)
        )
    ).all()
    counts = np.zeros((len(COUNT_COLUMNS), len(rows)), dtype=np.int64)
    if history:
        row, contact = _pairs(rows["customer_id"].to_numpy(dtype=object), history)
        columns = (np.asarray(c, dtype=object) for c in zip(*history, strict=True))
        h_invoice, _, h_channel, h_at = columns
        contact_at = pd.DatetimeIndex(pd.to_datetime(h_at, utc=True)).as_unit("ns").asi8
        row_at = pd.DatetimeIndex(at).as_unit("ns").asi8
        when = contact_at[contact]
        age = row_at[row] - when
        known = (when != NAT) & (age > 0)  # strictly before the row's instant
        same_invoice = h_invoice[contact] == rows["invoice_id"].to_numpy(dtype=object)[row]
        recent = age < INVOICE_WINDOW.value
        flags = (same_invoice & (h_channel[contact] == "call") & recent, same_invoice & recent,
                 age < CUSTOMER_WINDOW.value, same_invoice)  # fmt: skip
        for j, flag in enumerate(flags):
            counts[j] = np.bincount(row[flag & known], minlength=len(rows))
    return pd.DataFrame(dict(zip(COUNT_COLUMNS, counts, strict=True)), index=rows.index)


def _pairs(row_customers: np.ndarray, history: Sequence[Row[Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Every (row, history entry) pair of the same customer, as two index arrays."""
    codes, _ = pd.factorize(np.concatenate([row_customers, [h[1] for h in history]]))
    row_code, history_code = codes[: len(row_customers)], codes[len(row_customers) :]
    order = np.argsort(history_code, kind="stable")
    start = np.searchsorted(history_code[order], row_code, "left")
    lengths = np.searchsorted(history_code[order], row_code, "right") - start
    row = np.repeat(np.arange(len(row_customers)), lengths)
    first = np.repeat(start - (np.cumsum(lengths) - lengths), lengths)
    return row, order[first + np.arange(len(row))]


def suppressed(session: Session, customers: Sequence[str]) -> pd.DataFrame:
    """Suppression rows (customer_id, channel, since) of these customers."""
    return pd.DataFrame(
        session.execute(
            select(Suppression.customer_id, Suppression.channel, Suppression.since).where(
                Suppression.customer_id.in_(list(customers))
            )
        ).all(),
        columns=["customer_id", "channel", "since"],
    )


def guardrail_inputs(
    frame: pd.DataFrame,
    at: pd.DatetimeIndex,
    counts: pd.DataFrame,
    suppressions: pd.DataFrame,
    send_before: pd.DatetimeIndex | None = None,
) -> GuardrailInputs:
    """The rules' inputs at instants ``at`` for rows of :func:`situation`."""
    zones = frame["timezone"].to_numpy(dtype=object)
    opted_out = frame[list(OPT_OUT_COLUMNS)].to_numpy(dtype=bool)
    if not suppressions.empty:
        since = pd.to_datetime(suppressions["since"], utc=True)
        for j, channel in enumerate(CHANNELS):
            mine = suppressions[suppressions["channel"] == channel]
            start = pd.Series(since[mine.index].to_numpy(), index=mine["customer_id"].to_numpy())
            start = start.groupby(level=0).min()
            began = frame["customer_id"].map(start)
            opted_out[:, j] |= (pd.to_datetime(began, utc=True) <= at).fillna(False).to_numpy()
    opened = _instants(frame["dispute_opened_at"])
    resolved = _instants(frame["dispute_resolved_at"])
    paid_at = _instants(frame["paid_at"])
    nat = pd.DatetimeIndex(np.full(len(frame), np.datetime64("NaT", "ns")), tz="UTC")
    return GuardrailInputs(
        send_at=at,
        timezone=zones,
        due_at=local_midnights(frame["due_date"].tolist(), zones, 1),
        consent=frame[list(CONSENT_COLUMNS)].to_numpy(dtype=bool),
        opted_out=opted_out,
        calls_7d=counts["calls_7d"].to_numpy(dtype=np.int64),
        messages_invoice_7d=counts["messages_invoice_7d"].to_numpy(dtype=np.int64),
        messages_customer_24h=counts["messages_customer_24h"].to_numpy(dtype=np.int64),
        dispute_open=np.asarray((opened <= at) & ~(resolved <= at)),
        hardship=np.zeros(len(frame), dtype=bool),
        paid=np.asarray(paid_at <= at),
        promise_until=nat,
        send_before=send_before if send_before is not None else nat,
    )


def broken_rules(
    session: Session,
    frame: pd.DataFrame,
    channel: Sequence[str | None],
    tone: Sequence[str | None],
    offer: Sequence[str | None],
    at: pd.DatetimeIndex,
    settings: GuardrailSettings,
    send_before: pd.DatetimeIndex | None = None,
) -> list[tuple[str, ...]]:
    """Per row, the codes of the rules a contact (channel, tone, offer) at ``at`` would break."""
    if frame.empty:
        return []
    counts = contact_counts(session, frame, at)
    inputs = guardrail_inputs(
        frame, at, counts, suppressed(session, frame["customer_id"].unique()), send_before
    )
    actions = action_codes(list(channel), list(tone), list(offer))
    return violations(inputs, actions, at, settings)


def _instants(values: pd.Series) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True))
