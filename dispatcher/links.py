"""Links in reminders: a signed payment link per invoice and a one-click unsubscribe link.

The payment link carries the invoice id, an expiry and an HMAC-SHA256 signature (truncated to
128 bits, base64url) so the payment page can trust the invoice id without a login and nobody can
make a link for an invoice they guessed. The unsubscribe link is a token of
:mod:`dispatcher.tokens` on the message id (which names customer and channel).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from dispatcher.tokens import TokenSigner, local_secret
from paynudge.config import Settings

SIGNATURE_BYTES = 16
PAYMENT_ROUTE = "p"


@dataclass(frozen=True)
class LinkMaker:
    """Makes the links of one message; built once per process from the settings."""

    base_url: str
    key: bytes
    ttl: timedelta
    unsubscribe: TokenSigner

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkMaker:
        options = settings.dispatcher
        secret = (
            options.link_secret.get_secret_value().encode()
            if options.link_secret is not None
            else local_secret(settings.home)
        )
        key = hmac.new(secret, b"paynudge-payment-link", hashlib.sha256).digest()
        return cls(
            base_url=options.link_base_url.rstrip("/"),
            key=key,
            ttl=timedelta(days=options.link_ttl_days),
            unsubscribe=TokenSigner.from_settings(settings),
        )

    def payment_link(self, invoice_id: str, now: datetime) -> str:
        expires = int((now + self.ttl).timestamp())
        signature = _sign(self.key, invoice_id, expires)
        path = f"{self.base_url}/{PAYMENT_ROUTE}/{quote(invoice_id, safe='')}"
        return f"{path}?e={expires}&s={signature}"

    def verify_payment_link(
        self, invoice_id: str, expires: int, signature: str, now: datetime
    ) -> bool:
        """Whether a payment link's parts are genuine and not expired."""
        genuine = hmac.compare_digest(_sign(self.key, invoice_id, expires), signature)
        return genuine and now.timestamp() < expires

    def unsubscribe_link(self, message_id: str, now: datetime) -> str:
        return self.unsubscribe.link(self.base_url, "unsubscribe", message_id, now)


def _sign(key: bytes, invoice_id: str, expires: int) -> str:
    digest = hmac.new(key, f"{invoice_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).rstrip(b"=").decode("ascii")
