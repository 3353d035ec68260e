"""The outbox relay: claim due messages, re-check, render, send, record; recover after crashes.

Exactly once where the channel allows it, never silently lost:

1. *claim*: due ``pending`` messages are taken under a lease (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL) and marked ``claimed`` in their own transaction, which also reads what the
   re-check needs. A customer's messages go out in send-time order: a message waits while an
   earlier one of the same customer is unfinished (claimed or in flight included), so the contact
   caps count every message before it, even across processes.
2. *re-check* the guardrails at the send instant (paid, opted out, quiet hours, caps, disputes):
   a broken rule makes the message ``blocked`` with the codes.
3. *render* it: a template error parks this message with the error, the batch goes on.
4. *send*: on a transport without idempotency (SMTP) the message is first marked ``sending``
   (committed), then sent and recorded, one at a time on one connection. Idempotent transports
   (files, webhooks with their key, letters) send from :data:`SEND_THREADS` threads while the
   next batch is claimed and rendered; their answers are recorded a batch later. The answer makes
   a message ``sent``, ``pending`` again with a pause (``retry_pauses_seconds``), or ``parked``
   with the error once the retries are spent (see :mod:`dispatcher.delivery`).
5. *recover*: a lease that expired means its process died. ``claimed`` messages go back to
   ``pending`` (never handed over); a ``sending`` message is re-sent with its idempotency key
   when its transport honours one, and flagged ``reconcile`` otherwise (it may have gone out).
   A message in flight on an idempotent transport is still ``claimed``: re-sent after a crash.

Instants: by default the wall clock. Given ``until`` (a replay of the past, as the simulated
cycles and the tests run), every message is sent at its own scheduled instant up to ``until``.
Leases always use the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Select, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from dispatcher import audit
from dispatcher.channels.base import Envelope, Transport
from dispatcher.delivery import Change, blocked, envelope, outcome, parked
from dispatcher.links import LinkMaker
from dispatcher.recheck import broken_rules, situation
from dispatcher.rendering import Renderer, TemplateError
from dispatcher.stages import Workflow
from dispatcher.state import Message
from paynudge.config import Settings

IDEMPOTENT_TRANSPORTS = frozenset({"dry_run", "webhook", "pdf"})
"""Transports on which sending a message twice delivers it once (see channels.base)."""
UNFINISHED: tuple[str, ...] = ("pending", "claimed", "sending")
OWNED: tuple[str, ...] = ("claimed", "sending")
"""Statuses in which a message belongs to the process that claimed it."""
SEND_THREADS = 4
"""Threads sending on idempotent transports: they wait on files and providers while the main
thread renders (one outbox folder serialises file creation, so more threads gain nothing there;
webhooks gain from a few requests in flight)."""
MESSAGE_COLUMNS = (
    Message.message_id, Message.invoice_id, Message.channel, Message.tone, Message.offer,
    Message.language, Message.stage, Message.send_at, Message.send_before,
    Message.next_attempt_at, Message.attempts,
)  # fmt: skip


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


@dataclass(frozen=True)
class ClaimedBatch:
    """Claimed messages (in send-time order) with their facts, broken rules and send instants."""

    messages: list[dict[str, Any]]
    facts: list[dict[str, Any]]
    broken: list[tuple[str, ...]]
    instants: list[datetime]


@dataclass
class InFlight:
    """A batch whose idempotent sends are running: the changes known and the sends pending."""

    changes: list[Change] = field(default_factory=list)
    sends: list[tuple[dict[str, Any], datetime, Future[str]]] = field(default_factory=list)


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


class Sender:
    """A sending pass taken a batch at a time (:meth:`step`), so that a dispatcher pass can
    send while it waits for decisions; :func:`send_due` runs one to the end.

    One batch is in flight while the next is claimed and rendered; an empty claim with a batch
    in flight records it first (its customers' later messages may be due)."""

    def __init__(self, relay: Relay, until: datetime | None, pool: ThreadPoolExecutor) -> None:
        self.relay, self.until, self.pool = relay, until, pool
        self.total = SendReport()
        self._in_flight: InFlight | None = None

    def step(self) -> bool:
        """Claim and start the next batch, recording the one in flight; False when nothing was
        due and nothing was in flight (the pass is done for now)."""
        batch = _claim(self.relay, self.until)
        if batch is None and self._in_flight is None:
            return False
        started = _start(self.relay, batch, self.pool, self.total) if batch is not None else None
        if self._in_flight is not None:
            _record(self.relay, self._in_flight, self.total)
        self._in_flight = started
        return True


@contextmanager
def sending(relay: Relay, until: datetime | None = None) -> Iterator[Sender]:
    """A :class:`Sender` with its thread pool (templates read once per pass); leaving the block
    finishes the pass (every batch recorded)."""
    relay.renderer.refresh()
    with ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="paynudge-send") as pool:
        sender = Sender(relay, until, pool)
        yield sender
        while sender.step():
            pass


