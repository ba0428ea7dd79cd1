"""The service call log's writer on both databases: each row committed once, with its audit."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from gcx import audit, crypto
from gcx.clock import FixedClock
from gcx.errors import GcxError
from gcx.gateway.services.call_log import CHECKPOINT_ROWS, CallLog, new_row, row_digest
from gcx.store.db import Database
from gcx.store.schema_services import service_calls


def _gateway(database: Database, clock: FixedClock) -> Any:
    archived: list[int] = []
    return SimpleNamespace(
        db=database,
        clock=clock,
        directory=SimpleNamespace(archive=lambda conn, version, now: archived.append(version)),
        archived=archived,
    )


def _row(call_id: str | None = None) -> dict[str, Any]:
    row = new_row(
        at="2026-11-21T09:00:00.000000Z",
        side="provider",
        consumer="E09000030",
        user="a.person",
        purpose="benefit check",
        provider="DWP",
        service="dwp-cis",
        method="GET",
        path="/customers/AB123456C",
        query="",
    )
    row.update(
        id=call_id or crypto.random_id(16),
        status=200,
        outcome="answered",
        directory_version=7,
        request_document=b'{"payloadType":"x"}',
    )
    return row


def _logged(database: Database) -> tuple[set[str], list[list[Any]]]:
    with database.read() as conn:
        ids = {r.id for r in conn.execute(sa.select(service_calls.c.id))}
        covered = [
            item
            for entry in audit.entries(conn, action="service.calls.logged")
            for item in json.loads(entry.details)["calls"]
        ]
        assert audit.verify(conn).ok
    return ids, covered


async def test_concurrent_rows_are_each_committed_once_with_their_audit_entry(
    database: Database, clock: FixedClock
) -> None:
    """Many calls at once: every row stored, and listed once in an audit entry with its digest."""
    log = CallLog(_gateway(database, clock))
    log.start()
    rows = [_row() for _ in range(CHECKPOINT_ROWS + 50)]
    try:
        await asyncio.gather(*(log.write(row) for row in rows))
    finally:
        await log.stop()
    ids, covered = _logged(database)
    assert ids == {r["id"] for r in rows}
    assert sorted(c[0] for c in covered) == sorted(ids)
    digests = {c[0]: c[3] for c in covered}
    assert all(digests[r["id"]] == row_digest(r) for r in rows)


async def test_rows_handed_over_before_stop_are_committed(
    database: Database, clock: FixedClock
) -> None:
    """Stopping the log commits what calls already handed over, and their calls learn so."""
    log = CallLog(_gateway(database, clock))
    log.start()
    rows = [_row() for _ in range(20)]
    writes = [asyncio.ensure_future(log.write(row)) for row in rows]
    await asyncio.sleep(0)  # each write has handed its row over
    await log.stop()
    await asyncio.gather(*writes)
    assert _logged(database)[0] == {r["id"] for r in rows}


async def test_a_row_after_stop_is_refused(database: Database, clock: FixedClock) -> None:
    """A call that reaches a stopped log is told its row was not kept."""
    log = CallLog(_gateway(database, clock))
    log.start()
    await log.stop()
    with pytest.raises(GcxError):
        await log.write(_row())


async def test_a_failed_commit_fails_its_calls_and_the_writer_goes_on(
    database: Database, clock: FixedClock
) -> None:
    """A row the database refuses fails its call; later rows are still committed."""
    log = CallLog(_gateway(database, clock))
    log.start()
    try:
        first = _row()
        await log.write(first)
        with pytest.raises(GcxError):
            await log.write(_row(first["id"]))  # the same call id twice
        later = _row()
        await log.write(later)
    finally:
        await log.stop()
    ids, covered = _logged(database)
    assert ids == {first["id"], later["id"]}
    assert sorted(c[0] for c in covered) == sorted(ids)
