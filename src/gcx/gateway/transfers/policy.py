"""Who may send and receive files, each organisation's quotas, and the store's free space.

Quotas are checked before an upload is accepted and again when the transfer
is made: the largest file, the largest batch, and the storage an
organisation's uploads, unsent transfers and received files may occupy
together. Free disk space, less a reserve, is checked in the same places.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit
from gcx.errors import Forbidden, InputError, QuotaExceeded, StorageFull
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.protocol import strict_json
from gcx.protocol.transfer import TransferManifest
from gcx.store import iso
from gcx.store.schema_transfers import transfer_policies, transfers, uploads
from gcx.store.transfer_files import ChunkStore

RECEIVING_ROLES = frozenset({"staff", "system"})
# The kinds of a transfer's receipts in the one receipt store: the receipts a
# recipient signed and sent back to us as sender, and those we signed as
# recipient (kept so that completing again answers the same way).
RECEIPT_KIND = "transfer"
ISSUED_RECEIPT_KIND = "transfer-issued"


@dataclass(frozen=True)
class Policy:
    max_file_bytes: int
    max_batch_bytes: int
    storage_bytes: int
    retention_days: float


def transfer_files(gateway: Gateway) -> ChunkStore:
    """The gateway's chunk store (the adapter is chosen in :mod:`gcx.gateway.runtime`)."""
    return gateway.chunks


def stored_manifest(document: bytes) -> TransferManifest:
    """The manifest of a signed document this gateway verified before storing it."""
    payload = base64.b64decode(strict_json.loads(document)["payload"])
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


def check_space(gateway: Gateway, files: ChunkStore, needed: int) -> None:
    free, capacity = files.free_bytes()
    # The reserve keeps the disk from filling to the last byte (the database
    # and audit log share it); on a small volume it is at most 5% of it.
    reserve = min(gateway.config.transfer_min_free_bytes, capacity // 20)
    if free - reserve < needed:
        raise StorageFull(
            f"The gateway has {free // 2**20} MiB free and keeps {reserve // 2**20} MiB in "
            f"reserve; {needed // 2**20} MiB more are needed. Try again when space is freed."
        )


def check_quota(policy: Policy, used: int, sizes: list[int], organisation: str) -> None:
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