def send_due(relay: Relay, until: datetime | None = None) -> SendReport:
    """Send every message due by ``until`` (default: now, on the wall clock)."""
    with sending(relay, until) as sender:
        pass
    return sender.total


def _due(relay: Relay, horizon: datetime) -> Select[Any]:
    """The next due messages not waiting for an earlier unfinished one of their customer."""
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
    return (
        select(*MESSAGE_COLUMNS)
        .where(
            Message.status == "pending",
            func.coalesce(Message.next_attempt_at, Message.send_at) <= horizon,
            ~blocked_by_earlier,
        )
        .order_by(Message.send_at, Message.message_id)
        .limit(relay.settings.dispatcher.send_batch_size)
        .with_for_update(skip_locked=True, of=Message)
    )


def _claim(relay: Relay, until: datetime | None) -> ClaimedBatch | None:
    """Claim the next batch and read what its re-check needs, in one transaction."""
    now = wall_clock()
    lease = now + timedelta(seconds=relay.settings.dispatcher.lease_seconds)
    with relay.sessions.begin() as session:
        messages = [row._asdict() for row in session.execute(_due(relay, until or now))]
        if not messages:
            return None
        ids = [message["message_id"] for message in messages]
        session.execute(
            update(Message)
            .where(Message.message_id.in_(ids))
            .values(status="claimed", claimed_by=relay.process, lease_until=lease, claimed_at=now)
        )
        audit.record(session, now, relay.process, "message", ids, "claimed")
        return _recheck(relay, session, messages, until)


def _recheck(
    relay: Relay, session: Session, messages: list[dict[str, Any]], until: datetime | None
) -> ClaimedBatch:
    facts = situation(session, [message["invoice_id"] for message in messages])
    instants = _instants(messages, until)
    before = _column_instants(messages, "send_before")
    broken = broken_rules(
        session, facts, [m["channel"] for m in messages], [m["tone"] for m in messages],
        [m["offer"] for m in messages], instants, relay.settings.policy.guardrails, before,
    )  # fmt: skip
    return ClaimedBatch(messages, facts.to_dict("records"), broken, list(instants.to_pydatetime()))


def _start(
    relay: Relay, batch: ClaimedBatch, pool: ThreadPoolExecutor, report: SendReport
) -> InFlight:
    """Block, render and send the batch: SMTP at once, idempotent transports in ``pool``."""
    report.claimed += len(batch.messages)
    flight = InFlight()
    for message, fact, rules, at in zip(
        batch.messages, batch.facts, batch.broken, batch.instants, strict=True
    ):
        if rules:
            report.blocked += 1
            flight.changes.append(blocked(message["message_id"], at, rules))
            continue
        try:
            ready = envelope(relay, message, fact, at)
        except TemplateError as error:
            report.parked += 1
            flight.changes.append(parked(message["message_id"], at, str(error)))
            continue
        transport = relay.transports[message["channel"]]
        if transport.idempotent:
            flight.sends.append((message, at, pool.submit(transport.send, ready)))
        else:
            _send_unrepeatable(relay, message, at, transport, ready, report)
    return flight


def _send_unrepeatable(
    relay: Relay, message: dict[str, Any], at: datetime, transport: Transport, ready: Envelope,
    report: SendReport,
) -> None:  # fmt: skip
    """SMTP: ``sending`` committed before the exchange, its outcome committed right after."""
    with relay.sessions.begin() as session:
        _finish(session, relay, [(message["message_id"], {"status": "sending", "sending_at": at},
                                  "sending", {})])  # fmt: skip
    change = outcome(relay, message, at, lambda: transport.send(ready), report)
    with relay.sessions.begin() as session:
        _finish(session, relay, [change])


def _record(relay: Relay, flight: InFlight, report: SendReport) -> None:
    """Wait for the batch's sends and record every change of it in one transaction."""
    changes = flight.changes + [
        outcome(relay, message, at, sending.result, report) for message, at, sending in flight.sends
    ]
    with relay.sessions.begin() as session:
        _finish(session, relay, changes)


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


def _instants(messages: list[dict[str, Any]], until: datetime | None) -> pd.DatetimeIndex:
    """When each message is sent: now, or (replaying up to ``until``) its scheduled instant."""
    if until is None:
        return pd.DatetimeIndex([wall_clock()] * len(messages))
    scheduled = _column_instants(messages, "send_at")
    retry = _column_instants(messages, "next_attempt_at")
    return scheduled.where(~(retry > scheduled), retry)


def _column_instants(messages: list[dict[str, Any]], column: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime([m[column] for m in messages], utc=True))
