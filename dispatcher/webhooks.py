"""Authenticating inbound webhooks (HMAC signatures) and applying each event at most once.

A provider signs the raw body with the shared key: the header
``PayNudge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``. A call is refused
when the header is missing or malformed, the signature does not match under the current or a
retired key, or its instant is further than ``webhook_tolerance_seconds`` from now (a captured
call replayed later). Every event names its ``event_id``: it is recorded in the same
transaction as its effect, so a replay within the window changes nothing, and the same id with
another body is refused as a conflict.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.state import WebhookEvent
from dispatcher.tokens import local_secret
from paynudge.config import Settings
from paynudge.errors import PayNudgeError

SIGNATURE_HEADER = "PayNudge-Signature"
SCHEME = "v1"
KEY_PURPOSE = b"paynudge-inbound-webhook"

Refusal = Literal["missing", "malformed", "bad_signature", "stale"]


class WebhookRefused(PayNudgeError):
    """A webhook that is not genuine (or too old); ``reason`` says why."""

    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(f"webhook refused ({reason}): {detail}")
        self.reason: Refusal = reason


class EventConflict(PayNudgeError):
    """An event id already applied, sent again with a different body."""


@dataclass(frozen=True)
class WebhookVerifier:
    """Checks signatures under the current key (and retired ones) within a time window."""

    keys: tuple[bytes, ...]
    tolerance_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookVerifier:
        options = settings.dispatcher
        if options.webhook_secret is not None:
            secrets = [options.webhook_secret.get_secret_value().encode()]
        else:
            secrets = [local_secret(settings.home)]
        secrets += [s.get_secret_value().encode() for s in options.previous_link_secrets]
        keys = tuple(hmac.new(s, KEY_PURPOSE, hashlib.sha256).digest() for s in secrets)
        return cls(keys, options.webhook_tolerance_seconds)

    def sign(self, body: bytes, at: datetime) -> str:
        """The signature header value a provider sends with ``body`` at ``at``."""
        stamp = int(at.timestamp())
        return f"t={stamp},{SCHEME}={_digest(self.keys[0], stamp, body)}"

    def verify(self, header: str | None, body: bytes, now: datetime) -> None:
        """Raise :class:`WebhookRefused` unless ``header`` signs ``body`` recently enough."""
        if not header:
            raise WebhookRefused("missing", f"expected a {SIGNATURE_HEADER} header")
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        stamp, given = parts.get("t", ""), parts.get(SCHEME, "")
        if not stamp.isdigit() or not given:
            raise WebhookRefused("malformed", f"expected t=<unix seconds>,{SCHEME}=<hex digest>")
        genuine = False
        for key in self.keys:  # every key is tried: timing does not reveal which one matched
            genuine |= hmac.compare_digest(_digest(key, int(stamp), body), given)
        if not genuine:
            raise WebhookRefused("bad_signature", "the signature does not match the body")
        age = abs(now.timestamp() - int(stamp))
        if age > self.tolerance_seconds:
            raise WebhookRefused(
                "stale", f"signed {age:.0f} s away from now (at most {self.tolerance_seconds:.0f})"
            )


def _digest(key: bytes, stamp: int, body: bytes) -> str:
    return hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


def claim_event(session: Session, event_id: str, source: str, body: bytes, now: datetime) -> bool:
    """Record ``event_id`` in the caller's transaction; False if it was applied already.

    Raises :class:`EventConflict` when the id was applied with another body.
    """
    digest = hashlib.sha256(body).hexdigest()
    known = session.scalar(
        select(WebhookEvent.digest).where(WebhookEvent.event_id == event_id).with_for_update()
    )
    if known is not None:
        if known != digest:
            raise EventConflict(
                f"event {event_id!r} was applied with another body: expected a new event id"
            )
        return False
    session.add(WebhookEvent(event_id=event_id, source=source, digest=digest, received_at=now))
    session.flush()
    return True
