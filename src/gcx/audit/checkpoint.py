"""Making a gateway's signed checkpoint of its audit log."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import crypto
from gcx.clock import Clock
from gcx.protocol.checkpoint import PAYLOAD_TYPE, Checkpoint
from gcx.store.schema import audit_entries


def leaves(conn: Connection) -> list[bytes]:
    """Every entry's hash in order: the leaves of the log's Merkle tree."""
    return [
        bytes.fromhex(h)
        for h in conn.execute(
            sa.select(audit_entries.c.entry_hash).order_by(audit_entries.c.seq)
        ).scalars()
    ]


def make_checkpoint(
    conn: Connection,
    *,
    gateway: str,
    previous_size: int,
    key: crypto.SigningKey,
    clock: Clock,
) -> tuple[Checkpoint, bytes]:
    """The signed head of the whole log, with a proof that it extends ``previous_size``."""
    all_leaves = leaves(conn)
    # A log shorter than what central already holds cannot be proven to
    # extend it; send the honest (empty) proof and let central refuse it.
    proof = (
        crypto.consistency_proof(previous_size, all_leaves)
        if previous_size <= len(all_leaves)
        else []
    )
    checkpoint = Checkpoint(
        gateway=gateway,
        tree_size=len(all_leaves),
        root_hash=crypto.tree_head(all_leaves).hex(),
        issued_at=clock.now(),
        previous_size=previous_size,
        consistency_proof=tuple(node.hex() for node in proof),
    )
    document = crypto.sign_document(
        PAYLOAD_TYPE, checkpoint.to_bytes(), key, crypto.key_id(key.public)
    )
    return checkpoint, document
