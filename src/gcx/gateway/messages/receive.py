"""Accepting envelopes from a peer gateway: check, eliminate duplicates, store, receipt.

For each envelope in a batch the receiving gateway:

1. checks that the connecting gateway is the one the directory names for the
   sending organisation (mutual TLS has already proved which gateway it is);
2. verifies the sender's signature against the directory, every part's
   digest and size, and the expiry;
3. answers a repeat of an envelope it already holds with the receipts it
   issued the first time, so a retry is never delivered twice, for as long
   as it keeps the envelope;
4. opens the content for each organisation it hosts, resolves the addresses
   to its own people and shared mailboxes (the directory lists organisations,
   not people), and stores the envelope, the mailbox items, the receipts and
   the audit entry in one transaction;
5. returns one signed receipt per recipient organisation it hosts: accepted
   (listing any addresses it does not know, the non-delivery report), or
   refused with the stable code of what was wrong.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gcx import audit, crypto
from gcx.errors import (
    AddressUnknown,
    EnvelopeReplayed,
    GcxError,
    InputError,
    NotSenderGateway,
)
from gcx.gateway.exchange import receipts as receipt_store
from gcx.gateway.messages.envelopes import insert_envelope, put_large_parts, stored_digest
from gcx.gateway.messages.routing import NameCache, route
from gcx.gateway.notifications.queue import enqueue_alerts
from gcx.gateway.runtime import Gateway
from gcx.protocol import directory as dirproto
from gcx.protocol.envelope import EnvelopeHeader, unframe
from gcx.protocol.message import Address
from gcx.protocol.receipt import accepted_receipt, refused_receipt
from gcx.store import iso
from gcx.store.schema import mailbox_items

log = logging.getLogger("gcx.gateway.messages.receive")

ISSUED = "issued"


@dataclass
class _Accepted:
    """An envelope that passed every check, with what will be stored for it."""

    header: EnvelopeHeader
    signed_header: bytes
    parts: Sequence[bytes]
    digest: str
    deliveries: list[tuple[str, list[Address], list[Address]]]
    signed: list[tuple[str, str, bytes]]
    blob_keys: dict[int, str]


def accept_batch(
    gateway: Gateway,
    peer: dirproto.GatewayEntry,
    directory: dirproto.Directory,
    frames: Sequence[bytes],
) -> list[dict[str, Any]]:
    """Check every envelope of a batch, then store all that passed in one transaction.

    The checks and the cryptography run outside any transaction; the batch's
    writes share one, so a busy peer costs one commit per batch, not one per
    envelope. Should that transaction fail on a duplicate (the same envelope
    arriving on two connections at once), each envelope is stored on its own.
    """
    names = NameCache(gateway)
    prepared = [_prepare(gateway, peer, directory, frame, names) for frame in frames]
    accepted = [p for p in prepared if isinstance(p, _Accepted)]
    if accepted:
        now = gateway.clock.now()
        try:
            with gateway.db.transaction() as conn:
                for item in accepted:
                    _store(gateway, conn, peer, directory, item, now)
        except IntegrityError:
            for item in accepted:
                try:
                    with gateway.db.transaction() as conn:
                        _store(gateway, conn, peer, directory, item, now)
                except IntegrityError:
                    pass  # stored meanwhile by the other connection; answered below
    results: list[dict[str, Any]] = []
    for outcome in prepared:
        if isinstance(outcome, _Accepted):
            results.append(
                {
                    "envelope_id": outcome.header.id,
                    "receipts": [d.decode() for _, _, d in outcome.signed],
                    "error": None,
                }
            )
        else:
            results.append(outcome)
    return results


def accept_one(
    gateway: Gateway,
    peer: dirproto.GatewayEntry,
    directory: dirproto.Directory,
    frame: bytes,
) -> dict[str, Any]:
    return accept_batch(gateway, peer, directory, [frame])[0]


def _issued(conn: Connection, envelope_id: str) -> list[str]:
    return receipt_store.documents(conn, envelope_id, ISSUED)


def _prepare(
    gateway: Gateway,
    peer: dirproto.GatewayEntry,
    directory: dirproto.Directory,
    frame: bytes,
    names: NameCache,
) -> _Accepted | dict[str, Any]:
    now = gateway.clock.now()
    try:
        signed_header, parts = unframe(frame)
        claimed = crypto.unverified_header(signed_header)
    except GcxError as error:
        return {"envelope_id": None, "receipts": [], "error": error.to_dict()}
    digest = crypto.envelope_digest(signed_header, parts)
    # The sender's own organisation also holds a sealed key (for its sent
    # items); it is a recipient only if the message addresses it, which the
    # content says, so it is not receipted for here unless it is delivered to.
    hosted = [o for o in claimed.recipients if o in gateway.config.organisations]

    with gateway.db.read() as conn:
        held = stored_digest(conn, claimed.id, "in")
        if held is not None:
            if held != digest:
                replay = EnvelopeReplayed(
                    f"Envelope {claimed.id} was already received with different content; "
                    "an envelope id is never reused."
                )
                return {"envelope_id": claimed.id, "receipts": [], "error": replay.to_dict()}
            return {"envelope_id": claimed.id, "receipts": _issued(conn, claimed.id), "error": None}
    if not hosted:
        stray = InputError("This gateway hosts none of the envelope's recipients.")
        return {"envelope_id": claimed.id, "receipts": [], "error": stray.to_dict()}

    try:
        header = _verify(gateway, peer, directory, signed_header, parts, claimed)
        deliveries = route(gateway, header, parts, hosted, names)
    except GcxError as error:
        return _refuse(gateway, peer, claimed, digest, hosted, error)

    signed: list[tuple[str, str, bytes]] = []
    for org, known, unknown in deliveries:
        keys = gateway.keys.organisations[org]
        if known:
            receipt = accepted_receipt(
                envelope_id=header.id,
                envelope_digest=digest,
                recipient=org,
                gateway=gateway.config.name,
                now=now,
                unknown_addresses=tuple(str(a) for a in unknown),
            )
            outcome = "accepted"
        else:
            refusal = AddressUnknown(
                f"None of the addresses for {org} is known at its gateway: "
                + ", ".join(str(a) for a in unknown)[:500]
            )
            receipt = refused_receipt(
                envelope_id=header.id,
                envelope_digest=digest,
                recipient=org,
                gateway=gateway.config.name,
                now=now,
                code=refusal.code,
                message=refusal.message,
            )
            outcome = "refused"
        signed.append((org, outcome, crypto.sign_receipt(receipt, keys.signing)))
    blob_keys = put_large_parts(gateway.blobs, header.id, "in", parts)
    return _Accepted(header, signed_header, parts, digest, deliveries, signed, blob_keys)


def _store(
    gateway: Gateway,
    conn: Connection,
    peer: dirproto.GatewayEntry,
    directory: dirproto.Directory,
    item: _Accepted,
    now: dt.datetime,
) -> None:
    header = item.header
    insert_envelope(
        conn,
        header=header,
        signed_header=item.signed_header,
        parts=item.parts,
        blob_keys=item.blob_keys,
        direction="in",
        digest=item.digest,
        sender_gateway=peer.name,
        directory_version=directory.version,
        now=now,
    )
    gateway.directory.archive(conn, directory.version, now=now)
    for org, known, _unknown in item.deliveries:
        for owner in sorted({a.local or "*" for a in known}):
            conn.execute(
                mailbox_items.insert(),
                {
                    "envelope_id": header.id,
                    "box": "inbox",
                    "organisation": org,
                    "owner": owner,
                    "created_at": iso(now),
                },
            )
    for org, outcome, document in item.signed:
        receipt_store.hold(
            conn,
            subject_id=header.id,
            organisation=org,
            kind=ISSUED,
            outcome=outcome,
            document=document,
            now=now,
        )
    enqueue_alerts(conn, gateway, directory, header, item.deliveries, now)
    audit.append(
        conn,
        actor=f"gateway:{peer.name}",
        action="envelope.received",
        subject=header.id,
        now=now,
        details={
            "kind": header.kind,
            "sender": header.sender.organisation,
            "user": header.sender.user,
            "marking": header.marking,
            "digest": item.digest,
            "outcomes": {org: outcome for org, outcome, _ in item.signed},
        },
    )


def _verify(
    gateway: Gateway,
    peer: dirproto.GatewayEntry,
    directory: dirproto.Directory,
    signed_header: bytes,
    parts: Sequence[bytes],
    claimed: EnvelopeHeader,
) -> EnvelopeHeader:
    sender_org = claimed.sender.organisation
    sender_gateway = directory.gateway_for_organisation(sender_org)
    if sender_gateway is None or sender_gateway.name != peer.name:
        raise NotSenderGateway(
            f"Envelopes from {sender_org} must come from the gateway the directory names for "
            f"it, not from {peer.name}."
        )
    entry = directory.organisation(sender_org)
    if entry is None or entry.signing_key is None:
        raise NotSenderGateway(f"{sender_org} has no signing key in the directory.")
    return crypto.verify_envelope(
        signed_header,
        parts,
        crypto.VerifyKey.from_b64(entry.signing_key),
        sender_organisation=sender_org,
        now=gateway.clock.now(),
    )


def _refuse(
    gateway: Gateway,
    peer: dirproto.GatewayEntry,
    claimed: EnvelopeHeader,
    digest: str,
    hosted: list[str],
    error: GcxError,
) -> dict[str, Any]:
    """Signed refusal receipts, one per hosted recipient, and an audit entry."""
    now = gateway.clock.now()
    documents = []
    # No refusal in the sender's own name: it is never a recipient of its own
    # sent copy, and the sender would reject a receipt it did not ask for.
    for org in [o for o in hosted if o != claimed.sender.organisation] or hosted:
        receipt = refused_receipt(
            envelope_id=claimed.id,
            envelope_digest=digest,
            recipient=org,
            gateway=gateway.config.name,
            now=now,
            code=error.code,
            message=error.message,
        )
        documents.append(
            crypto.sign_receipt(receipt, gateway.keys.organisations[org].signing).decode()
        )
    log.warning("refused envelope %s from %s: %s", claimed.id, peer.name, error.code)
    gateway.record(
        actor=f"gateway:{peer.name}",
        action="envelope.refused",
        subject=claimed.id,
        details={
            "code": error.code,
            "message": error.message,
            "sender": claimed.sender.organisation,
        },
    )
    return {"envelope_id": claimed.id, "receipts": documents, "error": None}
