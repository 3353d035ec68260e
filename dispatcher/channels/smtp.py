"""E-mail over SMTP: a text and an HTML part, STARTTLS and login by setting.

SMTP has no idempotency: once the DATA command has started, a lost connection leaves the message
sent or not. That case raises :class:`OutcomeUnknown` (the outbox flags it for reconciliation);
every failure before DATA is safe to retry, and a 5xx reply is final.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from dispatcher.channels.base import Envelope, OutcomeUnknown, SendFailed
from paynudge.config import SmtpSettings

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


class SmtpTransport:
    """``smtp``: one connection kept open across messages, reopened after any failure."""

    name = "smtp"
    idempotent = False

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        options = self.settings
        try:
            smtp = smtplib.SMTP(options.host, options.port, timeout=options.timeout_seconds)
            smtp.ehlo_or_helo_if_needed()
            if options.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if options.username:
                password = options.password.get_secret_value() if options.password else ""
                smtp.login(options.username, password)
        except smtplib.SMTPAuthenticationError as error:
            raise SendFailed(f"SMTP login refused: {error.smtp_code}", retry=False) from None
        except (OSError, smtplib.SMTPException) as error:
            raise SendFailed(
                f"SMTP {options.host}:{options.port}: cannot connect ({error})", retry=True
            ) from None
        self._smtp = smtp
        return smtp

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
