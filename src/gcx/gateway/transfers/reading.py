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
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.gateway.transfers.policy import RECEIVING_ROLES, stored_manifest, transfer_files
from gcx.protocol.transfer import TransferManifest, TransferMetadata
from gcx.store.schema_transfers import deliveries, transfer_receipts, transfers


def _receipts(conn: Connection, transfer_id: str, direction: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(transfer_receipts).where(
            transfer_receipts.c.transfer_id == transfer_id,
            transfer_receipts.c.direction == direction,
        )
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
            held = conn.execute(
                sa.select(deliveries).where(deliveries.c.transfer_id == transfer_id)
            ).all()
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
                "deliveries": [
                    {
                        "gateway": d.peer_gateway,
                        "organisations": d.organisations,
                        "state": d.state,
                        "attempts": d.attempts,
                        "chunks_held": d.chunks_held,
                        "last_error": d.last_error,
                    }
                    for d in held
                ],
                "receipts": _receipts(conn, transfer_id, "out"),
            }
        incoming = rows.get("in")
        if incoming is None or not can_see_incoming(caller, incoming.recipients):
            raise NotFound("No transfer with that identifier is visible to you.")
        receipts = _receipts(conn, transfer_id, "in")
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
        "receipts": receipts,
    }
    if incoming.state == "complete":
        _, metadata, _ = open_incoming(gateway, caller, transfer_id)
        body["files"] = [f.model_dump() for f in metadata.files]
    return body


def open_incoming(
    gateway: Gateway, caller: Caller, transfer_id: str
) -> tuple[TransferManifest, TransferMetadata, bytes]:
    """The manifest, decrypted metadata and content key of a complete received transfer."""
    with gateway.db.read() as conn:
        row = conn.execute(
            sa.select(transfers).where(transfers.c.id == transfer_id, transfers.c.direction == "in")
        ).first()
    if row is None or not can_see_incoming(caller, row.recipients) or row.state != "complete":
        raise NotFound("No complete transfer with that identifier is visible to you.")
    manifest = stored_manifest(row.manifest)
    sealed = next(k for k in manifest.keys if k.organisation == caller.organisation)
    org_key = gateway.keys.organisations[caller.organisation].encryption
    content_key = crypto.open_content_key(
        sealed.sealed_key, org_key, transfer_id, caller.organisation
    )
    metadata = TransferMetadata.from_bytes(
        crypto.open_metadata(content_key, transfer_id, manifest.metadata)
    )
    return manifest, metadata, content_key


def decrypted_segments(
    gateway: Gateway,
    manifest: TransferManifest,
    metadata: TransferMetadata,
    content_key: bytes,
    index: int,
) -> Iterator[bytes]:
    """Plaintext of file ``index``, one segment at a time; checks its SHA-256 at the end.

    A failure raises :class:`gcx.errors.TransferUnreadable` mid-stream; the
    HTTP layer then aborts the response, so a client never mistakes a
    truncated download for a complete one.
    """
    entry = manifest.files[index]
    expected = metadata.files[index].sha256
    cipher = crypto.StreamCipher(content_key, manifest.id, index, bytes.fromhex(entry.nonce_prefix))
    files = transfer_files(gateway)
    digest = hashlib.sha256()
    for segment in range(entry.chunks):
        chunk = files.read_chunk("received", manifest.id, entry.first_chunk + segment)
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
