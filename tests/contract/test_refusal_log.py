"""Refused TLS connections are audited in batches, each its own entry, on both databases."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from gcx import audit
from gcx.clock import FixedClock
from gcx.gateway import refusal_log
from gcx.gateway.refusal_log import Refusal, RefusalLog
from gcx.store import Database


def _entries(database: Database) -> list[audit.AuditEntry]:
    with database.read() as conn:
        return [e for e in audit.entries(conn) if e.action.startswith("connection.refused")]


async def test_each_refusal_is_its_own_entry_written_in_one_batch(
    database: Database, clock: FixedClock
) -> None:
    log = RefusalLog(database, clock)
    log.add("192.0.2.1:5000", "peer-certificate-missing", "No client certificate.")
    log.add("192.0.2.2:5001", "peer-certificate-untrusted", "Not this network's.")
    await log.flush()
    entries = _entries(database)
    assert [(e.actor, json.loads(e.details)["code"]) for e in entries] == [
        ("peer:192.0.2.1:5000", "peer-certificate-missing"),
        ("peer:192.0.2.2:5001", "peer-certificate-untrusted"),
    ]
    await log.flush()
    assert len(_entries(database)) == 2, "written once"


async def test_a_flood_past_the_limit_is_counted_not_dropped(
    database: Database, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refusal_log, "MAX_PENDING", 5)
    log = RefusalLog(database, clock)
    for n in range(8):
        log.add(f"198.51.100.{n}:443", "tls-version-refused", "No TLS 1.3.")
    await log.flush()
    entries = _entries(database)
    assert [e.action for e in entries] == ["connection.refused"] * 5 + [
        "connection.refused-summarised"
    ]
    assert json.loads(entries[-1].details) == {
        "count": 3,
        "codes": {"tls-version-refused": 3},
    }


async def test_refusals_wait_for_the_database_and_are_written_at_shutdown(
    database: Database, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RefusalLog(database, clock)
    write = log.write
    failures = iter([True])

    def failing_once(batch: list[Refusal], summarised: Counter[str]) -> None:
        if next(failures, False):
            raise OSError("the database is away for a moment")
        write(batch, summarised)

    monkeypatch.setattr(log, "write", failing_once)
    log.add("192.0.2.9:1", "tls-handshake-failed", "The handshake failed.")
    await log.flush()
    assert _entries(database) == [], "not yet written"
    await log.flush()
    assert len(_entries(database)) == 1, "kept and written at the next flush"

    runner = asyncio.create_task(log.run())
    log.add("192.0.2.10:1", "tls-handshake-failed", "The handshake failed.")
    await asyncio.sleep(0.2)
    log.add("192.0.2.11:1", "tls-handshake-failed", "The handshake failed.")
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    actors = [e.actor for e in _entries(database)]
    assert actors[-2:] == ["peer:192.0.2.10:1", "peer:192.0.2.11:1"], "none left behind"
