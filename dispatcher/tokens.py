"""Signed, expiring, URL-safe tokens for the open pixel, the payment-link click and unsubscribe.

A token is ``v1.<payload>.<signature>`` in base64url without padding. The payload names the
purpose, the expiry (Unix seconds) and the subject (a message id: it says which message was
opened or clicked, and which customer and channel to unsubscribe). The signature is
HMAC-SHA256 of the payload under a key derived per purpose from the secret, so a token minted
for one purpose never verifies for another, even if the purpose check were forgotten. Ids in
links are never trusted on their own: without the secret nobody can mint a token for a
message id they guessed.

Verification compares signatures in constant time and, when a token is refused, says why:
``malformed``, ``bad_signature``, ``wrong_purpose`` or ``expired``. Retired secrets
(``dispatcher.previous_link_secrets``) still verify, so keys can be rotated without breaking the
links already sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from paynudge.config import Settings
from paynudge.errors import ConfigError, PayNudgeError

PURPOSES: tuple[str, ...] = ("open", "click", "unsubscribe")
"""What a token may be used for: the open pixel, the click redirect, one-click unsubscribe."""

ROUTES: Mapping[str, str] = {"open": "o", "click": "c", "unsubscribe": "u"}
"""Path segment of each purpose under the inbound app's base URL."""

VERSION = "v1"
MIN_SECRET_CHARS = 32
MAX_TOKEN_CHARS = 1024
"""Longer input is refused before any decoding (links are short; this bounds the work)."""
SECRET_FILE = "token_secret"
_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

RefusalReason = Literal["malformed", "bad_signature", "wrong_purpose", "expired"]


class TokenError(PayNudgeError):
    """A token was refused; ``reason`` says why (the message adds the detail)."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(f"token refused ({reason}): {detail}")
        self.reason: RefusalReason = reason


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    purpose: str
    subject: str
    expires_at: datetime


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or any(c not in _B64_ALPHABET for c in text):
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(raw) != text:
        raise ValueError("not canonical base64url")  # one spelling per token: no malleability
    return raw


def _purpose_key(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, b"paynudge-token/" + purpose.encode(), hashlib.sha256).digest()


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        expected = ", ".join(PURPOSES)
        raise PayNudgeError(f"token purpose: expected one of {expected}, found {purpose!r}")


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise PayNudgeError(f"token clock: expected a time-zone aware instant, found {now!r}")
    return now.astimezone(UTC)


class TokenSigner:
    """Mints and verifies tokens with ``secret`` (and accepts ``previous_secrets``)."""

    def __init__(
        self,
        secret: bytes,
        ttl_days: Mapping[str, float],
        previous_secrets: Sequence[bytes] = (),
    ) -> None:
        for key in (secret, *previous_secrets):
            if len(key) < MIN_SECRET_CHARS:
                raise ConfigError(
                    f"dispatcher.link_secret: expected at least {MIN_SECRET_CHARS} characters, "
                    f"found {len(key)}"
                )
        missing = [purpose for purpose in PURPOSES if purpose not in ttl_days]
        if missing:
            raise ConfigError(f"dispatcher.token_ttl_days: expected a lifetime for {missing}")
        self.ttl_days = dict(ttl_days)
        self._keys = {
            purpose: [_purpose_key(key, purpose) for key in (secret, *previous_secrets)]
            for purpose in PURPOSES
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenSigner:
        """The signer of ``settings.dispatcher`` (a key under HOME when none is configured)."""
        options = settings.dispatcher
        if options.link_secret is not None:
            secret = options.link_secret.get_secret_value().encode()
        else:
            secret = local_secret(settings.home)
        previous = [s.get_secret_value().encode() for s in options.previous_link_secrets]
        return cls(secret, options.token_ttl_days, previous)

    def sign(self, purpose: str, subject: str, now: datetime) -> str:
        """A token for ``purpose`` on ``subject``, valid for the purpose's lifetime from ``now``."""
        _check_purpose(purpose)
        if not subject:
            raise PayNudgeError("token subject: expected a non-empty id")
        expires = _utc(now) + timedelta(days=self.ttl_days[purpose])
        payload = f"{purpose}:{int(expires.timestamp())}:{subject}".encode()
        signature = hmac.new(self._keys[purpose][0], payload, hashlib.sha256).digest()
        return f"{VERSION}.{_b64encode(payload)}.{_b64encode(signature)}"

    def verify(self, token: str, purpose: str, now: datetime) -> TokenClaims:
        """The claims of ``token`` if it is genuine, meant for ``purpose`` and not expired."""
        _check_purpose(purpose)
        claimed, expires, subject, payload, signature = _parse(token)
        keys = self._keys.get(claimed)
        if keys is None:
            raise TokenError("malformed", f"unknown purpose {claimed!r}")
        # every key is tried (no early exit), so timing does not reveal which one matched
        genuine = False
        for key in keys:
            expected = hmac.new(key, payload, hashlib.sha256).digest()
            genuine |= hmac.compare_digest(expected, signature)
        if not genuine:
            raise TokenError("bad_signature", "the signature does not match the content")
        if claimed != purpose:
            raise TokenError("wrong_purpose", f"made for {claimed!r}, used for {purpose!r}")
        expires_at = datetime.fromtimestamp(expires, UTC)
        if _utc(now) >= expires_at:
            raise TokenError("expired", f"expired at {expires_at:%Y-%m-%d %H:%M:%S} UTC")
        return TokenClaims(purpose=claimed, subject=subject, expires_at=expires_at)

    def link(self, base_url: str, purpose: str, subject: str, now: datetime) -> str:
        """The URL of the inbound app that accepts a fresh token for ``purpose`` on ``subject``."""
        _check_purpose(purpose)
        token = self.sign(purpose, subject, now)
        return f"{base_url.rstrip('/')}/{ROUTES[purpose]}/{token}"


def _parse(token: str) -> tuple[str, int, str, bytes, bytes]:
    """Purpose, expiry, subject, raw payload and signature of ``token``; refused if malformed."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise TokenError("malformed", f"expected a string of at most {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise TokenError("malformed", f"expected {VERSION}.<payload>.<signature>")
    try:
        payload, signature = _b64decode(parts[1]), _b64decode(parts[2])
        purpose, expires, subject = payload.decode("utf-8").split(":", 2)
        expiry = int(expires)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise TokenError("malformed", "the payload cannot be decoded") from None
    if not subject:
        raise TokenError("malformed", "the payload names no subject")
    return purpose, expiry, subject, payload, signature


def local_secret(home: Path) -> bytes:
    """The embedded default key: HOME/token_secret, created (owner-only) on first use."""
    path = home / SECRET_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        draft = home / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
        try:
            os.link(draft, path)  # atomic: a complete key or none; never overwrites
        except FileExistsError:
            pass  # another process made one first; everyone uses theirs
        finally:
            draft.unlink()
    secret = path.read_text().strip().encode()
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(f"{path}: expected a key of at least {MIN_SECRET_CHARS} characters")
    return secret
