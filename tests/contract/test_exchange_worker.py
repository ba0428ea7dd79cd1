"""The one worker knows no kind: it hands claimed rows to their carriers, on both databases.

The carriers here are small recorders standing in at the carrier port (the
real ones are exercised end to end in tests/integration); the outbox, its
claim query, the leases and the audit log are the real ones.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
import sqlalchemy as sa

from gcx import audit
from gcx.clock import FixedClock
from gcx.gateway.exchange import outbox
from gcx.gateway.exchange import worker as worker_module
from gcx.gateway.exchange.carrier import Carrier
from gcx.gateway.exchange.outcomes import Outcomes
from gcx.gateway.exchange.worker import ExchangeWorker
from gcx.gateway.runtime import Gateway
from gcx.protocol.delivery import DeliveryEvent
from gcx.store import Database
from gcx.store.schema import outbox as outbox_table

BOUND_SECONDS = 20.0


class Recorder:
    """A carrier that records each call and ends every row it is given as delivered."""

    def __init__(
        self, db: Database, clock: FixedClock, kinds: tuple[str, ...], max_rows: int | None
    ) -> None:
        self.db, self.clock = db, clock
        self.kinds, self.max_rows = kinds, max_rows
        self.calls: list[tuple[str, list[str]]] = []
        self.running = 0
        self.most_at_once = 0
        self.release = asyncio.Event()
        self.release.set()

    async def carry(self, peer_name: str, entries: list[outbox.OutboxEntry]) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            self.calls.append((peer_name, sorted(e.subject_id for e in entries)))
            await self.release.wait()
            with self.db.transaction() as conn:
                for entry in entries:
                    outbox.transition(conn, entry.id, DeliveryEvent.RECEIPT, now=self.clock.now())
        finally:
            self.running -= 1


def _enqueue(database: Database, now: dt.datetime, kind: str, subject: str, peer: str) -> None:
    with database.transaction() as conn:
        outbox.enqueue(
            conn,
            kind=kind,
            document=b"signed" if kind == outbox.RECALL else None,
            subject_id=subject * 32,
            peer_gateway=peer,
            organisations=["DWP"],
            now=now,
            expires_at=now + dt.timedelta(days=1),
        )


def _states(database: Database) -> dict[str, str]:
    with database.read() as conn:
        return {
            r.subject_id[0]: r.state
            for r in conn.execute(sa.select(outbox_table.c.subject_id, outbox_table.c.state))
        }


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {BOUND_SECONDS}s"
        await asyncio.sleep(0.02)


@pytest.fixture
def gateway(database: Database, clock: FixedClock) -> Iterator[Gateway]:
    # The worker and its outcomes use only the gateway's database and clock.
    yield cast(Gateway, SimpleNamespace(db=database, clock=clock))


async def _running(worker: ExchangeWorker) -> asyncio.Task[None]:
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0)
    return task


async def _stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_batch_kinds_go_as_one_call_per_kind_and_gateway(
    gateway: Gateway, database: Database, clock: FixedClock
) -> None:
    now = clock.now()
    for kind, subject, peer in [
        (outbox.MESSAGE, "a", "gw-dwp"),
        (outbox.MESSAGE, "b", "gw-dwp"),
        (outbox.MESSAGE, "c", "gw-police"),
        (outbox.RECALL, "d", "gw-dwp"),
    ]:
        _enqueue(database, now, kind, subject, peer)
    messages = Recorder(database, clock, (outbox.MESSAGE,), None)
    control = Recorder(database, clock, (outbox.RECALL,), None)
    worker = ExchangeWorker(gateway, [cast(Carrier, messages), cast(Carrier, control)])
    task = await _running(worker)
    try:
        await _until(lambda: set(_states(database).values()) == {"delivered"}, "every delivery")
    finally:
        await _stop(task)
    assert sorted(messages.calls) == [("gw-dwp", ["a" * 32, "b" * 32]), ("gw-police", ["c" * 32])]
    assert control.calls == [("gw-dwp", ["d" * 32])]


async def test_long_kinds_run_one_row_per_call_never_more_than_max_rows(
    gateway: Gateway, database: Database, clock: FixedClock
) -> None:
    """With room for two transfers, five queued transfers are carried two at a time, each on
    its own, while a message behind them is not held up."""
    now = clock.now()
    for subject in "abcde":
        _enqueue(database, now, outbox.TRANSFER, subject, "gw-council")
    _enqueue(database, now, outbox.MESSAGE, "f", "gw-council")
    transfers = Recorder(database, clock, (outbox.TRANSFER,), 2)
    transfers.release.clear()
    messages = Recorder(database, clock, (outbox.MESSAGE,), None)
    worker = ExchangeWorker(gateway, [cast(Carrier, transfers), cast(Carrier, messages)])
    task = await _running(worker)
    try:
        await _until(lambda: transfers.running == 2, "two transfers under way")
        await _until(lambda: _states(database).get("f") == "delivered", "the message")
        # Held: still two, and the other three are not claimed (free for other replicas).
        await asyncio.sleep(0.3)
        assert transfers.running == 2
        assert sorted(_states(database).values()).count("queued") == 3
        transfers.release.set()
        await _until(lambda: set(_states(database).values()) == {"delivered"}, "all transfers")
    finally:
        await _stop(task)
    assert transfers.most_at_once == 2
    assert all(len(subjects) == 1 for _, subjects in transfers.calls)
    assert len(transfers.calls) == 5


async def test_a_kind_with_no_carrier_is_ended_with_an_alert_not_claimed_for_ever(
    gateway: Gateway, database: Database, clock: FixedClock
) -> None:
    now = clock.now()
    _enqueue(database, now, "event", "a", "gw-dwp")
    worker = ExchangeWorker(gateway, [])
    task = await _running(worker)
    try:
        await _until(lambda: _states(database).get("a") == "failed", "the row ended")
    finally:
        await _stop(task)
    with database.read() as conn:
        [entry] = list(audit.entries(conn, action="event.failed"))
        code = conn.execute(sa.select(outbox_table.c.last_error_code)).scalar_one()
    assert entry.details_dict["alert"] is True
    assert code == "kind-not-supported"


def test_two_carriers_for_one_kind_are_refused(
    gateway: Gateway, database: Database, clock: FixedClock
) -> None:
    first = Recorder(database, clock, (outbox.MESSAGE,), None)
    second = Recorder(database, clock, (outbox.MESSAGE, outbox.RECALL), None)
    with pytest.raises(ValueError, match="two carriers"):
        ExchangeWorker(gateway, [cast(Carrier, first), cast(Carrier, second)])


class Counting:
    """Counts calls to one outbox function while still calling it (the real query runs)."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function, self.calls = function, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.function(*args, **kwargs)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> tuple[Counting, Counting]:
    """(reads, claims): how often the worker asked what is due and how often it claimed."""
    reads, claims = Counting(outbox.next_due), Counting(outbox.claim_due)
    monkeypatch.setattr(outbox, "next_due", reads)
    monkeypatch.setattr(outbox, "claim_due", claims)
    monkeypatch.setattr(worker_module, "IDLE_POLL_SECONDS", 0.02)
    return reads, claims


