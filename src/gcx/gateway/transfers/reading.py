"""What a transfer's parties may see of it: its status, and a received transfer's files.

The sending account, and ``admin`` accounts of the sending organisation, see
the status and receipts of what was sent, never the content. Accounts of a
recipient organisation holding the ``staff`` or ``system`` role see a
received transfer and download its files, decrypted as they are read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import crypto
from gcx.errors import NotFound, TransferUnreadable
from gcx.gateway.exchange import outbox
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.gateway.transfers.downloads import mark_downloaded
from gcx.gateway.transfers.policy import (
    ISSUED_RECEIPT_KIND,
    RECEIPT_KIND,
    RECEIVING_ROLES,
    stored_manifest,
    transfer_files,
)
from gcx.protocol.transfer import TransferManifest, TransferMetadata
from gcx.store.schema import receipts
from gcx.store.schema_transfers import transfers


def _receipts(conn: Connection, transfer_id: str, kind: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(receipts)
        .where(receipts.c.subject_id == transfer_id, receipts.c.kind == kind)
        .order_by(receipts.c.id)
    ).all()
    return [
        {
            "organisation": row.organisation,
            "received_at": row.received_at,
            "document": row.document.decode(),
        }
        for row in rows
    ]


def can_see_incoming(caller: Caller, recipients: list[str]) -> bool:
    return caller.organisation in recipients and bool(RECEIVING_ROLES & set(caller.roles))


def can_see_outgoing(caller: Caller, row: Any) -> bool:
    return row.sender_org == caller.organisation and (
        row.sender_user == caller.account or "admin" in caller.roles
    )


def transfer_status(gateway: Gateway, caller: Caller, transfer_id: str) -> dict[str, Any]:
    with gateway.db.read() as conn:
        rows = {
            r.direction: r
            for r in conn.execute(sa.select(transfers).where(transfers.c.id == transfer_id))
        }
        out = rows.get("out")
        if out is not None and can_see_outgoing(caller, out):
            return {
                "id": transfer_id,
                "direction": "out",
                "state": out.state,
                "recipients": out.recipients,
                "marking": out.marking,
                "bytes": out.plaintext_bytes,
                "chunks": out.chunk_count,
                "files": out.files,
                "manifest_digest": out.manifest_digest,
                "created_at": out.created_at,
                "completed_at": out.completed_at,
                "deliveries": outbox.states_for(conn, transfer_id, outbox.TRANSFER),
                "receipts": _receipts(conn, transfer_id, RECEIPT_KIND),
            }
        incoming = rows.get("in")
        if incoming is None or not can_see_incoming(caller, incoming.recipients):
            raise NotFound("No transfer with that identifier is visible to you.")
        issued = _receipts(conn, transfer_id, ISSUED_RECEIPT_KIND)
    body: dict[str, Any] = {
        "id": transfer_id,
        "direction": "in",
        "state": incoming.state,
        "sender": f"{incoming.sender_user}@{incoming.sender_org}",
        "recipients": incoming.recipients,
        "marking": incoming.marking,
        "bytes": incoming.plaintext_bytes,
        "chunks": incoming.chunk_count,
        "manifest_digest": incoming.manifest_digest,
        "created_at": incoming.created_at,
        "completed_at": incoming.completed_at,
        "retain_until": incoming.retain_until,
        "status_message": incoming.status_message,
        "receipts": issued,
    }
    if incoming.state == "complete":
        _, metadata, _ = open_incoming(gateway, caller, transfer_id)
        body["files"] = [f.model_dump() for f in metadata.files]
        body["note"] = metadata.note
    return body


def open_incoming(
    gateway: Gateway, caller: Caller, transfer_id: str
) -> tuple[TransferManifest, TransferMetadata, crypto.TransferKey]:
    """The manifest, decrypted metadata and key (for the caller's organisation) of a complete
    received transfer."""
    with gateway.db.read() as conn:
        row = conn.execute(
            sa.select(transfers).where(transfers.c.id == transfer_id, transfers.c.direction == "in")
        ).first()
    if row is None or not can_see_incoming(caller, row.recipients) or row.state != "complete":
        raise NotFound("No complete transfer with that identifier is visible to you.")
    manifest = stored_manifest(row.manifest)
    org_key = gateway.keys.organisations[caller.organisation].encryption
    key = crypto.open_transfer(manifest, caller.organisation, org_key)
    return manifest, TransferMetadata.from_bytes(key.metadata()), key


def decrypted_segments(
    gateway: Gateway,
    manifest: TransferManifest,
    metadata: TransferMetadata,
    key: crypto.TransferKey,
    index: int,
) -> Iterator[bytes]:
    """Plaintext of file ``index``, one segment at a time; checks its SHA-256 at the end.

    A failure raises :class:`gcx.errors.TransferUnreadable` mid-stream; the
    HTTP layer then aborts the response, so a client never mistakes a
    truncated download for a complete one.
    """
    entry = manifest.files[index]
    expected = metadata.files[index].sha256
    cipher = key.file_cipher(index)
    files = transfer_files(gateway)
    digest = hashlib.sha256()
    for segment in range(entry.chunks):
        number = entry.first_chunk + segment
        chunk = files.read_chunk(
            "received", manifest.id, number, manifest.chunk_size(number), manifest.chunk_slot
        )
        plain = cipher.open(segment, chunk, last=segment == entry.chunks - 1)
        digest.update(plain)
        yield plain
    if digest.hexdigest() != expected:
        raise TransferUnreadable()


def record_download(gateway: Gateway, caller: Caller, transfer_id: str, index: int) -> None:
    gateway.record(
        actor=caller.actor,
        action="transfer.downloaded",
        subject=transfer_id,
        details={"file": index},
    )
    # After the audit entry: the lists' "new" or "downloaded" follows the record.
    mark_downloaded(gateway, caller, transfer_id)
