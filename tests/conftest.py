"""Shared fixtures: databases on SQLite and PostgreSQL, and time.

PostgreSQL tests use their own throw-away databases on the server named by
``GCX_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Where no PostgreSQL answers, those variants are skipped with a notice, except
under CI (``CI=true``), where its absence fails the run.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from gcx.clock import FixedClock
from gcx.store import Database, open_database

POSTGRES_ADMIN_URL = os.environ.get(
    "GCX_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
_postgres_state: dict[str, str | None] = {}


def postgres_unavailable() -> str | None:
    """None if PostgreSQL answers, else why not (checked once per run)."""
    if "reason" not in _postgres_state:
        try:
            with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _postgres_state["reason"] = None
        except psycopg.Error as exc:
            _postgres_state["reason"] = f"PostgreSQL at {POSTGRES_ADMIN_URL} unavailable: {exc}"
    return _postgres_state["reason"]


def require_postgres() -> None:
    reason = postgres_unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true requires PostgreSQL)")
    pytest.skip(f"NOTICE: PostgreSQL variant skipped: {reason}")


class PostgresDatabases:
    """Creates uniquely named databases on the test server and drops them afterwards."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.prefix = f"gcx_{secrets.token_hex(4)}"

    def url(self, name: str) -> str:
        database = f"{self.prefix}_{name.replace('-', '_')}"
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        self.created.append(database)
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base}/{database}"

    def drop_all(self) -> None:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            for database in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_backend(request: pytest.FixtureRequest) -> str:
    """Parametrises a test over both databases."""
    if request.param == "postgresql":
        require_postgres()
    return str(request.param)


@pytest.fixture
def database_url_factory(database_backend: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A function giving a fresh, empty database URL per name, on the chosen backend."""
    if database_backend == "sqlite":
        yield lambda name: f"sqlite:///{tmp_path / (name + '.db')}"
        return
    databases = PostgresDatabases()
    try:
        yield databases.url
    finally:
        databases.drop_all()


@pytest.fixture
def database(database_url_factory: Callable[[str], str]) -> Iterator[Database]:
    """A migrated, empty database on SQLite or PostgreSQL."""
    db = open_database(database_url_factory("store"))
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC))
