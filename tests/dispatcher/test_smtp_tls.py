"""SMTP with STARTTLS and login against a real aiosmtpd server holding a throwaway certificate.

The certificate authority and the server's certificate are made at test time (nothing is
committed); the server refuses mail and login before STARTTLS, as a real submission server does.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as MimeMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dispatcher.channels.base import Envelope, SendFailed
from dispatcher.channels.smtp import KEY_HEADER, SmtpTransport
from paynudge.config import SmtpSettings
from paynudge.errors import ConfigError

USER, PASSWORD = "paynudge", "s3cret"
LOCAL_NAMES = ("localhost", "127.0.0.1")


@dataclass
class Mailbox:
    """An aiosmtpd handler and authenticator: each message with its TLS and login, each login."""

    messages: list[MimeMessage] = field(default_factory=list)
    tls_versions: list[str | None] = field(default_factory=list)
    logins: list[bytes] = field(default_factory=list)
    attempts: list[LoginPassword] = field(default_factory=list)

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.attempts.append(auth_data)
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
        # handled=False: aiosmtpd answers a failure with 535 (the default leaves it unanswered)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        self.tls_versions.append(session.ssl["ssl_object"].version() if session.ssl else None)
        self.logins.append(session.auth_data.login)
        return "250 Message accepted"


def envelope(key: str) -> Envelope:
    return Envelope(message_id=key, channel="email", recipient="someone@example.com",
                    customer_id="C1", invoice_id="INV1", language="en", subject="Invoice INV1",
                    text="Please pay.\n\nThanks", html="<p>Please pay.</p>")  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey, names: tuple[str, ...] = (),
) -> x509.Certificate:  # fmt: skip
    """A one-day certificate: a CA when ``issuer`` is None, else a server one for ``names``."""
    now = datetime.datetime.now(datetime.UTC)
    authority = issuer is None
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(subject) if authority else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not authority,
                key_cert_sign=authority,
                crl_sign=authority,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if not authority:
        alternative = [
            x509.IPAddress(ipaddress.ip_address(name)) if name[0].isdigit() else x509.DNSName(name)
            for name in names
        ]
        builder = (
            builder.add_extension(x509.SubjectAlternativeName(alternative), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Pki:
    """A throwaway CA (``ca_file``) and a server TLS context on a certificate the CA signed."""

    ca_file: Path
    server_context: ssl.SSLContext


def make_pki(folder: Path, names: tuple[str, ...] = LOCAL_NAMES) -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    authority = _certificate("PayNudge test CA", ca_key, None, ca_key)
    server = _certificate(names[0], server_key, authority, ca_key, names)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.pem").write_bytes(_pem(authority))
    (folder / "server.pem").write_bytes(_pem(server))
    (folder / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return Pki(ca_file=folder / "ca.pem", server_context=context)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[Mailbox, int]]]:
    """Starts aiosmtpd servers (with login) on free loopback ports with the given SMTP options."""
    controllers: list[Controller] = []

    def start(**options: object) -> tuple[Mailbox, int]:
        mailbox, port = Mailbox(), free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port,
                                authenticator=mailbox.authenticate, **options)  # fmt: skip
        controller.start()
        controllers.append(controller)
        return mailbox, port

    yield start
    for controller in controllers:
        controller.stop()


def submission_server(serve, server_context: ssl.SSLContext) -> tuple[Mailbox, int]:
    """STARTTLS required before mail; login required, and offered only over TLS."""
    return serve(tls_context=server_context, require_starttls=True, auth_required=True,
                 auth_require_tls=True)  # fmt: skip


def tls_settings(port: int, **changes: object) -> SmtpSettings:
    values = dict(host="127.0.0.1", port=port, starttls=True, username=USER, password=PASSWORD,
                  timeout_seconds=5)  # fmt: skip
    return SmtpSettings(**{**values, **changes})


def test_starttls_and_login_deliver_both_parts_over_tls(serve, pki) -> None:
    mailbox, port = submission_server(serve, pki.server_context)
    transport = SmtpTransport(tls_settings(port, ca_file=pki.ca_file))
    transport.send(envelope("k-1"))
    transport.send(envelope("k-2"))  # the same TLS session
    transport.close()
    assert [message[KEY_HEADER] for message in mailbox.messages] == ["k-1", "k-2"]
    parts = [part.get_content_type() for part in mailbox.messages[0].walk()]
    assert parts == ["multipart/alternative", "text/plain", "text/html"]
    assert all(version and version.startswith("TLSv1.") for version in mailbox.tls_versions)
    assert mailbox.logins == [USER.encode()] * 2


def test_localhost_by_name_is_verified_too(serve, pki) -> None:
    mailbox, port = submission_server(serve, pki.server_context)
    SmtpTransport(tls_settings(port, host="localhost", ca_file=pki.ca_file)).send(envelope("k"))
    assert [message[KEY_HEADER] for message in mailbox.messages] == ["k"]


def test_wrong_password_is_final(serve, pki) -> None:
    mailbox, port = submission_server(serve, pki.server_context)
    transport = SmtpTransport(tls_settings(port, ca_file=pki.ca_file, password="wrong"))
    with pytest.raises(SendFailed, match=f"127.0.0.1:{port}: login refused: 535") as error:
        transport.send(envelope("k"))
    assert error.value.retry is False
    assert {attempt.login for attempt in mailbox.attempts} == {USER.encode()}  # over TLS only
    assert mailbox.messages == []


@pytest.mark.parametrize(
    ("trust", "names", "reason"),
    [
        ("system", LOCAL_NAMES, "unable to get local issuer certificate"),
        ("other CA", LOCAL_NAMES, "unable to get local issuer certificate"),
        ("our CA", ("mail.example.com",), "IP address mismatch"),
    ],
)
def test_an_unverified_server_gets_nothing(serve, tmp_path, trust, names, reason) -> None:
    server = make_pki(tmp_path / "server", names)
    mailbox, port = submission_server(serve, server.server_context)
    ca_file = {"system": None, "other CA": make_pki(tmp_path / "other").ca_file,
               "our CA": server.ca_file}[trust]  # fmt: skip
    transport = SmtpTransport(tls_settings(port, ca_file=ca_file))
    with pytest.raises(SendFailed, match=f"certificate not accepted \\({reason}") as error:
        transport.send(envelope("k"))
    assert error.value.retry is True
    assert mailbox.messages == []
    assert mailbox.attempts == []


def test_starttls_never_falls_back_to_clear_text(serve) -> None:
    mailbox, port = serve(auth_require_tls=False)  # offers login in clear text, not STARTTLS
    for settings in (tls_settings(port), tls_settings(port, username=None, password=None)):
        transport = SmtpTransport(settings)
        with pytest.raises(
            SendFailed, match=f"127.0.0.1:{port}: starttls is on but the server does not offer"
        ) as error:
            transport.send(envelope("k"))
        assert error.value.retry is True
    assert mailbox.messages == []
    assert mailbox.attempts == []  # the password never went out


def test_without_starttls_the_submission_server_refuses_mail(serve, pki) -> None:
    mailbox, port = submission_server(serve, pki.server_context)
    transport = SmtpTransport(SmtpSettings(host="127.0.0.1", port=port))
    with pytest.raises(SendFailed, match="MAIL refused: 530") as error:
        transport.send(envelope("k"))
    assert error.value.retry is False
    assert mailbox.messages == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(host="smtp.example.com", starttls=False),
         "login to smtp.example.com without starttls would send the password in clear text"),
        (dict(host="10.0.0.7", starttls=False), "login to 10.0.0.7 without starttls"),
        (dict(starttls=False, username=None, ca_file=Path("ca.pem")),
         r"ca_file is set \(ca.pem\) but starttls is off"),
        (dict(ca_file=Path("no/such/ca.pem")),
         "cannot load certificate authorities from no/such/ca.pem"),
    ],
)  # fmt: skip
def test_unsafe_or_broken_settings_fail_before_any_connection(changes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        SmtpTransport(tls_settings(1, **changes))


def test_a_ca_file_without_certificates_is_a_config_error(tmp_path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="cannot load certificate authorities from"):
        SmtpTransport(tls_settings(1, ca_file=empty))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.8.9.10"])
def test_login_without_tls_stays_allowed_on_loopback(host) -> None:
    assert SmtpTransport(tls_settings(1, host=host, starttls=False)).settings.host == host
