"""The receiving side of bulk transfers: peer endpoints for offers, chunks and completion.

They sit behind :func:`gcx.gateway.peer.peer_check` like every peer endpoint.
The protocol (``docs/transfers.md``):

1. ``POST /peer/v1/transfers`` with the signed manifest: the receiver checks
   the signature against the sending organisation's key, that the calling
   gateway hosts that organisation, times, that it hosts a recipient, quotas
   and free disk space, records the transfer (idempotently) and answers which
   chunks are still ``missing``.
2. ``PUT /peer/v1/transfers/{id}/chunks/{n}``: one ciphertext chunk, checked
   against the SHA-256 and size the signed manifest gives before it is stored
   (written into its slot of the transfer's chunk file, not yet fsynced). A
   mismatch is refused (422 ``chunk-digest-mismatch``) and the sender sends
   it again; a full disk answers 507 ``storage-full``.
3. ``POST /peer/v1/transfers/{id}/complete``: once every chunk is held, the
   chunk file is fsynced and the transfer's directory renamed into place (so
   nothing half-received, or not yet durable, is ever visible as complete),
   and one signed receipt per hosted recipient names every file and its
   SHA-256. Repeating it returns the same receipts.

Chunks may also arrive before the offer, while the sender's upload is still
going on (``PUT /peer/v1/transfers/{id}/early/{n}``, see
:mod:`gcx.gateway.transfers.early_chunks`): they count as held at the offer
only where the signed manifest lists exactly their size and SHA-256.

Which chunks are held is remembered by this process as it writes them
(:class:`~gcx.gateway.transfers.held.HeldChunks`); a receiver killed at any
point re-checks every slot on disk against the manifest when the transfer is
next offered, and answers with what is still missing.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from gcx import audit, crypto
from gcx.errors import (
    BodyNotUtf8,
    ChunkDigestMismatch,
    Conflict,
    EnvelopeMalformed,
    JsonInvalid,
    NotFound,
    PeerRefused,
    QuotaExceeded,
    StorageFull,
    TransferRefused,
)
from gcx.gateway.exchange import receipts as receipt_store
from gcx.gateway.peer import GATEWAY, verify_signed_by_org
from gcx.gateway.runtime import Gateway
from gcx.gateway.transfers.early_chunks import EarlyChunks
from gcx.gateway.transfers.held import HeldChunks
from gcx.gateway.transfers.incoming_chunks import chunk_pieces, on_disk, store_chunk
from gcx.gateway.transfers.policy import (
    ISSUED_RECEIPT_KIND,
    check_space,
    manifest_digest,
    policy_for,
    storage_used,
    stored_manifest,
    transfer_files,
)
from gcx.httpapi import read_body, run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol import strict_json
from gcx.protocol.transfer import (
    CHUNK_DIGEST_HEADER,
    CHUNK_SLOT_HEADER,
    PAYLOAD_TYPE,
    ReceiptFile,
    TransferManifest,
    TransferMetadata,
    TransferReceipt,
    check_manifest,
)
from gcx.store import iso
from gcx.store.direct_io import Pieces
from gcx.store.schema_transfers import transfers

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MANIFESTS = web.AppKey("transfer_manifests", OrderedDict)
HELD = web.AppKey("transfer_chunks_held", HeldChunks)
EARLY = web.AppKey("transfer_chunks_early", EarlyChunks)
_CACHE_SIZE = 32
_TRANSFER_ID = re.compile(r"^[0-9a-f]{32}$")


def _claimed_sender(document: bytes) -> str:
    try:
        payload = strict_json.loads(
            base64.b64decode(strict_json.loads(document)["payload"], validate=True)
        )
        return str(payload["sender"]["organisation"])
    except (JsonInvalid, BodyNotUtf8):
        raise  # refused as what they are: the JSON itself is bad
    except (ValueError, KeyError, TypeError) as exc:
        raise EnvelopeMalformed("The transfer manifest is not a DSSE document.") from exc


def accept_offer(
    gateway: Gateway,
    peer: dirproto.GatewayEntry,
    directory: dirproto.Directory,
    document: bytes,
    held_chunks: HeldChunks,
    early_chunks: EarlyChunks | None = None,
) -> dict[str, Any]:
    sender = _claimed_sender(document)
    manifest = TransferManifest.from_bytes(
        verify_signed_by_org(directory, document, PAYLOAD_TYPE, claimed=sender)
    )
    host = directory.gateway_for_organisation(manifest.sender.organisation)
    if host is None or host.name != peer.name:
        raise PeerRefused(
            f"Only the gateway the directory names for {sender[:16]} may speak for it."
        )
    now = gateway.clock.now()
    check_manifest(manifest, now=now)
    hosted = [o for o in manifest.recipients if o in gateway.config.organisations]
    if not hosted:
        raise TransferRefused("None of the transfer's recipients is hosted by this gateway.")
    digest = manifest_digest(document)
    files = transfer_files(gateway)
    with gateway.db.transaction() as conn:
        row = conn.execute(
            sa.select(transfers.c.manifest_digest, transfers.c.state).where(
                transfers.c.id == manifest.id, transfers.c.direction == "in"
            )
        ).first()
        if row is not None and row.manifest_digest != digest:
            raise Conflict("A different transfer with this identifier was received before.")
        if row is None:
            for org in hosted:
                policy = policy_for(conn, gateway, org)
                used = storage_used(conn, org)
                if used + manifest.ciphertext_bytes > policy.storage_bytes:
                    raise QuotaExceeded(
                        f"{org} has no room for {manifest.ciphertext_bytes} more bytes in its "
                        "file-transfer storage quota."
                    )
            conn.execute(
                transfers.insert().values(
                    id=manifest.id,
                    direction="in",
                    sender_org=manifest.sender.organisation,
                    sender_user=manifest.sender.user,
                    recipients=list(manifest.recipients),
                    marking=manifest.marking,
                    manifest=document,
                    manifest_digest=digest,
                    files=[],
                    ciphertext_bytes=manifest.ciphertext_bytes,
                    plaintext_bytes=manifest.plaintext_bytes,
                    chunk_count=len(manifest.chunks),
                    state="receiving",
                    peer_gateway=peer.name,
                    created_at=iso(now),
                    updated_at=iso(now),
                    expires_at=iso(manifest.expires_at),
                )
            )
            audit.append(
                conn,
                actor=f"gateway:{peer.name}",
                action="transfer.offered",
                subject=manifest.id,
                now=now,
                details={
                    "from": f"{manifest.sender.user}@{manifest.sender.organisation}",
                    "to": hosted,
                    "chunks": len(manifest.chunks),
                    "bytes": manifest.plaintext_bytes,
                    "manifest_digest": digest,
                },
            )
            state = "receiving"
        else:
            state = row.state
    # From here on this transfer takes no early chunks; those it took count if the
    # manifest vouches for them (see early_chunks), and the file is re-checked if unknown.
    early = early_chunks.take(manifest.id, peer.name, manifest) if early_chunks else None
    if state == "complete":
        return {
            "state": "complete",
            "missing": [],
            "receipts": stored_receipts(gateway, manifest.id),
        }
    held = held_chunks.held(
        manifest.id, lambda: early if early is not None else on_disk(files, manifest)
    )
    missing = [n for n in range(len(manifest.chunks)) if n not in held]
    try:
        check_space(gateway, files, sum(manifest.chunk_size(n) for n in missing))
    except StorageFull as error:
        _set_status(gateway, manifest.id, error.message)
        raise
    _set_status(gateway, manifest.id, None)
    return {"state": "receiving", "missing": missing}


def _set_status(gateway: Gateway, transfer_id: str, message: str | None) -> None:
    """Say why a transfer waits (a full disk), or clear it, for the recipients' status view."""
    with gateway.db.transaction() as conn:
        conn.execute(
            transfers.update()
            .where(transfers.c.id == transfer_id, transfers.c.direction == "in")
            .values(status_message=message, updated_at=iso(gateway.clock.now()))
        )


