"""Making a bulk file transfer from completed uploads (the sending side's use cases).

Rules decided here (and documented in ``docs/transfers.md``):

* Sending needs the ``staff``, ``system`` or ``admin`` role, as messages do,
  and only the account that made an upload may send it.
* Every check a transfer will meet (recipients in the directory, marking,
  file names, quotas, free space) can be made before any byte is uploaded
  (:func:`preflight`), and is made again when the transfer is made.
* Each upload is encrypted chunk by chunk under a fresh content key sealed
  to every recipient organisation; the manifest is signed with the sending
  organisation's key, and delivery is queued per recipient gateway.

Uploads are in :mod:`gcx.gateway.transfers.uploads`, quotas and roles in
:mod:`gcx.gateway.transfers.policy`, status and downloads in
:mod:`gcx.gateway.transfers.reading`.
"""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import ValidationError

from gcx import audit, crypto
from gcx.errors import (
    InputError,
    TransferEmpty,
    TransferRefused,
)
from gcx.gateway.directory_keys import encryption_key
from gcx.gateway.exchange import outbox
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller, require_sender
from gcx.gateway.transfers.policy import (
    check_quota,
    check_space,
    manifest_digest,
    policy_for,
    storage_used,
    transfer_files,
)
from gcx.gateway.transfers.sealing_ahead import Sealed, SealingAhead
from gcx.gateway.transfers.uploads import UploadState, upload_state
from gcx.protocol.envelope import Sender
from gcx.protocol.marking import parse_marking
from gcx.protocol.message import check_file_name
from gcx.protocol.transfer import (
    DEFAULT_TTL,
    TAG_BYTES,
    FileMetadata,
    TransferMetadata,
    transfer_format,
)
from gcx.protocol.validation import refusal
from gcx.store import iso
from gcx.store.schema_transfers import (
    transfers,
    uploads,
)
from gcx.store.transfer_files import ChunkStore


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
        keys[org] = encryption_key(entry.encryption_key)
    return keys


def preflight(
    gateway: Gateway, caller: Caller, to: list[str], marking: str, files: list[tuple[str, int]]
) -> dict[str, Any]:
    """Every check a transfer will meet, made before any byte is uploaded."""
    require_sender(caller, "files")
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
    check_quota(policy, used, sizes, caller.organisation)
    # The upload and its ciphertext are both on disk for a moment.
    check_space(gateway, transfer_files(gateway), 2 * sum(sizes))
    return {"ok": True, "files": len(files), "bytes": sum(sizes)}


# -- making a transfer ------------------------------------------------------------------


