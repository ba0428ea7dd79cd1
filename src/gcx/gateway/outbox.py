"""The transactional outbox: delivery work written with the envelope, claimed after commit.

A row is one envelope for one receiving gateway. The sending transaction
writes the envelope, its outbox rows and their audit entries together; a
worker then claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL so
replicas share the queue without blocking each other; SQLite serialises
writers anyway), marks them ``sending`` with a lease, and records the outcome.
A worker that dies mid-delivery leaves its rows ``sending`` with an expired
lease; the next claim takes them again. That is safe because receivers
eliminate duplicates by envelope id, so delivering twice is never seen twice.
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


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    envelope_id: str
    peer_gateway: str
    organisations: tuple[str, ...]
    state: str
    attempts: int
    expires_at: dt.datetime


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(
        row.id,
        row.envelope_id,
        row.peer_gateway,
        tuple(row.organisations),
        row.state,
        row.attempts,
        parse_iso(row.expires_at),
    )


def enqueue(
    conn: Connection,
    *,
    envelope_id: str,
    peer_gateway: str,
    organisations: list[str],
    now: dt.datetime,
    expires_at: dt.datetime,
) -> None:
    conn.execute(
        outbox.insert(),
        {
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
        sa.select(outbox).where(outbox.c.envelope_id == envelope_id).order_by(outbox.c.id)
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
            .where(outbox.c.envelope_id == envelope_id)
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
