"""Routing an accepted envelope by its kind: who here it is for.

Every kind of envelope passes the same checks in :mod:`gcx.gateway.messages.receive`
(sender's gateway, signature, times, digests, duplicates) and is stored,
receipted and audited the same way; only reading its content differs, and
that is the router registered for its kind in :data:`ROUTERS`. A kind with
no router is refused with ``kind-not-supported``; typed documents and events
join as routers with their schemas, not as new pipelines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import crypto
from gcx.errors import EnvelopeInconsistent, InputError, KindNotSupported
from gcx.gateway.runtime import Gateway
from gcx.protocol.envelope import EnvelopeHeader
from gcx.protocol.message import Address, MessageContent
from gcx.store.schema import api_tokens, mailboxes
from gcx.store.schema_web import web_users


class NameCache:
    """The people and shared mailboxes of each hosted organisation, read once per batch."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._names: dict[str, set[str]] = {}

    def __call__(self, org: str) -> set[str]:
        if org not in self._names:
            with self.gateway.db.read() as conn:
                self._names[org] = _local_names(conn, org)
        return self._names[org]


def route(
    gateway: Gateway,
    header: EnvelopeHeader,
    parts: Sequence[bytes],
    hosted: list[str],
    names: NameCache,
) -> list[tuple[str, list[Address], list[Address]]]:
    """For each hosted organisation addressed: the addresses known here and those not."""
    router = ROUTERS.get(header.kind)
    if router is None:
        raise KindNotSupported(f"This gateway does not yet accept envelopes of kind {header.kind}.")
    return router(gateway, header, parts, hosted, names)


def _route_message(
    gateway: Gateway,
    header: EnvelopeHeader,
    parts: Sequence[bytes],
    hosted: list[str],
    names: NameCache,
) -> list[tuple[str, list[Address], list[Address]]]:
    """A secure message: its content names the addresses, checked against the people here."""
    deliveries: list[tuple[str, list[Address], list[Address]]] = []
    for org in hosted:
        plain = crypto.open_envelope(header, parts, org, gateway.keys.organisations[org].encryption)
        content = MessageContent.from_bytes(plain[0].data)
        _check_consistent(header, content)
        addresses = [a for a in content.recipients if a.organisation == org]
        if not addresses:
            continue  # the sender's own copy of what it sent; nothing to deliver
        known_names = names(org)
        known = [a for a in addresses if a.local is None or a.local in known_names]
        unknown = [a for a in addresses if a not in known]
        deliveries.append((org, known, unknown))
    if not deliveries:
        raise InputError("The envelope addresses nobody at this gateway.")
    return deliveries


Router = Callable[
    [Gateway, EnvelopeHeader, Sequence[bytes], list[str], NameCache],
    list[tuple[str, list[Address], list[Address]]],
]
# The envelope kinds this gateway accepts and how each is read; typed
# documents and events join here as routers with their schemas.
ROUTERS: dict[str, Router] = {"message": _route_message}


def _check_consistent(header: EnvelopeHeader, content: MessageContent) -> None:
    """The message inside must say what the signed header says about sender and marking.

    The header is what the sending organisation signed in the clear; a sender
    or marking inside the encrypted content that disagrees with it would let a
    message show one thing to its reader and another to everyone else.
    """
    expected_sender = f"{header.sender.user}@{header.sender.organisation}"
    if content.sender != expected_sender or content.marking != header.marking:
        raise EnvelopeInconsistent(
            "The message's sender or marking does not match its signed envelope header."
        )


def _local_names(conn: Connection, org: str) -> set[str]:
    people = conn.execute(
        sa.select(api_tokens.c.account).where(
            api_tokens.c.organisation == org,
            api_tokens.c.account_kind == "user",
            api_tokens.c.revoked_at.is_(None),
        )
    ).scalars()
    shared = conn.execute(
        sa.select(mailboxes.c.name).where(mailboxes.c.organisation == org)
    ).scalars()
    # People who only use the web pages have no token, but are addressable all the same.
    web = conn.execute(
        sa.select(web_users.c.username).where(
            web_users.c.organisation == org, web_users.c.disabled_at.is_(None)
        )
    ).scalars()
    return set(people) | set(shared) | set(web)
