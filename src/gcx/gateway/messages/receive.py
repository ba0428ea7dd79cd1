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
   refused with the stable code of what was wrong; for a sender that asks,
   each organisation's accepting receipts of the batch under one signature.

(Just over 400 lines: the steps of one batch read best in one place.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import defaultdict
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
from gcx.gateway.directory_keys import verify_key
from gcx.gateway.exchange import receipts as receipt_store
from gcx.gateway.messages.envelopes import (
    NewEnvelope,
    insert_envelopes,
    put_large_parts,
    stored_digests,
)
from gcx.gateway.messages.routing import NameCache, route
from gcx.gateway.notifications.queue import enqueue_alerts
from gcx.gateway.runtime import Gateway
from gcx.protocol import directory as dirproto
from gcx.protocol.envelope import EnvelopeHeader, unframe
from gcx.protocol.message import Address
from gcx.protocol.receipt import Receipt, accepted_receipt, refused_receipt
from gcx.store import iso
from gcx.store.schema import mailbox_items

# A sender that can verify batch-signed receipts says so with this request header, whose
# value is the format's name; a sender that does not (an older gcx) gets plain DSSE receipts.
RECEIPTS_HEADER = "X-Gcx-Receipts"
log = logging.getLogger("gcx.gateway.messages.receive")

ISSUED = "issued"
_INSERT_ITEM = mailbox_items.insert()


@dataclass(frozen=True)
class _Framed:
    """An envelope taken out of its frame, not yet checked."""

    claimed: EnvelopeHeader
    signed_header: bytes
    parts: Sequence[bytes]
    digest: str
    # The signed header as parsed once, so verifying it does not parse it again.
    read: crypto.ClaimedHeader


@dataclass
class _Accepted:
    """An envelope that passed every check, with what will be stored for it."""

    header: EnvelopeHeader
    signed_header: bytes
    parts: Sequence[bytes]
    digest: str
    deliveries: list[tuple[str, list[Address], list[Address]]]
    # (organisation, outcome, receipt) until signed, then (organisation, outcome, document).
    receipts: list[tuple[str, str, Receipt]]
    blob_keys: dict[int, str]
    signed: list[tuple[str, str, bytes]] = dataclasses.field(default_factory=list)


def accept_batch(
    gateway: Gateway,
    peer: dirproto.GatewayEntry,
    directory: dirproto.Directory,
    frames: Sequence[bytes],
    *,
    batch_signed: bool = False,
) -> list[dict[str, Any]]:
    """Check every envelope of a batch, then store all that passed in one transaction.

    With ``batch_signed`` (the sender asked for it) each receiving
    organisation signs the batch's receipts with one signature (:func:`_sign`).

    The checks and the cryptography run outside any transaction; duplicates
    are looked for once for the whole batch, and the batch's writes share one
    transaction with one ``executemany`` per table, so a busy peer costs a
    handful of statements and one commit per batch, not per envelope. Should
    that transaction fail on a duplicate (the same envelope arriving on two
    connections at once), each envelope is stored on its own.
    """
    names = NameCache(gateway)
    opened = [_open_frame(frame) for frame in frames]
    ids = [o.claimed.id for o in opened if isinstance(o, _Framed)]
    with gateway.db.read() as conn:
        held = stored_digests(conn, ids, "in")
        issued = receipt_store.documents_for(conn, list(held), ISSUED)
    prepared: list[_Accepted | dict[str, Any]] = []
    for frame_result in opened:
        if isinstance(frame_result, _Framed):
            prepared.append(_prepare(gateway, peer, directory, frame_result, held, issued, names))
        else:
            prepared.append(frame_result)
    accepted = [p for p in prepared if isinstance(p, _Accepted)]
    _sign(gateway, accepted, batch_signed)
    if accepted:
        now = gateway.clock.now()
        try:
            with gateway.db.transaction() as conn:
                _store(gateway, conn, peer, directory, accepted, now)
        except IntegrityError:
            for item in accepted:
                try:
                    with gateway.db.transaction() as conn:
                        _store(gateway, conn, peer, directory, [item], now)
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


def _open_frame(frame: bytes) -> _Framed | dict[str, Any]:
    """The envelope in a frame with the header it claims (unverified yet), or the refusal."""
    try:
        signed_header, parts = unframe(frame)
        read = crypto.claimed_header(signed_header)
    except GcxError as error:
        return {"envelope_id": None, "receipts": [], "error": error.to_dict()}
    digest = crypto.envelope_digest(signed_header, parts)
    return _Framed(read.header, signed_header, parts, digest, read)


def _prepare(
    gateway: Gateway,
    peer: dirproto.GatewayEntry,
    directory: dirproto.Directory,
    framed: _Framed,
    held: dict[str, str],
    issued: dict[str, list[str]],
    names: NameCache,
) -> _Accepted | dict[str, Any]:
    now = gateway.clock.now()
    claimed, signed_header, parts, digest = (
        framed.claimed,
        framed.signed_header,
        framed.parts,
        framed.digest,
    )
    # The sender's own organisation also holds a sealed key (for its sent
    # items); it is a recipient only if the message addresses it, which the
    # content says, so it is not receipted for here unless it is delivered to.
    hosted = [o for o in claimed.recipients if o in gateway.config.organisations]

    if claimed.id in held:
        if held[claimed.id] != digest:
            replay = EnvelopeReplayed(
                f"Envelope {claimed.id} was already received with different content; "
                "an envelope id is never reused."
            )
            return {"envelope_id": claimed.id, "receipts": [], "error": replay.to_dict()}
        return {"envelope_id": claimed.id, "receipts": issued.get(claimed.id, []), "error": None}
    if not hosted:
        stray = InputError("This gateway hosts none of the envelope's recipients.")
        return {"envelope_id": claimed.id, "receipts": [], "error": stray.to_dict()}

    try:
        header = _verify(gateway, peer, directory, framed.read, parts)
        deliveries = route(gateway, header, parts, hosted, names)
    except GcxError as error:
        return _refuse(gateway, peer, claimed, digest, hosted, error)

    receipts: list[tuple[str, str, Receipt]] = []
    for org, known, unknown in deliveries:
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
        receipts.append((org, outcome, receipt))
    blob_keys = put_large_parts(gateway.blobs, header.id, "in", parts)
    return _Accepted(header, signed_header, parts, digest, deliveries, receipts, blob_keys)


def _sign(gateway: Gateway, accepted: Sequence[_Accepted], together: bool) -> None:
    """Sign every receipt of the batch: one by one, or each organisation's together.

    Together (for a sender that asked for ``gcx.batch-signed/1``) means one
    Ed25519 signature per receiving organisation for the whole batch, each
    receipt carrying its path to the signed root, instead of one per receipt.
    """
    if not together:
        for item in accepted:
            item.signed = [
                (
                    org,
                    outcome,
                    crypto.sign_receipt(receipt, gateway.keys.organisations[org].signing),
                )
                for org, outcome, receipt in item.receipts
            ]
        return
    by_org: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for i, item in enumerate(accepted):
        item.signed = [(org, outcome, b"") for org, outcome, _ in item.receipts]
        for j, (org, _, _) in enumerate(item.receipts):
            by_org[org].append((i, j))
    for org, places in by_org.items():
        documents = crypto.sign_receipts(
            [accepted[i].receipts[j][2] for i, j in places],
            gateway.keys.organisations[org].signing,
        )
        for (i, j), document in zip(places, documents, strict=True):
            org_, outcome, _ = accepted[i].signed[j]
            accepted[i].signed[j] = (org_, outcome, document)


def _store(
    gateway: Gateway,
    conn: Connection,
    peer: dirproto.GatewayEntry,
    directory: dirproto.Directory,
    items: Sequence[_Accepted],
    now: dt.datetime,
) -> None:
    insert_envelopes(
        conn,
        [
            NewEnvelope(
                header=item.header,
                signed_header=item.signed_header,
                parts=item.parts,
                blob_keys=item.blob_keys,
                digest=item.digest,
                sender_gateway=peer.name,
                directory_version=directory.version,
            )
            for item in items
        ],
        direction="in",
        now=now,
    )
    gateway.directory.archive(conn, directory.version, now=now)
    mailbox_rows = [
        {
            "envelope_id": item.header.id,
            "box": "inbox",
            "organisation": org,
            "owner": owner,
            "created_at": iso(now),
        }
        for item in items
        for org, known, _unknown in item.deliveries
        for owner in sorted({a.local or "*" for a in known})
    ]
    if mailbox_rows:
        conn.execute(_INSERT_ITEM, mailbox_rows)
    receipt_store.hold_many(
        conn,
        [
            receipt_store.Held(item.header.id, org, ISSUED, outcome, document)
            for item in items
            for org, outcome, document in item.signed
        ],
        now=now,
    )
    for item in items:
        enqueue_alerts(conn, gateway, directory, item.header, item.deliveries, now)
    audit.append_many(
        conn,
        [
            audit.Record(
                f"gateway:{peer.name}",
                "envelope.received",
                item.header.id,
                {
                    "kind": item.header.kind,
                    "sender": item.header.sender.organisation,
                    "user": item.header.sender.user,
                    "marking": item.header.marking,
                    "digest": item.digest,
                    "outcomes": {org: outcome for org, outcome, _ in item.signed},
                },
            )
            for item in items
        ],
        now=now,
    )


def _verify(
    gateway: Gateway,
    peer: dirproto.GatewayEntry,
    directory: dirproto.Directory,
    read: crypto.ClaimedHeader,
    parts: Sequence[bytes],
) -> EnvelopeHeader:
    claimed = read.header
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
        read.signed_header,
        parts,
        verify_key(entry.signing_key),
        sender_organisation=sender_org,
        now=gateway.clock.now(),
        claimed=read,
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