def create_transfer(
    gateway: Gateway,
    caller: Caller,
    *,
    to: list[str],
    marking: str,
    upload_ids: list[str],
    names: list[str] | None = None,
    note: str | None = None,
    ahead: SealingAhead | None = None,
) -> dict[str, Any]:
    """Encrypt completed uploads chunk by chunk, sign the manifest and queue delivery.

    ``note``, the sender's covering note, travels encrypted in the metadata. An
    upload ``ahead`` sealed as it arrived is adopted instead of being read again.
    """
    require_sender(caller, "files")
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
    check_quota(policy, used, sizes, caller.organisation)
    check_space(gateway, files, sum(sizes))

    adopted = _take_sealed(gateway, ahead, states)
    if adopted is not None:
        sealer, transfer_id = adopted.sealer, adopted.sealer.transfer_id
        own = gateway.keys.organisations[caller.organisation].encryption.public
        kept_key = sealer.kept_key(caller.organisation, own)
        described = _adopt_sealed(files, adopted, states, chosen, kept_key)
    else:
        transfer_id = secrets.token_hex(16)
        sealer = crypto.TransferSealer(
            transfer_id,
            gateway.config.transfer_segment_bytes,
            transfer_format(gateway.config.transfer_format),
        )
        described = _seal_files(files, sealer, transfer_id, states, chosen)
    now = gateway.clock.now()
    metadata = TransferMetadata(files=tuple(described), note=note or None)
    sealed_transfer = sealer.seal(
        sender=Sender(organisation=caller.organisation, user=caller.account),
        recipients=keys,
        marking=decision.marking,
        created_at=now,
        expires_at=now + DEFAULT_TTL,
        metadata=metadata.to_bytes(),
        signing_key=gateway.keys.organisations[caller.organisation].signing,
    )
    manifest, document = sealed_transfer.manifest, sealed_transfer.document
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
                chunk_count=len(manifest.chunks),
                state="sending",
                created_at=iso(now),
                updated_at=iso(now),
                expires_at=iso(manifest.expires_at),
            )
        )
        for peer, orgs in sorted(by_gateway.items()):
            outbox.enqueue(
                conn,
                kind=outbox.TRANSFER,
                subject_id=transfer_id,
                peer_gateway=peer,
                organisations=orgs,
                now=now,
                expires_at=manifest.expires_at,
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


def _seal_files(
    files: ChunkStore,
    sealer: crypto.TransferSealer,
    transfer_id: str,
    states: list[UploadState],
    names: list[str],
) -> list[FileMetadata]:
    """Encrypt every upload into the transfer's one chunk file, fsynced once at the end.

    One fsync for the whole file, not one per chunk: nothing refers to the
    chunks until the transfer is recorded, which happens only after this
    returns, so a crash before then leaves nothing that is ever sent.
    """
    described: list[FileMetadata] = []
    try:
        with files.chunk_writer("out", transfer_id, sealer.segment_size + TAG_BYTES) as writer:
            for index, (state, name) in enumerate(zip(states, names, strict=True)):
                with files.upload_path(state.id).open("rb") as source:
                    sealed = sealer.add_file(source, state.length, writer.write)
                media_type = state.metadata.get("filetype", "application/octet-stream")
                described.append(
                    FileMetadata(
                        index=index,
                        name=name,
                        media_type=media_type[:255],
                        size=sealed.size,
                        sha256=sealed.sha256,
                    )
                )
            writer.sync()
    except ValidationError as exc:
        # A file's name or type does not fit the manifest's rules: said in our words,
        # naming the field, never in pydantic's.
        files.delete("out", transfer_id)
        raise refusal(exc, TransferRefused, prefix="A file cannot be sent as described. ") from exc
    except ValueError as exc:
        files.delete("out", transfer_id)
        raise TransferRefused(f"An uploaded file could not be read whole: {exc}.") from exc
    except BaseException:
        files.delete("out", transfer_id)
        raise
    return described


def _take_sealed(
    gateway: Gateway, ahead: SealingAhead | None, states: list[UploadState]
) -> Sealed | None:
    """The transfer's uploads, sealed as they arrived as one batch in this order, if that is
    what happened."""
    if ahead is None:
        return None
    taken = ahead.take([state.id for state in states])
    if taken is not None and (
        taken.sealer.segment_size != gateway.config.transfer_segment_bytes
        or taken.sealer.format != gateway.config.transfer_format
    ):
        return None
    return taken


def _adopt_sealed(
    files: ChunkStore,
    adopted: Sealed,
    states: list[UploadState],
    names: list[str],
    kept_key: str,
) -> list[FileMetadata]:
    """The uploads, sealed as they arrived, are kept as the transfer's files: their chunks
    are made again from them when they are sent (see gcx.store.transfer_files)."""
    transfer_id = adopted.sealer.transfer_id
    try:
        files.keep_uploads(transfer_id, [state.id for state in states], kept_key)
        return [
            FileMetadata(
                index=index,
                name=name,
                media_type=state.metadata.get("filetype", "application/octet-stream")[:255],
                size=sealed.size,
                sha256=sealed.sha256,
            )
            for index, (state, name, sealed) in enumerate(
                zip(states, names, adopted.files, strict=True)
            )
        ]
    except ValidationError as exc:
        files.delete("out", transfer_id)
        raise refusal(exc, TransferRefused, prefix="A file cannot be sent as described. ") from exc
    except BaseException:
        files.delete("out", transfer_id)
        raise
