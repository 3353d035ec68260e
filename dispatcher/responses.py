"""What the world tells the dispatcher, and its effect on the state (in the caller's transaction).

- a **payment** settles the invoice once its payments reach the amount: its pending messages are
  blocked at once (and the relay re-checks ``paid`` at send time), a pending promise is kept;
- a **delivery receipt**, an **open** and a **click** are message events; a bounce suppresses
  the channel;
- an **unsubscribe** and an **opt-out reply** suppress the channel at once;
- a **promise to pay** pauses the invoice's sequence until the end of the promised day; then it
  resumes if unpaid and the promise is recorded broken (:func:`review_promises`); a "paid
  already" reply pauses it for ``paid_already_pause_days``;
- a **dispute** holds collection messages (the guardrails forbid contact while it is open) and
  opens a case task;
- **hardship** switches the next decisions to offers (``hardship_90d`` in the /decide request,
  see :mod:`dispatcher.hardship`) and blocks pending messages without an offer;
- **churn** is an outcome of the customer's recent decisions.

Each outcome is also written to the feedback outbox (:mod:`dispatcher.outcomes`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from dispatcher import audit
from dispatcher.database import upsert
from dispatcher.loading import refresh_settlements
from dispatcher.outcomes import (
    INBOUND,
    customer_decisions,
    hold_messages,
    invoice_decisions,
    record_outcomes,
    suppress,
)
from dispatcher.replies import ReplyClassification
from dispatcher.stages import local_midnights
from dispatcher.state import (
    Customer,
    Hardship,
    Invoice,
    Message,
    MessageEvent,
    Payment,
    Promise,
    Reply,
)
from dispatcher.tasks import DISPUTE, TaskRequest, open_tasks
from paynudge.config import Settings
from paynudge.errors import DataError

PROMISE_NAMESPACE = uuid.UUID("9c0e4f1a-53d2-4b7e-8f61-2d4a7c3b9e15")
PAUSING_INTENTS = ("promise_to_pay", "paid_already")


@dataclass(frozen=True)
class MessageRef:
    """The message an event is about."""

    message_id: str
    invoice_id: str
    customer_id: str
    channel: str
    decision_id: str


def message_ref(session: Session, message_id: str) -> MessageRef:
    row = session.execute(
        select(Message.invoice_id, Message.customer_id, Message.channel, Message.decision_id)
        .where(Message.message_id == message_id)
    ).first()  # fmt: skip
    if row is None:
        raise DataError(f"message_id: no message {message_id!r}")
    return MessageRef(message_id, *row)


def record_event(session: Session, ref: MessageRef, kind: str, at: datetime, source: str) -> bool:
    """The first ``kind`` event of a message (later ones are ignored); whether it was new."""
    known = session.get(MessageEvent, (ref.message_id, kind))
    if known is not None:
        return False
    upsert(session, MessageEvent.__table__,
           [{"message_id": ref.message_id, "kind": kind, "at": at, "source": source}])  # fmt: skip
    return True


def apply_payment(
    session: Session,
    payment_id: str,
    invoice_id: str,
    amount: float,
    paid_at: datetime,
    method: str,
    now: datetime,
) -> bool:
    """Record a payment; True when it settled the invoice (reminders stop at once)."""
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise DataError(f"invoice_id: no invoice {invoice_id!r}")
    upsert(session, Payment.__table__, [{
        "payment_id": payment_id, "invoice_id": invoice_id, "customer_id": invoice.customer_id,
        "paid_at": paid_at, "amount": amount, "method": method}])  # fmt: skip
    was_open = invoice.paid_at is None
    refresh_settlements(session, [invoice_id])
    session.refresh(invoice)
    if not (was_open and invoice.paid_at is not None):
        return False
    settled = invoice.paid_at
    hold_messages(session, Message.invoice_id == invoice_id, "local:paid", now)
    session.execute(
        update(Promise)
        .where(Promise.invoice_id == invoice_id, Promise.status == "pending")
        .values(status="kept", settled_at=settled)
    )
    decisions = invoice_decisions(session, invoice_id, settled)
    record_outcomes(session, decisions, "paid", settled, amount=float(invoice.amount))
    audit.record(session, now, INBOUND, "invoice", [invoice_id], "paid", [{"at": settled}])
    return True


def apply_delivery(session: Session, ref: MessageRef, delivered: bool, at: datetime) -> None:
    """A delivery receipt; a bounce suppresses the channel for the customer."""
    if record_event(session, ref, "delivered" if delivered else "bounced", at, "receipt"):
        record_outcomes(session, [ref.decision_id], "delivered", at, value=delivered)
        if not delivered:
            suppress(session, ref.customer_id, ref.channel, at, "bounce")


def apply_engagement(session: Session, ref: MessageRef, kind: str, at: datetime) -> None:
    """An open (the pixel) or a click (the payment link); a click implies an open."""
    kinds = ("opened", "clicked") if kind == "clicked" else ("opened",)
    for name in kinds:
        if record_event(session, ref, name, at, "link"):
            record_outcomes(session, [ref.decision_id], name, at)


def apply_unsubscribe(session: Session, ref: MessageRef, at: datetime, source: str) -> None:
    """Suppress the message's channel for its customer at once; an ``opted_out`` outcome."""
    suppress(session, ref.customer_id, ref.channel, at, source)
    record_outcomes(session, [ref.decision_id], "opted_out", at)
    audit.record(session, at, INBOUND, "customer", [ref.customer_id], "opted_out",
                 [{"channel": ref.channel, "source": source}])  # fmt: skip


