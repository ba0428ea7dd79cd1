"""Signed checkpoints of an audit log, and checking that one head extends another.

Gateways sign theirs and lodge them with central; central signs its own with
the network's root key for the gateways to witness. Both sides check a new
head against the last one they hold with :func:`extension_problem`.
"""

from __future__ import annotations

import threading

import sqlalchemy as sa

from gcx import crypto
from gcx.clock import Clock
from gcx.errors import AuditChainBroken, CryptoError
from gcx.protocol.checkpoint import PAYLOAD_TYPE, Checkpoint
from gcx.store import Database
from gcx.store.schema import audit_entries


class AuditTree:
    """The Merkle tree over one database's audit log, kept in memory between checkpoints.

    Each checkpoint reads only the entries appended since the last one; heads
    and proofs come from the remembered subtrees (:class:`gcx.crypto.MerkleLog`)
    rather than from hashing the whole log again. Leaf ``i`` is the entry with
    ``seq`` ``i + 1``: the chain numbers entries from 1 without gaps, which
    ``gcx audit verify`` checks. One tree serves a whole process; a lock keeps
    concurrent requests (central answering many gateways) from interleaving.
    """

    def __init__(self, db: Database, block_level: int = 6) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._tree = crypto.MerkleLog(self._read, block_level=block_level)
        self._last: bytes | None = None  # the newest entry's hash the tree holds

    def _read(self, start: int, end: int) -> list[bytes]:
        with self._db.read() as conn:
            found = [
                bytes.fromhex(h)
                for h in conn.execute(
                    sa.select(audit_entries.c.entry_hash)
                    .where(audit_entries.c.seq > start, audit_entries.c.seq <= end)
                    .order_by(audit_entries.c.seq)
                ).scalars()
            ]
        if len(found) != end - start:
            raise AuditChainBroken(
                f"The audit log is missing entries between {start + 1} and {end}; "
                "run gcx audit verify."
            )
        return found

    def _catch_up(self) -> None:
        with self._db.read() as conn:
            size = conn.execute(sa.select(sa.func.max(audit_entries.c.seq))).scalar() or 0
        if self._last is not None and (
            size < self._tree.size
            or self._read(self._tree.size - 1, self._tree.size)[0] != self._last
        ):
            # Entries this tree covers were removed or changed under the running
            # process. Signing a head from memory would vouch for a log that no
            # longer exists; refusing makes it visible at once.
            raise AuditChainBroken(
                f"The audit log no longer holds the {self._tree.size} entries this process "
                "has signed heads over; run gcx audit verify."
            )
        # Read in slices, so a first checkpoint of a long log does not hold it all at once.
        while self._tree.size < size:
            start = self._tree.size
            new = self._read(start, min(size, start + 50_000))
            self._tree.extend(new)
            self._last = new[-1]

    def checkpoint(
        self,
        *,
        gateway: str,
        previous_size: int,
        key: crypto.SigningKey,
        clock: Clock,
        payload_type: str = PAYLOAD_TYPE,
    ) -> tuple[Checkpoint, bytes]:
        """The signed head of the whole log, with a proof that it extends ``previous_size``."""
        with self._lock:
            self._catch_up()
            size = self._tree.size
            # A log shorter than what the other side holds cannot be proven to
            # extend it; send the honest (empty) proof and let it refuse.
            proof = self._tree.consistency_proof(previous_size) if previous_size <= size else []
            root = self._tree.head()
        checkpoint = Checkpoint(
            gateway=gateway,
            tree_size=size,
            root_hash=root.hex(),
            issued_at=clock.now(),
            previous_size=previous_size,
            consistency_proof=tuple(node.hex() for node in proof),
        )
        document = crypto.sign_document(
            payload_type, checkpoint.to_bytes(), key, crypto.key_id(key.public)
        )
        return checkpoint, document


def extension_problem(checkpoint: Checkpoint, old_size: int, old_root: bytes) -> str | None:
    """Why ``checkpoint`` does not extend the head held (size and root), or None if it does."""
    if checkpoint.previous_size != old_size:
        return (
            f"it proves extension of a tree of {checkpoint.previous_size} entries, but the "
            f"head held is of {old_size}"
        )
    try:
        crypto.verify_consistency(
            old_size,
            old_root,
            checkpoint.tree_size,
            bytes.fromhex(checkpoint.root_hash),
            [bytes.fromhex(n) for n in checkpoint.consistency_proof],
        )
    except CryptoError as error:
        return (
            f"a tree of {checkpoint.tree_size} entries does not extend {old_size}: {error.message}"
        )
    return None
