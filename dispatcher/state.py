"""The dispatcher's durable state: the tables, as SQLAlchemy 2 declarative models.

Every instant is stored as naive UTC (:class:`UtcDateTime` converts on the way in and out), so
SQLite and PostgreSQL compare them the same way. The schema itself is created and changed only by
the Alembic migrations in ``dispatcher/migrations``; these models must match them (a test checks).

A *reminder* is the plan for one invoice at one stage (the decision, or why there is none); its
*message* is the transactional-outbox row written with it, whose id is the idempotency key of the
(invoice, stage) pair that every channel passes on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from paynudge.vocabulary import CHANNELS

ID = 128
"""Longest id we store (the decision service's limit)."""

MESSAGE_STATUSES: tuple[str, ...] = (
    "pending",  # written, waiting for its send time (or its next attempt)
    "claimed",  # taken by a dispatcher process under a lease, not yet handed to a channel
    "sending",  # handed to a channel without idempotency: the outcome is unknown until marked
    "sent",  # the channel accepted it
    "blocked",  # a guardrail re-checked at send time forbids it (paid, opted out, cap, ...)
    "parked",  # failed for good (template error, refused, retries exhausted): error kept
    "reconcile",  # may or may not have been sent (crash during a non-idempotent send)
)
FINAL_STATUSES: tuple[str, ...] = ("sent", "blocked", "parked", "reconcile")
REMINDER_OUTCOMES: tuple[str, ...] = ("scheduled", "no_contact", "blocked", "case_task")


class UtcDateTime(TypeDecorator[datetime]):
    """A time-zone-aware instant stored as naive UTC; naive input is refused."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"expected a time-zone-aware instant, found {value!r}")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Customer(Base):
    """A customer as loaded (contact details, zone, language, consent and opt-out flags)."""

    __tablename__ = "customers"

    customer_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(256))
    phone: Mapped[str | None] = mapped_column(String(64))
    consent_email: Mapped[bool] = mapped_column(Boolean)
    consent_sms: Mapped[bool] = mapped_column(Boolean)
    consent_push: Mapped[bool] = mapped_column(Boolean)
    consent_call: Mapped[bool] = mapped_column(Boolean)
    consent_letter: Mapped[bool] = mapped_column(Boolean)
    opted_out_email: Mapped[bool] = mapped_column(Boolean)
    opted_out_sms: Mapped[bool] = mapped_column(Boolean)
    opted_out_push: Mapped[bool] = mapped_column(Boolean)
    opted_out_call: Mapped[bool] = mapped_column(Boolean)
    opted_out_letter: Mapped[bool] = mapped_column(Boolean)


class Invoice(Base):
    """An invoice with what the workflow needs: when it was settled, disputes, the next stage."""

    __tablename__ = "invoices"
    __table_args__ = (Index("ix_invoices_planning_order", "next_stage_at", "invoice_id"),)

    invoice_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(ID), index=True)
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[float] = mapped_column(Float)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the payments reached the amount (None: open)."""
    dispute_opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    dispute_resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_stage: Mapped[str | None] = mapped_column(String(32))
    next_stage_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """Start of the next stage to plan (None: every stage planned)."""


class Payment(Base):
    __tablename__ = "payments"

    payment_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(ID), index=True)
    customer_id: Mapped[str] = mapped_column(String(ID))
    paid_at: Mapped[datetime] = mapped_column(UtcDateTime)
    amount: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(32))