def apply_reply(
    session: Session,
    reply_id: str,
    customer_id: str,
    channel: str,
    text: str,
    received_at: datetime,
    classified: ReplyClassification,
    settings: Settings,
    message: MessageRef | None = None,
) -> None:
    """Store a classified reply and carry out its effect on the customer's open invoices."""
    invoices = _open_invoices(session, customer_id, received_at, message)
    session.add(Reply(
        reply_id=reply_id, customer_id=customer_id,
        invoice_id=message.invoice_id if message else (invoices[0] if invoices else None),
        message_id=message.message_id if message else None, channel=channel,
        received_at=received_at, text=text, intent=classified.intent,
        confidence=classified.confidence, promised_date=classified.promised_date,
        matched_rule=classified.matched_rule,
    ))  # fmt: skip
    if message is not None:
        record_event(session, message, "replied", received_at, channel)
        apply_engagement(session, message, "opened", received_at)
    intent = classified.intent
    if intent == "opt_out":
        suppress(session, customer_id, channel, received_at, "reply")
        if message is not None:
            record_outcomes(session, [message.decision_id], "opted_out", received_at)
    elif intent in PAUSING_INTENTS:
        resume = _resume_at(session, customer_id, classified, received_at, settings)
        pause(session, invoices, customer_id, intent, received_at, resume)
    elif intent == "dispute":
        _dispute(session, customer_id, invoices, received_at)
    elif intent == "hardship":
        upsert(session, Hardship.__table__,
               [{"customer_id": customer_id, "declared_at": received_at}],
               update=["declared_at"])  # fmt: skip
        hold_messages(
            session,
            and_(Message.customer_id == customer_id, Message.offer == "none"),
            "local:hardship",
            received_at,
        )
    audit.record(session, received_at, INBOUND, "customer", [customer_id], f"reply_{intent}",
                 [{"channel": channel, "rule": classified.matched_rule}])  # fmt: skip


def apply_churn(session: Session, customer_id: str, at: datetime, window_days: float) -> None:
    """The customer left: a ``churned`` outcome for their decisions of the last window."""
    since = at - timedelta(days=window_days)
    record_outcomes(session, customer_decisions(session, customer_id, since), "churned", at)
    audit.record(session, at, INBOUND, "customer", [customer_id], "churned")


