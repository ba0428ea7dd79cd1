"""The call log: one row per service call per side, committed with its audit entry.

Theory of operation. One writer thread per gateway process owns one database
connection and commits every row (group commit): a call hands its row over
and waits; the writer takes every row waiting, commits them in one
transaction, then wakes their calls. Rows that arrive while a commit runs go
into the next one, so batches grow with load and an idle gateway commits at
once, without waiting for more. Each transaction appends one
``service.calls.logged`` audit entry listing every row's id, side, outcome and
:func:`row_digest`, so the hash chain covers each call exactly as logged. A
call is answered only after its row is committed; if the commit fails, every
call waiting on it fails too.

Why a thread of its own, and checkpoints by hand (SQLite): SQLite in WAL mode
copies the log back into the database (a checkpoint) inside whichever commit
finds the WAL past 1,000 pages, and that commit then takes 25-66 ms instead of
well under one; every call waiting on it waits as long. The writer's
connection therefore has automatic checkpoints off, and a second thread, with
its own connection, runs a passive checkpoint (one that never blocks writers
or readers) every :data:`CHECKPOINT_ROWS` rows, beside the writer rather than
in its way. A passive checkpoint lets the WAL start over only if it catches up
with the writer; if the writer never pauses long enough and the WAL passes
:data:`MAX_WAL_FRAMES`, the writer checkpoints once itself, between two
commits, so the WAL stays bounded. On stop, the rows already handed over are
committed before the writer ends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
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
# About four WAL pages a row: a checkpoint every 1,000 pages or so, as SQLite's
# own default, and a WAL that never grows past about 64 MiB.
CHECKPOINT_ROWS = 250
MAX_WAL_FRAMES = 16_000
EMPTY_SHA256 = crypto.sha256_hex(b"")

Waiting = list[tuple[dict[str, Any], asyncio.Future[None]]]


class CallLog:
    """Group commit of call rows, each with its audit entry, by one writer thread."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._pending: Waiting = []
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: Connection | None = None
        self._since_checkpoint = 0
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_due = threading.Event()
        self._wal_frames = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="gcx-call-log", daemon=True)
        self._thread.start()
        if self.gateway.db.is_sqlite:
            self._checkpointer = threading.Thread(
                target=self._checkpoints, name="gcx-call-log-checkpoints", daemon=True
            )
            self._checkpointer.start()

    async def stop(self) -> None:
        """Commit what was handed over, then end the writer."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread is not None:
            await run_sync(self._thread.join)
            self._thread = None
        if self._checkpointer is not None:
            self._checkpoint_due.set()
            await run_sync(self._checkpointer.join)
            self._checkpointer = None
        # Anything still here was handed over after the writer ended.
        pending, self._pending = self._pending, []
        _settle(pending, GcxError("The gateway stopped before the call was logged."))

    async def write(self, row: dict[str, Any]) -> None:
        """Return once ``row`` is committed with its audit entry; raise if it could not be."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._changed:
            if self._thread is None or self._stopping:
                raise GcxError("The gateway is stopping; the call could not be logged.")
            self._pending.append((row, future))
            self._changed.notify()
        await future

    def _run(self) -> None:
        try:
            while True:
                with self._changed:
                    while not self._pending and not self._stopping:
                        self._changed.wait()
                    if not self._pending:
                        return
                    batch = self._pending[:LOG_BATCH]
                    del self._pending[:LOG_BATCH]
                error: Exception | None = None
                try:
                    self._commit([row for row, _ in batch])
                except Exception as exc:  # every waiting call learns its row was not kept
                    log.exception("writing %d call log rows failed", len(batch))
                    self._drop_connection()
                    error = GcxError("The call could not be logged.")
                    error.__cause__ = exc
                assert self._loop is not None
                try:
                    self._loop.call_soon_threadsafe(_settle, batch, error)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    log.warning("%d call log rows committed after the gateway stopped", len(batch))
                if error is None:
                    self._after_commit(len(batch))
        finally:
            self._drop_connection()

    def _writer_connection(self) -> Connection:
        if self._connection is None:
            connection = self.gateway.db.engine.connect()
            if self.gateway.db.is_sqlite:
                # Checkpoints are run by _maybe_checkpoint, never inside a commit.
                _raw(connection).execute("PRAGMA wal_autocheckpoint=0").fetchall()
            self._connection = connection
        return self._connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            # Closed rather than pooled: it has automatic checkpoints off.
            self._connection.invalidate()
            self._connection.close()
            self._connection = None

    def _after_commit(self, rows: int) -> None:
        """Ask for a checkpoint every so many rows; do one here only if the WAL ran away."""
        if self._checkpointer is None:
            return
        self._since_checkpoint += rows
        if self._since_checkpoint >= CHECKPOINT_ROWS:
            self._since_checkpoint = 0
            self._checkpoint_due.set()
        if self._wal_frames > MAX_WAL_FRAMES and self._connection is not None:
            # Between two commits of the only writer, so it catches up and the
            # next commit starts the WAL over.
            try:
                self._wal_frames = _checkpoint(self._connection)
            except Exception:  # the writer must live on; the next try may succeed
                log.exception("a checkpoint of the call log's writes failed")

    def _checkpoints(self) -> None:
        """The checkpointer thread: a passive checkpoint each time the writer asks."""
        connection: Connection | None = None
        try:
            while True:
                self._checkpoint_due.wait()
                self._checkpoint_due.clear()
                if self._stopping:
                    return
                try:
                    if connection is None:
                        connection = self.gateway.db.engine.connect()
                    self._wal_frames = _checkpoint(connection)
                except Exception:  # the next one, or the writer's, will do it
                    log.exception("a checkpoint of the call log's writes failed")
                    if connection is not None:
                        connection.invalidate()
                        connection.close()
                        connection = None
        finally:
            if connection is not None:
                connection.close()

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
        with gateway.db.transaction_on(self._writer_connection()) as conn:
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


def _settle(batch: Waiting, error: Exception | None) -> None:
    for _, future in batch:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _checkpoint(connection: Connection) -> int:
    """Run a passive checkpoint; the frames the WAL held (0 if it is now empty or restarted)."""
    _busy, frames, copied = _raw(connection).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
    return 0 if frames == copied else int(frames)


def _raw(connection: Connection) -> Any:
    """The driver's own connection (sqlite3), for statements outside a transaction."""
    return connection.connection.driver_connection


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
