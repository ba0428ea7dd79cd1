"""Queueing alerts for a message just stored, in the transaction that stores it.

Who is told: every person with alerts on who can read a copy the message
made here, as the inbox decides who reads what: their own copy, a shared
mailbox's they are a member of, and the whole organisation's if they are one
of its administrators. Each person is told once per message, however many
of those copies they can read, and never of a message they sent themselves.

Nothing is queued while the gateway has no mail relay configured: an alert
that could never be sent would only expire with an alarm.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx.gateway.exchange import outbox
from gcx.gateway.runtime import Gateway
from gcx.protocol import directory as dirproto
from gcx.protocol.envelope import EnvelopeHeader
from gcx.protocol.message import Address
from gcx.store.schema import mailboxes
from gcx.store.schema_alerts import email_alerts
from gcx.store.schema_web import web_users

log = logging.getLogger("gcx.gateway.notifications")

NOTIFICATION = "notification"
# The outbox's "receiving gateway" for alerts: they all go to the one relay.
RELAY = "mail-relay"
# An alert a day late tells nobody anything the inbox does not.
NOTICE_LIFETIME = dt.timedelta(days=1)
DOCUMENT_VERSION = 1


@dataclass(frozen=True)
class Notice:
    """What one alert says, kept on its outbox row so every try sends the same email."""

    to: str
    organisation: str
    account: str
    marking: str
    sender_name: str

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "v": DOCUMENT_VERSION,
                "to": self.to,
                "organisation": self.organisation,
                "account": self.account,
                "marking": self.marking,
                "sender_name": self.sender_name,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_bytes(cls, document: bytes) -> Notice:
        body: dict[str, Any] = json.loads(document)
        if body.get("v") != DOCUMENT_VERSION:
            raise ValueError(f"an alert document of version {body.get('v')!r}")
        return cls(
            str(body["to"]),
            str(body["organisation"]),
            str(body["account"]),
            str(body["marking"]),
            str(body["sender_name"]),
        )


def enqueue_alerts(
    conn: Connection,
    gateway: Gateway,
    directory: dirproto.Directory,
    header: EnvelopeHeader,
    deliveries: Sequence[tuple[str, Sequence[Address], Sequence[Address]]],
    now: dt.datetime,
) -> None:
    """Queue the alerts a stored message calls for; never raises.

    ``deliveries`` are (organisation, addresses known here, addresses not)
    as the receiver routed them. The rows go in under a savepoint: should
    anything here fail, it is logged and the message is stored regardless.
    """
    if not gateway.config.smtp_host or header.kind != "message":
        return
    try:
        with conn.begin_nested():
            for organisation, known, _unknown in deliveries:
                _enqueue_for(conn, directory, header, organisation, known, now)
    except Exception:
        log.exception("queueing email alerts for envelope %s failed", header.id)


def _enqueue_for(
    conn: Connection,
    directory: dirproto.Directory,
    header: EnvelopeHeader,
    organisation: str,
    known: Iterable[Address],
    now: dt.datetime,
) -> None:
    owners = {a.local or "*" for a in known}
    if not owners:
        return
    subscribers = conn.execute(
        sa.select(email_alerts.c.account, email_alerts.c.address, web_users.c.roles)
        .join(
            web_users,
            sa.and_(
                web_users.c.username == email_alerts.c.account,
                web_users.c.organisation == email_alerts.c.organisation,
            ),
        )
        .where(
            email_alerts.c.organisation == organisation,
            email_alerts.c.enabled.is_(True),
            web_users.c.disabled_at.is_(None),
        )
    ).all()
    if not subscribers:
        return
    members = _shared_mailbox_members(conn, organisation, owners)
    sender = directory.organisation(header.sender.organisation)
    sender_name = sender.name if sender is not None else header.sender.organisation
    for row in subscribers:
        if header.sender.organisation == organisation and header.sender.user == row.account:
            continue  # their own message, to a mailbox they read
        reads = {row.account} | {box for box, people in members.items() if row.account in people}
        if "admin" in row.roles:
            reads.add("*")
        if not reads & owners:
            continue
        notice = Notice(row.address, organisation, row.account, str(header.marking), sender_name)
        outbox.enqueue(
            conn,
            kind=NOTIFICATION,
            document=notice.to_bytes(),
            subject_id=header.id,
            peer_gateway=RELAY,
            organisations=[organisation],
            now=now,
            expires_at=now + NOTICE_LIFETIME,
        )


def _shared_mailbox_members(
    conn: Connection, organisation: str, owners: set[str]
) -> dict[str, list[str]]:
    names = owners - {"*"}
    if not names:
        return {}
    rows = conn.execute(
        sa.select(mailboxes.c.name, mailboxes.c.members).where(
            mailboxes.c.organisation == organisation, mailboxes.c.name.in_(sorted(names))
        )
    ).all()
    return {row.name: list(row.members) for row in rows}
