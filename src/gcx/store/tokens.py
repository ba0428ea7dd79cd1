"""Finding the live row for a bearer token, for every table that keeps token hashes.

Only a token's hash is stored, so a token is found by hashing it. The stored
hash is then compared again in constant time, so the decision never rests on
the database's own string comparison alone.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from gcx import crypto


def live_token_row(conn: Connection, table: sa.Table, token: str | None) -> Row[Any] | None:
    """The row of ``table`` for ``token``, or None if it is missing, unknown or revoked.

    ``table`` has ``token_hash`` and ``revoked_at`` columns.
    """
    if not token:
        return None
    row = conn.execute(
        sa.select(table).where(table.c.token_hash == crypto.hash_token(token))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    if not crypto.token_matches(token, row.token_hash):
        return None
    return row


# Callers a gateway authenticated are remembered briefly (gcx.gateway.tokens); anything in
# this process that changes who a token may act as, or whether it may act at all (a revoked
# token, a person disabled or given other roles, a name taken by a person or a mailbox),
# calls standing_changed() after its commit, and every remembered caller is asked about again.
_generation = [0]
_generation_lock = threading.Lock()


def standing_changed() -> None:
    """Forget every remembered caller in this process (call it after the change commits)."""
    with _generation_lock:
        _generation[0] += 1


def standing_generation() -> int:
    """Changes so far: a caller remembered under another number is asked about again."""
    return _generation[0]