async def test_an_idle_worker_reads_but_never_claims_until_something_is_due(
    gateway: Gateway, database: Database, clock: FixedClock, counted: tuple[Counting, Counting]
) -> None:
    """Nothing due (a row waiting for a retry an hour away): the worker polls with a read and
    takes no claim (no write transaction); once the row falls due, the poll finds it."""
    reads, claims = counted
    now = clock.now()
    _enqueue(database, now, outbox.MESSAGE, "a", "gw-dwp")
    [entry] = outbox.claim_due(database, now=now, limit=1)
    with database.transaction() as conn:
        outbox.transition(
            conn,
            entry.id,
            DeliveryEvent.TRANSIENT_FAILURE,
            now=now,
            next_attempt_at=now + dt.timedelta(hours=1),
        )
    claims.calls = 0
    messages = Recorder(database, clock, (outbox.MESSAGE,), None)
    worker = ExchangeWorker(gateway, [cast(Carrier, messages)])
    task = await _running(worker)
    try:
        # It claims once on starting, without asking, then only reads.
        await _until(lambda: claims.calls == 1, "the claim on starting")
        await _until(lambda: reads.calls >= 5, "five polls")
        assert claims.calls == 1
        assert messages.calls == []
        clock.advance(dt.timedelta(hours=1))
        await _until(lambda: _states(database).get("a") == "delivered", "the retry")
    finally:
        await _stop(task)
    assert claims.calls > 1


