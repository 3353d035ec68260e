"""Transports against real local servers: SMTP (aiosmtpd) and HTTP; PDF letters; dry-run files."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message as MimeMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from dispatcher.channels.base import Envelope, SendFailed
from dispatcher.channels.files import FileOutbox
from dispatcher.channels.letters import LetterOutbox
from dispatcher.channels.smtp import KEY_HEADER, SmtpTransport
from dispatcher.channels.webhook import (
    KEY_HEADER as WEBHOOK_KEY,
)
from dispatcher.channels.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookTransport,
)
from paynudge.config import SmtpSettings, WebhookSettings

SECRET = "webhook-secret-0123456789abcdef"


def envelope(channel: str = "email", key: str = "key-1", **changes: str) -> Envelope:
    values = dict(message_id=key, channel=channel, recipient="someone@example.com",
                  customer_id="C1", invoice_id="INV1", language="en", subject="Invoice INV1",
                  text="Please pay.\n\nThanks", html="<p>Please pay.</p>")  # fmt: skip
    return Envelope(**{**values, **changes})


class Mailbox:
    """An aiosmtpd handler keeping every message; refuses recipients at refused.example."""

    def __init__(self) -> None:
        self.messages: list[MimeMessage] = []

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.endswith("@refused.example"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
    return AuthResult(success=ok)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port,
                            authenticator=_authenticate, auth_require_tls=False)  # fmt: skip
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def test_smtp_sends_text_and_html_with_the_key_and_login(smtp_server) -> None:
    mailbox, port = smtp_server
    transport = SmtpTransport(SmtpSettings(host="127.0.0.1", port=port, username="paynudge",
                                           password="s3cret"))  # fmt: skip
    assert not transport.idempotent
    transport.send(envelope(key="k-1"))
    transport.send(envelope(key="k-2"))
    transport.close()
    assert [m[KEY_HEADER] for m in mailbox.messages] == ["k-1", "k-2"]
    parts = [part.get_content_type() for part in mailbox.messages[0].walk()]
    assert parts == ["multipart/alternative", "text/plain", "text/html"]


def test_smtp_failures_retry_or_park(smtp_server) -> None:
    _, port = smtp_server
    refused = SmtpTransport(SmtpSettings(host="127.0.0.1", port=port))
    with pytest.raises(SendFailed, match="RCPT refused: 550") as error:
        refused.send(envelope(recipient="x@refused.example"))
    assert error.value.retry is False
    refused.send(envelope(key="k-plain"))  # no login: HELO/EHLO first, then the message
    refused.send(envelope(key="k-long", text="Pay.\n" * 400))  # longer than one SMTP line
    nobody = SmtpTransport(SmtpSettings(host="127.0.0.1", port=1, timeout_seconds=2))
    with pytest.raises(SendFailed, match="cannot connect") as error:
        nobody.send(envelope())
    assert error.value.retry is True


class Provider(BaseHTTPRequestHandler):
    """A provider that checks the signature, dedups by key and fails on request."""

    seen: dict[str, int]
    fail_with: list[int]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stamp = self.headers[TIMESTAMP_HEADER]
        digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        if self.headers[SIGNATURE_HEADER] != f"sha256={digest.hexdigest()}":
            return self._reply(401, {"error": "bad signature"})
        if self.fail_with:
            return self._reply(self.fail_with.pop(0), {"error": "try later"})
        key = self.headers[WEBHOOK_KEY]
        assert json.loads(body)["message_id"] == key
        duplicate = key in self.seen
        self.seen[key] = self.seen.get(key, 0) + 1
        self._reply(409 if duplicate else 202, {"id": f"prov-{key}"})

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[tuple[type[Provider], str]]:
    handler = type("TestProvider", (Provider,), {"seen": {}, "fail_with": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_address[1]}/messages"
    finally:
        server.shutdown()


def test_webhook_is_signed_idempotent_and_classifies_failures(provider) -> None:
    handler, url = provider
    transport = WebhookTransport(WebhookSettings(url=url, secret=SECRET, timeout_seconds=5))
    assert transport.send(envelope("sms", key="k-1")) == "prov-k-1"
    assert transport.send(envelope("sms", key="k-1")) == "prov-k-1"  # 409: already delivered
    assert handler.seen == {"k-1": 2}
    handler.fail_with[:] = [503]
    with pytest.raises(SendFailed) as error:
        transport.send(envelope("push", key="k-2"))
    assert error.value.retry is True
    handler.fail_with[:] = [422]
    with pytest.raises(SendFailed) as error:
        transport.send(envelope("push", key="k-2"))
    assert error.value.retry is False
    forged = WebhookTransport(WebhookSettings(url=url, secret="another-secret-0123456789"))
    with pytest.raises(SendFailed, match="401"):
        forged.send(envelope("call", key="k-3"))


def test_letters_are_pdfs_and_dry_run_files_are_idempotent(tmp_path: Path) -> None:
    letters = LetterOutbox(tmp_path)
    path = Path(letters.send(envelope("letter", text="Dear customer,\n\nPay € 10,00 please.")))
    assert path.read_bytes().startswith(b"%PDF-")
    files = FileOutbox(tmp_path)
    first = files.send(envelope("sms", key="k-9"))
    assert files.send(envelope("sms", key="k-9")) == first
    assert len(list((tmp_path / "sms").iterdir())) == 1
    assert json.loads(Path(first).read_text())["message_id"] == "k-9"
