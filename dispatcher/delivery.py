"""One message's delivery: its envelope (rendered, addressed) and the change its send records.

The outbox relay (:mod:`dispatcher.outbox`) decides *when* and in which thread a message is sent;
this module says *what* is sent and how the transport's answer becomes the message's next state:
``sent``, ``pending`` again after a pause (``retry_pauses_seconds``), ``parked`` once the retries
are spent, or ``reconcile`` when the send may or may not have happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dispatcher.channels.base import Envelope, OutcomeUnknown, SendFailed
from dispatcher.rendering import MessageFacts, TemplateError, format_amount

if TYPE_CHECKING:
    from dispatcher.outbox import Relay, SendReport

RECIPIENT_COLUMN = {"email": "email", "sms": "phone", "call": "phone", "push": "customer_id",
                    "letter": "name"}  # fmt: skip

Change = tuple[str, dict[str, object], str, dict[str, object]]
"""A message id, the column values to set, the audit event and its detail."""


def blocked(message_id: str, at: datetime, rules: tuple[str, ...]) -> Change:
    codes = ",".join(rules)
    return message_id, {"status": "blocked", "blocked_at": at, "reasons": codes}, "blocked", \
        {"reasons": codes}  # fmt: skip


def parked(message_id: str, at: datetime, error: str) -> Change:
    return message_id, {"status": "parked", "parked_at": at, "last_error": error}, "parked", \
        {"error": error}  # fmt: skip


def outcome(
    relay: Relay, message: Mapping[str, Any], at: datetime, send: Callable[[], str],
    report: SendReport,
) -> Change:  # fmt: skip
    """Call ``send`` (the transport's send, or a pending result of it) and classify its answer."""
    message_id = message["message_id"]
    try:
        reference = send()
    except OutcomeUnknown as error:
        report.reconcile += 1
        return message_id, {"status": "reconcile", "flagged_at": at, "last_error": str(error)}, \
            "reconcile", {"error": str(error)}  # fmt: skip
    except SendFailed as error:
        return failed(relay, message, at, error, report)
    report.sent += 1
    transport = relay.transports[message["channel"]].name
    return message_id, {"status": "sent", "sent_at": at, "provider_ref": reference[:256]}, \
        "sent", {"transport": transport}  # fmt: skip


def failed(
    relay: Relay, message: Mapping[str, Any], at: datetime, error: SendFailed, report: SendReport
) -> Change:
    """Pending again after the next pause while retries are left, parked after the last."""
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


def envelope(
    relay: Relay, message: Mapping[str, Any], fact: Mapping[str, Any], at: datetime
) -> Envelope:
    """The rendered, addressed message; :class:`TemplateError` when it cannot be made."""
    channel = message["channel"]
    recipient = fact[RECIPIENT_COLUMN[channel]]
    if recipient is None or recipient == "":
        raise TemplateError(
            f"customer {fact['customer_id']}: no {RECIPIENT_COLUMN[channel]} for a {channel} "
            f"reminder (invoice {fact['invoice_id']})"
        )
    facts = message_facts(relay, message, fact, at)
    rendered = relay.renderer.render(facts)
    return Envelope(
        message_id=message["message_id"], channel=channel, recipient=str(recipient),
        customer_id=str(fact["customer_id"]), invoice_id=str(fact["invoice_id"]),
        language=message["language"], subject=rendered.subject, text=rendered.text,
        html=rendered.html, link=facts.payment_link,
    )  # fmt: skip


def message_facts(
    relay: Relay, message: Mapping[str, Any], fact: Mapping[str, Any], at: datetime
) -> MessageFacts:
    """What the message's template may use, at the send instant ``at``."""
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
