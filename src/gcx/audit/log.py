"""Appending to and verifying the hash-chained audit log."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx.clock import Clock
from gcx.crypto import sha256_hex
from gcx.errors import GcxError
from gcx.protocol.directory import canonical_json
from gcx.store.db import Database, iso
from gcx.store.schema import audit_entries, audit_head

GENESIS = "0" * 64

_LOCK_HEAD = (
    sa.select(audit_head.c.seq, audit_head.c.entry_hash)
    .where(audit_head.c.id == 1)
    .with_for_update()
)
_INSERT_ENTRY = audit_entries.insert()
_MOVE_HEAD = (
    audit_head.update()
    .where(audit_head.c.id == 1)
    .values(seq=sa.bindparam("new_seq"), entry_hash=sa.bindparam("new_hash"))
)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    details: str
    prev_hash: str
    entry_hash: str

    @property
    def details_dict(self) -> dict[str, Any]:
        value = json.loads(self.details)
        return value if isinstance(value, dict) else {}


def entry_hash(
    prev_hash: str, seq: int, at: str, actor: str, action: str, subject: str, details: str
) -> str:
    """The hash of one entry, chained to the one before it."""
    body = canonical_json(
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
        }
    )
    return sha256_hex(prev_hash.encode() + b"\n" + body)


def lock_head(connection: Connection) -> None:
    """Take the audit log's lock now, ahead of the caller's other writes.

    :func:`append` takes it anyway; a transaction that allocates something
    another writer may allocate too (a directory version) takes it first, so
    every writer meets the locks in one order: a transaction that appended
    earlier and then allocates cannot deadlock with one that allocated first
    and then appends.
    """
    connection.execute(_LOCK_HEAD).one()


def append(
    connection: Connection,
    *,
    actor: str,
    action: str,
    subject: str,
    now: dt.datetime,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's transaction and return it."""
    # Lock the head row first: concurrent appenders queue here, so each sees
    # the head the previous one wrote (FOR UPDATE on PostgreSQL; SQLite's
    # BEGIN IMMEDIATE already serialises writers).
    head = connection.execute(_LOCK_HEAD).one()
    seq, prev = head.seq + 1, head.entry_hash
    at = iso(now)
    details_text = canonical_json(details or {}).decode()
    actor, subject = actor[:200], subject[:200]
    digest = entry_hash(prev, seq, at, actor, action, subject, details_text)
    # Statements built once at import and executed with parameters: the audit
    # log is appended to several times per message, and building a statement
    # costs SQLAlchemy five times more than running a cached one.
    connection.execute(
        _INSERT_ENTRY,
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details_text,
            "prev_hash": prev,
            "entry_hash": digest,
        },
    )
    connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": digest})
    return AuditEntry(seq, at, actor, action, subject, details_text, prev, digest)


@dataclass(frozen=True)
class Record:
    """One entry to append with :func:`append_many`: what :func:`append` takes, but ``now``."""

    actor: str
    action: str
    subject: str
    details: dict[str, Any] | None = None


def append_many(
    connection: Connection, records: Sequence[Record], *, now: dt.datetime
) -> list[AuditEntry]:
    """Append several entries, in order, inside the caller's transaction.

    Each record is its own entry, chained exactly as :func:`append` would
    chain them one after another; only the statements are shared: the head is
    locked and moved once, and the entries go in with one ``executemany``. A
    batch of messages then costs the chain three statements, not three each.
    """
    if not records:
        return []
    head = connection.execute(_LOCK_HEAD).one()
    seq, prev = head.seq, head.entry_hash
    at = iso(now)
    written: list[AuditEntry] = []
    for record in records:
        seq += 1
        details_text = canonical_json(record.details or {}).decode()
        actor, subject = record.actor[:200], record.subject[:200]
        digest = entry_hash(prev, seq, at, actor, record.action, subject, details_text)
        written.append(
            AuditEntry(seq, at, actor, record.action, subject, details_text, prev, digest)
        )
        prev = digest
    connection.execute(
        _INSERT_ENTRY,
        [
            {
                "seq": e.seq,
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "details": e.details,
                "prev_hash": e.prev_hash,
                "entry_hash": e.entry_hash,
            }
            for e in written
        ],
    )
    connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
    return written


def entries(connection: Connection, *, action: str | None = None) -> Iterator[AuditEntry]:
    query = sa.select(audit_entries).order_by(audit_entries.c.seq)
    if action is not None:
        query = query.where(audit_entries.c.action == action)
    for row in connection.execute(query):
        yield AuditEntry(
            row.seq,
            row.at,
            row.actor,
            row.action,
            row.subject,
            row.details,
            row.prev_hash,
            row.entry_hash,
        )


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_hash": self.head_hash,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def verify(connection: Connection) -> VerifyReport:
    """Check the whole chain; name the first entry that does not fit."""
    expected_seq, prev, count = 1, GENESIS, 0
    for entry in entries(connection):
        if entry.seq != expected_seq:
            return VerifyReport(
                False,
                count,
                prev,
                expected_seq,
                f"entry {expected_seq} is missing: the log jumps from {expected_seq - 1} "
                f"to {entry.seq}",
            )
        if entry.prev_hash != prev:
            return VerifyReport(
                False,
                count,
                prev,
                entry.seq,
                f"entry {entry.seq} ({entry.action}) does not follow entry {entry.seq - 1}: "
                "its link to the previous hash is wrong (an entry before it was changed, "
                "removed or reordered)",
            )
        recomputed = entry_hash(
            prev, entry.seq, entry.at, entry.actor, entry.action, entry.subject, entry.details
        )
        if recomputed != entry.entry_hash:
            return VerifyReport(
                False,
                count,
                prev,
                entry.seq,
                f"entry {entry.seq} ({entry.action}) has been altered: its content does not "
                "match its hash",
            )
        prev, expected_seq, count = entry.entry_hash, expected_seq + 1, count + 1
    head = connection.execute(
        sa.select(audit_head.c.seq, audit_head.c.entry_hash).where(audit_head.c.id == 1)
    ).first()
    if head is None or head.seq != count or head.entry_hash != prev:
        return VerifyReport(
            False,
            count,
            prev,
            count + 1,
            f"the log ends at entry {count} but its head records entry "
            f"{head.seq if head else 'none'}: entries at the end were removed or the head "
            "was altered",
        )
    return VerifyReport(True, count, prev)


# Not a gcx error, so not in gcx.errors: it carries one out of a transaction, and
# refusals_recorded raises the gcx error it carries; nobody outside sees this class.
class AuditedRefusal(Exception):
    """Raised inside a transaction to refuse a request and still audit the refusal.

    The transaction that raises it rolls back (nothing of the refused request
    is kept); :func:`refusals_recorded` then writes the audit entry in a
    transaction of its own and raises the gcx error the caller sees.
    """

    def __init__(
        self,
        error: GcxError,
        *,
        actor: str,
        action: str,
        subject: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.actor = actor
        self.action = action
        self.subject = subject
        self.details = {"code": error.code, **(details or {})}


@contextlib.contextmanager
def refusals_recorded(database: Database, clock: Clock) -> Iterator[None]:
    """Turn :class:`AuditedRefusal` into an audit entry plus the error it carries."""
    try:
        yield
    except AuditedRefusal as refusal:
        with database.transaction() as conn:
            append(
                conn,
                actor=refusal.actor,
                action=refusal.action,
                subject=refusal.subject,
                now=clock.now(),
                details=refusal.details,
            )
        raise refusal.error from None
