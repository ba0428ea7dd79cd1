"""Finding messages in a mailbox: filters, a search and a sort, a page at a time.

What the database can answer, it answers: whose copy it is, unread, the
marking, the other organisation and the dates are columns of the mailbox
item and its envelope's header (joined on the envelope's primary key, after
``ix_mailbox_owner`` has narrowed to one person's mailboxes). Subjects and
bodies are another matter: they are only ever stored encrypted, so a word
typed into the search box cannot be looked up in an index without keeping
something derived from the content in the clear. Instead the rows the
filters leave are opened newest first (or oldest first) and matched here, at
most :data:`SCAN` of them per page asked for. When that many were opened
without filling a page, the page says so and offers to search on from where
it stopped, so one search never ties up the gateway however large the box.

The cursor is a copy's position (its row id), never an offset, so a page
stays the same while new messages arrive.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gcx.errors import InputError
from gcx.gateway.messages.envelopes import load_envelope
from gcx.gateway.messages.messaging import Messaging
from gcx.gateway.tokens import Caller
from gcx.protocol.marking import Marking
from gcx.store import iso
from gcx.store.schema import envelopes, mailbox_items

# Encrypted rows opened at most per page of a text search.
SCAN = 400
MAX_SEARCH_CHARS = 100
_ORGANISATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,15}")


@dataclass(frozen=True)
class MailFilter:
    """What a person asked to see; the empty filter shows everything, newest first."""

    text: str = ""
    unread: bool = False
    marking: str | None = None
    organisation: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    oldest_first: bool = False

    def check(self) -> None:
        if len(self.text) > MAX_SEARCH_CHARS:
            raise InputError(f"Search for at most {MAX_SEARCH_CHARS} characters.")
        if self.marking is not None and self.marking not in {m.value for m in Marking}:
            raise InputError("Choose OFFICIAL or OFFICIAL-SENSITIVE.")
        if self.organisation is not None and not _ORGANISATION.fullmatch(self.organisation):
            raise InputError("Choose an organisation from the list.")
        if self.since and self.until and self.since > self.until:
            raise InputError("The 'from' date must be on or before the 'to' date.")


@dataclass(frozen=True)
class FoundPage:
    items: list[dict[str, Any]]
    # Pass as the cursor for the next page (older, or newer when oldest first).
    next_cursor: int | None
    # True when a text search stopped after SCAN rows with the page not full.
    stopped_early: bool = False


def unread_count(messaging: Messaging, caller: Caller) -> int:
    """How many inbox copies the caller may read are neither read nor recalled."""
    with messaging.gateway.db.read() as conn:
        owners = messaging._owners(conn, caller)  # the one rule of who reads what
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(mailbox_items)
            .where(
                mailbox_items.c.organisation == caller.organisation,
                mailbox_items.c.owner.in_(owners),
                mailbox_items.c.box == "inbox",
                mailbox_items.c.read_at.is_(None),
                mailbox_items.c.recalled_at.is_(None),
            )
        ).scalar_one()
    return int(count)


def find(
    messaging: Messaging,
    caller: Caller,
    box: str,
    wanted: MailFilter,
    limit: int = 50,
    cursor: int | None = None,
) -> FoundPage:
    """One page of ``box`` as ``wanted`` asks, from the position ``cursor`` on."""
    if box not in ("inbox", "sent"):
        raise InputError("box must be inbox or sent.")
    if not 1 <= limit <= 500:
        raise InputError("limit must be between 1 and 500.")
    if cursor is not None and cursor < 1:
        raise InputError("That is not a page of this list; go back to the first page.")
    wanted.check()
    direction = "in" if box == "inbox" else "out"
    text = wanted.text.casefold().strip()
    found: list[dict[str, Any]] = []
    scanned = 0
    with messaging.gateway.db.read() as conn:
        owners = messaging._owners(conn, caller) if box == "inbox" else {caller.account}
        query = _query(caller, box, direction, owners, wanted)
        position = cursor
        while True:
            batch_query = query
            if position is not None:
                batch_query = batch_query.where(
                    mailbox_items.c.id > position
                    if wanted.oldest_first
                    else mailbox_items.c.id < position
                )
            # Without a text search every row is a match: one more than a page
            # says whether there is another.
            size = limit + 1 if not text else min(SCAN - scanned, 100)
            rows = conn.execute(batch_query.limit(size)).all()
            for row in rows:
                scanned += 1
                summary = _summary(messaging, conn, caller, box, direction, row)
                if not text or _matches(summary, text):
                    found.append(summary)
                    if len(found) > limit:
                        break
                position = row.id
            if len(found) > limit or len(rows) < size:
                break
            if text and scanned >= SCAN:
                return FoundPage(found, position, stopped_early=True)
    if len(found) > limit:
        return FoundPage(found[:limit], found[limit - 1]["position"])
    return FoundPage(found, None)


def _query(
    caller: Caller, box: str, direction: str, owners: set[str], wanted: MailFilter
) -> sa.Select[Any]:
    query = (
        sa.select(mailbox_items, envelopes.c.recipients, envelopes.c.sender_org)
        .join(
            envelopes,
            sa.and_(
                envelopes.c.id == mailbox_items.c.envelope_id,
                envelopes.c.direction == direction,
            ),
        )
        .where(
            mailbox_items.c.organisation == caller.organisation,
            mailbox_items.c.box == box,
            mailbox_items.c.owner.in_(owners),
        )
        .order_by(mailbox_items.c.id.asc() if wanted.oldest_first else mailbox_items.c.id.desc())
    )
    if wanted.unread:
        query = query.where(
            mailbox_items.c.read_at.is_(None), mailbox_items.c.recalled_at.is_(None)
        )
    if wanted.marking:
        query = query.where(envelopes.c.marking == wanted.marking)
    if wanted.organisation:
        if box == "inbox":
            query = query.where(envelopes.c.sender_org == wanted.organisation)
        else:
            # Recipients are a JSON list of organisation codes; codes are letters,
            # digits and hyphens, so the quoted code matches one element exactly,
            # and the text form of a JSON column reads the same on both databases.
            query = query.where(
                sa.cast(envelopes.c.recipients, sa.Text).like(f'%"{wanted.organisation}"%')
            )
    if wanted.since:
        query = query.where(envelopes.c.created_at >= _start_of(wanted.since))
    if wanted.until:
        query = query.where(envelopes.c.created_at < _start_of(wanted.until + dt.timedelta(1)))
    return query


def _start_of(day: dt.date) -> str:
    return iso(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))


def _summary(
    messaging: Messaging, conn: sa.Connection, caller: Caller, box: str, direction: str, row: Any
) -> dict[str, Any]:
    stored = load_envelope(conn, messaging.gateway.blobs, row.envelope_id, direction)
    summary: dict[str, Any] = {
        "id": row.envelope_id,
        "position": row.id,
        "box": box,
        "mailbox": row.owner,
        "from": f"{stored.header.sender.user}@{stored.header.sender.organisation}",
        "sender_org": stored.header.sender.organisation,
        "recipients": list(stored.header.recipients),
        "marking": stored.header.marking,
        "created_at": iso(stored.header.created_at),
        "read_at": row.read_at,
        "recalled": row.recalled_at is not None,
    }
    # A recalled message's content is not shown to its recipients, nor searched.
    if row.recalled_at is None or box == "sent":
        content = messaging._content(stored, caller.organisation)
        summary.update(
            subject=content.subject,
            to=[str(a) for a in content.to],
            cc=[str(a) for a in content.cc],
            attachments=len(content.attachments),
        )
    return summary


def _matches(summary: dict[str, Any], text: str) -> bool:
    if "subject" not in summary:
        return False
    haystack = " ".join(
        [summary["subject"], summary["from"], *summary.get("to", []), *summary.get("cc", [])]
    )
    return text in haystack.casefold()
