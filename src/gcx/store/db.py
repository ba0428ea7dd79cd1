"""Opening a database: SQLite (WAL) by default, PostgreSQL when given its URL.

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` so that two
writers queue on the lock (with a busy timeout) instead of one failing with
SQLITE_BUSY when it first writes. Within one process, writers also queue on
a Python lock first: SQLite's own busy handler waits by sleeping in steps of
up to 100 ms, which under load leaves the lock free while everyone sleeps.
Read-only work uses :meth:`Database.read`, a plain deferred ``BEGIN`` that
takes no write lock (WAL lets readers run beside the writer). Migrations run
at open, so a process never works against an old schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from gcx.errors import ConfigError
from gcx.private_files import create_private

_MIGRATIONS = Path(__file__).parent / "migrations"


def iso(instant: dt.datetime) -> str:
    """The stored form of an instant: ISO 8601, UTC, microseconds, ``Z``."""
    if instant.tzinfo is None:
        raise ValueError("naive datetimes are not allowed; pass an aware UTC instant")
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def sqlite_files(url: str) -> list[Path]:
    """The files a SQLite URL keeps its data in (database, WAL, shared memory); none for others."""
    if not url.startswith("sqlite"):
        return []
    name = sa.engine.make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return []
    path = Path(name)
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


class Database:
    """An engine plus the one way gcx opens transactions on it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = threading.Lock()
        if self.is_sqlite:
            _create_private_database(url)
            self.engine = _sqlite_engine(url)
        elif url.startswith("postgresql"):
            url = url.replace("postgresql://", "postgresql+psycopg://", 1)
            self.engine = sa.create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        else:
            raise ConfigError("The database URL must start with sqlite:/// or postgresql://.")

    def migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as connection:
            if not self.is_sqlite:
                # Two processes opening a fresh database at once (a gateway
                # starting while its CLI adds a token) must not both create the
                # tables: the second waits here, then finds nothing to do.
                # SQLite needs no lock: its BEGIN IMMEDIATE already serialises.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7347289)")
            config.attributes["connection"] = connection
            # "heads": features may add migrations on parallel branches from
            # the same parent; all of them are applied.
            command.upgrade(config, "heads")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any error."""
        if self.is_sqlite:
            with self._write_lock, self.engine.begin() as connection:
                yield connection
        else:
            with self.engine.begin() as connection:
                yield connection

    @contextlib.contextmanager
    def transaction_on(self, connection: Connection) -> Iterator[Connection]:
        """A write transaction, as :meth:`transaction`, on a connection the caller holds.

        For a dedicated writer that keeps its own connection (and its settings,
        such as SQLite's checkpointing) for its whole life.
        """
        if self.is_sqlite:
            with self._write_lock, connection.begin():
                yield connection
        else:
            with connection.begin():
                yield connection

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction: a consistent snapshot, taking no write lock."""
        with self.engine.connect() as connection:
            connection = connection.execution_options(gcx_read_only=True)
            with connection.begin():
                yield connection

    def dispose(self) -> None:
        self.engine.dispose()


def _create_private_database(url: str) -> None:
    """Make a new SQLite database file with mode 0600 before SQLite opens it.

    SQLite would create it with 0644 less the umask. It gives the WAL, the
    shared-memory index and any rollback journal the database file's own
    mode, so a private database file keeps all of them private. An existing
    file is left as it is: a server refuses to start on one others can read
    (gcx.private_files.check_private) rather than quietly changing it here.
    """
    files = sqlite_files(url)
    if files and files[0].parent.is_dir():
        create_private(files[0])


def _sqlite_engine(url: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN so we can make it IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout=30000")
            _first_read(cursor, "PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("gcx_read_only"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _first_read(cursor: Any, sql: str) -> None:
    """Run a connection's first statement, waiting out a WAL hand-over.

    A new connection's first read of a WAL database can fail with "database is
    locked" *without* the busy handler being called, while another process is
    the last to close the database (it briefly holds an exclusive lock to
    checkpoint and remove the WAL) or is recovering it after a crash; SQLite's
    documentation lists both cases. They last milliseconds, so retry for up to
    the busy timeout rather than fail a CLI command run beside a gateway.
    """
    deadline = time.monotonic() + 30
    delay = 0.005
    while True:
        try:
            cursor.execute(sql)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def open_database(url: str) -> Database:
    database = Database(url)
    database.migrate()
    return database
