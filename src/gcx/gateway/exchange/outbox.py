"""The one outbox: exchange work written with the action it follows, claimed after commit.

A row is one piece of work for one receiving gateway, whatever its kind;
``kind`` names the carrier that does it (carriers are registered in
:mod:`gcx.gateway.exchange.carriers`) and ``subject_id`` what it is about:

* ``message``: one envelope, read from ``envelopes`` when it is sent. The
  sending transaction writes the envelope, its outbox rows and their audit
  entries together.
* ``transfer``: one bulk transfer for one receiving gateway, read from
  ``transfers`` and the chunk store; ``progress`` counts the chunks the
  receiver holds, so a restart resumes rather than starts again.
* ``read-receipt``: the signed read receipt for an envelope this gateway
  received, written in the transaction that marks the message read.
* ``recall``: the signed recall of an envelope the peer accepted after its
  sender had recalled it, written in the transaction that records the peer's
  receipt (the one that shows the recall must follow the message).

Control rows keep the signed document itself in ``document``, so every try
sends the same bytes. A worker claims due rows (``FOR UPDATE SKIP LOCKED``
on PostgreSQL so replicas share the queue without blocking each other; SQLite
serialises writers anyway), marks them ``sending`` with a lease it renews
while it works (:func:`renew`), and records the outcome through the one
lifecycle (:mod:`gcx.protocol.delivery`). A worker that dies mid-delivery
leaves its rows ``sending`` with a lease that lapses; the next claim takes
them again.

That is safe for every kind because receivers are idempotent: envelopes are
deduplicated by envelope id (a repeat is answered with the receipts issued
the first time); a transfer offered again is answered with the chunks still
missing, and completing it again returns the receipts already signed; a read
receipt stored twice is kept once (the receiver looks for an existing
``read`` receipt from that organisation first); a recall applied twice finds
the message already withdrawn and withdraws it again, answering ``recalled``
as before, or ``refused`` if it has been read since, which is the truth
either way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx.protocol.delivery import DeliveryEvent, DeliveryState, next_state
from gcx.store import Database, iso, parse_iso
from gcx.store.schema import outbox

# A claim holds a row this long; the worker renews it while it works, so a
# long transfer keeps its rows and a dead worker's rows are free again soon.
CLAIM_LEASE = dt.timedelta(seconds=15)
MESSAGE = "message"
TRANSFER = "transfer"
READ_RECEIPT = "read-receipt"
RECALL = "recall"
# How long a control document is tried for: as long as an envelope may live.
CONTROL_LIFETIME = dt.timedelta(days=30)


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    subject_id: str
    peer_gateway: str
    organisations: tuple[str, ...]
    state: str
    attempts: int
    expires_at: dt.datetime
    kind: str = MESSAGE
    document: bytes | None = None
    progress: int | None = None


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(
        row.id,
        row.subject_id,
        row.peer_gateway,
        tuple(row.organisations),
        row.state,
        row.attempts,
        parse_iso(row.expires_at),
        row.kind,
        None if row.document is None else bytes(row.document),
        row.progress,
    )


def enqueue(
    conn: Connection,
    *,
    subject_id: str,
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
            "subject_id": subject_id,
            "peer_gateway": peer_gateway,
            "organisations": sorted(organisations),
            "state": DeliveryState.QUEUED.value,
            "attempts": 0,
            "next_attempt_at": iso(now),
            "expires_at": iso(expires_at),
            "created_at": iso(now),
            "updated_at": iso(now),
            "progress": 0 if kind == TRANSFER else None,
        },
    )


@dataclass(frozen=True)
class NewWork:
    """One row for :func:`enqueue_many` (the arguments of :func:`enqueue`, but ``now``)."""

    subject_id: str
    peer_gateway: str
    organisations: Sequence[str]
    expires_at: dt.datetime
    kind: str = MESSAGE
    document: bytes | None = None


_INSERT_ROW = outbox.insert()


def enqueue_many(conn: Connection, work: Sequence[NewWork], *, now: dt.datetime) -> None:
    """Write many rows as :func:`enqueue` writes one, with one ``executemany``."""
    if not work:
        return
    at = iso(now)
    conn.execute(
        _INSERT_ROW,
        [
            {
                "kind": w.kind,
                "document": w.document,
                "subject_id": w.subject_id,
                "peer_gateway": w.peer_gateway,
                "organisations": sorted(w.organisations),
                "state": DeliveryState.QUEUED.value,
                "attempts": 0,
                "next_attempt_at": at,
                "expires_at": iso(w.expires_at),
                "created_at": at,
                "updated_at": at,
                "progress": 0 if w.kind == TRANSFER else None,
            }
            for w in work
        ],
    )


def claim_due(
    db: Database,
    *,
    now: dt.datetime,
    limit: int,
    kinds: Collection[str] | None = None,
    other_than: Collection[str] = (),
) -> list[OutboxEntry]:
    """Take up to ``limit`` due rows for this worker, oldest first.

    ``kinds`` restricts the claim to those kinds and ``other_than`` leaves
    some out: the worker claims kinds whose carrier takes a few rows at a
    time (transfers) apart from the rest, so it never holds more of them than
    it can work on while other replicas could.
    """
    waiting = [DeliveryState.QUEUED.value, DeliveryState.RETRYING.value]
    due = sa.or_(
        sa.and_(outbox.c.state.in_(waiting), outbox.c.next_attempt_at <= iso(now)),
        sa.and_(
            outbox.c.state == DeliveryState.SENDING.value,
            outbox.c.claimed_until < iso(now),
        ),
    )
    if kinds is not None:
        due = sa.and_(due, outbox.c.kind.in_(list(kinds)))
    if other_than:
        due = sa.and_(due, outbox.c.kind.not_in(list(other_than)))
    with db.transaction() as conn:
        rows = conn.execute(
            sa.select(outbox)
            .where(due)
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
    # ``attempts`` counts this try, as the row now does; ``state`` stays the one
    # it was claimed from (``sending`` there means a lapsed lease taken over).
    return [dataclasses.replace(_entry(r), attempts=r.attempts + 1) for r in rows]


def next_due(db: Database) -> dt.datetime | None:
    """When the first row becomes claimable: its next attempt, or its lease's end if taken.

    A read, not a claim: on SQLite it takes no write lock and on PostgreSQL no
    row lock, so a worker can ask it as often as it likes and claim (a write
    transaction) only when it says something is due. Each part is the least
    of one index range (``ix_outbox_due`` leads with ``state``), so a long
    queue costs no more than a short one; leases are read among ``sending``
    rows only, which are never more than the claims in flight. None: nothing
    waits at all.
    """
    waiting = sa.select(sa.func.min(outbox.c.next_attempt_at))
    leases = sa.select(sa.func.min(outbox.c.claimed_until)).where(
        outbox.c.state == DeliveryState.SENDING.value
    )
    with db.read() as conn:
        row = conn.execute(
            sa.select(
                waiting.where(outbox.c.state == DeliveryState.QUEUED.value).scalar_subquery(),
                waiting.where(outbox.c.state == DeliveryState.RETRYING.value).scalar_subquery(),
                leases.scalar_subquery(),
            )
        ).one()
    times = [parse_iso(t) for t in row if t is not None]
    return min(times) if times else None


def renew(db: Database, ids: Collection[int], *, now: dt.datetime) -> None:
    """Extend the lease of rows a worker is still working on (one statement for all)."""
    if not ids:
        return
    with db.transaction() as conn:
        conn.execute(
            outbox.update()
            .where(outbox.c.id.in_(list(ids)), outbox.c.state == DeliveryState.SENDING.value)
            .values(claimed_until=iso(now + CLAIM_LEASE))
        )


def set_progress(db: Database, entry_id: int, progress: int, *, now: dt.datetime) -> None:
    """Record how many parts of a multi-part kind the receiver now holds."""
    with db.transaction() as conn:
        conn.execute(
            outbox.update()
            .where(outbox.c.id == entry_id)
            .values(progress=progress, updated_at=iso(now))
        )


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


def states_of(conn: Connection, row_ids: Collection[int]) -> dict[int, str]:
    """The state of each of these rows (those that still exist), locked for update."""
    if not row_ids:
        return {}
    rows = conn.execute(
        sa.select(outbox.c.id, outbox.c.state)
        .where(outbox.c.id.in_(list(row_ids)))
        .with_for_update()
    )
    return {r.id: r.state for r in rows}


def transition_many(
    conn: Connection, current: Mapping[int, str], event: DeliveryEvent, *, now: dt.datetime
) -> dict[int, str]:
    """Apply one event to many rows whose states :func:`states_of` just read and locked.

    The same lifecycle table decides each row's next state as in
    :func:`transition`; the rows are then written with one ``UPDATE … WHERE
    id IN`` per resulting state, so recording a batch of receipts costs a
    statement or two, not two per row. An event the table does not allow
    from some row's state raises before anything is written.
    """
    after = {
        row_id: next_state(DeliveryState(state), event).value for row_id, state in current.items()
    }
    by_state: dict[str, list[int]] = {}
    for row_id, state in after.items():
        by_state.setdefault(state, []).append(row_id)
    for state, ids in sorted(by_state.items()):
        conn.execute(
            outbox.update()
            .where(outbox.c.id.in_(sorted(ids)))
            .values(state=state, updated_at=iso(now), claimed_until=None)
        )
    return after


def states_for(conn: Connection, subject_id: str, kind: str = MESSAGE) -> list[dict[str, Any]]:
    """Each receiving gateway's row for one subject, as the status APIs show it."""
    rows = conn.execute(
        sa.select(outbox)
        .where(outbox.c.subject_id == subject_id, outbox.c.kind == kind)
        .order_by(outbox.c.id)
    ).all()
    return [
        {
            "gateway": r.peer_gateway,
            "organisations": list(r.organisations),
            "state": r.state,
            "attempts": r.attempts,
            **({"progress": r.progress} if r.progress is not None else {}),
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


def rows_for(conn: Connection, subject_id: str, kind: str = MESSAGE) -> list[tuple[int, str]]:
    """(row id, state) of every row of one subject, locked for update."""
    return [
        (r.id, r.state)
        for r in conn.execute(
            sa.select(outbox.c.id, outbox.c.state)
            .where(outbox.c.subject_id == subject_id, outbox.c.kind == kind)
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
