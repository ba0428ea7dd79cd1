"""The one receipt store: every signed receipt this gateway holds, of every kind of exchange.

A receipt is kept once per (subject, organisation, kind): the subject is the
message or transfer it is about, the kind says which receipt it is and which
side holds it (see :data:`gcx.store.schema.receipts`). Storing is
idempotent, because every carrier may be handed the same receipts again (a
retry after a crash is answered as the first try was); :func:`hold` says
whether a receipt was new, so the caller audits it once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from gcx.store import iso
from gcx.store.schema import receipts


def hold(
    conn: Connection,
    *,
    subject_id: str,
    organisation: str,
    kind: str,
    outcome: str,
    document: bytes,
    now: dt.datetime,
    late: bool = False,
) -> bool:
    """Keep one signed receipt unless it is held already; True if it was new.

    One statement (``INSERT … ON CONFLICT DO NOTHING`` on the unique key), so
    the hot path of receiving a message pays no extra query for it.
    """
    values = {
        "subject_id": subject_id,
        "organisation": organisation,
        "kind": kind,
        "outcome": outcome,
        "document": document,
        "received_at": iso(now),
        "late": late,
    }
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(receipts)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["subject_id", "organisation", "kind"])
        # The row it made, if it made one (rowcount is not reliable here on every driver).
        .returning(receipts.c.id)
    )
    return conn.execute(statement).first() is not None


@dataclass(frozen=True)
class Held:
    """One receipt to keep with :func:`hold_many` (the arguments of :func:`hold`)."""

    subject_id: str
    organisation: str
    kind: str
    outcome: str
    document: bytes
    late: bool = False


# Rows per statement: well under SQLite's limit on bound parameters (7 per row).
_HOLD_CHUNK = 200


def hold_many(
    conn: Connection, held: Sequence[Held], *, now: dt.datetime
) -> set[tuple[str, str, str]]:
    """Keep many receipts as :func:`hold` keeps one; the (subject, organisation, kind) new here.

    One multi-row ``INSERT … ON CONFLICT DO NOTHING … RETURNING`` per chunk:
    the rows it returns are exactly those it made, so a batch taken again
    after a crash is told that none is new and is audited once only.
    """
    made: set[tuple[str, str, str]] = set()
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    at = iso(now)
    for start in range(0, len(held), _HOLD_CHUNK):
        chunk = held[start : start + _HOLD_CHUNK]
        statement = (
            insert(receipts)
            .values(
                [
                    {
                        "subject_id": h.subject_id,
                        "organisation": h.organisation,
                        "kind": h.kind,
                        "outcome": h.outcome,
                        "document": h.document,
                        "received_at": at,
                        "late": h.late,
                    }
                    for h in chunk
                ]
            )
            .on_conflict_do_nothing(index_elements=["subject_id", "organisation", "kind"])
            .returning(receipts.c.subject_id, receipts.c.organisation, receipts.c.kind)
        )
        made.update((r.subject_id, r.organisation, r.kind) for r in conn.execute(statement))
    return made


def documents_for(
    conn: Connection, subject_ids: Collection[str], kind: str
) -> dict[str, list[str]]:
    """:func:`documents` for many subjects in one query (subjects with none are left out)."""
    found: dict[str, list[str]] = {}
    if not subject_ids:
        return found
    rows = conn.execute(
        sa.select(receipts.c.subject_id, receipts.c.document)
        .where(receipts.c.subject_id.in_(list(subject_ids)), receipts.c.kind == kind)
        .order_by(receipts.c.id)
    )
    for row in rows:
        found.setdefault(row.subject_id, []).append(bytes(row.document).decode())
    return found


def documents(conn: Connection, subject_id: str, kind: str) -> list[str]:
    """The signed receipts of one kind about a subject, as text, in the order they came."""
    return [
        bytes(d).decode()
        for d in conn.execute(
            sa.select(receipts.c.document)
            .where(receipts.c.subject_id == subject_id, receipts.c.kind == kind)
            .order_by(receipts.c.id)
        ).scalars()
    ]
