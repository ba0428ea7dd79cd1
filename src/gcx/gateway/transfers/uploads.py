"""Resumable uploads (the tus protocol's use cases): the files a transfer is later made from.

An upload belongs to the account that created it; only that account may
append to it, use it in a transfer or delete it. Its length is checked
against the organisation's quotas and the free disk space when it is made,
so a large file is refused before any byte of it is sent.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from gcx import audit
from gcx.errors import InputError, NotFound, UploadOffsetMismatch
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller, require_sender
from gcx.gateway.transfers.policy import (
    check_quota,
    check_space,
    policy_for,
    storage_used,
    transfer_files,
)
from gcx.protocol.message import check_file_name
from gcx.protocol.transfer import MAX_FILES
from gcx.store import iso
from gcx.store.schema_transfers import uploads

MAX_METADATA_VALUE = 1024
# Upload-Metadata: how many files the batch this upload belongs to has, and, so that
# a batch of several is sealed as its files arrive, the batch's name (chosen by the
# client, 32 hex digits) and the file's place in it (0 first). A file of a batch of
# several without them is sealed with the others when the transfer is made.
FILES_KEY = "gcx-files"
BATCH_KEY = "gcx-batch"
INDEX_KEY = "gcx-index"
_BATCH_NAME = re.compile(r"^[0-9a-f]{32}$")


def _whole(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


def batch_size(metadata: dict[str, str]) -> int | None:
    """The batch size the upload declares (1 when it says nothing); None if malformed."""
    value = _whole(metadata.get(FILES_KEY, "1"))
    return value if value is not None and 1 <= value <= MAX_FILES else None


def batch_place(
    account: str, upload_id: str, metadata: dict[str, str]
) -> tuple[str, int, int] | None:
    """Where the upload is sealed as it arrives: the batch's key (its account's own), the
    file's index in it and the batch size; None if it is sealed when the transfer is made
    (a file of several without a batch place, or metadata this version would refuse)."""
    files = batch_size(metadata)
    if files == 1:
        return f"upload {upload_id}", 0, 1
    batch, index = metadata.get(BATCH_KEY, ""), _whole(metadata.get(INDEX_KEY, ""))
    if files is None or not _BATCH_NAME.match(batch) or index is None or index >= files:
        return None
    return f"batch {account} {batch}", index, files


def _check_batch(metadata: dict[str, str]) -> None:
    files = batch_size(metadata) if FILES_KEY in metadata else 1
    if files is None:
        raise InputError(
            f"{FILES_KEY} in Upload-Metadata must be a number of files, 1 to {MAX_FILES}."
        )
    if (BATCH_KEY in metadata) != (INDEX_KEY in metadata):
        raise InputError(f"{BATCH_KEY} and {INDEX_KEY} in Upload-Metadata go together.")
    if BATCH_KEY not in metadata:
        return
    index = _whole(metadata[INDEX_KEY])
    if not _BATCH_NAME.match(metadata[BATCH_KEY]) or index is None or index >= files:
        raise InputError(
            f"{BATCH_KEY} in Upload-Metadata must be 32 hex digits, and {INDEX_KEY} the "
            f"file's place in the batch, 0 to one less than {FILES_KEY}."
        )


def create_upload(gateway: Gateway, caller: Caller, length: int, metadata: dict[str, str]) -> str:
    require_sender(caller, "files")
    if length < 0:
        raise InputError("Upload-Length must be a non-negative number.")
    if "filename" in metadata:
        check_file_name(metadata["filename"])
    if any(len(v) > MAX_METADATA_VALUE for v in metadata.values()) or len(metadata) > 16:
        raise InputError("Upload-Metadata is limited to 16 keys of at most 1,024 characters.")
    _check_batch(metadata)
    files = transfer_files(gateway)
    now = gateway.clock.now()
    upload_id = secrets.token_hex(16)
    with gateway.db.transaction() as conn:
        policy = policy_for(conn, gateway, caller.organisation)
        check_quota(policy, storage_used(conn, caller.organisation), [length], caller.organisation)
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
