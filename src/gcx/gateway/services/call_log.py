"""The call log: one row per service call per side, committed with its audit entry.

Rows from concurrent calls share a transaction (group commit): under load the
writer waits :data:`LINGER_SECONDS` for more rows, because a transaction's
fixed cost (begin, the audit chain's head, commit) is several times a row's.
Each transaction appends one ``service.calls.logged`` audit entry listing
every row's id, side, outcome and :func:`row_digest`, so the hash chain
covers each call exactly as logged. A call is answered only after its row is
committed; if the commit fails, every call waiting on it fails too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.errors import GcxError
from gcx.httpapi import run_sync
from gcx.store.schema_services import service_calls

if TYPE_CHECKING:
    from gcx.gateway.runtime import Gateway

log = logging.getLogger("gcx.gateway.services.calls")

LOG_BATCH = 500
BUSY_SECONDS = 0.02
LINGER_SECONDS = 0.002
EMPTY_SHA256 = crypto.sha256_hex(b"")


class CallLog:
    """Group commit of call rows, each with its audit entry, in shared transactions."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._flush_failed(GcxError("The gateway stopped before the call was logged."))

    def _flush_failed(self, error: Exception) -> None:
        pending, self._pending = self._pending, []
        for _, future in pending:
            if not future.done():
                future.set_exception(error)

    async def write(self, row: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        self._wake.set()
        await future

    async def _run(self) -> None:
        last_commit = 0.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Under load (the last commit was moments ago), wait a little for
            # more rows: a transaction's fixed cost (begin, audit head, commit)
            # is several times a row's, so larger batches are what keeps the
            # log from dominating a call's cost. An idle gateway commits at once.
            if time.monotonic() - last_commit < BUSY_SECONDS and len(self._pending) < LOG_BATCH:
                await asyncio.sleep(LINGER_SECONDS)
            while self._pending:
                batch, self._pending = self._pending[:LOG_BATCH], self._pending[LOG_BATCH:]
                try:
                    await run_sync(self._commit, [row for row, _ in batch])
                except Exception:  # every waiting call learns its row was not kept
                    log.exception("writing %d call log rows failed", len(batch))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(GcxError("The call could not be logged."))
                    continue
                finally:
                    last_commit = time.monotonic()
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    def _commit(self, rows: list[dict[str, Any]]) -> None:
        """Insert the rows and one audit entry covering them, in one transaction.

        The audit entry lists every row's id, side and SHA-256 (of its
        canonical JSON, documents included), so the hash chain covers each
        call exactly as logged; one entry per batch rather than per call keeps
        the chain's single-writer lock to one short turn per transaction.
        """
        gateway = self.gateway
        now = gateway.clock.now()
        covered = [[r["id"], r["side"], r["outcome"], row_digest(r)] for r in rows]
        with gateway.db.transaction() as conn:
            _insert_rows(conn, rows)
            for version in sorted({r["directory_version"] for r in rows if r["directory_version"]}):
                gateway.directory.archive(conn, version, now=now)
            audit.append(
                conn,
                actor="service-proxy",
                action="service.calls.logged",
                subject=rows[0]["id"] if len(rows) == 1 else f"{len(rows)} calls",
                now=now,
                details={"calls": covered},
            )


_COLUMNS = tuple(c.name for c in service_calls.columns)
# Columns added after rows were first logged (migration 0012).
_ADDED_LATER = frozenset({"consumer_system"})


def _insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """One driver-level executemany: the rows are already in their stored types.

    SQLAlchemy's per-row parameter processing cost more than the insert
    itself; the statement is the same one ``service_calls.insert()`` makes.
    """
    style = conn.dialect.paramstyle
    mark = "?" if style == "qmark" else "%s"
    # Only the table's own column names and placeholders go into the text.
    statement = (
        f"INSERT INTO service_calls ({', '.join(_COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join([mark] * len(_COLUMNS))})"
    )
    conn.exec_driver_sql(statement, [tuple(r[c] for c in _COLUMNS) for r in rows])


def row_digest(row: dict[str, Any]) -> str:
    """SHA-256 of a call row, as the audit entry records it.

    Each column in table order contributes ``name:tag:length:`` then its
    value's bytes (tag ``b`` for bytes as stored, ``s`` for the ``str()`` of
    text and numbers, ``n`` for null), so the encoding is unambiguous and
    cheap: no JSON, no hex of the signed documents. A column added later is
    left out while null (see ``_ADDED_LATER``).
    """
    parts = []
    for name in _COLUMNS:
        value = row[name]
        if name in _ADDED_LATER and value is None:
            # Left out when empty, so rows logged before the column existed
            # keep the digest their audit entry recorded.
            continue
        if isinstance(value, bytes | bytearray | memoryview):
            tag, data = "b", bytes(value)
        elif value is None:
            tag, data = "n", b""
        else:
            tag, data = "s", str(value).encode()
        parts.append(f"{name}:{tag}:{len(data)}:".encode() + data)
    return crypto.sha256_hex(b"".join(parts))


def new_row(
    *,
    at: str,
    side: str,
    consumer: str,
    user: str | None,
    purpose: str | None,
    system: str | None = None,
    provider: str,
    service: str,
    method: str,
    path: str,
    query: str,
) -> dict[str, Any]:
    """A call log row with every column present (rows are inserted in batches)."""
    return {
        "id": "",
        "side": side,
        "at": at,
        "consumer": consumer[:16],
        "consumer_user": user[:200] if user else None,
        "consumer_system": system[:64] if system else None,
        "purpose": purpose[:500] if purpose else None,
        "provider": provider[:16],
        "service": service[:63],
        "method": method[:8],
        "path": path[:2000],
        "query": query[:4000],
        "status": 0,
        "outcome": "",
        "request_size": 0,
        "response_size": 0,
        "request_sha256": EMPTY_SHA256,
        "response_sha256": None,
        "duration_ms": 0.0,
        "directory_version": None,
        "request_document": None,
        "response_document": None,
        "sealed_bodies": None,
    }


def recent_calls(gateway: Gateway, organisation: str, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` calls ``organisation`` made (as consumer) or answered (as provider)."""
    query = (
        sa.select(
            service_calls.c.id,
            service_calls.c.side,
            service_calls.c.at,
            service_calls.c.consumer,
            service_calls.c.consumer_user,
            service_calls.c.consumer_system,
            service_calls.c.purpose,
            service_calls.c.provider,
            service_calls.c.service,
            service_calls.c.method,
            service_calls.c.path,
            service_calls.c.status,
            service_calls.c.outcome,
            service_calls.c.request_size,
            service_calls.c.response_size,
            service_calls.c.request_sha256,
            service_calls.c.response_sha256,
            service_calls.c.duration_ms,
        )
        .where(
            sa.or_(
                sa.and_(
                    service_calls.c.side == "consumer", service_calls.c.consumer == organisation
                ),
                sa.and_(
                    service_calls.c.side == "provider", service_calls.c.provider == organisation
                ),
            )
        )
        .order_by(service_calls.c.at.desc())
        .limit(limit)
    )
    with gateway.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
