"""The carrier of email alerts: outbox rows of kind ``notification`` to the mail relay.

Registered in :mod:`gcx.gateway.carriers` like every other carrier. The
worker hands it every due alert in one call (they all name the one relay as
their "gateway"); it sends them over one SMTP connection and records each
row's outcome in its own short transaction: ``delivered`` when the relay took
it, otherwise through :class:`~gcx.gateway.exchange.outcomes.Outcomes`
(retried with backoff until it expires, or failed for good on a 5xx).
"""

from __future__ import annotations

from email.message import EmailMessage

from gcx.errors import KindNotSupported, MailRelayRefused
from gcx.gateway.exchange import outbox
from gcx.gateway.exchange.outcomes import Outcomes
from gcx.gateway.notifications.queue import NOTIFICATION, Notice
from gcx.gateway.notifications.relay import Relay
from gcx.gateway.runtime import Gateway
from gcx.httpapi import run_sync


class NotificationCarrier:
    kinds: tuple[str, ...] = (NOTIFICATION,)
    max_rows: int | None = None

    def __init__(self, gateway: Gateway, outcomes: Outcomes, relay: Relay | None) -> None:
        self.gateway = gateway
        self.outcomes = outcomes
        self.relay = relay

    async def carry(self, peer_name: str, entries: list[outbox.OutboxEntry]) -> None:
        if self.relay is None:
            # Queued while a relay was configured, which has since been taken away.
            gone = MailRelayRefused("No mail relay is configured on this gateway any more.")
            await run_sync(self.outcomes.failed_all, entries, gone, True)
            return
        now = self.gateway.clock.now()
        emails: list[tuple[int, EmailMessage]] = []
        accounts: dict[int, str] = {}
        for entry in entries:
            try:
                notice = Notice.from_bytes(entry.document or b"")
            except (ValueError, KeyError, TypeError):
                unreadable = KindNotSupported(f"Alert row {entry.id} holds no alert this can send.")
                await run_sync(self.outcomes.failed, entry, unreadable, permanent=True)
                continue
            emails.append((entry.id, self.relay.email(notice, entry.id, entry.subject_id, now)))
            accounts[entry.id] = f"{notice.account}@{notice.organisation}"
        if not emails:
            return
        results = await run_sync(self.relay.send, emails)
        for entry in entries:
            if entry.id not in results:
                continue
            error = results[entry.id]
            if error is None:
                await run_sync(
                    self.outcomes.delivered, entry, "notification.sent", {"to": accounts[entry.id]}
                )
            else:
                permanent = isinstance(error, MailRelayRefused)
                await run_sync(self.outcomes.failed, entry, error, permanent=permanent)
