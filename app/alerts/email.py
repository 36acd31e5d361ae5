"""The care team's e-mail channel: one SMTP conversation per batch, with the standard library.

Like the webhook it is only the transport (``app.core.channels``): the alert sends that own
the rows (``app.alerts.sends``) lease them, record each attempt and retry with backoff. A
refused recipient fails that message only; a connection failure fails the whole batch
(every message is then retried).
"""

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from app.core.channels import Channel
from app.core.config import Settings


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    timeout_seconds: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "SmtpConfig | None":
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout_seconds=settings.smtp_timeout_seconds,
        )


@dataclass(frozen=True)
class EmailOut:
    to: str
    subject: str
    body: str
    # A stable Message-ID, so a receiver can tell a retried e-mail from a new one.
    message_id: str


@dataclass(frozen=True)
class EmailResult:
    error: str | None = None  # None: the server accepted it for the recipient


EmailChannel = Channel[EmailOut, EmailResult]


class SmtpEmailChannel:
    name = "email"
    max_batch = 20

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    def send(self, messages: Sequence[EmailOut]) -> list[EmailResult]:
        if not messages:
            return []
        try:
            with smtplib.SMTP(
                self._config.host, self._config.port, timeout=self._config.timeout_seconds
            ) as smtp:
                if self._config.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._config.user:
                    smtp.login(self._config.user, self._config.password or "")
                return [self._send_one(smtp, m) for m in messages]
        except (smtplib.SMTPException, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            return [EmailResult(error) for _ in messages]

    def _send_one(self, smtp: smtplib.SMTP, out: EmailOut) -> EmailResult:
        message = EmailMessage()
        message["From"] = self._config.sender
        message["To"] = out.to
        message["Subject"] = out.subject
        message["Message-ID"] = out.message_id
        message.set_content(out.body)
        try:
            smtp.send_message(message)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as exc:
            return EmailResult(f"{type(exc).__name__}: {exc}"[:500])
        return EmailResult()
