"""The interface every transport implements, and the three ways a send can fail.

A transport is *idempotent* when sending the same message (same idempotency key) twice delivers
it once: files named by the key, a provider that honours the ``Idempotency-Key`` header. After a
crash, the outbox re-sends an unfinished message on an idempotent transport and flags one on
any other (SMTP) for reconciliation instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from paynudge.errors import PayNudgeError


@dataclass(frozen=True)
class Envelope:
    """One rendered message, addressed, with its idempotency key."""

    message_id: str
    """The idempotency key of (invoice, stage)."""
    channel: str
    recipient: str
    """E-mail address, phone number, device (customer id) or postal name, by channel."""
    customer_id: str
    invoice_id: str
    language: str
    subject: str | None
    text: str
    html: str | None
    link: str | None = None
    """The tracked payment link (a click token): what a push notification opens when tapped;
    providers of other channels get it too (SMS and e-mail also show it in their text)."""


class SendFailed(PayNudgeError):
    """The transport did not take the message; ``retry`` says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class OutcomeUnknown(PayNudgeError):
    """The message may or may not have gone out (connection lost mid-send): reconcile by hand."""


class Transport(Protocol):
    name: str
    idempotent: bool

    def send(self, envelope: Envelope) -> str:
        """Send ``envelope``; the provider's reference. Raises SendFailed or OutcomeUnknown."""
        ...

    def close(self) -> None: ...
