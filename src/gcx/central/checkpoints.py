"""Central's witness of gateways' audit logs.

Each gateway lodges a signed tree head at least every minute with a proof
that it extends the last one central accepted. Central never sees an entry;
it keeps the heads, and a head that does not extend the previous one is
refused and the gateway flagged for the operator, because its history may
have been rewritten.
"""

from __future__ import annotations

import base64
from typing import Any

import sqlalchemy as sa

from gcx import audit, crypto
from gcx.audit.checkpoint import AuditTree, extension_problem
from gcx.clock import Clock
from gcx.errors import (
    BodyNotUtf8,
    ConsistencyProofInvalid,
    InputError,
    JsonInvalid,
    NotFound,
    SignatureInvalid,
)
from gcx.protocol import strict_json
from gcx.protocol.checkpoint import CENTRAL_LOG, CENTRAL_PAYLOAD_TYPE, PAYLOAD_TYPE, Checkpoint
from gcx.protocol.enrolment import EnrolmentState
from gcx.protocol.identifiers import check_gateway_name
from gcx.store import Database, iso
from gcx.store.schema import checkpoints, enrolments, gateway_flags


class CheckpointWitness:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def latest(self, gateway: str) -> dict[str, Any]:
        # Only a well-formed name is looked up: an unlodged gateway answers size 0,
        # but "%00" or a path is no gateway at all (and NUL is no PostgreSQL text).
        check_gateway_name(gateway)
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(checkpoints.c.tree_size, checkpoints.c.root_hash)
                .where(checkpoints.c.gateway == gateway)
                .order_by(checkpoints.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return {"gateway": gateway, "tree_size": 0, "root_hash": None}
        return {"gateway": gateway, "tree_size": row.tree_size, "root_hash": row.root_hash}

    def standing(self) -> dict[str, dict[str, Any]]:
        """Per gateway: its last accepted head, and the flag raised since, if one stands.

        A flag stands until the gateway lodges a head central accepts again (as
        ``_flag`` decides); the operator's dashboard shows both.
        """
        with self.db.read() as conn:
            newest = (
                sa.select(checkpoints.c.gateway, sa.func.max(checkpoints.c.id).label("id"))
                .group_by(checkpoints.c.gateway)
                .subquery()
            )
            accepted = conn.execute(
                sa.select(
                    checkpoints.c.gateway, checkpoints.c.tree_size, checkpoints.c.received_at
                ).join(newest, checkpoints.c.id == newest.c.id)
            ).all()
            flags = conn.execute(sa.select(gateway_flags).order_by(gateway_flags.c.id)).all()
        found: dict[str, dict[str, Any]] = {
            row.gateway: {
                "tree_size": row.tree_size,
                "checked_at": row.received_at,
                "flag": None,
            }
            for row in accepted
        }
        for flag in flags:
            entry = found.setdefault(
                flag.gateway, {"tree_size": 0, "checked_at": None, "flag": None}
            )
            if entry["checked_at"] is None or flag.flagged_at >= entry["checked_at"]:
                entry["flag"] = {"reason": flag.reason, "flagged_at": flag.flagged_at}
        return found

    def lodge(self, document: bytes) -> dict[str, Any]:
        claimed = _claimed_gateway(document)
        now = self.clock.now()
        with self.db.transaction() as conn:
            enrolment = conn.execute(
                sa.select(enrolments.c.certificate_pem).where(
                    enrolments.c.gateway_name == claimed,
                    enrolments.c.state == EnrolmentState.ACTIVE.value,
                )
            ).first()
            if enrolment is None:
                raise NotFound(f"There is no active gateway named {claimed[:63]!r}.")
            key = crypto.Certificate.from_pem(enrolment.certificate_pem.encode()).public_key()
            try:
                payload = crypto.verify_document(document, PAYLOAD_TYPE, {crypto.key_id(key): key})
            except SignatureInvalid as exc:
                raise SignatureInvalid(
                    "The checkpoint is not signed by the key certified for that gateway."
                ) from exc
            checkpoint = Checkpoint.from_bytes(payload)
            if checkpoint.gateway != claimed:
                raise InputError("The checkpoint names a different gateway from its signer.")
            previous = conn.execute(
                sa.select(checkpoints.c.tree_size, checkpoints.c.root_hash)
                .where(checkpoints.c.gateway == claimed)
                .order_by(checkpoints.c.id.desc())
                .limit(1)
                .with_for_update()
            ).first()
            old_size = previous.tree_size if previous else 0
            old_root = bytes.fromhex(previous.root_hash) if previous else b""
            refusal = extension_problem(checkpoint, old_size, old_root)
            if refusal is None:
                conn.execute(
                    checkpoints.insert().values(
                        gateway=claimed,
                        tree_size=checkpoint.tree_size,
                        root_hash=checkpoint.root_hash,
                        issued_at=iso(checkpoint.issued_at),
                        received_at=iso(now),
                        document=document,
                    )
                )
                audit.append(
                    conn,
                    actor=f"gateway:{claimed}",
                    action="checkpoint.accepted",
                    subject=claimed,
                    now=now,
                    details={"tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash},
                )
        if refusal is not None:
            # Flagged in a transaction of its own, after the one above has
            # ended: the flag must be kept although the lodging is refused.
            self._flag(claimed, refusal)
            raise ConsistencyProofInvalid(
                f"Refused: the audit log of {claimed} no longer extends what it lodged "
                f"before ({old_size} entries); the gateway has been flagged for the operator."
            )
        return {"gateway": claimed, "tree_size": checkpoint.tree_size, "accepted": True}

    def _flag(self, gateway: str, reason: str) -> None:
        """Flag the gateway, once: while a flag stands unanswered by an accepted head, a
        gateway retrying every minute adds only a refusal entry, not another flag."""
        now = self.clock.now()
        with self.db.transaction() as conn:
            last_flag = conn.execute(
                sa.select(sa.func.max(gateway_flags.c.flagged_at)).where(
                    gateway_flags.c.gateway == gateway
                )
            ).scalar()
            last_accepted = conn.execute(
                sa.select(sa.func.max(checkpoints.c.received_at)).where(
                    checkpoints.c.gateway == gateway
                )
            ).scalar()
            if last_flag is not None and (last_accepted is None or last_flag >= last_accepted):
                audit.append(
                    conn,
                    actor=f"gateway:{gateway}",
                    action="checkpoint.refused",
                    subject=gateway,
                    now=now,
                    details={"code": ConsistencyProofInvalid.code, "reason": reason},
                )
                return
            conn.execute(
                gateway_flags.insert().values(
                    gateway=gateway,
                    code=ConsistencyProofInvalid.code,
                    reason=reason,
                    flagged_at=iso(now),
                )
            )
            audit.append(
                conn,
                actor="central",
                action="gateway.flagged",
                subject=gateway,
                now=now,
                details={"code": ConsistencyProofInvalid.code, "reason": reason},
            )

    def flags(self) -> list[dict[str, Any]]:
        with self.db.transaction() as conn:
            rows = conn.execute(sa.select(gateway_flags).order_by(gateway_flags.c.id)).all()
        return [
            {"gateway": r.gateway, "code": r.code, "reason": r.reason, "flagged_at": r.flagged_at}
            for r in rows
        ]


def sign_central_head(tree: AuditTree, key: crypto.SigningKey, clock: Clock, since: int) -> bytes:
    """Central's own audit log head, signed with the root key, proving it extends ``since``.

    Gateways hold the last head they saw and ask for a proof from its size, so
    central cannot quietly rewrite its history either: every gateway is its
    witness. A ``since`` beyond the log's end gets a head with no proof, which
    the asking gateway refuses, as it should: central's log has shrunk.
    """
    if since < 0:
        raise InputError("since must be a number of entries, 0 or more.")
    _, document = tree.checkpoint(
        gateway=CENTRAL_LOG,
        previous_size=since,
        key=key,
        clock=clock,
        payload_type=CENTRAL_PAYLOAD_TYPE,
    )
    return document


def _claimed_gateway(document: bytes) -> str:
    """The gateway a checkpoint claims to be from, read before verifying to pick the key."""
    try:
        envelope = strict_json.loads(document)
        payload = strict_json.loads(base64.b64decode(envelope["payload"], validate=True))
        return str(payload["gateway"])
    except (JsonInvalid, BodyNotUtf8):
        raise  # refused as what they are: the JSON itself is bad
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError("The checkpoint is not a signed gcx.checkpoint/1 document.") from exc