def stored_receipts(gateway: Gateway, transfer_id: str) -> list[str]:
    with gateway.db.read() as conn:
        return receipt_store.documents(conn, transfer_id, ISSUED_RECEIPT_KIND)


def _incoming(gateway: Gateway, transfer_id: str, peer_name: str) -> tuple[str, str, bytes]:
    with gateway.db.read() as conn:
        row = conn.execute(
            sa.select(
                transfers.c.state,
                transfers.c.peer_gateway,
                transfers.c.manifest_digest,
                transfers.c.manifest,
            ).where(transfers.c.id == transfer_id, transfers.c.direction == "in")
        ).first()
    if row is None or row.peer_gateway != peer_name:
        raise NotFound("No transfer with that identifier was offered by your gateway.")
    return row.state, row.manifest_digest, row.manifest


async def _manifest(request: web.Request, transfer_id: str) -> tuple[str, TransferManifest]:
    cache = request.app[MANIFESTS]
    peer: dirproto.GatewayEntry = request["peer"]
    key = (transfer_id, peer.name)
    if key in cache:
        cache.move_to_end(key)
        return "receiving", cache[key]
    state, _, document = await run_sync(_incoming, request.app[GATEWAY], transfer_id, peer.name)
    manifest = await run_sync(stored_manifest, document)
    if state == "receiving":
        cache[key] = manifest
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    return state, manifest


