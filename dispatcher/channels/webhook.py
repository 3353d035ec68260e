"""SMS, push and voice through one signed HTTP webhook, so any provider can be plugged in.

Each message is a JSON POST with the headers ``Idempotency-Key`` (the message id: a provider
that sees it twice delivers once), ``X-PayNudge-Timestamp`` and ``X-PayNudge-Signature``
(``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under the webhook secret). A 2xx or
409 (already have it) is delivered; 408, 429 and 5xx and network errors are retried; any other
4xx is final.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from dispatcher.channels.base import Envelope, SendFailed
from paynudge.config import WebhookSettings
from paynudge.errors import ConfigError

SIGNATURE_HEADER = "X-PayNudge-Signature"
TIMESTAMP_HEADER = "X-PayNudge-Timestamp"
KEY_HEADER = "Idempotency-Key"
RETRY_STATUSES = frozenset({408, 429})
ALREADY_HAVE_IT = 409


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value a provider checks (see the module docstring)."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookTransport:
    """``webhook``: POSTs each message to ``[dispatcher.webhook] url``."""

    name = "webhook"
    idempotent = True

    def __init__(self, settings: WebhookSettings, transport: httpx.BaseTransport | None = None):
        if not settings.url or settings.secret is None:
            raise ConfigError(
                "dispatcher.webhook: a webhook transport needs url and secret "
                "(PAYNUDGE_DISPATCHER__WEBHOOK__URL, PAYNUDGE_DISPATCHER__WEBHOOK__SECRET)"
            )
        self.url = settings.url
        self._secret = settings.secret.get_secret_value().encode()
        self._http = httpx.Client(timeout=settings.timeout_seconds, transport=transport)

    def send(self, envelope: Envelope) -> str:
        body = json.dumps(
            {
                "message_id": envelope.message_id,
                "channel": envelope.channel,
                "recipient": envelope.recipient,
                "customer_id": envelope.customer_id,
                "invoice_id": envelope.invoice_id,
                "language": envelope.language,
                "text": envelope.text,
                "link": envelope.link,
            },
            ensure_ascii=False,
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            KEY_HEADER: envelope.message_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self._secret, timestamp, body),
        }
        try:
            response = self._http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise SendFailed(f"webhook {self.url}: {type(error).__name__}", retry=True) from None
        status = response.status_code
        if status < 300 or status == ALREADY_HAVE_IT:
            return _reference(response) or envelope.message_id
        raise SendFailed(
            f"webhook {self.url}: {status} {response.text[:200]}",
            retry=status in RETRY_STATUSES or status >= 500,
        )

    def close(self) -> None:
        self._http.close()


def _reference(response: httpx.Response) -> str | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    reference = payload.get("id") if isinstance(payload, dict) else None
    return str(reference) if reference is not None else None
