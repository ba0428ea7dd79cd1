"""Accepting messages to send: seal each one, then store a batch of them in one transaction.

Sealing (checks, encryption, signature) happens outside any transaction.
What a sent message leaves behind is then written together: the envelope and
its parts, the sender's "sent" item, one outbox row per receiving gateway,
the token's last use, and one ``message.sent`` audit entry per message. Many
messages share that transaction when they arrive together (see
:mod:`gcx.gateway.messages.acceptance`): each table gets one ``executemany``
and the audit chain one turn, so a busy API commits once per batch, not once
per message. A message is answered only once its transaction has committed,
so nothing accepted is ever lost; a batch that fails is stored again one
message at a time, so one message's trouble is never another's refusal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.errors import RecipientUnknown
from gcx.gateway.directory_keys import encryption_key
from gcx.gateway.exchange import outbox
from gcx.gateway.messages.envelopes import NewEnvelope, insert_envelopes, put_large_parts
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller, require_sender
from gcx.protocol.delivery import DeliveryState
from gcx.protocol.envelope import EnvelopeHeader
from gcx.protocol.marking import parse_marking
from gcx.protocol.message import (
    MESSAGE_MEDIA_TYPE,
    AttachmentInfo,
    MessageContent,
    check_composition,
    check_file_name,
    check_handling,
)
from gcx.store import iso
from gcx.store.schema import mailbox_items

_INSERT_ITEM = mailbox_items.insert()


@dataclass(frozen=True)
class Compose:
    to: list[str]
    subject: str
    body: str
    marking: str | None
    cc: list[str] = field(default_factory=list)
    handling: str | None = None
    read_receipt: bool = False
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class Sealed:
    """A message sealed and ready to store, with what its audit entry and answer say."""

    caller: Caller
    envelope: NewEnvelope
    by_gateway: dict[str, list[str]]
    audit_details: dict[str, Any]
    answer: dict[str, Any]

    @property
    def header(self) -> EnvelopeHeader:
        return self.envelope.header


def seal(gateway: Gateway, caller: Caller, compose: Compose) -> Sealed:
    """Check a message, seal it to its recipients' organisations, and put large parts away."""
    require_sender(caller, "messages")
    marking = parse_marking(compose.marking)
    to, cc = check_composition(
        compose.to,
        compose.cc,
        compose.subject,
        compose.body,
        [len(data) for _, _, data in compose.attachments],
    )
    check_handling(compose.handling)
    directory = gateway.directory.current()
    content_orgs = sorted({a.organisation for a in (*to, *cc)})
    recipients: dict[str, crypto.EncryptionPublicKey] = {}
    by_gateway: dict[str, list[str]] = defaultdict(list)
    for org in content_orgs:
        entry = directory.organisation(org)
        host = directory.gateway_for_organisation(org)
        if entry is None or host is None or entry.encryption_key is None:
            raise RecipientUnknown(
                f"{org} is not an organisation the network directory (version "
                f"{directory.version}) lists as connected; check the address."
            )
        recipients[org] = encryption_key(entry.encryption_key)
        by_gateway[host.name].append(org)
    own = gateway.keys.organisations[caller.organisation]
    recipients.setdefault(caller.organisation, own.encryption.public)
    attachments = [
        AttachmentInfo(
            index + 1, check_file_name(name), media_type, len(data), crypto.sha256_hex(data)
        )
        for index, (name, media_type, data) in enumerate(compose.attachments)
    ]
    content = MessageContent(
        sender=f"{caller.account}@{caller.organisation}",
        to=to,
        cc=cc,
        subject=compose.subject,
        body=compose.body,
        marking=marking.marking.value,
        handling=compose.handling,
        read_receipt=compose.read_receipt,
        attachments=tuple(attachments),
    )
    sealed = crypto.seal_envelope(
        kind="message",
        sender_org=caller.organisation,
        sender_user=caller.account,
        sender_key=own.signing,
        recipients=recipients,
        marking=marking.marking.value,
        parts=[("message.json", MESSAGE_MEDIA_TYPE, content.to_bytes()), *compose.attachments],
        now=gateway.clock.now(),
    )
    header = sealed.header
    envelope = NewEnvelope(
        header=header,
        signed_header=sealed.signed_header,
        parts=sealed.parts,
        blob_keys=put_large_parts(gateway.blobs, header.id, "out", sealed.parts),
        digest=sealed.digest,
        sender_gateway=gateway.config.name,
        directory_version=directory.version,
    )
    return Sealed(
        caller=caller,
        envelope=envelope,
        by_gateway=dict(by_gateway),
        audit_details={
            "recipients": content_orgs,
            "marking": marking.marking.value,
            "marking_mapped_from": marking.mapped_from,
            "parts": len(sealed.parts),
            "digest": sealed.digest,
            "expires_at": iso(header.expires_at),
        },
        answer={
            "id": header.id,
            "status": DeliveryState.QUEUED.value,
            "status_url": f"/api/v1/messages/{header.id}/status",
            "marking": marking.marking.value,
            "marking_mapped_from": marking.mapped_from,
        },
    )


def store_sealed(gateway: Gateway, conn: Connection, batch: Sequence[Sealed]) -> None:
    """Write a batch of sealed messages and their audit entries in the caller's transaction."""
    if not batch:
        return
    now = gateway.clock.now()
    insert_envelopes(conn, [s.envelope for s in batch], direction="out", now=now)
    for version in sorted({s.envelope.directory_version for s in batch}):
        gateway.directory.archive(conn, version, now=now)
    conn.execute(
        _INSERT_ITEM,
        [
            {
                "envelope_id": s.header.id,
                "box": "sent",
                "organisation": s.caller.organisation,
                "owner": s.caller.account,
                "created_at": iso(now),
            }
            for s in batch
        ],
    )
    outbox.enqueue_many(
        conn,
        [
            outbox.NewWork(s.header.id, peer, orgs, s.header.expires_at)
            for s in batch
            for peer, orgs in sorted(s.by_gateway.items())
        ],
        now=now,
    )
    # The token's last use, once per token in the batch (the audit entries name each use).
    callers = {s.caller.token_id: s.caller for s in batch}
    for _, caller in sorted(callers.items(), key=lambda item: str(item[0])):
        gateway.tokens.record_use(conn, caller, request="POST /api/v1/messages")
    audit.append_many(
        conn,
        [audit.Record(s.caller.actor, "message.sent", s.header.id, s.audit_details) for s in batch],
        now=now,
    )


def store_each(gateway: Gateway, batch: Sequence[Sealed]) -> list[BaseException | None]:
    """Store a batch in one transaction, or else one message at a time; each one's failure."""
    try:
        with gateway.db.transaction() as conn:
            store_sealed(gateway, conn, batch)
        return [None] * len(batch)
    except Exception as error:
        if len(batch) == 1:
            return [error]
    failures: list[BaseException | None] = []
    for item in batch:
        try:
            with gateway.db.transaction() as conn:
                store_sealed(gateway, conn, [item])
            failures.append(None)
        except Exception as error:
            failures.append(error)
    return failures
