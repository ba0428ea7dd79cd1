"""The organisation's mail relay: its settings, and handing alerts to it over SMTP.

The relay is the organisation's own (configured as ``smtp_*`` in the
gateway's settings); the gateway is one more client of it, as a printer or
a line-of-business system would be. STARTTLS is on unless turned off, and it
is then required: a relay that does not offer it is tried again later, never
spoken to in the clear. Credentials, if the relay wants them, come from a
file only the gateway's account may read, and are refused over a connection
without TLS.

Sending is blocking :mod:`smtplib` work, run off the event loop by the
carrier. One connection carries a batch of alerts; each alert's own answer
decides its outcome: a 5xx answer is final, anything else (4xx, a dropped
connection, no answer) is tried again until the alert expires.
"""

from __future__ import annotations

import datetime as dt
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from gcx import crypto
from gcx.config import GatewayConfig, read_secret_file
from gcx.errors import ConfigError, GcxError, MailRelayRefused, MailRelayUnreachable
from gcx.gateway.notifications.queue import Notice
from gcx.gateway.notifications.settings import check_alert_address

TIMEOUT_SECONDS = 30.0
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class Relay:
    host: str
    port: int
    starttls: bool
    sender: str
    # Where the alert's link leads: the gateway's web pages as people reach them.
    link: str
    gateway_name: str
    username: str = ""
    password: str = ""
    ca_file: Path | None = None

    @classmethod
    def from_config(cls, config: GatewayConfig) -> Relay | None:
        """The relay the settings describe, None when alerts are off, or a refusal."""
        if not config.smtp_host:
            return None
        if not 1 <= config.smtp_port <= 65535:
            raise ConfigError("smtp_port must be a port number from 1 to 65535.")
        if not config.smtp_from:
            raise ConfigError("smtp_host is set but smtp_from, the alerts' sender, is not.")
        try:
            sender = check_alert_address(config.smtp_from)
        except GcxError as exc:
            raise ConfigError("smtp_from is not an email address.") from exc
        password = ""
        if config.smtp_username:
            if not config.smtp_starttls and config.smtp_host not in _LOOPBACK:
                raise ConfigError(
                    "smtp_username is set with smtp_starttls off: the relay's password would "
                    "cross the network in the clear."
                )
            if not config.smtp_password_file:
                raise ConfigError("smtp_username is set but smtp_password_file is not.")
            password = read_secret_file(
                config.home / config.smtp_password_file, "mail relay password"
            )
        ca_file = config.home / config.smtp_ca_file if config.smtp_ca_file else None
        if ca_file is not None and not ca_file.is_file():
            raise ConfigError(f"The mail relay's certificate authority file {ca_file} is missing.")
        return cls(
            host=config.smtp_host,
            port=config.smtp_port,
            starttls=config.smtp_starttls,
            sender=sender,
            link=_web_address(config),
            gateway_name=config.name,
            username=config.smtp_username,
            password=password,
            ca_file=ca_file,
        )

    def email(self, notice: Notice, row_id: int, subject_id: str, now: dt.datetime) -> EmailMessage:
        """The alert as an email: the marking and the sender's name, never the content."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = notice.to
        message["Subject"] = f"New {notice.marking} message on the secure exchange"
        message["Date"] = format_datetime(now)
        # The same on every try of the row, so a repeat after a crash is recognisable.
        message["Message-ID"] = f"<alert.{row_id}.{subject_id}@{self.gateway_name}.gcx.invalid>"
        message["Auto-Submitted"] = "auto-generated"
        where = f"Sign in to read it: {self.link}/inbox\n\n" if self.link else ""
        settings = f" ({self.link}/account/alerts)" if self.link else ""
        message.set_content(
            f"You have a new {notice.marking} message from {notice.sender_name}.\n\n"
            f"{where}"
            "This email does not contain the message: read it on the secure exchange.\n\n"
            "You get these emails because you turned on email alerts. To stop them, change "
            f"your email alerts on Your account{settings}.\n"
        )
        return message

    def send(self, emails: Sequence[tuple[int, EmailMessage]]) -> dict[int, GcxError | None]:
        """Hand ``emails`` (by outbox row id) to the relay over one connection.

        Returns each row's outcome: None when the relay took it, else the error
        to record. Rows left unsent by a broken connection get that error.
        """
        outcomes: dict[int, GcxError | None] = {}
        try:
            with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=crypto.relay_client_context(self.ca_file))
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self.password)
                for row_id, email in emails:
                    outcomes[row_id] = _one(smtp, email)
        except smtplib.SMTPNotSupportedError as exc:
            problem: GcxError = MailRelayUnreachable(
                "The mail relay does not offer STARTTLS; alerts are not sent in the clear."
            )
            problem.__cause__ = exc
            return _rest(outcomes, emails, problem)
        except smtplib.SMTPAuthenticationError:
            return _rest(
                outcomes,
                emails,
                MailRelayUnreachable(
                    "The mail relay refused the gateway's sign-in; check smtp_username and "
                    "smtp_password_file."
                ),
            )
        except (OSError, smtplib.SMTPException) as exc:
            return _rest(
                outcomes,
                emails,
                MailRelayUnreachable(
                    f"The mail relay at {self.host}:{self.port} could not be reached or "
                    f"stopped answering ({type(exc).__name__}); alerts are tried again later."
                ),
            )
        return outcomes


def _one(smtp: smtplib.SMTP, email: EmailMessage) -> GcxError | None:
    try:
        smtp.send_message(email)
    except smtplib.SMTPRecipientsRefused as exc:
        code = next(iter(exc.recipients.values()))[0]
        return _judged(code, "the recipient's address")
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        return _judged(exc.smtp_code, "the alert")
    return None


def _judged(code: int, what: str) -> GcxError:
    if 500 <= code < 600:
        return MailRelayRefused(f"The mail relay refused {what} for good (SMTP {code}).")
    return MailRelayUnreachable(f"The mail relay could not take {what} now (SMTP {code}).")


def _rest(
    outcomes: dict[int, GcxError | None],
    emails: Sequence[tuple[int, EmailMessage]],
    problem: GcxError,
) -> dict[int, GcxError | None]:
    for row_id, _ in emails:
        outcomes.setdefault(row_id, problem)
    return outcomes


def _web_address(config: GatewayConfig) -> str:
    if config.web_public_url:
        return config.web_public_url.rstrip("/")
    if config.web_port:
        return f"http://{config.web_host}:{config.web_port}"
    return ""
