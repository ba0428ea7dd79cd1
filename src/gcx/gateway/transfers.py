"""Bulk file transfer use cases on the sending and recipient sides (the local API's work).

Rules decided here (and documented in ``docs/transfers.md``):

* Uploading and sending need the ``staff``, ``system`` or ``admin`` role, as
  messages do. An upload belongs to the account that created it; only that
  account may append to it, use it in a transfer or delete it.
* A received transfer can be listed, inspected and downloaded by accounts of
  a recipient organisation holding the ``staff`` or ``system`` role (people
  and the back-office systems that pick files up); ``admin`` alone is not
  enough, because administering a gateway is not a reason to read its data.
  The sending account, and ``admin`` accounts of the sending organisation,
  see the status and receipts of what was sent, never the content.
* Quotas are checked before an upload is accepted and again when the
  transfer is made: the largest file, the largest batch, and the storage an
  organisation's uploads, unsent transfers and received files may occupy
  together. Free disk space, less a reserve, is checked in the same places.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.errors import (
    Forbidden,
    InputError,
    NotFound,
    QuotaExceeded,
    StorageFull,
    TransferEmpty,
    TransferRefused,
    UploadOffsetMismatch,
)
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.protocol.envelope import SealedKey, Sender
from gcx.protocol.marking import parse_marking
from gcx.protocol.message import check_file_name
from gcx.protocol.transfer import (
    DEFAULT_TTL,
    PAYLOAD_TYPE,
    RECEIPT_TYPE,
    DeliveryState,
    FileMetadata,
    TransferFile,
    TransferManifest,
    TransferMetadata,
    TransferReceipt,
)
from gcx.store import iso, parse_iso
from gcx.store.schema_transfers import (
    deliveries,
    transfer_policies,
    transfer_receipts,
    transfers,
    uploads,
)
from gcx.store.transfer_files import TransferFiles

SENDING_ROLES = frozenset({"staff", "system", "admin"})
RECEIVING_ROLES = frozenset({"staff", "system"})
MAX_METADATA_VALUE = 1024


@dataclass(frozen=True)
class Policy:
    max_file_bytes: int
    max_batch_bytes: int
    storage_bytes: int
    retention_days: float


def transfer_files(gateway: Gateway) -> TransferFiles:
    return TransferFiles(gateway.config.home / "blobs" / "transfers")


def stored_manifest(document: bytes) -> TransferManifest:
    """The manifest of a signed document this gateway verified before storing it."""
    payload = base64.b64decode(json.loads(document)["payload"])
    return TransferManifest.from_bytes(payload)


def manifest_digest(document: bytes) -> str:
    return "sha256:" + hashlib.sha256(document).hexdigest()


def policy_for(conn: Connection, gateway: Gateway, organisation: str) -> Policy:
    config = gateway.config
    row = conn.execute(
        sa.select(transfer_policies).where(transfer_policies.c.organisation == organisation)
    ).first()

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    return Policy(
        pick(row and row.max_file_bytes, config.transfer_max_file_bytes),
        pick(row and row.max_batch_bytes, config.transfer_max_batch_bytes),
        pick(row and row.storage_bytes, config.transfer_storage_bytes),
        float(pick(row and row.retention_days, config.transfer_retention_days)),
    )


def set_policy(gateway: Gateway, caller: Caller, values: dict[str, Any]) -> dict[str, Any]:
    """An organisation's admin sets its quotas and retention (None restores the default)."""
    if "admin" not in caller.roles:
        raise Forbidden("Only an administrator of the organisation may change its quotas.")
    allowed = {"max_file_bytes", "max_batch_bytes", "storage_bytes", "retention_days"}
    unknown = set(values) - allowed
    if unknown:
        raise InputError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    for key, value in values.items():
        if value is not None and (not isinstance(value, int | float) or value < 0):
            raise InputError(f"{key} must be a non-negative number or null.")
    now = gateway.clock.now()
    with gateway.db.transaction() as conn:
        exists = conn.execute(
            sa.select(transfer_policies.c.organisation).where(
                transfer_policies.c.organisation == caller.organisation
            )
        ).first()
        row = {**values, "updated_at": iso(now)}
        if exists:
            conn.execute(
                transfer_policies.update()
                .where(transfer_policies.c.organisation == caller.organisation)
                .values(**row)
            )
        else:
            conn.execute(transfer_policies.insert().values(organisation=caller.organisation, **row))
        audit.append(
            conn,
            actor=caller.actor,
            action="transfer.policy-set",
            subject=caller.organisation,
            now=now,
            details=values,
        )
        policy = policy_for(conn, gateway, caller.organisation)
    return policy.__dict__


