"""The transactional outbox: delivery work written with the action it follows, claimed after commit.

A row is one piece of work for one receiving gateway, and its ``kind`` names
the carrier that does it (:mod:`gcx.gateway.exchange.worker` holds the registry):

* ``message``: one envelope, read from ``envelopes`` when it is sent. The
  sending transaction writes the envelope, its outbox rows and their audit
  entries together.
* ``read-receipt``: the signed read receipt for an envelope this gateway
  received, written in the transaction that marks the message read.
* ``recall``: the signed recall of an envelope the peer accepted after its
  sender had recalled it, written in the transaction that records the peer's
  receipt (the one that shows the recall must follow the message).

Control rows keep the signed document itself in ``document``, so every try
sends the same bytes. A worker claims due rows of every kind
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL so replicas share the queue without
blocking each other; SQLite serialises writers anyway), marks them
``sending`` with a lease, and records the outcome through the one lifecycle
(:mod:`gcx.protocol.delivery`). A worker that dies mid-delivery leaves its
rows ``sending`` with an expired lease; the next claim takes them again.

That is safe for every kind because receivers are idempotent: envelopes are
deduplicated by envelope id (a repeat is answered with the receipts issued
the first time); a read receipt stored twice is kept once (the receiver looks
for an existing ``read`` receipt from that organisation first); a recall
applied twice finds the message already withdrawn and withdraws it again,
answering ``recalled`` as before, or ``refused`` if it has been read since,
which is the truth either way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx.protocol.delivery import DeliveryEvent, DeliveryState, next_state
from gcx.store import Database, iso, parse_iso
from gcx.store.schema import outbox

CLAIM_LEASE = dt.timedelta(seconds=60)
MESSAGE = "message"
READ_RECEIPT = "read-receipt"
RECALL = "recall"
# How long a control document is tried for: as long as an envelope may live.
CONTROL_LIFETIME = dt.timedelta(days=30)


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    envelope_id: str
    peer_gateway: str
    organisations: tuple[str, ...]
    state: str
    attempts: int
    expires_at: dt.datetime
    kind: str = MESSAGE
    document: bytes | None = None


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(
        row.id,
        row.envelope_id,
        row.peer_gateway,
        tuple(row.organisations),
        row.state,
        row.attempts,
        parse_iso(row.expires_at),
        row.kind,
        None if row.document is None else bytes(row.document),
    )


def enqueue(
    conn: Connection,
    *,
    envelope_id: str,
    peer_gateway: str,
    organisations: list[str],
    now: dt.datetime,
    expires_at: dt.datetime,
    kind: str = MESSAGE,
    document: bytes | None = None,
) -> None:
    """Write one row of work; call it inside the transaction of the action it follows."""
    conn.execute(
        outbox.insert(),
        {
            "kind": kind,
            "document": document,
            "envelope_id": envelope_id,
            "peer_gateway": peer_gateway,
            "organisations": sorted(organisations),
            "state": DeliveryState.QUEUED.value,
            "attempts": 0,
            "next_attempt_at": iso(now),
            "expires_at": iso(expires_at),
            "created_at": iso(now),
            "updated_at": iso(now),
        },
    )


def claim_due(db: Database, *, now: dt.datetime, limit: int) -> list[OutboxEntry]:
    """Take up to ``limit`` due rows for this worker, oldest first."""
    waiting = [DeliveryState.QUEUED.value, DeliveryState.RETRYING.value]
    with db.transaction() as conn:
        rows = conn.execute(
            sa.select(outbox)
            .where(
                sa.or_(
                    sa.and_(outbox.c.state.in_(waiting), outbox.c.next_attempt_at <= iso(now)),
                    sa.and_(
                        outbox.c.state == DeliveryState.SENDING.value,
                        outbox.c.claimed_until < iso(now),
                    ),
                )
            )
            .order_by(outbox.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        conn.execute(
            outbox.update()
            .where(outbox.c.id.in_([r.id for r in rows]))
            .values(
                state=DeliveryState.SENDING.value,
                claimed_until=iso(now + CLAIM_LEASE),
                attempts=outbox.c.attempts + 1,
                updated_at=iso(now),
            )
        )
    return [_entry(r) for r in rows]


def transition(
    conn: Connection,
    entry_id: int,
    event: DeliveryEvent,
    *,
    now: dt.datetime,
    next_attempt_at: dt.datetime | None = None,
    error_code: str | None = None,
    error: str | None = None,
) -> str | None:
    """Apply one lifecycle event to a row; returns the new state (None if the row is gone)."""
    row = conn.execute(
        sa.select(outbox.c.state).where(outbox.c.id == entry_id).with_for_update()
    ).first()
    if row is None:
        return None
    state = next_state(DeliveryState(row.state), event)
    values: dict[str, Any] = {"state": state.value, "updated_at": iso(now), "claimed_until": None}
    if next_attempt_at is not None:
        values["next_attempt_at"] = iso(next_attempt_at)
    if error_code is not None:
        values["last_error_code"] = error_code
        values["last_error"] = (error or "")[:2000]
    conn.execute(outbox.update().where(outbox.c.id == entry_id).values(**values))
    return state.value


def states_for(conn: Connection, envelope_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(outbox)
        .where(outbox.c.envelope_id == envelope_id, outbox.c.kind == MESSAGE)
        .order_by(outbox.c.id)
    ).all()
    return [
        {
            "gateway": r.peer_gateway,
            "organisations": list(r.organisations),
            "state": r.state,
            "attempts": r.attempts,
            "next_attempt_at": r.next_attempt_at,
            "last_error": (
                {"code": r.last_error_code, "message": r.last_error} if r.last_error_code else None
            ),
        }
        for r in rows
    ]


def depth(conn: Connection) -> int:
    """How many rows wait for delivery (for status pages)."""
    waiting = [
        s.value for s in (DeliveryState.QUEUED, DeliveryState.RETRYING, DeliveryState.SENDING)
    ]
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.state.in_(waiting))
        ).scalar_one()
    )


def rows_for(conn: Connection, envelope_id: str) -> list[tuple[int, str]]:
    """(row id, state) of every delivery of one envelope, locked for update."""
    return [
        (r.id, r.state)
        for r in conn.execute(
            sa.select(outbox.c.id, outbox.c.state)
            .where(outbox.c.envelope_id == envelope_id, outbox.c.kind == MESSAGE)
            .order_by(outbox.c.id)
            .with_for_update()
        )
    ]


def peer_of(conn: Connection, row_id: int) -> str:
    return str(
        conn.execute(sa.select(outbox.c.peer_gateway).where(outbox.c.id == row_id)).scalar_one()
    )


def state_of(conn: Connection, row_id: int) -> str:
    return str(
        conn.execute(
            sa.select(outbox.c.state).where(outbox.c.id == row_id).with_for_update()
        ).scalar_one()
    )
