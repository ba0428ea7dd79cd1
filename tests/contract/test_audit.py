"""The hash-chained audit log on every database: appends verify, tampering is named."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit
from gcx.clock import FixedClock
from gcx.store import Database
from gcx.store.schema import audit_entries

CONTENT_COLUMNS = ("at", "actor", "action", "subject", "details", "prev_hash", "entry_hash")


def _append_many(database: Database, clock: FixedClock, count: int) -> list[audit.AuditEntry]:
    written = []
    for index in range(count):
        with database.transaction() as conn:
            written.append(
                audit.append(
                    conn,
                    actor=f"operator:op{index % 3}",
                    action=f"test.action{index % 2}",
                    subject=f"subject-{index}",
                    now=clock.now(),
                    details={"n": index, "é": "ü"},
                )
            )
        clock.advance(dt.timedelta(seconds=1))
    return written


def _verify(database: Database) -> audit.VerifyReport:
    with database.transaction() as conn:
        return audit.verify(conn)


def test_empty_log_verifies(database: Database) -> None:
    """A log with no entries verifies with a count of zero."""
    report = _verify(database)
    assert report.ok
    assert report.entries == 0


def test_appended_entries_verify(database: Database, clock: FixedClock) -> None:
    """Entries appended one per transaction form a verifying chain with the right count."""
    written = _append_many(database, clock, 6)
    report = _verify(database)
    assert report.ok, report.problem
    assert report.entries == 6
    assert report.head_hash == written[-1].entry_hash
    assert [e.seq for e in written] == [1, 2, 3, 4, 5, 6]
    assert written[0].prev_hash == audit.log.GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(written))


def test_entries_read_back_as_written(database: Database, clock: FixedClock) -> None:
    """entries() returns what append wrote, filterable by action, details as a dict."""
    written = _append_many(database, clock, 4)
    with database.transaction() as conn:
        assert list(audit.entries(conn)) == written
        odd = list(audit.entries(conn, action="test.action1"))
    assert [e.seq for e in odd] == [2, 4]
    assert odd[0].details_dict == {"n": 1, "é": "ü"}


def test_entries_rolled_back_with_their_transaction(database: Database, clock: FixedClock) -> None:
    """An entry appended in a transaction that fails is not kept, and the chain still verifies."""
    _append_many(database, clock, 2)
    try:
        with database.transaction() as conn:
            audit.append(conn, actor="a", action="x", subject="s", now=clock.now())
            raise RuntimeError("the action failed")
    except RuntimeError:
        pass
    _append_many(database, clock, 1)
    report = _verify(database)
    assert report.ok, report.problem
    assert report.entries == 3


def test_edited_details_are_named(database: Database, clock: FixedClock) -> None:
    """Editing one entry's details through SQL makes verify name that entry."""
    _append_many(database, clock, 5)
    with database.transaction() as conn:
        conn.execute(
            audit_entries.update().where(audit_entries.c.seq == 3).values(details='{"n":99}')
        )
    report = _verify(database)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert report.entries == 2
    assert "3" in (report.problem or "")


def test_edited_actor_is_named(database: Database, clock: FixedClock) -> None:
    """Editing who did something is caught as well as what was done."""
    _append_many(database, clock, 3)
    with database.transaction() as conn:
        conn.execute(
            audit_entries.update()
            .where(audit_entries.c.seq == 1)
            .values(actor="operator:someone-else")
        )
    report = _verify(database)
    assert not report.ok
    assert report.first_bad_seq == 1


def test_deleted_middle_entry_is_reported(database: Database, clock: FixedClock) -> None:
    """Deleting an entry in the middle makes verify report the missing sequence number."""
    _append_many(database, clock, 5)
    with database.transaction() as conn:
        conn.execute(audit_entries.delete().where(audit_entries.c.seq == 3))
    report = _verify(database)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "missing" in (report.problem or "")


def test_deleted_first_entry_is_reported(database: Database, clock: FixedClock) -> None:
    """Deleting the first entry is reported as entry 1 missing."""
    _append_many(database, clock, 3)
    with database.transaction() as conn:
        conn.execute(audit_entries.delete().where(audit_entries.c.seq == 1))
    report = _verify(database)
    assert not report.ok
    assert report.first_bad_seq == 1


def test_deleted_last_entry_is_reported(database: Database, clock: FixedClock) -> None:
    """Deleting the newest entry is caught by the head record, not silently accepted."""
    _append_many(database, clock, 5)
    with database.transaction() as conn:
        conn.execute(audit_entries.delete().where(audit_entries.c.seq == 5))
    report = _verify(database)
    assert not report.ok
    assert report.entries == 4
    assert report.first_bad_seq == 5
    assert "head" in (report.problem or "")


