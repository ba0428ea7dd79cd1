"""Listing the transfers a caller may see, newest first, a page at a time.

Who may see a transfer is decided per row (an outgoing one by its sender or
the organisation's administrators, a complete incoming one by any receiving
role of a recipient organisation), and recipients are a JSON list, so the
rows are scanned newest first in batches and filtered here until a page is
full. A gateway hosting several organisations therefore never hides one
organisation's transfers behind another's. The cursor is the last row's
(created_at, id, direction), so pages do not shift as new transfers arrive.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gcx.errors import InputError
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.gateway.transfers.reading import can_see_incoming, can_see_outgoing
from gcx.store.schema_transfers import transfers

_SCAN = 500
_CURSOR = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)~([0-9a-f]{1,32})~(in|out)")


@dataclass(frozen=True)
class TransferPage:
    items: list[dict[str, Any]]
    # Pass as ``before`` for the next, older page; None on the last page.
    older: str | None


def list_transfers(
    gateway: Gateway,
    caller: Caller,
    limit: int = 100,
    before: str | None = None,
    conditions: Sequence[sa.ColumnElement[bool]] = (),
) -> TransferPage:
    """A page of what the caller may see; ``conditions`` narrow it further (the
    staff pages' filters), in SQL, before rows are checked one by one."""
    if not 1 <= limit <= 1000:
        raise InputError("limit must be between 1 and 1000.")
    cursor = _parse_cursor(before)
    order = (transfers.c.created_at.desc(), transfers.c.id.desc(), transfers.c.direction.desc())
    key = sa.tuple_(transfers.c.created_at, transfers.c.id, transfers.c.direction)
    found: list[Any] = []
    with gateway.db.read() as conn:
        while len(found) <= limit:  # one more than a page, to know whether there is another
            query = sa.select(*_COLUMNS).where(*conditions).order_by(*order).limit(_SCAN)
            if cursor is not None:
                query = query.where(key < sa.tuple_(*(sa.literal(v) for v in cursor)))
            rows = conn.execute(query).all()
            found += [r for r in rows if visible(caller, r)]
            if len(rows) < _SCAN:
                break
            cursor = (rows[-1].created_at, rows[-1].id, rows[-1].direction)
    shown = found[:limit]
    older = cursor_text(shown[-1]) if len(found) > limit else None
    return TransferPage([summary(r) for r in shown], older)


_COLUMNS = (
    transfers.c.id,
    transfers.c.direction,
    transfers.c.state,
    transfers.c.sender_org,
    transfers.c.sender_user,
    transfers.c.recipients,
    transfers.c.marking,
    transfers.c.plaintext_bytes,
    transfers.c.created_at,
    transfers.c.completed_at,
)


def visible(caller: Caller, row: Any) -> bool:
    """Whether the caller may see the transfer ``row`` (the local API and the Files page)."""
    if row.direction == "out":
        return can_see_outgoing(caller, row)
    return row.state == "complete" and can_see_incoming(caller, row.recipients)


def summary(row: Any) -> dict[str, Any]:
    """A transfer as lists show it."""
    return {
        "id": row.id,
        "direction": row.direction,
        "state": row.state,
        "sender": f"{row.sender_user}@{row.sender_org}",
        "recipients": row.recipients,
        "marking": row.marking,
        "bytes": row.plaintext_bytes,
        "created_at": row.created_at,
        "completed_at": row.completed_at,
    }


def cursor_text(row: Any) -> str:
    """Where a list stopped: (created_at, id, direction), the order both lists use."""
    return f"{row.created_at}~{row.id}~{row.direction}"


def _parse_cursor(text: str | None) -> tuple[str, str, str] | None:
    if text is None:
        return None
    match = _CURSOR.fullmatch(text)
    if match is None:
        raise InputError("before must be the 'older' value of an earlier page.")
    return match.group(1), match.group(2), match.group(3)
