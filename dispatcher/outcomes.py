"""Outcomes of decisions, written to the feedback outbox, and the holds they put on messages.

Every outcome (delivered, opened, clicked, paid, opted out, churned) is a row of ``outcomes``
keyed by (decision, kind), written in the same transaction as the event that caused it, so none
is lost when the decision service is down; :mod:`dispatcher.feedback` posts them. Holds stop
messages already written to the outbox at once: a ``pending`` message becomes ``blocked`` with
the reason (the relay re-checks the same rules at send time, so a message claimed meanwhile is
stopped there).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.orm import Session

from dispatcher import audit
from dispatcher.database import upsert
from dispatcher.state import Message, Outcome, Reminder, Suppression

OUTCOME_KINDS: tuple[str, ...] = ("delivered", "opened", "clicked", "paid", "opted_out", "churned")
OUTCOME_NAMESPACE = uuid.UUID("0b7f3d4e-2a61-4c0e-9d58-6a3b1c9e2f70")
INBOUND = "inbound"
"""The process name of changes made by the inbound app (in the audit log)."""


def outcome_key(decision_id: str, kind: str) -> str:
    return str(uuid.uuid5(OUTCOME_NAMESPACE, f"{decision_id}/{kind}"))


def record_outcomes(
    session: Session,
    decision_ids: Sequence[str],
    kind: str,
    at: datetime,
    value: bool = True,
    amount: float | None = None,
) -> None:
    """One ``kind`` outcome per decision; the first report of a (decision, kind) stands."""
    if kind not in OUTCOME_KINDS:
        raise ValueError(f"outcome kind: expected one of {OUTCOME_KINDS}, found {kind!r}")
    rows = [
        {"outcome_id": outcome_key(d, kind), "decision_id": d, "kind": kind, "at": at,
         "value": value, "amount": amount, "posted_at": None, "attempts": 0, "last_error": None}
        for d in dict.fromkeys(decision_ids)
    ]  # fmt: skip
    upsert(session, Outcome.__table__, rows)


def invoice_decisions(session: Session, invoice_id: str, before: datetime) -> list[str]:
    """The decisions made about an invoice by ``before`` (no-contact decisions included)."""
    return list(
        session.scalars(
            select(Reminder.decision_id).where(
                Reminder.invoice_id == invoice_id,
                Reminder.decision_id.is_not(None),
                Reminder.planned_at <= before,
            )
        )
    )


def customer_decisions(session: Session, customer_id: str, since: datetime) -> list[str]:
    """The decisions made about a customer's invoices from ``since`` on."""
    return list(
        session.scalars(
            select(Reminder.decision_id).where(
                Reminder.customer_id == customer_id,
                Reminder.decision_id.is_not(None),
                Reminder.planned_at >= since,
            )
        )
    )


def hold_messages(
    session: Session, where: ColumnElement[bool], reason: str, now: datetime
) -> list[str]:
    """Block the ``pending`` messages matching ``where`` with ``reason``; their ids."""
    ids = list(
        session.scalars(
            select(Message.message_id).where(Message.status == "pending", where).with_for_update()
        )
    )
    if ids:
        session.execute(
            update(Message)
            .where(Message.message_id.in_(ids), Message.status == "pending")
            .values(status="blocked", blocked_at=now, reasons=reason)
        )
        audit.record(
            session, now, INBOUND, "message", ids, "blocked", [{"reasons": reason}] * len(ids)
        )
    return ids


def suppress(session: Session, customer_id: str, channel: str, now: datetime, source: str) -> None:
    """Never contact the customer on ``channel`` again from ``now`` (earlier opt-outs stand)."""
    upsert(
        session,
        Suppression.__table__,
        [{"customer_id": customer_id, "channel": channel, "since": now, "source": source}],
    )
    hold_messages(
        session,
        and_(Message.customer_id == customer_id, Message.channel == channel),
        f"local:opted_out:{source}",
        now,
    )
