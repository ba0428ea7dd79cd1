"""The gateway as a witness of central's own audit log.

Central witnesses the gateways' logs; nothing watched central's. Each minute,
after lodging its own checkpoint, a gateway asks central for its signed head
with a proof that it extends the head the gateway holds, checks the signature
against the network's anchor and the proof, and keeps the new head. Central
could then rewrite its history only by rewriting every gateway's copy too.

A head that does not extend the one held raises an alarm: the reason and the
signed head are kept as evidence, the audit log records it once, the health
page shows it, and the held head stays as it was, so every later answer is
checked against the last one known good. Someone with the gateway's command
line clears the alarm by accepting central's log as it now is (after a
restore from backup, say), which is audited too.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.audit.checkpoint import extension_problem
from gcx.clock import Clock
from gcx.errors import ConsistencyProofInvalid, InputError, NotFound, SignatureInvalid
from gcx.protocol.checkpoint import CENTRAL_LOG, CENTRAL_PAYLOAD_TYPE, Checkpoint
from gcx.store import Database, iso
from gcx.store.schema import central_log_head

log = logging.getLogger("gcx.gateway")

_ROW = 1


class CentralLogWitness:
    def __init__(self, db: Database, anchor_key: crypto.VerifyKey, clock: Clock) -> None:
        self.db = db
        self.anchor_key = anchor_key
        self.clock = clock

    def held_size(self) -> int:
        """How many of central's entries the held head covers: what to ask a proof from."""
        with self.db.read() as conn:
            size = conn.execute(
                sa.select(central_log_head.c.tree_size).where(central_log_head.c.id == _ROW)
            ).scalar()
        return int(size or 0)

    def state(self) -> dict[str, Any] | None:
        return central_log_state(self.db)

    def check(self, document: bytes) -> dict[str, Any]:
        """Check central's signed head against the one held; keep it if it extends it."""
        checkpoint = self._verified(document)
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = _held(conn)
            old_size = row.tree_size if row else 0
            old_root = bytes.fromhex(row.root_hash) if row else b""
            problem = extension_problem(checkpoint, old_size, old_root)
            if problem is None:
                _keep(conn, row, checkpoint, document, iso(now))
            elif row is not None and row.alarm_at is None:
                conn.execute(
                    central_log_head.update()
                    .where(central_log_head.c.id == _ROW)
                    .values(alarm_at=iso(now), alarm_reason=problem, alarm_document=document)
                )
                audit.append(
                    conn,
                    actor="gateway",
                    action="central.log-inconsistent",
                    subject=CENTRAL_LOG,
                    now=now,
                    details={
                        "held_size": old_size,
                        "held_root": row.root_hash,
                        "claimed_size": checkpoint.tree_size,
                        "claimed_root": checkpoint.root_hash,
                        "reason": problem,
                    },
                )
                log.error("central's audit log no longer extends the head held: %s", problem)
        if problem is not None:
            raise ConsistencyProofInvalid(
                f"Central's audit log no longer extends the head this gateway holds "
                f"({old_size} entries): {problem}. Its history may have been rewritten."
            )
        return {"tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash}

    def accept_alarm(self, *, by: str) -> dict[str, Any]:
        """Take the head that raised the alarm as the new one to hold, and clear the alarm."""
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = _held(conn)
            if row is None or row.alarm_document is None:
                raise NotFound("There is no alarm about central's audit log to clear.")
            document = bytes(row.alarm_document)
            checkpoint = self._verified(document)
            _keep(conn, row, checkpoint, document, iso(now), clear_alarm=True)
            audit.append(
                conn,
                actor=by,
                action="central.log-accepted",
                subject=CENTRAL_LOG,
                now=now,
                details={
                    "held_size": row.tree_size,
                    "held_root": row.root_hash,
                    "accepted_size": checkpoint.tree_size,
                    "accepted_root": checkpoint.root_hash,
                    "alarm_reason": row.alarm_reason,
                },
            )
        return {"tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash}

    def _verified(self, document: bytes) -> Checkpoint:
        key = self.anchor_key
        try:
            payload = crypto.verify_document(
                document, CENTRAL_PAYLOAD_TYPE, {crypto.key_id(key): key}
            )
        except SignatureInvalid as exc:
            raise SignatureInvalid(
                "Central's audit head is not signed by the network's root key."
            ) from exc
        checkpoint = Checkpoint.from_bytes(payload)
        if checkpoint.gateway != CENTRAL_LOG:
            raise InputError("Central's audit head names a log other than central's.")
        return checkpoint


def central_log_state(db: Database) -> dict[str, Any] | None:
    """The held head of central's log and any alarm; None before the first check."""
    with db.read() as conn:
        row = conn.execute(sa.select(central_log_head).where(central_log_head.c.id == _ROW)).first()
    if row is None:
        return None
    return {
        "tree_size": row.tree_size,
        "root_hash": row.root_hash,
        "issued_at": row.issued_at,
        "checked_at": row.checked_at,
        "alarm_at": row.alarm_at,
        "alarm_reason": row.alarm_reason,
    }


def _held(conn: Connection) -> Any:
    return conn.execute(
        sa.select(central_log_head).where(central_log_head.c.id == _ROW).with_for_update()
    ).first()


def _keep(
    conn: Connection,
    row: Any,
    checkpoint: Checkpoint,
    document: bytes,
    now: str,
    *,
    clear_alarm: bool = False,
) -> None:
    values = {
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "issued_at": iso(checkpoint.issued_at),
        "checked_at": now,
        "document": document,
        "alarm_at": None,
        "alarm_reason": None,
        "alarm_document": None,
    }
    if row is None:
        conn.execute(central_log_head.insert().values(id=_ROW, **values))
        return
    if row.alarm_at is not None and not clear_alarm:
        # An alarm stands until someone accepts central's log: a later head
        # that happens to extend the old one does not erase the evidence.
        for name in ("alarm_at", "alarm_reason", "alarm_document"):
            values.pop(name)
    conn.execute(central_log_head.update().where(central_log_head.c.id == _ROW).values(**values))
