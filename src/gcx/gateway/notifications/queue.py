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
    as the receiver routed them. Who is told is read by primary key; the rows
    go in under a savepoint, so should writing them fail, or anything here
    raise, it is logged and the message is stored regardless. (A read the
    database itself fails would fail the delivery's transaction whatever
    came next; the sending gateway then sends the message again.)
    """
    if not gateway.config.smtp_host or header.kind != "message":
        return
    try:
        notices = [
            notice
            for organisation, known, _unknown in deliveries
            for notice in _notices_for(conn, directory, header, organisation, known)
        ]
        if not notices:
            return
        # The writes go in under a savepoint, opened only when there is one to
        # write: most messages find nobody with alerts on, and pay two lookups.
        with conn.begin_nested():
            for notice in notices:
                outbox.enqueue(
                    conn,
                    kind=NOTIFICATION,
                    document=notice.to_bytes(),
                    subject_id=header.id,
                    peer_gateway=RELAY,
                    organisations=[notice.organisation],
                    now=now,
                    expires_at=now + NOTICE_LIFETIME,
                )
    except Exception:
        log.exception("queueing email alerts for envelope %s failed", header.id)


def _notices_for(
    conn: Connection,
    directory: dirproto.Directory,
    header: EnvelopeHeader,
    organisation: str,
    known: Iterable[Address],
) -> list[Notice]:
    owners = {a.local or "*" for a in known}
    if not owners:
        return []
    # Only the people who could read one of these copies are looked up (by the
    # table's primary key), so the cost follows the message's recipients, not
    # how many people in the organisation have alerts on. A copy for the whole
    # organisation is read by its administrators, found among everyone with alerts.
    names = owners - {"*"}
    members = _shared_mailbox_members(conn, organisation, names)
    if "*" in owners:
        subscribers = conn.execute(_EVERYONE_WITH_ALERTS, {"organisation": organisation}).all()
    else:
        candidates = names | {person for people in members.values() for person in people}
        subscribers = conn.execute(
            _THESE_WITH_ALERTS, {"organisation": organisation, "accounts": sorted(candidates)}
        ).all()
    if not subscribers:
        return []
    sender = directory.organisation(header.sender.organisation)
    sender_name = sender.name if sender is not None else header.sender.organisation
    notices = []
    for row in subscribers:
        if header.sender.organisation == organisation and header.sender.user == row.account:
            continue  # their own message, to a mailbox they read
        reads = {row.account} | {box for box, people in members.items() if row.account in people}
        if "admin" in row.roles:
            reads.add("*")
        if reads & owners:
            notices.append(
                Notice(row.address, organisation, row.account, str(header.marking), sender_name)
            )
    return notices


# Built once: the receiving path runs these for every message stored.
_EVERYONE_WITH_ALERTS = (
    sa.select(email_alerts.c.account, email_alerts.c.address, web_users.c.roles)
    .join(
        web_users,
        sa.and_(
            web_users.c.username == email_alerts.c.account,
            web_users.c.organisation == email_alerts.c.organisation,
        ),
    )
    .where(
        email_alerts.c.organisation == sa.bindparam("organisation"),
        email_alerts.c.enabled.is_(True),
        web_users.c.disabled_at.is_(None),
    )
)
_THESE_WITH_ALERTS = _EVERYONE_WITH_ALERTS.where(
    email_alerts.c.account.in_(sa.bindparam("accounts", expanding=True))
)
_MAILBOXES = sa.select(mailboxes.c.name, mailboxes.c.members).where(
    mailboxes.c.organisation == sa.bindparam("organisation"),
    mailboxes.c.name.in_(sa.bindparam("names", expanding=True)),
)


def _shared_mailbox_members(
    conn: Connection, organisation: str, names: set[str]
) -> dict[str, list[str]]:
    if not names:
        return {}
    rows = conn.execute(_MAILBOXES, {"organisation": organisation, "names": sorted(names)}).all()
    return {row.name: list(row.members) for row in rows}
