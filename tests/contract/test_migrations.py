"""The Alembic migrations and gcx.store.schema describe the same database, on every backend."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from gcx import audit
from gcx.store import Database, open_database
from gcx.store.db import _MIGRATIONS
from gcx.store.schema import audit_head, metadata, outbox

ALEMBIC_TABLE = "alembic_version"
NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)


def _tables(database: Database) -> set[str]:
    return set(sa.inspect(database.engine).get_table_names()) - {ALEMBIC_TABLE}


def test_migrated_tables_match_schema(database: Database) -> None:
    """After migration the database has exactly the tables schema.py declares."""
    assert _tables(database) == set(metadata.tables)


def test_migrated_columns_match_schema(database: Database) -> None:
    """Every table has exactly the columns schema.py declares, with the same nullability."""
    inspector = sa.inspect(database.engine)
    for name, table in metadata.tables.items():
        reflected = {c["name"]: c for c in inspector.get_columns(name)}
        assert set(reflected) == set(table.columns.keys()), name
        for column in table.columns:
            assert reflected[column.name]["nullable"] == column.nullable, (name, column.name)


def test_migrated_keys_and_indexes_match_schema(database: Database) -> None:
    """Primary keys and indexed columns agree between the migration and schema.py."""
    inspector = sa.inspect(database.engine)
    for name, table in metadata.tables.items():
        primary = inspector.get_pk_constraint(name)["constrained_columns"]
        assert primary == [c.name for c in table.primary_key.columns], name
        reflected = {tuple(i["column_names"]) for i in inspector.get_indexes(name)}
        declared = {tuple(c.name for c in i.columns) for i in table.indexes}
        assert declared <= reflected, name


def test_autogenerate_finds_no_difference(database: Database) -> None:
    """Alembic's own comparison finds nothing to migrate between the database and schema.py."""
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, metadata) == []


def test_audit_head_row_exists_after_migration(database: Database) -> None:
    """The migration creates the audit head row, so the first appends have a row to lock."""
    with database.transaction() as conn:
        rows = conn.execute(sa.select(audit_head)).all()
    assert [(r.id, r.seq, r.entry_hash) for r in rows] == [(1, 0, "0" * 64)]


def test_opening_twice_is_idempotent(database_url_factory: Callable[[str], str]) -> None:
    """Opening an already migrated database runs no migration twice and keeps the data."""
    url = database_url_factory("twice")
    first = open_database(url)
    try:
        with first.transaction() as conn:
            audit.append(conn, actor="test", action="test.kept", subject="s", now=NOW)
    finally:
        first.dispose()
    second = open_database(url)
    try:
        assert _tables(second) == set(metadata.tables)
        with second.engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            heads = conn.execute(sa.select(audit_head)).all()
            kept = [e.action for e in audit.entries(conn)]
        assert len(versions) == 1
        assert [(h.id, h.seq) for h in heads] == [(1, 1)]
        assert kept == ["test.kept"]
    finally:
        second.dispose()


def test_outbox_rows_from_before_kinds_upgrade_as_messages(
    database_url_factory: Callable[[str], str],
) -> None:
    """Migration 0013 gives a row queued under 0012 the kind ``message`` and no document."""
    url = database_url_factory("outbox_kinds")
    database = Database(url)
    try:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0012_person_tokens")
        stamp = NOW.isoformat()
        with database.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO outbox (envelope_id, peer_gateway, organisations, state, "
                    "attempts, next_attempt_at, expires_at, created_at, updated_at) VALUES "
                    "(:e, 'gw-dwp', '[\"DWP\"]', 'retrying', 2, :t, :t, :t, :t)"
                ),
                {"e": "f" * 32, "t": stamp},
            )
        database.migrate()
        with database.engine.connect() as connection:
            row = connection.execute(
                sa.select(outbox.c.kind, outbox.c.document, outbox.c.state, outbox.c.attempts)
            ).one()
        assert tuple(row) == ("message", None, "retrying", 2)
    finally:
        database.dispose()
