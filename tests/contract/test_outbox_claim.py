"""The outbox claim query takes due rows of every kind, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gcx.clock import FixedClock
from gcx.errors import StateTransitionRefused
from gcx.gateway.exchange import outbox
from gcx.protocol.delivery import DeliveryEvent, DeliveryState
from gcx.store import Database, iso
from gcx.store.schema import outbox as outbox_table


def _write(database: Database, now: dt.datetime) -> None:
    with database.transaction() as conn:
        outbox.enqueue(
            conn,
            subject_id="a" * 32,
            peer_gateway="gw-dwp",
            organisations=["DWP"],
            now=now,
            expires_at=now + dt.timedelta(days=1),
        )
        outbox.enqueue(
            conn,
            kind=outbox.READ_RECEIPT,
            document=b'{"signed": "read receipt"}',
            subject_id="b" * 32,
            peer_gateway="gw-council",
            organisations=["E09000030"],
            now=now,
            expires_at=now + dt.timedelta(days=1),
        )
        outbox.enqueue(
            conn,
            kind=outbox.RECALL,
            document=b'{"signed": "recall"}',
            subject_id="c" * 32,
            peer_gateway="gw-dwp",
            organisations=["E09000030"],
            now=now,
            expires_at=now + dt.timedelta(days=1),
        )


def test_claim_takes_rows_of_every_kind_with_their_documents(
    database: Database, clock: FixedClock
) -> None:
    """One claim returns message, read-receipt and recall rows, each with its kind and bytes."""
    now = clock.now()
    _write(database, now)
    claimed = outbox.claim_due(database, now=now, limit=10)
    assert sorted((e.kind, e.subject_id[0], e.document) for e in claimed) == [
        (outbox.MESSAGE, "a", None),
        (outbox.READ_RECEIPT, "b", b'{"signed": "read receipt"}'),
        (outbox.RECALL, "c", b'{"signed": "recall"}'),
    ]
    assert {e.state for e in claimed} == {DeliveryState.QUEUED.value}
    assert outbox.claim_due(database, now=now, limit=10) == [], "all three are leased"


def test_a_control_row_whose_lease_lapsed_is_claimed_again_with_the_same_bytes(
    database: Database, clock: FixedClock
) -> None:
    """A worker that died mid-send leaves its row for the next claim, document unchanged."""
    now = clock.now()
    _write(database, now)
    first = {e.kind: e for e in outbox.claim_due(database, now=now, limit=10)}
    later = now + outbox.CLAIM_LEASE + dt.timedelta(seconds=1)
    again = {e.kind: e for e in outbox.claim_due(database, now=later, limit=10)}
    assert set(again) == {outbox.MESSAGE, outbox.READ_RECEIPT, outbox.RECALL}
    for kind, entry in again.items():
        assert entry.id == first[kind].id
        assert entry.document == first[kind].document
        assert entry.attempts == first[kind].attempts + 1, "the claim counted the first try"


def test_retrying_control_row_waits_for_its_time_then_is_delivered(
    database: Database, clock: FixedClock
) -> None:
    """Control rows share the lifecycle: retrying until due, then delivered on success."""
    now = clock.now()
    _write(database, now)
    claimed = {e.kind: e for e in outbox.claim_due(database, now=now, limit=10)}
    receipt = claimed[outbox.READ_RECEIPT]
    retry_at = now + dt.timedelta(minutes=5)
    with database.transaction() as conn:
        outbox.transition(
            conn,
            receipt.id,
            DeliveryEvent.TRANSIENT_FAILURE,
            now=now,
            next_attempt_at=retry_at,
            error_code="peer-unreachable",
            error="down",
        )
    # The other two rows' leases have lapsed by then, so they are claimed again.
    early = outbox.claim_due(database, now=retry_at - dt.timedelta(seconds=1), limit=10)
    assert receipt.id not in {e.id for e in early}
    [due] = outbox.claim_due(database, now=retry_at, limit=10)
    assert (due.id, due.kind, due.state) == (
        receipt.id,
        outbox.READ_RECEIPT,
        DeliveryState.RETRYING.value,
    )
    with database.transaction() as conn:
        assert (
            outbox.transition(conn, due.id, DeliveryEvent.RECEIPT, now=retry_at)
            == DeliveryState.DELIVERED.value
        )


def test_message_status_and_recall_see_only_message_rows(
    database: Database, clock: FixedClock
) -> None:
    """A control row about an envelope never shows as, or is recalled as, its delivery."""
    now = clock.now()
    with database.transaction() as conn:
        for kind, document in ((outbox.MESSAGE, None), (outbox.RECALL, b"signed")):
            outbox.enqueue(
                conn,
                kind=kind,
                document=document,
                subject_id="d" * 32,
                peer_gateway="gw-dwp",
                organisations=["DWP"],
                now=now,
                expires_at=now + dt.timedelta(days=1),
            )
    with database.transaction() as conn:
        assert [r["gateway"] for r in outbox.states_for(conn, "d" * 32)] == ["gw-dwp"]
        rows = outbox.rows_for(conn, "d" * 32)
        kinds = conn.execute(
            sa.select(outbox_table.c.kind).where(outbox_table.c.id.in_([r for r, _ in rows]))
        ).scalars()
        assert list(kinds) == [outbox.MESSAGE]
        assert outbox.depth(conn) == 2


def test_rows_written_before_kinds_existed_are_messages(
    database: Database, clock: FixedClock
) -> None:
    """A row inserted without a kind (as the old code did) reads back as a message."""
    now = iso(clock.now())
    with database.transaction() as conn:
        conn.execute(
            outbox_table.insert().values(
                subject_id="e" * 32,
                peer_gateway="gw-dwp",
                organisations=["DWP"],
                state=DeliveryState.QUEUED.value,
                attempts=0,
                next_attempt_at=now,
                expires_at=iso(clock.now() + dt.timedelta(days=1)),
                created_at=now,
                updated_at=now,
            )
        )
    [entry] = outbox.claim_due(database, now=clock.now(), limit=10)
    assert (entry.kind, entry.document) == (outbox.MESSAGE, None)


def _transfers(database: Database, now: dt.datetime, count: int) -> None:
    with database.transaction() as conn:
        for n in range(count):
            outbox.enqueue(
                conn,
                kind=outbox.TRANSFER,
                subject_id=f"{n:032x}",
                peer_gateway="gw-council",
                organisations=["E09000030"],
                now=now,
                expires_at=now + dt.timedelta(days=7),
            )


def test_long_kinds_are_claimed_apart_and_only_as_many_as_asked(
    database: Database, clock: FixedClock
) -> None:
    """The worker claims batch kinds without transfers, and transfers only up to its room."""
    now = clock.now()
    _write(database, now)
    _transfers(database, now, 3)
    batch = outbox.claim_due(database, now=now, limit=10, other_than=(outbox.TRANSFER,))
    assert sorted(e.kind for e in batch) == [outbox.MESSAGE, outbox.READ_RECEIPT, outbox.RECALL]
    [first] = outbox.claim_due(database, now=now, limit=1, kinds=(outbox.TRANSFER,))
    assert (first.kind, first.progress) == (outbox.TRANSFER, 0)
    rest = outbox.claim_due(database, now=now, limit=10, kinds=(outbox.TRANSFER,))
    assert len(rest) == 2 and first.id not in {e.id for e in rest}
    assert outbox.claim_due(database, now=now, limit=10) == []


def test_a_renewed_lease_is_not_claimed_again_and_a_lapsed_one_is(
    database: Database, clock: FixedClock
) -> None:
    """While its worker renews the lease a long transfer stays its own; once the renewals stop
    (the worker died) the row is claimed again, with the progress recorded so far."""
    now = clock.now()
    _transfers(database, now, 1)
    [entry] = outbox.claim_due(database, now=now, limit=1, kinds=(outbox.TRANSFER,))
    outbox.set_progress(database, entry.id, 17, now=now)
    for seconds in (5, 10, 15, 20, 25):
        later = now + dt.timedelta(seconds=seconds)
        outbox.renew(database, {entry.id}, now=later)
        assert outbox.claim_due(database, now=later + dt.timedelta(seconds=1), limit=5) == []
    lapsed = now + dt.timedelta(seconds=25) + outbox.CLAIM_LEASE + dt.timedelta(seconds=1)
    [again] = outbox.claim_due(database, now=lapsed, limit=5)
    assert (again.id, again.state, again.progress, again.attempts) == (
        entry.id,
        DeliveryState.SENDING.value,
        17,
        2,
    )


def test_renewing_never_revives_an_ended_row(database: Database, clock: FixedClock) -> None:
    """A lease renewed after the row ended (a late heartbeat) leaves it ended and unclaimable."""
    now = clock.now()
    _transfers(database, now, 1)
    [entry] = outbox.claim_due(database, now=now, limit=1)
    with database.transaction() as conn:
        outbox.transition(conn, entry.id, DeliveryEvent.RECEIPT, now=now)
    outbox.renew(database, {entry.id}, now=now + dt.timedelta(seconds=5))
    assert outbox.claim_due(database, now=now + dt.timedelta(hours=1), limit=5) == []
    with database.read() as conn:
        [status] = outbox.states_for(conn, entry.subject_id, outbox.TRANSFER)
    assert (status["state"], status["progress"]) == (DeliveryState.DELIVERED.value, 0)


def test_a_batch_of_rows_takes_one_event_through_the_lifecycle_table(
    database: Database, clock: FixedClock
) -> None:
    """states_of reads the rows' states; transition_many moves each as transition would
    (sending to delivered, recalled stays recalled) and refuses an event some state forbids
    without writing any row."""
    now = clock.now()
    _write(database, now)
    claimed = outbox.claim_due(database, now=now, limit=10)
    ids = sorted(e.id for e in claimed)
    with database.transaction() as conn:
        outbox.transition(conn, ids[2], DeliveryEvent.RECALL, now=now)
    with database.transaction() as conn:
        states = outbox.states_of(conn, [*ids, 10_000])
        assert states == {
            ids[0]: DeliveryState.SENDING.value,
            ids[1]: DeliveryState.SENDING.value,
            ids[2]: DeliveryState.RECALLED.value,
        }
        after = outbox.transition_many(conn, states, DeliveryEvent.RECEIPT, now=now)
    assert after == {
        ids[0]: DeliveryState.DELIVERED.value,
        ids[1]: DeliveryState.DELIVERED.value,
        ids[2]: DeliveryState.RECALLED.value,
    }
    with database.transaction() as conn:
        assert outbox.states_of(conn, ids) == after
        assert outbox.states_of(conn, []) == {}
    with pytest.raises(StateTransitionRefused), database.transaction() as conn:
        outbox.transition_many(conn, outbox.states_of(conn, ids), DeliveryEvent.CLAIM, now=now)
    with database.read() as conn:
        rows = conn.execute(sa.select(outbox_table.c.id, outbox_table.c.state)).all()
    assert {r.id: r.state for r in rows} == after


def test_next_due_names_the_first_attempt_or_lease_end_and_ignores_ended_rows(
    database: Database, clock: FixedClock
) -> None:
    """The worker's cheap read: None on an empty queue, then the earliest time a claim could
    take a row (a waiting row's next attempt, a taken row's lease end), never an ended row."""
    now = clock.now()
    assert outbox.next_due(database) is None
    _write(database, now)
    assert outbox.next_due(database) == now
    claimed = outbox.claim_due(database, now=now, limit=10)
    assert len(claimed) == 3
    # All taken: the first lease to lapse is when a claim could take one again.
    assert outbox.next_due(database) == now + outbox.CLAIM_LEASE
    later = now + dt.timedelta(minutes=5)
    with database.transaction() as conn:
        outbox.transition(
            conn, claimed[0].id, DeliveryEvent.TRANSIENT_FAILURE, now=now, next_attempt_at=later
        )
        for entry in claimed[1:]:
            outbox.transition(conn, entry.id, DeliveryEvent.RECEIPT, now=now)
    # One waits for its retry; the two delivered rows are never due again.
    assert outbox.next_due(database) == later
    with database.transaction() as conn:
        outbox.transition(conn, claimed[0].id, DeliveryEvent.EXPIRE, now=later)
    assert outbox.next_due(database) is None