def storage_used(conn: Connection, organisation: str) -> int:
    """Bytes an organisation occupies: open uploads, unsent transfers, received files."""
    used = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(uploads.c.length), 0)).where(
            uploads.c.organisation == organisation, uploads.c.state == "open"
        )
    ).scalar_one()
    rows = conn.execute(
        sa.select(
            transfers.c.direction,
            transfers.c.sender_org,
            transfers.c.recipients,
            transfers.c.ciphertext_bytes,
        ).where(transfers.c.state.in_(("sending", "receiving", "complete")))
    ).all()
    for row in rows:
        if (row.direction == "out" and row.sender_org == organisation) or (
            row.direction == "in" and organisation in row.recipients
        ):
            used += row.ciphertext_bytes
    return int(used)


def check_space(gateway: Gateway, files: TransferFiles, needed: int) -> None:
    free, capacity = files.free_bytes()
    # The reserve keeps the disk from filling to the last byte (the database
    # and audit log share it); on a small volume it is at most 5% of it.
    reserve = min(gateway.config.transfer_min_free_bytes, capacity // 20)
    if free - reserve < needed:
        raise StorageFull(
            f"The gateway has {free // 2**20} MiB free and keeps {reserve // 2**20} MiB in "
            f"reserve; {needed // 2**20} MiB more are needed. Try again when space is freed."
        )


def _check_quota(policy: Policy, used: int, sizes: list[int], organisation: str) -> None:
    for size in sizes:
        if size > policy.max_file_bytes:
            raise QuotaExceeded(
                f"A file of {size} bytes is larger than {organisation}'s limit of "
                f"{policy.max_file_bytes} bytes per file."
            )
    if sum(sizes) > policy.max_batch_bytes:
        raise QuotaExceeded(
            f"The batch of {sum(sizes)} bytes is larger than {organisation}'s limit of "
            f"{policy.max_batch_bytes} bytes per transfer."
        )
    if used + sum(sizes) > policy.storage_bytes:
        raise QuotaExceeded(
            f"{organisation} already uses {used} of its {policy.storage_bytes} bytes of "
            "transfer storage; this would exceed it. Delete uploads or wait for received "
            "files to reach the end of their retention."
        )


def _require_sender(caller: Caller) -> None:
    if not SENDING_ROLES & set(caller.roles):
        raise Forbidden("Sending files needs the staff, system or admin role.")


def recipient_keys(gateway: Gateway, to: list[str]) -> dict[str, crypto.EncryptionPublicKey]:
    """Each recipient's encryption key from the directory; refuses any it does not list."""
    if not to:
        raise TransferRefused("Name at least one recipient organisation.")
    directory = gateway.directory.current()
    keys: dict[str, crypto.EncryptionPublicKey] = {}
    for org in to:
        entry = directory.organisation(org)
        host = directory.gateway_for_organisation(org)
        if entry is None or host is None or entry.encryption_key is None:
            raise TransferRefused(
                f"{org[:16]} is not an organisation the network directory (version "
                f"{directory.version}) lists as connected; nothing was uploaded."
            )
        keys[org] = crypto.EncryptionPublicKey.from_b64(entry.encryption_key)
    return keys


def preflight(
    gateway: Gateway, caller: Caller, to: list[str], marking: str, files: list[tuple[str, int]]
) -> dict[str, Any]:
    """Every check a transfer will meet, made before any byte is uploaded."""
    _require_sender(caller)
    if not files:
        raise TransferEmpty()
    parse_marking(marking)
    recipient_keys(gateway, to)
    names = [check_file_name(name) for name, _ in files]
    if len(set(names)) != len(names):
        raise TransferRefused("Two files in the batch have the same name.")
    sizes = [size for _, size in files]
    if any(size < 0 for size in sizes):
        raise InputError("A file size cannot be negative.")
    with gateway.db.read() as conn:
        policy = policy_for(conn, gateway, caller.organisation)
        used = storage_used(conn, caller.organisation)
    _check_quota(policy, used, sizes, caller.organisation)
    # The upload and its ciphertext are both on disk for a moment.
    check_space(gateway, transfer_files(gateway), 2 * sum(sizes))
    return {"ok": True, "files": len(files), "bytes": sum(sizes)}


# -- tus uploads -------------------------------------------------------------------


def create_upload(gateway: Gateway, caller: Caller, length: int, metadata: dict[str, str]) -> str:
    _require_sender(caller)
    if length < 0:
        raise InputError("Upload-Length must be a non-negative number.")
    if "filename" in metadata:
        check_file_name(metadata["filename"])
    if any(len(v) > MAX_METADATA_VALUE for v in metadata.values()) or len(metadata) > 16:
        raise InputError("Upload-Metadata is limited to 16 keys of at most 1,024 characters.")
    files = transfer_files(gateway)
    now = gateway.clock.now()
    upload_id = secrets.token_hex(16)
    with gateway.db.transaction() as conn:
        policy = policy_for(conn, gateway, caller.organisation)
        _check_quota(policy, storage_used(conn, caller.organisation), [length], caller.organisation)
        check_space(gateway, files, 2 * length)
        conn.execute(
            uploads.insert().values(
                id=upload_id,
                organisation=caller.organisation,
                account=caller.account,
                length=length,
                offset=0,
                metadata=metadata,
                state="open",
                created_at=iso(now),
                updated_at=iso(now),
            )
        )
        audit.append(
            conn,
            actor=caller.actor,
            action="upload.created",
            subject=upload_id,
            now=now,
            details={"length": length},
        )
    files.create_upload(upload_id)
    return upload_id


@dataclass(frozen=True)
class UploadState:
    id: str
    length: int
    offset: int
    metadata: dict[str, str]


def upload_state(gateway: Gateway, caller: Caller, upload_id: str) -> UploadState:
    with gateway.db.read() as conn:
        row = conn.execute(sa.select(uploads).where(uploads.c.id == upload_id)).first()
    if (
        row is None
        or row.state != "open"
        or row.organisation != caller.organisation
        or row.account != caller.account
    ):
        raise NotFound("You have no open upload with that identifier.")
    return UploadState(row.id, int(row.length), int(row.offset), dict(row.metadata))


def begin_append(gateway: Gateway, caller: Caller, upload_id: str, offset: int) -> UploadState:
    """Check a PATCH may start at ``offset``, and cut any bytes a crash left past it."""
    state = upload_state(gateway, caller, upload_id)
    if offset != state.offset:
        raise UploadOffsetMismatch(
            f"The upload is at offset {state.offset}, not {offset}; continue from {state.offset}.",
            offset=state.offset,
        )
    transfer_files(gateway).truncate_upload(upload_id, state.offset)
    return state


def record_offset(gateway: Gateway, upload_id: str, offset: int) -> None:
    """Persist an upload's offset once the bytes up to it are fsynced."""
    with gateway.db.transaction() as conn:
        conn.execute(
            uploads.update()
            .where(uploads.c.id == upload_id, uploads.c.offset < offset)
            .values(offset=offset, updated_at=iso(gateway.clock.now()))
        )


def delete_upload(gateway: Gateway, caller: Caller, upload_id: str) -> None:
    upload_state(gateway, caller, upload_id)
    now = gateway.clock.now()
    with gateway.db.transaction() as conn:
        conn.execute(
            uploads.update()
            .where(uploads.c.id == upload_id)
            .values(state="deleted", updated_at=iso(now))
        )
        audit.append(conn, actor=caller.actor, action="upload.deleted", subject=upload_id, now=now)
    transfer_files(gateway).delete_upload(upload_id)


# -- making a transfer ------------------------------------------------------------------


def _chunk_writer(
    files: TransferFiles, transfer_id: str, first: int
) -> Callable[[int, bytes], None]:
    def write(segment: int, data: bytes) -> None:
        files.write_chunk("out", transfer_id, first + segment, data)

    return write


def create_transfer(
    gateway: Gateway,
    caller: Caller,
    *,
    to: list[str],
    marking: str,
    upload_ids: list[str],
    names: list[str] | None = None,
) -> dict[str, Any]:
    """Encrypt completed uploads chunk by chunk, sign the manifest and queue delivery."""
    _require_sender(caller)
    if not upload_ids:
        raise TransferEmpty()
    if len(set(upload_ids)) != len(upload_ids):
        raise TransferRefused("An upload is listed twice.")
    decision = parse_marking(marking)
    keys = recipient_keys(gateway, to)
    if len(set(to)) != len(to):
        raise TransferRefused("A recipient organisation is listed twice.")
    states = [upload_state(gateway, caller, u) for u in upload_ids]
    for state in states:
        if state.offset != state.length:
            raise TransferRefused(
                f"Upload {state.id} holds {state.offset} of {state.length} bytes; finish it first."
            )
    if names is not None and len(names) != len(states):
        raise InputError("Give one name per upload, or none.")
    chosen = names or [s.metadata.get("filename", "") for s in states]
    chosen = [check_file_name(n) for n in chosen]
    if len(set(chosen)) != len(chosen):
        raise TransferRefused("Two files in the batch have the same name.")
    sizes = [s.length for s in states]
    files = transfer_files(gateway)
    with gateway.db.read() as conn:
        policy = policy_for(conn, gateway, caller.organisation)
        # The uploads are counted already; the ciphertext replaces them.
        used = storage_used(conn, caller.organisation) - sum(sizes)
    _check_quota(policy, used, sizes, caller.organisation)
    check_space(gateway, files, sum(sizes))

    transfer_id = secrets.token_hex(16)
    content_key = crypto.new_content_key()
    segment = gateway.config.transfer_segment_bytes
    entries: list[TransferFile] = []
    described: list[FileMetadata] = []
    chunk_digests: list[str] = []
    try:
        for index, (state, name) in enumerate(zip(states, chosen, strict=True)):
            first = len(chunk_digests)
            with files.upload_path(state.id).open("rb") as source:
                sealed = crypto.encrypt_file(
                    source,
                    state.length,
                    content_key=content_key,
                    transfer_id=transfer_id,
                    index=index,
                    segment_size=segment,
                    write_chunk=_chunk_writer(files, transfer_id, first),
                )
            entries.append(
                TransferFile(
                    index=index,
                    size=sealed.size,
                    nonce_prefix=sealed.nonce_prefix,
                    first_chunk=first,
                    chunks=len(sealed.chunk_sha256),
                )
            )
            chunk_digests.extend(sealed.chunk_sha256)
            described.append(
                FileMetadata(
                    index=index,
                    name=name,
                    media_type=state.metadata.get("filetype", "application/octet-stream")[:255],
                    size=sealed.size,
                    sha256=sealed.sha256,
                )
            )
    except ValueError as exc:
        files.delete("out", transfer_id)
        raise TransferRefused(f"An uploaded file could not be read whole: {exc}.") from exc
    except BaseException:
        files.delete("out", transfer_id)
        raise
    now = gateway.clock.now()
    metadata = TransferMetadata(files=tuple(described))
    manifest = TransferManifest(
        id=transfer_id,
        sender=Sender(organisation=caller.organisation, user=caller.account),
        recipients=tuple(to),
        marking=decision.marking,
        created_at=now,
        expires_at=now + DEFAULT_TTL,
        segment_size=segment,
        keys=tuple(
            SealedKey(
                organisation=org,
                sealed_key=crypto.seal_content_key(content_key, public, transfer_id, org),
            )
            for org, public in keys.items()
        ),
        metadata=crypto.seal_metadata(content_key, transfer_id, metadata.to_bytes()),
        files=tuple(entries),
        chunks=tuple(chunk_digests),
    )
    own = gateway.keys.organisations[caller.organisation].signing
    document = crypto.sign_document(
        PAYLOAD_TYPE, manifest.to_bytes(), own, crypto.key_id(own.public)
    )
    directory = gateway.directory.current()
    by_gateway: dict[str, list[str]] = {}
    for org in to:
        host = directory.gateway_for_organisation(org)
        assert host is not None  # checked by recipient_keys
        by_gateway.setdefault(host.name, []).append(org)
    digest = manifest_digest(document)
    with gateway.db.transaction() as conn:
        conn.execute(
            transfers.insert().values(
                id=transfer_id,
                direction="out",
                sender_org=caller.organisation,
                sender_user=caller.account,
                recipients=list(to),
                marking=decision.marking,
                manifest=document,
                manifest_digest=digest,
                files=[f.model_dump() for f in described],
                ciphertext_bytes=manifest.ciphertext_bytes,
                plaintext_bytes=manifest.plaintext_bytes,
                chunk_count=len(chunk_digests),
                state="sending",
                created_at=iso(now),
                updated_at=iso(now),
                expires_at=iso(manifest.expires_at),
            )
        )
        for peer, orgs in by_gateway.items():
            conn.execute(
                deliveries.insert().values(
                    transfer_id=transfer_id,
                    peer_gateway=peer,
                    organisations=orgs,
                    state=DeliveryState.QUEUED.value,
                    attempts=0,
                    next_attempt_at=iso(now),
                    chunks_held=0,
                    created_at=iso(now),
                    updated_at=iso(now),
                )
            )
        conn.execute(
            uploads.update()
            .where(uploads.c.id.in_(upload_ids))
            .values(state="used", updated_at=iso(now))
        )
        audit.append(
            conn,
            actor=caller.actor,
            action="transfer.created",
            subject=transfer_id,
            now=now,
            details={
                "to": list(to),
                "marking": decision.marking,
                "files": len(described),
                "bytes": manifest.plaintext_bytes,
                "manifest_digest": digest,
            },
        )
    for upload_id in upload_ids:
        files.delete_upload(upload_id)
    return {
        "id": transfer_id,
        "state": "sending",
        "manifest_digest": digest,
        "files": [f.model_dump() for f in described],
        "status_url": f"/api/v1/transfers/{transfer_id}",
    }


# -- status, listing and download --------------------------------------------------------


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


def _can_see_incoming(caller: Caller, recipients: list[str]) -> bool:
    return caller.organisation in recipients and bool(RECEIVING_ROLES & set(caller.roles))


def _can_see_outgoing(caller: Caller, row: Any) -> bool:
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
        if out is not None and _can_see_outgoing(caller, out):
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
        if incoming is None or not _can_see_incoming(caller, incoming.recipients):
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


def list_transfers(gateway: Gateway, caller: Caller, limit: int = 100) -> list[dict[str, Any]]:
    with gateway.db.read() as conn:
        rows = conn.execute(
            sa.select(
                transfers.c.id,
                transfers.c.direction,
                transfers.c.state,
                transfers.c.sender_org,
                transfers.c.sender_user,
                transfers.c.recipients,
                transfers.c.marking,
                transfers.c.plaintext_bytes,
                transfers.c.created_at,
                transfers.c.completed_at,
            )
            .order_by(transfers.c.created_at.desc())
            .limit(max(1, min(limit, 1000)) * 4)
        ).all()
    visible = [
        {
            "id": r.id,
            "direction": r.direction,
            "state": r.state,
            "sender": f"{r.sender_user}@{r.sender_org}",
            "recipients": r.recipients,
            "marking": r.marking,
            "bytes": r.plaintext_bytes,
            "created_at": r.created_at,
            "completed_at": r.completed_at,
        }
        for r in rows
        if (r.direction == "out" and _can_see_outgoing(caller, r))
        or (
            r.direction == "in"
            and r.state == "complete"
            and _can_see_incoming(caller, r.recipients)
        )
    ]
    return visible[:limit]


def open_incoming(
    gateway: Gateway, caller: Caller, transfer_id: str
) -> tuple[TransferManifest, TransferMetadata, bytes]:
    """The manifest, decrypted metadata and content key of a complete received transfer."""
    with gateway.db.read() as conn:
        row = conn.execute(
            sa.select(transfers).where(transfers.c.id == transfer_id, transfers.c.direction == "in")
        ).first()
    if row is None or not _can_see_incoming(caller, row.recipients) or row.state != "complete":
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
    from gcx.errors import TransferUnreadable

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


def verify_transfer_receipt(document: bytes, verify_key: crypto.VerifyKey) -> TransferReceipt:
    payload = crypto.verify_document(
        document, RECEIPT_TYPE, {crypto.key_id(verify_key): verify_key}
    )
    return TransferReceipt.from_bytes(payload)


def parse_time(text: str) -> dt.datetime:
    return parse_iso(text)
