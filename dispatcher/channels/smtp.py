"""E-mail over SMTP: a text and an HTML part, STARTTLS and login by setting.

SMTP has no idempotency: once the DATA command has started, a lost connection leaves the message
sent or not. That case raises :class:`OutcomeUnknown` (the outbox flags it for reconciliation);
every failure before DATA is safe to retry, and a 5xx reply is final.

With ``starttls`` on, the connection is upgraded before anything else is said, the server's
certificate and host name are always verified (against ``ca_file``, or the system's authorities),
and a server that does not offer STARTTLS is an error, never a reason to go on in clear text.
A password is sent only over TLS or to a loopback host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from dispatcher.channels.base import Envelope, OutcomeUnknown, SendFailed
from paynudge.config import SmtpSettings
from paynudge.errors import ConfigError

KEY_HEADER = "X-PayNudge-Idempotency-Key"
PERMANENT_FROM = 500
TRANSIENT_FROM = 400


def email_message(envelope: Envelope, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = envelope.recipient
    message["Subject"] = envelope.subject or ""
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{envelope.message_id}@paynudge>"
    message[KEY_HEADER] = envelope.message_id
    message.set_content(envelope.text)
    if envelope.html:
        message.add_alternative(envelope.html, subtype="html")
    return message


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost`` or a loopback address), without DNS."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    """The context STARTTLS verifies the server with (None when ``starttls`` is off).

    Certificate and host-name checks stay on: ``ca_file`` only chooses whom to trust."""
    if not settings.starttls:
        if settings.ca_file is not None:
            raise ConfigError(
                f"dispatcher.smtp.ca_file is set ({settings.ca_file}) but starttls is off: "
                "turn starttls on, or remove ca_file"
            )
        return None
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except OSError as error:  # ssl.SSLError included: not PEM, no certificate in it
        raise ConfigError(
            f"dispatcher.smtp.ca_file: cannot load certificate authorities from "
            f"{settings.ca_file} ({error})"
        ) from None


class SmtpTransport:
    """``smtp``: one connection kept open across messages, reopened after any failure."""

    name = "smtp"
    idempotent = False

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._tls_context = tls_context(settings)
        if settings.username and not settings.starttls and not is_loopback(settings.host):
            raise ConfigError(
                f"dispatcher.smtp: login to {settings.host} without starttls would send the "
                "password in clear text; turn starttls on (or log in only to a loopback host)"
            )
        self._smtp: smtplib.SMTP | None = None

    @property
    def _address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        options = self.settings
        try:
            smtp = smtplib.SMTP(options.host, options.port, timeout=options.timeout_seconds)
        except (OSError, smtplib.SMTPException) as error:
            raise SendFailed(
                f"SMTP {self._address}: cannot connect ({error})", retry=True
            ) from None
        try:
            self._open_session(smtp)
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def _open_session(self, smtp: smtplib.SMTP) -> None:
        """EHLO, then STARTTLS when set (never going on in clear text), then login when set."""
        options = self.settings
        try:
            smtp.ehlo_or_helo_if_needed()
            if self._tls_context is not None:
                if not smtp.has_extn("starttls"):
                    raise SendFailed(
                        f"SMTP {self._address}: starttls is on but the server does not offer "
                        "STARTTLS; not sending in clear text",
                        retry=True,
                    )
                smtp.starttls(context=self._tls_context)
                smtp.ehlo()
            if options.username:
                password = options.password.get_secret_value() if options.password else ""
                smtp.login(options.username, password)
        except smtplib.SMTPAuthenticationError as error:
            raise SendFailed(
                f"SMTP {self._address}: login refused: {error.smtp_code}", retry=False
            ) from None
        except ssl.SSLCertVerificationError as error:
            raise SendFailed(
                f"SMTP {self._address}: server certificate not accepted ({error.verify_message}); "
                "dispatcher.smtp.ca_file names the authorities to trust",
                retry=True,
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            raise SendFailed(
                f"SMTP {self._address}: cannot connect ({error})", retry=True
            ) from None

    def send(self, envelope: Envelope) -> str:
        message = email_message(envelope, self.settings.sender)
        smtp = self._connection()
        try:
            for command, argument in (("mail", self.settings.sender), ("rcpt", envelope.recipient)):
                code, reply = getattr(smtp, command)(argument)
                if code >= TRANSIENT_FROM:
                    smtp.rset()
                    raise SendFailed(
                        f"SMTP {command.upper()} refused: {code} {reply.decode(errors='replace')}",
                        retry=code < PERMANENT_FROM,
                    )
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise SendFailed(f"SMTP before DATA: {error}", retry=True) from None
        try:
            # smtplib sends bytes as they are: the lines must end in CRLF already
            code, reply = smtp.data(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))
        except smtplib.SMTPDataError as error:  # DATA itself refused: nothing was sent
            smtp.rset()
            raise SendFailed(
                f"SMTP DATA refused: {error.smtp_code}", retry=error.smtp_code < PERMANENT_FROM
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise OutcomeUnknown(f"SMTP connection lost during DATA: {error}") from None
        if code >= TRANSIENT_FROM:
            raise SendFailed(
                f"SMTP message refused: {code} {reply.decode(errors='replace')}",
                retry=code < PERMANENT_FROM,
            )
        return reply.decode(errors="replace")

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
            self._smtp = None
