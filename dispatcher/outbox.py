"""The outbox relay: claim due messages, re-check, render, send, record; recover after crashes.

Exactly once where the channel allows it, never silently lost:

1. *claim*: due ``pending`` messages are taken under a lease (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL) and marked ``claimed`` in their own transaction. A customer's messages go out in
   send-time order: a message waits while an earlier one of the same customer is unfinished, so
   the contact caps count every message before it, even across processes.
2. *re-check* the guardrails at the send instant (paid, opted out, quiet hours, caps, disputes):
   a broken rule makes the message ``blocked`` with the codes.
3. *render* it: a template error parks this message with the error, the batch goes on.
4. *send*: on a transport without idempotency (SMTP) the message is first marked ``sending``
   (committed); the transport's answer makes it ``sent``, ``pending`` again with a pause
   (``retry_pauses_seconds``), or ``parked`` with the error once the retries are spent.
5. *recover*: a lease that expired means its process died. ``claimed`` messages go back to
   ``pending`` (never handed over); a ``sending`` message is re-sent with its idempotency key
   when its transport honours one, and flagged ``reconcile`` otherwise (it may have gone out).

Instants: by default the wall clock. Given ``until`` (a replay of the past, as the simulated
cycles and the tests run), every message is sent at its own scheduled instant up to ``until``.
Leases always use the wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from dispatcher import audit
from dispatcher.channels.base import Envelope, OutcomeUnknown, SendFailed, Transport
from dispatcher.links import LinkMaker
from dispatcher.recheck import broken_rules, situation
from dispatcher.rendering import MessageFacts, Renderer, TemplateError, format_amount
from dispatcher.stages import Workflow
from dispatcher.state import Message
from paynudge.config import Settings

IDEMPOTENT_TRANSPORTS = frozenset({"dry_run", "webhook", "pdf"})
"""Transports on which sending a message twice delivers it once (see channels.base)."""
UNFINISHED: tuple[str, ...] = ("pending", "claimed", "sending")
OWNED: tuple[str, ...] = ("claimed", "sending")
"""Statuses in which a message belongs to the process that claimed it."""
RECIPIENT_COLUMN = {"email": "email", "sms": "phone", "call": "phone", "push": "customer_id",
                    "letter": "name"}  # fmt: skip


Change = tuple[str, dict[str, object], str, dict[str, object]]
"""A message id, the column values to set, the audit event and its detail."""


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    blocked: int = 0
    retried: int = 0
    parked: int = 0
    reconcile: int = 0
    recovered: int = 0

    def add(self, other: SendReport) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class Relay:
    """Everything a sending pass needs, built once per process."""

    sessions: sessionmaker[Session]
    transports: Mapping[str, Transport]
    renderer: Renderer
    links: LinkMaker
    settings: Settings
    workflow: Workflow
    process: str


def wall_clock() -> datetime:
    return datetime.now(UTC)


def recover(relay: Relay) -> int:
    """Release the messages of processes whose lease expired; how many were recovered."""
    now = wall_clock()
    expired = and_(Message.lease_until < now, Message.status.in_(("claimed", "sending")))
    with relay.sessions.begin() as session:
        rows = session.execute(
            select(Message.message_id, Message.status, Message.transport)
            .where(expired)
            .with_for_update(skip_locked=True)
        ).all()
        back = [m for m, status, kind in rows
                if status == "claimed" or kind in IDEMPOTENT_TRANSPORTS]  # fmt: skip
        flagged = [m for m, status, kind in rows
                   if status == "sending" and kind not in IDEMPOTENT_TRANSPORTS]  # fmt: skip
        _set(session, back, status="pending", claimed_by=None, lease_until=None)
        _set(session, flagged, status="reconcile", flagged_at=now, claimed_by=None,
             lease_until=None,
             last_error="the process died while the message was being sent: it may or may not "
             "have gone out")  # fmt: skip
        audit.record(session, now, relay.process, "message", back, "recovered")
        audit.record(session, now, relay.process, "message", flagged, "reconcile")
    return len(rows)


def send_due(relay: Relay, until: datetime | None = None) -> SendReport:
    """Send every message due by ``until`` (default: now, on the wall clock)."""
    total = SendReport()
    while True:
        ids = _claim(relay, until)
        if not ids:
            return total
        total.add(_send_batch(relay, ids, until))


def _claim(relay: Relay, until: datetime | None) -> list[str]:
    now = wall_clock()
    horizon = until or now
    earlier = aliased(Message)
    blocked_by_earlier = (
        select(earlier.message_id)
        .where(
            earlier.customer_id == Message.customer_id,
            earlier.status.in_(UNFINISHED),
            or_(
                earlier.send_at < Message.send_at,
                and_(earlier.send_at == Message.send_at, earlier.message_id < Message.message_id),
            ),
        )
        .exists()
    )
    query = (
        select(Message.message_id)
        .where(
            Message.status == "pending",
            func.coalesce(Message.next_attempt_at, Message.send_at) <= horizon,
            ~blocked_by_earlier,
        )
        .order_by(Message.send_at, Message.message_id)
        .limit(relay.settings.dispatcher.send_batch_size)
        .with_for_update(skip_locked=True, of=Message)
    )
    lease = now + timedelta(seconds=relay.settings.dispatcher.lease_seconds)
    with relay.sessions.begin() as session:
        ids = list(session.scalars(query))
        session.execute(
            update(Message)
            .where(Message.message_id.in_(ids))
            .values(status="claimed", claimed_by=relay.process, lease_until=lease, claimed_at=now)
        )
        audit.record(session, now, relay.process, "message", ids, "claimed")
    return ids


def _send_batch(relay: Relay, ids: list[str], until: datetime | None) -> SendReport:
    report = SendReport(claimed=len(ids))
    with relay.sessions() as session:
        messages = pd.DataFrame(
            session.execute(
                select(Message.message_id, Message.invoice_id, Message.channel, Message.tone,
                       Message.offer, Message.language, Message.stage, Message.transport,
                       Message.send_at, Message.send_before, Message.next_attempt_at,
                       Message.attempts)
                .where(Message.message_id.in_(ids)).order_by(Message.send_at, Message.message_id)
            ).all(),
            columns=["message_id", "invoice_id", "channel", "tone", "offer", "language", "stage",
                     "transport", "send_at", "send_before", "next_attempt_at", "attempts"],
        )  # fmt: skip
        facts = situation(session, messages["invoice_id"].tolist())
        instants = _instants(messages, until)
        before = pd.DatetimeIndex(pd.to_datetime(messages["send_before"], utc=True))
        broken = broken_rules(
            session, facts, messages["channel"].tolist(), messages["tone"].tolist(),
            messages["offer"].tolist(), instants, relay.settings.policy.guardrails, before,
        )  # fmt: skip
    finished: list[Change] = []
    fact_rows = facts.to_dict("records")
    for i, message in enumerate(messages.to_dict("records")):
        at = instants[i].to_pydatetime()
        if broken[i]:
            report.blocked += 1
            codes = ",".join(broken[i])
            finished.append((message["message_id"], {"status": "blocked", "blocked_at": at,
                             "reasons": codes}, "blocked", {"reasons": codes}))  # fmt: skip
            continue
        change = _deliver(relay, message, fact_rows[i], at, report)
        finished.append(change)
    with relay.sessions.begin() as session:
        _finish(session, relay, finished)
    return report


def _deliver(
    relay: Relay, message: dict, fact: Mapping[str, Any], at: datetime, report: SendReport
) -> Change:
    """Render and send one message; the change to record (SMTP's is recorded at once)."""
    message_id = message["message_id"]
    try:
        envelope = _envelope(relay, message, fact, at)
    except TemplateError as error:
        report.parked += 1
        return message_id, {"status": "parked", "parked_at": at, "last_error": str(error)}, \
            "parked", {"error": str(error)}  # fmt: skip
    transport = relay.transports[message["channel"]]
    change: Change
    if not transport.idempotent:
        with relay.sessions.begin() as session:
            _finish(session, relay, [(message_id, {"status": "sending", "sending_at": at},
                                      "sending", {})])  # fmt: skip
    try:
        reference = transport.send(envelope)
    except OutcomeUnknown as error:
        report.reconcile += 1
        change = (message_id, {"status": "reconcile", "flagged_at": at, "last_error": str(error)},
                  "reconcile", {"error": str(error)})  # fmt: skip
    except SendFailed as error:
        change = _failed(relay, message, at, error, report)
    else:
        report.sent += 1
        change = (message_id, {"status": "sent", "sent_at": at, "provider_ref": reference[:256]},
                  "sent", {"transport": transport.name})  # fmt: skip
    if not transport.idempotent:
        with relay.sessions.begin() as session:
            _finish(session, relay, [change])
        return message_id, {}, "", {}
    return change


def _failed(
    relay: Relay, message: dict, at: datetime, error: SendFailed, report: SendReport
) -> Change:
    pauses = relay.settings.dispatcher.retry_pauses_seconds
    attempts = int(message["attempts"]) + 1
    if error.retry and attempts <= len(pauses):
        report.retried += 1
        again = at + timedelta(seconds=pauses[attempts - 1])
        return message["message_id"], {"status": "pending", "attempts": attempts,
                "next_attempt_at": again, "last_error": str(error)}, "retry", \
            {"error": str(error), "next_attempt_at": again}  # fmt: skip
    report.parked += 1
    return message["message_id"], {"status": "parked", "attempts": attempts, "parked_at": at,
            "last_error": str(error)}, "parked", {"error": str(error)}  # fmt: skip


def _finish(session: Session, relay: Relay, changes: Sequence[Change]) -> None:
    """Record the changes of the messages this process still owns (a lease may have been
    taken): one UPDATE per set of columns for the whole batch, one audit insert."""
    changes = [change for change in changes if change[1]]
    if not changes:
        return
    owned = set(session.scalars(
        select(Message.message_id)
        .where(Message.message_id.in_([change[0] for change in changes]),
               Message.claimed_by == relay.process, Message.status.in_(OWNED))
        .with_for_update()
    ))  # fmt: skip
    mine = [change for change in changes if change[0] in owned]
    shapes: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for message_id, values, _, _ in mine:
        if values.get("status") != "sending":
            values = {**values, "claimed_by": None, "lease_until": None}
        row = {"key": message_id, **{f"new_{column}": value for column, value in values.items()}}
        shapes.setdefault(tuple(sorted(values)), []).append(row)
    table = Message.__table__
    for columns, rows in shapes.items():
        session.execute(
            update(table)
            .where(table.c.message_id == bindparam("key"), table.c.claimed_by == relay.process,
                   or_(*(table.c.status == status for status in OWNED)))  # no IN: executemany
            .values({column: bindparam(f"new_{column}") for column in columns}),
            rows,
        )  # fmt: skip
    audit.record(session, wall_clock(), relay.process, "message", [c[0] for c in mine],
                 [c[2] for c in mine], [c[3] for c in mine])  # fmt: skip


def _set(session: Session, ids: Sequence[str], **values: object) -> None:
    if ids:
        session.execute(update(Message).where(Message.message_id.in_(list(ids))).values(**values))


def _instants(messages: pd.DataFrame, until: datetime | None) -> pd.DatetimeIndex:
    """When each message is sent: now, or (replaying up to ``until``) its scheduled instant."""
    if until is None:
        return pd.DatetimeIndex([wall_clock()] * len(messages))
    scheduled = pd.to_datetime(messages["send_at"], utc=True)
    retry = pd.to_datetime(messages["next_attempt_at"], utc=True)
    return pd.DatetimeIndex(np.maximum(scheduled, retry.fillna(scheduled)))


def _envelope(relay: Relay, message: dict, fact: Mapping[str, Any], at: datetime) -> Envelope:
    channel = message["channel"]
    recipient = fact[RECIPIENT_COLUMN[channel]]
    if recipient is None or recipient == "":
        raise TemplateError(
            f"customer {fact['customer_id']}: no {RECIPIENT_COLUMN[channel]} for a {channel} "
            f"reminder (invoice {fact['invoice_id']})"
        )
    facts = _facts(relay, message, fact, at)
    rendered = relay.renderer.render(facts)
    return Envelope(
        message_id=message["message_id"], channel=channel, recipient=str(recipient),
        customer_id=str(fact["customer_id"]), invoice_id=str(fact["invoice_id"]),
        language=message["language"], subject=rendered.subject, text=rendered.text,
        html=rendered.html, link=facts.payment_link,
    )  # fmt: skip


def _facts(relay: Relay, message: dict, fact: Mapping[str, Any], at: datetime) -> MessageFacts:
    terms, currency = relay.workflow.offers, relay.workflow.currency
    language = message["language"]
    due: date = fact["due_date"]
    today = at.date()
    amount = float(fact["amount"])
    return MessageFacts(
        channel=message["channel"], tone=message["tone"], language=language,
        offer=message["offer"], invoice_id=str(fact["invoice_id"]),
        customer_name=str(fact["name"]), amount=format_amount(amount, currency, language),
        due_date=due.isoformat(), days_overdue=max((today - due).days, 0), stage=message["stage"],
        **relay.links.message_links(message["message_id"], at), today=today.isoformat(),
        extension_days=terms.extension_days,
        extended_date=(max(due, today) + timedelta(days=terms.extension_days)).isoformat(),
        instalments=terms.instalments,
        instalment_amount=format_amount(amount / terms.instalments, currency, language),
    )  # fmt: skip