async def test_work_queued_here_wakes_the_worker_and_another_replica_finds_it_by_polling(
    database: Database, clock: FixedClock, counted: tuple[Counting, Counting]
) -> None:
    """Two replicas on one database: the one whose process queued the row is woken and claims
    it without asking first; work queued by a third party wakes nobody, and the idle replicas'
    polls find it."""
    reads, _claims = counted
    here = cast(Gateway, SimpleNamespace(db=database, clock=clock))
    there = cast(Gateway, SimpleNamespace(db=database, clock=clock))
    carriers = [Recorder(database, clock, (outbox.MESSAGE,), None) for _ in range(2)]
    workers = [
        ExchangeWorker(gateway, [cast(Carrier, carrier)])
        for gateway, carrier in zip((here, there), carriers, strict=True)
    ]
    tasks = [await _running(w) for w in workers]
    try:
        await _until(lambda: reads.calls >= 4, "both replicas idle and polling")
        now = clock.now()
        _enqueue(database, now, outbox.MESSAGE, "a", "gw-dwp")
        here.work_queued()
        await _until(lambda: _states(database).get("a") == "delivered", "the woken delivery")
        _enqueue(database, now, outbox.MESSAGE, "b", "gw-dwp")
        await _until(lambda: _states(database).get("b") == "delivered", "the polled delivery")
    finally:
        for task in tasks:
            await _stop(task)
    assert sorted(s for c in carriers for _, subjects in c.calls for s in subjects) == [
        "a" * 32,
        "b" * 32,
    ]


async def test_work_queued_while_batches_hang_is_still_carried(
    gateway: Gateway, database: Database, clock: FixedClock
) -> None:
    """Two batches in flight that never finish (a hung peer) hold back work queued here only
    for a moment: a message queued meanwhile is claimed and delivered while they hang."""
    now = clock.now()
    _enqueue(database, now, outbox.RECALL, "a", "gw-dwp")
    _enqueue(database, now, outbox.RECALL, "b", "gw-police")
    hung = Recorder(database, clock, (outbox.RECALL,), None)
    hung.release.clear()
    messages = Recorder(database, clock, (outbox.MESSAGE,), None)
    worker = ExchangeWorker(gateway, [cast(Carrier, hung), cast(Carrier, messages)])
    task = await _running(worker)
    try:
        await _until(lambda: hung.running == 2, "two batches in flight")
        _enqueue(database, now, outbox.MESSAGE, "c", "gw-council")
        worker.wake()
        await _until(lambda: _states(database).get("c") == "delivered", "the queued message")
        assert hung.running == 2
        hung.release.set()
        await _until(lambda: set(_states(database).values()) == {"delivered"}, "the rest")
    finally:
        await _stop(task)


def test_a_row_handed_over_is_ended_once_with_its_audit_entry(
    gateway: Gateway, database: Database, clock: FixedClock
) -> None:
    """A carrier that handed a row over ends it through Outcomes.delivered, with the audit
    entry it names; a second report (a worker whose lease had lapsed) changes nothing."""
    _enqueue(database, clock.now(), outbox.RECALL, "r", "dwp")
    (entry,) = outbox.claim_due(database, now=clock.now(), limit=10)
    outcomes = Outcomes(gateway)
    details = {"gateway": "dwp", "outcome": "recalled"}
    assert outcomes.delivered(entry, "message.recall-forwarded", details)
    assert not outcomes.delivered(entry, "message.recall-forwarded", details)
    assert _states(database) == {"r": "delivered"}
    with database.read() as conn:
        entries = [e for e in audit.entries(conn) if e.subject == entry.subject_id]
    assert [(e.action, json.loads(e.details)) for e in entries] == [
        ("message.recall-forwarded", details)
    ]
