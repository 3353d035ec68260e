"""Links in reminders: tracked links on the message id, and the signed payment page link.

A message shows links of the inbound app (:mod:`dispatcher.inbound`), each a token of
:mod:`dispatcher.tokens` on the message id: the click link (``/c/<token>``, shown as the
message's ``payment_link``: the app records the click and redirects to the payment page), the
open pixel of HTML e-mails (``/o/<token>``) and one-click unsubscribe (``/u/<token>``).

The payment page link itself (where the click redirects) carries the invoice id, an expiry and
an HMAC-SHA256 signature (truncated to 128 bits, base64url) so the payment page can trust the
invoice id without a login and nobody can make a link for an invoice they guessed.
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
    tokens: TokenSigner

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
            tokens=TokenSigner.from_settings(settings),
        )

    def message_links(self, message_id: str, now: datetime) -> dict[str, str]:
        """The links a message shows (:class:`dispatcher.rendering.MessageFacts` fields): the
        tracked payment link (a click token), the open pixel and the unsubscribe link."""
        return {
            "payment_link": self.tokens.link(self.base_url, "click", message_id, now),
            "open_pixel": self.tokens.link(self.base_url, "open", message_id, now),
            "unsubscribe_link": self.unsubscribe_link(message_id, now),
        }

    def payment_link(self, invoice_id: str, now: datetime) -> str:
        """The payment page of ``invoice_id`` (where a click on a message's link lands)."""
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
        return self.tokens.link(self.base_url, "unsubscribe", message_id, now)


def _sign(key: bytes, invoice_id: str, expires: int) -> str:
    digest = hmac.new(key, f"{invoice_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).rstrip(b"=").decode("ascii")