def pause(
    session: Session,
    invoice_ids: Sequence[str],
    customer_id: str,
    kind: str,
    now: datetime,
    resume_at: datetime,
) -> None:
    """Pause the invoices' sequences until ``resume_at`` (pending messages before it blocked)."""
    if not invoice_ids:
        return
    session.execute(
        update(Invoice)
        .where(Invoice.invoice_id.in_(list(invoice_ids)), Invoice.next_stage_at < resume_at)
        .values(next_stage_at=resume_at)
    )
    hold_messages(
        session,
        and_(Message.invoice_id.in_(list(invoice_ids)), Message.send_at < resume_at),
        f"local:{kind}",
        now,
    )
    rows = [
        {"promise_id": str(uuid.uuid5(PROMISE_NAMESPACE, f"{i}/{now.isoformat()}")),
         "invoice_id": i, "customer_id": customer_id, "kind": kind, "made_at": now,
         "resume_at": resume_at, "status": "pending", "settled_at": None}
        for i in invoice_ids
    ]  # fmt: skip
    upsert(session, Promise.__table__, rows)


def review_promises(session: Session, now: datetime) -> tuple[int, int]:
    """Close the promises whose pause ended: kept if the invoice was settled by then, else
    broken (the sequence resumes on its own). Returns (kept, broken)."""
    due = session.execute(
        select(Promise.promise_id, Promise.resume_at, Invoice.paid_at)
        .join(Invoice, Invoice.invoice_id == Promise.invoice_id)
        .where(Promise.status == "pending", Promise.resume_at <= now)
    ).all()
    kept = [p for p, resume, paid in due if paid is not None and paid <= resume]
    broken = [p for p, resume, paid in due if not (paid is not None and paid <= resume)]
    for ids, status in ((kept, "kept"), (broken, "broken")):
        if ids:
            session.execute(
                update(Promise).where(Promise.promise_id.in_(ids)).values(status=status)
            )
            audit.record(session, now, INBOUND, "promise", ids, status)
    return len(kept), len(broken)


def _open_invoices(
    session: Session, customer_id: str, at: datetime, message: MessageRef | None
) -> list[str]:
    """The invoice a reply is about (its message's), else the customer's open invoices."""
    if message is not None:
        return [message.invoice_id]
    return list(
        session.scalars(
            select(Invoice.invoice_id)
            .where(Invoice.customer_id == customer_id, Invoice.issue_date <= at.date())
            .where((Invoice.paid_at.is_(None)) | (Invoice.paid_at > at))
            .order_by(Invoice.due_date)
        )
    )


def _resume_at(
    session: Session,
    customer_id: str,
    classified: ReplyClassification,
    received_at: datetime,
    settings: Settings,
) -> datetime:
    """End of the promised day in the customer's zone, or the 'paid already' pause."""
    if classified.intent == "paid_already" or classified.promised_date is None:
        return received_at + timedelta(days=settings.dispatcher.paid_already_pause_days)
    zone = session.scalar(select(Customer.timezone).where(Customer.customer_id == customer_id))
    promised: date = classified.promised_date
    ends = local_midnights([promised], np.array([zone or "UTC"], dtype=object), 1)
    return max(ends[0].to_pydatetime(), received_at)


def _dispute(session: Session, customer_id: str, invoices: list[str], at: datetime) -> None:
    if not invoices:
        return
    session.execute(
        update(Invoice)
        .where(Invoice.invoice_id.in_(invoices), Invoice.dispute_opened_at.is_(None))
        .values(dispute_opened_at=at)
    )
    hold_messages(session, Message.invoice_id.in_(invoices), "local:dispute_open", at)
    open_tasks(
        session,
        [
            TaskRequest(i, customer_id, DISPUTE, "the customer disputes the invoice")
            for i in invoices
        ],
        at,
        INBOUND,
    )
