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