async def handle_offer(request: web.Request) -> web.Response:
    document = await read_body(request, MAX_MANIFEST_BYTES)
    result = await run_sync(
        accept_offer,
        request.app[GATEWAY],
        request["peer"],
        request["directory"],
        document,
        request.app[HELD],
        request.app[EARLY],
    )
    return web.json_response(result)


def _offered(gateway: Gateway, transfer_id: str) -> bool:
    with gateway.db.read() as conn:
        return (
            conn.execute(
                sa.select(transfers.c.id).where(
                    transfers.c.id == transfer_id, transfers.c.direction == "in"
                )
            ).first()
            is not None
        )


def store_early_chunk(
    gateway: Gateway,
    early: EarlyChunks,
    transfer_id: str,
    peer: str,
    slot: int,
    chunk_hash: str,
    number: int,
    pieces: Pieces,
) -> None:
    """Write a chunk that came before its manifest, within the bounds ``early`` keeps."""
    files = transfer_files(gateway)
    size = sum(len(piece) for piece in pieces)
    check_space(gateway, files, size)
    early.reserve(
        transfer_id,
        peer,
        slot,
        chunk_hash,
        size,
        lambda: _offered(gateway, transfer_id),
        lambda: files.held_bytes("incoming", transfer_id) > 0,
    )
    written = False
    try:
        files.write_chunk("incoming", transfer_id, number, pieces, slot)
        written = True
    finally:
        early.written(transfer_id, number, pieces, ok=written)


async def handle_early_chunk(request: web.Request) -> web.Response:
    transfer_id = request.match_info["id"]
    if not _TRANSFER_ID.match(transfer_id):
        raise EnvelopeMalformed("A transfer identifier is 32 lower-case hex digits.")
    try:
        number = int(request.match_info["n"])
        slot = int(request.headers.get(CHUNK_SLOT_HEADER, ""))
    except ValueError as exc:
        raise EnvelopeMalformed(
            f"The chunk number and the {CHUNK_SLOT_HEADER} header must be numbers."
        ) from exc
    early = request.app[EARLY]
    size = request.content_length
    if size is None:
        raise EnvelopeMalformed("An early chunk must declare its Content-Length.")
    chunk_hash = request.headers.get(CHUNK_DIGEST_HEADER, "sha256")
    early.check_slot(slot, number, size, chunk_hash)
    pieces = await chunk_pieces(request, size)
    await run_sync(
        store_early_chunk,
        request.app[GATEWAY],
        early,
        transfer_id,
        request["peer"].name,
        slot,
        chunk_hash,
        number,
        pieces,
    )
    return web.Response(status=204)


