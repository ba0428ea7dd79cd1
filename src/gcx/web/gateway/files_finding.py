"""Finding transfers for the Files page: filters, a search and a sort, a page at a time.

As in the inbox (:mod:`gcx.gateway.messages.finding`), what the database can
answer it answers: direction, marking, the other organisation, dates and
whether the person has downloaded a batch are columns, given as SQL
conditions. File names and covering notes are another matter: a received
batch's are only ever stored encrypted, so a word typed into the search box
is matched here, on rows the filters left, after opening their metadata
(sent batches keep their own file names in the clear). At most :data:`SCAN`
rows are opened per page asked for; when that many were opened without
filling a page, the page says so and offers to search on from where it
stopped.

Who may see a transfer is decided row by row, as the transfer API decides it
(:mod:`gcx.gateway.transfers.reading`). The cursor is the last row's
(created_at, id, direction), never an offset, so a page stays the same while
new transfers arrive; it works in both directions, newest or oldest first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gcx.errors import GcxError, InputError
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.gateway.transfers import reading as transfer_reading
from gcx.gateway.transfers.listing import cursor_text, summary, visible
from gcx.store.schema_transfers import transfers

# Encrypted rows opened at most per page of a text search.
SCAN = 400
# Rows read per query while filling a page.
_BATCH = 200
_CURSOR = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z)~([0-9a-f]{1,32})~(in|out)")

_COLUMNS = (
    transfers.c.id,
    transfers.c.direction,
    transfers.c.state,
    transfers.c.sender_org,
    transfers.c.sender_user,
    transfers.c.recipients,
    transfers.c.marking,
    transfers.c.plaintext_bytes,
    transfers.c.files,
    transfers.c.created_at,
    transfers.c.completed_at,
)


@dataclass(frozen=True)
class FilesPage:
    items: list[dict[str, Any]]
    # Pass as the cursor for the next page (older, or newer when oldest first).
    next_cursor: str | None
    # True when a text search stopped after SCAN rows with the page not full.
    stopped_early: bool = False


def parse_cursor(text: str | None) -> tuple[str, str, str] | None:
    if text is None:
        return None
    match = _CURSOR.fullmatch(text)
    if match is None:
        raise InputError("That is not a page of this list; go back to the first page.")
    return match.group(1), match.group(2), match.group(3)


def find_transfers(
    gateway: Gateway,
    caller: Caller,
    *,
    conditions: Sequence[sa.ColumnElement[bool]] = (),
    text: str = "",
    oldest_first: bool = False,
    limit: int = 50,
    cursor: str | None = None,
    names: dict[str, str] | None = None,
) -> FilesPage:
    """One page of the transfers the caller may see, as ``conditions`` and ``text`` ask."""
    if not 1 <= limit <= 500:
        raise InputError("limit must be between 1 and 500.")
    position = parse_cursor(cursor)
    words = text.casefold().split()
    names = names or {}
    columns = (transfers.c.created_at, transfers.c.id, transfers.c.direction)
    order = [c.asc() if oldest_first else c.desc() for c in columns]
    key = sa.tuple_(*columns)
    found: list[Any] = []
    opened = 0
    with gateway.db.read() as conn:
        while True:
            query = sa.select(*_COLUMNS).where(*conditions).order_by(*order).limit(_BATCH)
            if position is not None:
                bound = sa.tuple_(*(sa.literal(v) for v in position))
                query = query.where(key > bound if oldest_first else key < bound)
            rows = conn.execute(query).all()
            for row in rows:
                position = (row.created_at, row.id, row.direction)
                if not visible(caller, row):
                    continue
                if not words:
                    found.append(row)
                else:
                    opened += 1
                    if _matches(_searchable(gateway, caller, row, names), words):
                        found.append(row)
                if len(found) > limit:
                    break
                if words and opened >= SCAN:
                    return FilesPage([summary(r) for r in found], cursor_text(row), True)
            if len(found) > limit or len(rows) < _BATCH:
                break
    shown = found[:limit]
    more = cursor_text(shown[-1]) if len(found) > limit else None
    return FilesPage([summary(r) for r in shown], more)


def _searchable(gateway: Gateway, caller: Caller, row: Any, names: dict[str, str]) -> str:
    """What a search looks in: file names, the covering note, and who sent or got it."""
    if row.direction == "out":
        files = [str(f.get("name", "")) for f in row.files or []]
        others = [f"{code} {names.get(code, '')}" for code in row.recipients]
        return " ".join([*files, *others]).casefold()
    try:
        _, metadata, _ = transfer_reading.open_incoming(gateway, caller, row.id)
    except GcxError:
        return ""
    parts = [f.name for f in metadata.files]
    parts += [metadata.note or "", row.sender_user, row.sender_org, names.get(row.sender_org, "")]
    return " ".join(parts).casefold()


def _matches(searchable: str, words: list[str]) -> bool:
    return all(word in searchable for word in words)