def test_swapped_entries_are_reported(database: Database, clock: FixedClock) -> None:
    """Swapping the contents of two entries (a reorder) is reported at the first of them."""
    _append_many(database, clock, 5)
    with database.transaction() as conn:
        rows = {
            row.seq: row
            for row in conn.execute(sa.select(audit_entries).where(audit_entries.c.seq.in_([2, 3])))
        }
        for seq, other in ((2, 3), (3, 2)):
            conn.execute(
                audit_entries.update()
                .where(audit_entries.c.seq == seq)
                .values({c: getattr(rows[other], c) for c in CONTENT_COLUMNS})
            )
    report = _verify(database)
    assert not report.ok
    assert report.first_bad_seq == 2


def test_appends_continue_after_verification(database: Database, clock: FixedClock) -> None:
    """Appending after a verify continues the same chain from its head."""
    _append_many(database, clock, 2)
    assert _verify(database).ok
    _append_many(database, clock, 2)
    report = _verify(database)
    assert report.ok, report.problem
    assert report.entries == 4


def test_concurrent_appends_form_one_chain(database: Database, clock: FixedClock) -> None:
    """4 threads x 25 appends, each in its own transaction, give a contiguous chain of 100."""
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            barrier.wait()
            for index in range(25):
                with database.transaction() as conn:
                    audit.append(
                        conn,
                        actor=f"worker:{number}",
                        action="test.concurrent",
                        subject=str(index),
                        now=clock.now(),
                    )
        except BaseException as exc:  # reported below, so the test fails with the cause
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    report = _verify(database)
    assert report.ok, report.problem
    assert report.entries == 100
    with database.transaction() as conn:
        seqs = [e.seq for e in audit.entries(conn)]
        per_worker: dict[str, int] = {}
        for entry in audit.entries(conn):
            per_worker[entry.actor] = per_worker.get(entry.actor, 0) + 1
    assert seqs == list(range(1, 101))
    assert per_worker == {f"worker:{n}": 25 for n in range(4)}


class _SignalsAfterEachStatement:
    """A connection stand-in that sets an event once a statement has returned."""

    def __init__(self, connection: Connection, event: threading.Event) -> None:
        self._connection = connection
        self._event = event

    def execute(self, *args: object, **kwargs: object) -> object:
        result = self._connection.execute(*args, **kwargs)  # type: ignore[call-overload]
        self._event.set()
        return result


def test_racing_first_appends_both_commit(database: Database, clock: FixedClock) -> None:
    """Two transactions that both begin appending to an empty log both commit, as seq 1 and 2."""
    if database.is_sqlite:
        pytest.skip("SQLite takes its write lock at BEGIN IMMEDIATE, so appends cannot interleave")
    statement_returned = threading.Event()
    outcome: list[object] = []
    with (
        database.engine.connect() as first,
        database.engine.connect() as second,
        database.engine.connect() as observer,
    ):
        second_pid = second.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        second.rollback()
        first_transaction = first.begin()
        audit.append(first, actor="replica-a", action="test.race", subject="a", now=clock.now())

        def racer() -> None:
            try:
                with second.begin():
                    audit.append(
                        _SignalsAfterEachStatement(second, statement_returned),  # type: ignore[arg-type]
                        actor="replica-b",
                        action="test.race",
                        subject="b",
                        now=clock.now(),
                    )
                outcome.append("committed")
            except Exception as exc:  # recorded so the assertion below shows it
                outcome.append(exc)

        thread = threading.Thread(target=racer)
        thread.start()
        # Commit the first transaction only once the second has either read the
        # audit head (nothing was locked for it to wait on) or is waiting for a lock.
        waiting_for_lock = sa.text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted")
        for _ in range(1_000_000):
            if statement_returned.is_set():
                break
            if observer.execute(waiting_for_lock, {"pid": second_pid}).scalar():
                break
            observer.rollback()
        first_transaction.commit()
        thread.join()
    assert outcome == ["committed"]
    report = _verify(database)
    assert report.ok, report.problem
    assert report.entries == 2


def test_entries_appended_in_a_batch_chain_as_if_appended_one_by_one(
    database: Database, clock: FixedClock
) -> None:
    """append_many writes one entry per record, chained after what was there, in order, and
    the log verifies; an empty batch writes nothing."""
    _append_many(database, clock, 2)
    records = [
        audit.Record(f"gateway:gw{index}", "envelope.received", f"id-{index}", {"n": index})
        for index in range(5)
    ]
    with database.transaction() as conn:
        assert audit.append_many(conn, [], now=clock.now()) == []
        written = audit.append_many(conn, records, now=clock.now())
    assert [e.seq for e in written] == [3, 4, 5, 6, 7]
    assert [(e.actor, e.subject) for e in written] == [(r.actor, r.subject) for r in records]
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(written))
    report = _verify(database)
    assert report.ok, report.problem
    assert report.entries == 7
    assert report.head_hash == written[-1].entry_hash
    with database.transaction() as conn:
        assert [e.details_dict for e in audit.entries(conn, action="envelope.received")] == [
            {"n": index} for index in range(5)
        ]
