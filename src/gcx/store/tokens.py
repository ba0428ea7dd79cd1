"""Finding the live row for a bearer token, for every table that keeps token hashes.

Only a token's hash is stored, so a token is found by hashing it. The stored
hash is then compared again in constant time, so the decision never rests on
the database's own string comparison alone.
"""

from __future__ import annotations

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
