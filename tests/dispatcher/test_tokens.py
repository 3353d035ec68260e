"""Signed link tokens: round trip, forgery, tampering, replay for another purpose, expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.tokens import PURPOSES, TokenError, TokenSigner, local_secret
from paynudge.config import Settings
from paynudge.errors import ConfigError, PayNudgeError

SECRET = b"k" * 40
OTHER_SECRET = b"q" * 40
TTL = {"open": 30.0, "click": 30.0, "unsubscribe": 365.0}
NOW = datetime(2025, 3, 30, 1, 30, tzinfo=UTC)


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(SECRET, TTL)


@pytest.mark.parametrize("purpose", PURPOSES)
def test_a_token_verifies_for_its_purpose_and_says_what_it_is_for(
    signer: TokenSigner, purpose: str
) -> None:
    token = signer.sign(purpose, "M0000000042", NOW)
    claims = signer.verify(token, purpose, NOW + timedelta(days=1))
    assert claims.purpose == purpose
    assert claims.subject == "M0000000042"
    assert claims.expires_at == NOW + timedelta(days=TTL[purpose])


def test_tokens_are_url_safe_and_carry_no_padding(signer: TokenSigner) -> None:
    token = signer.sign("click", "M1:with:colons/and?query=1", NOW)
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    assert signer.verify(token, "click", NOW).subject == "M1:with:colons/and?query=1"


def test_a_token_used_for_another_purpose_is_refused(signer: TokenSigner) -> None:
    token = signer.sign("open", "M1", NOW)
    with pytest.raises(TokenError, match="wrong_purpose") as refused:
        signer.verify(token, "unsubscribe", NOW)
    assert refused.value.reason == "wrong_purpose"


def test_a_token_signed_with_another_key_is_a_forgery(signer: TokenSigner) -> None:
    forged = TokenSigner(OTHER_SECRET, TTL).sign("unsubscribe", "M1", NOW)
    with pytest.raises(TokenError, match="bad_signature"):
        signer.verify(forged, "unsubscribe", NOW)


def test_a_guessed_id_cannot_be_turned_into_a_token(signer: TokenSigner) -> None:
    """Re-labelling a genuine token's payload with another purpose or subject breaks its MAC."""
    token = signer.sign("open", "M1", NOW)
    _, _, signature = token.split(".")
    for payload in (b"unsubscribe:9999999999:M1", b"open:9999999999:M2", b"open:9999999999:M1"):
        tampered = f"v1.{base64.urlsafe_b64encode(payload).rstrip(b'=').decode()}.{signature}"
        with pytest.raises(TokenError, match="bad_signature"):
            signer.verify(tampered, "open", NOW)


def test_a_mac_over_the_raw_secret_is_not_accepted(signer: TokenSigner) -> None:
    """Keys are derived per purpose: a MAC with the bare secret does not verify."""
    payload = b"open:9999999999:M1"
    mac = hmac.new(SECRET, payload, hashlib.sha256).digest()
    token = ".".join(
        ["v1", *(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in (payload, mac))]
    )
    with pytest.raises(TokenError, match="bad_signature"):
        signer.verify(token, "open", NOW)


def test_an_expired_token_is_refused_with_its_expiry(signer: TokenSigner) -> None:
    token = signer.sign("click", "M1", NOW)
    assert signer.verify(token, "click", NOW + timedelta(days=30, seconds=-1))
    with pytest.raises(TokenError, match=r"expired \(|expired at 2025-04-29 01:30:00 UTC"):
        signer.verify(token, "click", NOW + timedelta(days=30))


@pytest.mark.parametrize(
    "token",
    ["", "v1", "v1..", "v2.b3Blbjo5OTk5OTk5OTk5Ok0x.AAAA", "v1.!!!.AAAA", "v1.b3Blbg.AAAA",
     "v1.b3Blbjp4Ok0x.AAAA", "v1.b3Blbjo5OTk5OTk5OTk5Og.AAAA", "a" * 5000],
)  # fmt: skip
def test_malformed_tokens_are_refused_as_malformed(signer: TokenSigner, token: str) -> None:
    with pytest.raises(TokenError, match="malformed"):
        signer.verify(token, "open", NOW)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_no_random_text_verifies(text: str) -> None:
    with pytest.raises(TokenError):
        TokenSigner(SECRET, TTL).verify(text, "open", NOW)


@settings(max_examples=100, deadline=None)
@given(position=st.integers(min_value=3, max_value=200), replacement=st.sampled_from("ABCDQgw-_"))
def test_changing_any_character_breaks_the_token(position: int, replacement: str) -> None:
    signer = TokenSigner(SECRET, TTL)
    token = signer.sign("unsubscribe", "M0000000042", NOW)
    position %= len(token)
    if token[position] in (replacement, "."):
        return
    tampered = token[:position] + replacement + token[position + 1 :]
    with pytest.raises(TokenError):  # even where unused base64 bits would decode alike
        signer.verify(tampered, "unsubscribe", NOW)


def test_rotated_keys_still_verify_and_new_tokens_use_the_current_key() -> None:
    old = TokenSigner(OTHER_SECRET, TTL).sign("unsubscribe", "M1", NOW)
    rotated = TokenSigner(SECRET, TTL, previous_secrets=[OTHER_SECRET])
    assert rotated.verify(old, "unsubscribe", NOW).subject == "M1"
    fresh = rotated.sign("unsubscribe", "M1", NOW)
    with pytest.raises(TokenError, match="bad_signature"):
        TokenSigner(OTHER_SECRET, TTL).verify(fresh, "unsubscribe", NOW)


def test_links_point_at_the_inbound_route_of_their_purpose(signer: TokenSigner) -> None:
    link = signer.link("https://pay.example/", "unsubscribe", "M7", NOW)
    assert link.startswith("https://pay.example/u/v1.")
    assert signer.verify(link.rsplit("/", 1)[1], "unsubscribe", NOW).subject == "M7"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: TokenSigner(b"short", TTL), "at least 32 characters"),
        (lambda s: TokenSigner(SECRET, {"open": 1.0}), "lifetime for"),
        (lambda s: s.sign("pay", "M1", NOW), "expected one of open, click, unsubscribe"),
        (lambda s: s.sign("open", "", NOW), "non-empty id"),
        (lambda s: s.sign("open", "M1", datetime(2025, 1, 1)), "time-zone aware"),
    ],
)
def test_bad_arguments_get_clear_errors(signer: TokenSigner, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PayNudgeError, match=message):
        call(signer)


def test_settings_secret_or_a_private_local_key(tmp_path: Path) -> None:
    configured = Settings(home=tmp_path, dispatcher={"link_secret": "s" * 40})
    token = TokenSigner.from_settings(configured).sign("open", "M1", NOW)
    assert TokenSigner(b"s" * 40, configured.dispatcher.token_ttl_days).verify(token, "open", NOW)

    embedded = Settings(home=tmp_path / "home")
    first = TokenSigner.from_settings(embedded).sign("open", "M1", NOW)
    assert TokenSigner.from_settings(embedded).verify(first, "open", NOW)  # same key next time
    key_file = tmp_path / "home" / "token_secret"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert local_secret(tmp_path / "home") == key_file.read_text().encode()
    key_file.write_text("too short")
    with pytest.raises(ConfigError, match="at least 32"):
        local_secret(tmp_path / "home")


def test_each_token_has_one_spelling(signer: TokenSigner) -> None:
    """Flipping an unused low bit of the last base64 character decodes alike; still refused."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    token = signer.sign("open", "M1", NOW)
    twin = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]
    with pytest.raises(TokenError, match="malformed"):
        signer.verify(twin, "open", NOW)