class Reminder(Base):
    """The plan for one invoice at one stage: the service's decision, or why there is none."""

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("invoice_id", "stage"),)

    reminder_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(ID))
    customer_id: Mapped[str] = mapped_column(String(ID), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    planned_at: Mapped[datetime] = mapped_column(UtcDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    decision_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    propensity: Mapped[float | None] = mapped_column(Float)
    send_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    policy_version: Mapped[str | None] = mapped_column(String(128))
    reasons: Mapped[str] = mapped_column(Text, default="")
    """Guardrail codes (comma-separated): the service's, then the local re-check's."""


class Message(Base):
    """The transactional outbox: one row per reminder to send, with every state change's time."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("invoice_id", "stage"),
        Index("ix_messages_due", "status", "send_at", "message_id"),
        Index("ix_messages_customer_order", "customer_id", "status", "send_at"),
    )

    message_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    """The idempotency key of (invoice, stage)."""
    invoice_id: Mapped[str] = mapped_column(String(ID))
    customer_id: Mapped[str] = mapped_column(String(ID))
    stage: Mapped[str] = mapped_column(String(32))
    decision_id: Mapped[str] = mapped_column(String(64))
    propensity: Mapped[float] = mapped_column(Float)
    channel: Mapped[str] = mapped_column(String(16))
    tone: Mapped[str] = mapped_column(String(16))
    offer: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    template: Mapped[str] = mapped_column(String(256))
    transport: Mapped[str] = mapped_column(String(16))
    send_at: Mapped[datetime] = mapped_column(UtcDateTime)
    send_before: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[str] = mapped_column(Text, default="")
    provider_ref: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sending_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the channel accepted it (the send instant on the dispatcher's clock)."""
    blocked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    parked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    flagged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Suppression(Base):
    """A channel a customer must not be contacted on from ``since`` (opt-outs, bounces)."""

    __tablename__ = "suppressions"

    customer_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(64))


class CaseTask(Base):
    """Work for a case manager (opened at the final stage instead of another reminder)."""

    __tablename__ = "case_tasks"
    __table_args__ = (UniqueConstraint("invoice_id", "stage"),)

    task_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(ID))
    customer_id: Mapped[str] = mapped_column(String(ID), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """Append-only history: every state change of reminders, messages and case tasks."""

    __tablename__ = "audit_log"

    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    process: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[str] = mapped_column(String(ID), index=True)
    event: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")


class WebhookEvent(Base):
    """Every inbound webhook applied, by the provider's event id: a replay is recognised."""

    __tablename__ = "webhook_events"

    event_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the body: the same id with another body is refused."""
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MessageEvent(Base):
    """What happened to a sent message (delivered, bounced, opened, clicked, replied); first
    instant of each kind."""

    __tablename__ = "message_events"

    message_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(32))


class Reply(Base):
    """An inbound SMS or e-mail reply, with its classification."""

    __tablename__ = "replies"

    reply_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(ID), index=True)
    invoice_id: Mapped[str | None] = mapped_column(String(ID))
    message_id: Mapped[str | None] = mapped_column(String(ID))
    channel: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    promised_date: Mapped[date | None] = mapped_column(Date)
    matched_rule: Mapped[str] = mapped_column(String(64))


class Promise(Base):
    """A pause of an invoice's reminders until a date; kept if paid by then, else broken."""

    __tablename__ = "promises"

    promise_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(ID), index=True)
    customer_id: Mapped[str] = mapped_column(String(ID))
    kind: Mapped[str] = mapped_column(String(32))
    """promise_to_pay or paid_already."""
    made_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resume_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    status: Mapped[str] = mapped_column(String(16))
    """pending, kept or broken."""
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Hardship(Base):
    """A customer's latest declared financial hardship (reminders switch to offers)."""

    __tablename__ = "hardships"

    customer_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    declared_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Outcome(Base):
    """The feedback outbox: one outcome of one decision, kept until /feedback accepted it."""

    __tablename__ = "outcomes"
    __table_args__ = (Index("ix_outcomes_unposted", "posted_at", "decision_id"),)

    outcome_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    """uuid5 of (decision, kind): an outcome is recorded once."""
    decision_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    value: Mapped[bool] = mapped_column(Boolean)
    amount: Mapped[float | None] = mapped_column(Float)
    posted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


CONSENT_COLUMNS = tuple(f"consent_{channel}" for channel in CHANNELS)
OPT_OUT_COLUMNS = tuple(f"opted_out_{channel}" for channel in CHANNELS)
