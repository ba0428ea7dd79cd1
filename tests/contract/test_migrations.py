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
from gcx.gateway.exchange import outbox as outbox_work
from gcx.store import Database, open_database
from gcx.store.db import _MIGRATIONS
from gcx.store.schema import audit_head, metadata, outbox, receipts

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


def _upgraded_to(url: str, revision: str) -> Database:
    database = Database(url)
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return database


# One transfer delivery row in every state the old transfer worker wrote, with
# the outbox state each must become.
_OLD_TRANSFER_STATES = {
    "queued": "queued",
    "sending": "sending",
    "retrying": "retrying",
    "receipted": "delivered",
    "failed": "failed",
    "expired": "expired",
}


def test_transfer_work_and_receipts_from_0013_move_into_the_one_exchange(
    database_url_factory: Callable[[str], str],
) -> None:
    """Migration 0014 moves every transfer delivery row into the outbox and every transfer
    receipt into the one receipt table, keeping state, attempts, lease, progress and reason,
    and leaves message rows and receipts where they were, under their new column name."""
    database = _upgraded_to(database_url_factory("one_exchange"), "0013_control_outbox")
    stamp, later = NOW.isoformat(), (NOW + dt.timedelta(days=7)).isoformat()
    try:
        with database.engine.begin() as connection:
            for n, state in enumerate(_OLD_TRANSFER_STATES, start=1):
                transfer_id = f"{n:032x}"
                connection.execute(
                    sa.text(
                        "INSERT INTO transfers (id, direction, sender_org, sender_user, "
                        "recipients, marking, manifest, manifest_digest, files, "
                        "ciphertext_bytes, plaintext_bytes, chunk_count, state, created_at, "
                        "updated_at, expires_at) VALUES (:id, 'out', 'DWP', 'clerk', "
                        "'[\"E09000030\"]', 'OFFICIAL', :m, :d, '[]', 10, 10, 4, 'sending', "
                        ":t, :t, :x)"
                    ),
                    {
                        "id": transfer_id,
                        "m": b"{}",
                        "d": "sha256:" + "0" * 64,
                        "t": stamp,
                        "x": later,
                    },
                )
                connection.execute(
                    sa.text(
                        "INSERT INTO transfer_deliveries (transfer_id, peer_gateway, "
                        "organisations, state, attempts, next_attempt_at, lease_until, "
                        "chunks_held, last_error, created_at, updated_at) VALUES (:id, "
                        "'gw-council', '[\"E09000030\"]', :s, :a, :t, :lease, :held, :err, "
                        ":t, :t)"
                    ),
                    {
                        "id": transfer_id,
                        "s": state,
                        "a": n,
                        "t": stamp,
                        "lease": stamp if state == "sending" else None,
                        "held": n - 1,
                        "err": "storage-full: the disk is full" if state == "retrying" else None,
                    },
                )
            connection.execute(
                sa.text(
                    "INSERT INTO transfer_receipts (transfer_id, direction, organisation, "
                    "document, received_at) VALUES (:id, 'out', 'E09000030', :doc, :t), "
                    "(:id2, 'in', 'E09000030', :doc2, :t)"
                ),
                {
                    "id": f"{4:032x}",
                    "doc": b"signed-out",
                    "id2": "e" * 32,
                    "doc2": b"signed-in",
                    "t": stamp,
                },
            )
            connection.execute(
                sa.text(
                    "INSERT INTO outbox (kind, envelope_id, peer_gateway, organisations, state, "
                    "attempts, next_attempt_at, expires_at, created_at, updated_at) VALUES "
                    "('message', :e, 'gw-dwp', '[\"DWP\"]', 'retrying', 2, :t, :x, :t, :t)"
                ),
                {"e": "f" * 32, "t": stamp, "x": later},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO receipts (envelope_id, organisation, kind, outcome, document, "
                    "received_at, late) VALUES (:e, 'DWP', 'delivery', 'accepted', :doc, :t, "
                    ":late)"
                ),
                {"e": "f" * 32, "doc": b"signed-message", "t": stamp, "late": False},
            )
        database.migrate()
        with database.engine.connect() as connection:
            rows = connection.execute(sa.select(outbox).order_by(outbox.c.id)).all()
            held = connection.execute(
                sa.select(receipts.c.subject_id, receipts.c.kind, receipts.c.document).order_by(
                    receipts.c.id
                )
            ).all()
            tables = set(sa.inspect(connection).get_table_names())
        assert "transfer_deliveries" not in tables and "transfer_receipts" not in tables
        message = [r for r in rows if r.kind == "message"]
        assert [(r.subject_id, r.state, r.attempts) for r in message] == [("f" * 32, "retrying", 2)]
        moved = {r.subject_id: r for r in rows if r.kind == "transfer"}
        for n, (old, new) in enumerate(_OLD_TRANSFER_STATES.items(), start=1):
            row = moved[f"{n:032x}"]
            assert (row.state, row.attempts, row.progress) == (new, n, n - 1), old
            assert row.expires_at == later and row.peer_gateway == "gw-council"
            assert list(row.organisations) == ["E09000030"]
            assert (row.claimed_until is not None) == (old == "sending")
        retrying = moved[f"{3:032x}"]
        assert (retrying.last_error_code, retrying.last_error) == (
            "storage-full",
            "the disk is full",
        )
        assert sorted((r.subject_id, r.kind, bytes(r.document)) for r in held) == sorted(
            [
                ("f" * 32, "delivery", b"signed-message"),
                (f"{4:032x}", "transfer", b"signed-out"),
                ("e" * 32, "transfer-issued", b"signed-in"),
            ]
        )
        # Claimable again as outbox work: the queued and retrying rows now, the
        # sending row once its old lease has lapsed.
        due = outbox_work.claim_due(database, now=NOW + dt.timedelta(minutes=1), limit=10)
        assert sorted((e.kind, e.state) for e in due) == [
            ("message", "retrying"),
            ("transfer", "queued"),
            ("transfer", "retrying"),
            ("transfer", "sending"),
        ]
    finally:
        database.dispose()