async def handle_chunk(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    transfer_id = request.match_info["id"]
    try:
        number = int(request.match_info["n"])
    except ValueError as exc:
        raise EnvelopeMalformed("The chunk number must be a number.") from exc
    state, manifest = await _manifest(request, transfer_id)
    size = manifest.chunk_size(number)
    pieces = await chunk_pieces(request, size)
    if state != "receiving":
        return web.Response(status=204)
    files = transfer_files(gateway)
    # Checked and written in one trip to a worker thread: each trip costs a wake-up.
    stored = await run_sync(store_chunk, files, manifest, number, pieces)
    if not stored:
        await run_sync(
            gateway.record,
            actor=f"gateway:{request['peer'].name}",
            action="transfer.chunk-refused",
            subject=transfer_id,
            details={"chunk": number, "code": ChunkDigestMismatch.code},
        )
        raise ChunkDigestMismatch(
            f"Chunk {number} does not match the digest and size in the signed manifest; "
            "send it again."
        )
    request.app[HELD].add(transfer_id, number)
    return web.Response(status=204)


def complete_transfer(
    gateway: Gateway, peer_name: str, transfer_id: str, held_chunks: HeldChunks
) -> list[str]:
    state, digest, document = _incoming(gateway, transfer_id, peer_name)
    if state == "complete":
        return stored_receipts(gateway, transfer_id)
    if state != "receiving":
        raise Conflict(f"The transfer is {state} here and cannot be completed.")
    manifest = stored_manifest(document)
    files = transfer_files(gateway)
    if not files.is_published(transfer_id):
        held = held_chunks.held(transfer_id, lambda: on_disk(files, manifest))
        missing = len(manifest.chunks) - len(held & set(range(len(manifest.chunks))))
        if missing:
            raise Conflict(f"{missing} chunks of the transfer are still missing.", missing=missing)
        files.publish(transfer_id)
    now = gateway.clock.now()
    hosted = sorted(o for o in manifest.recipients if o in gateway.config.organisations)
    documents: dict[str, bytes] = {}
    for org in hosted:
        keys = gateway.keys.organisations[org]
        opened = crypto.open_transfer(manifest, org, keys.encryption)
        metadata = TransferMetadata.from_bytes(opened.metadata())
        if not metadata.matches(manifest):
            raise TransferRefused("The transfer's encrypted metadata does not match its manifest.")
        receipt = TransferReceipt(
            transfer_id=transfer_id,
            manifest_digest=digest,
            recipient=org,
            gateway=gateway.config.name,
            received_at=now,
            files=tuple(
                ReceiptFile(index=f.index, name=f.name, size=f.size, sha256=f.sha256)
                for f in metadata.files
            ),
        )
        documents[org] = crypto.sign_transfer_receipt(receipt, keys.signing)
    with gateway.db.transaction() as conn:
        retention = min(policy_for(conn, gateway, org).retention_days for org in hosted)
        updated = conn.execute(
            transfers.update()
            .where(
                transfers.c.id == transfer_id,
                transfers.c.direction == "in",
                transfers.c.state == "receiving",
            )
            .values(
                state="complete",
                status_message=None,
                completed_at=iso(now),
                updated_at=iso(now),
                retain_until=iso(now + dt.timedelta(days=retention)),
            )
        )
        if updated.rowcount == 0:  # completed concurrently by another request or replica
            return stored_receipts(gateway, transfer_id)
        for org, signed in documents.items():
            receipt_store.hold(
                conn,
                subject_id=transfer_id,
                organisation=org,
                kind=ISSUED_RECEIPT_KIND,
                outcome="accepted",
                document=signed,
                now=now,
            )
        audit.append(
            conn,
            actor=f"gateway:{peer_name}",
            action="transfer.received",
            subject=transfer_id,
            now=now,
            details={"to": hosted, "chunks": len(manifest.chunks), "manifest_digest": digest},
        )
    return [documents[o].decode() for o in hosted]


async def handle_complete(request: web.Request) -> web.Response:
    transfer_id = request.match_info["id"]
    receipts = await run_sync(
        complete_transfer,
        request.app[GATEWAY],
        request["peer"].name,
        transfer_id,
        request.app[HELD],
    )
    request.app[MANIFESTS].pop((transfer_id, request["peer"].name), None)
    request.app[HELD].forget(transfer_id)
    return web.json_response({"state": "complete", "receipts": receipts})


def add_transfer_routes(app: web.Application) -> None:
    app[MANIFESTS] = OrderedDict()
    app[HELD] = HeldChunks()
    app[EARLY] = EarlyChunks(app[GATEWAY].config.transfer_early_bytes)
    app.router.add_post("/peer/v1/transfers", handle_offer)
    app.router.add_put("/peer/v1/transfers/{id}/chunks/{n}", handle_chunk)
    app.router.add_put("/peer/v1/transfers/{id}/early/{n}", handle_early_chunk)
    app.router.add_post("/peer/v1/transfers/{id}/complete", handle_complete)
