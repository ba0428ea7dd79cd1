"""Retention of received transfers, on SQLite and PostgreSQL, with a clock moved by hand."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gcx import audit
from gcx.clock import FixedClock
from gcx.gateway.transfers.housekeeping import apply_retention
from gcx.store import Database, iso
from gcx.store.schema_transfers import transfers, uploads
from gcx.store.transfer_files import TransferFiles

TID = "ef" * 16


def _gateway(database: Database, home: Path, clock: FixedClock) -> Any:
    # apply_retention needs only these parts of a Gateway.
    return SimpleNamespace(
        db=database,
        clock=clock,
        config=SimpleNamespace(name="tower-hamlets", home=home),
        chunks=TransferFiles(home / "blobs" / "transfers"),
    )


def _row(database: Database, transfer_id: str, state: str, now: dt.datetime) -> None:
    with database.transaction() as conn:
        conn.execute(
            transfers.insert().values(
                id=transfer_id,
                direction="in",
                sender_org="DWP",
                sender_user="claims.processor",
                recipients=["E09000030"],
                marking="OFFICIAL",
                manifest=b"{}",
                manifest_digest="sha256:" + "0" * 64,
                files=[],
                ciphertext_bytes=10,
                plaintext_bytes=0,
                chunk_count=1,
                state=state,
                created_at=iso(now),
                updated_at=iso(now),
                completed_at=iso(now),
                expires_at=iso(now + dt.timedelta(days=7)),
                retain_until=iso(now + dt.timedelta(days=30)),
            )
        )


def test_received_files_are_deleted_when_retention_ends_with_an_audit_entry(
    database: Database, clock: FixedClock, tmp_path: Path
) -> None:
    """Before retain_until nothing happens; after it the chunks go and the deletion is audited."""
    files = TransferFiles(tmp_path / "blobs" / "transfers")
    files.write_chunk("incoming", TID, 0, b"ciphertext", 1 << 20)
    files.publish(TID)
    _row(database, TID, "complete", clock.now())
    gateway = _gateway(database, tmp_path, clock)
    clock.advance(dt.timedelta(days=29))
    assert apply_retention(gateway, clock.now()) == []
    assert files.is_published(TID)
    clock.advance(dt.timedelta(days=2))
    assert apply_retention(gateway, clock.now()) == [TID]
    assert not files.is_published(TID)
    with database.transaction() as conn:
        (entry,) = [e for e in audit.entries(conn) if e.action == "transfer.retention-deleted"]
        state = conn.execute(transfers.select()).first()
    assert entry.subject == TID
    assert state is not None and state.state == "deleted"
    assert apply_retention(gateway, clock.now()) == []  # idempotent


def test_chunks_sent_ahead_that_no_manifest_claimed_are_deleted_after_a_day(
    database: Database, clock: FixedClock, tmp_path: Path
) -> None:
    """An incoming chunk file with no transfer goes once untouched for a day; others stay."""
    files = TransferFiles(tmp_path / "blobs" / "transfers")
    abandoned, recent, slow = "ab" * 16, "cd" * 16, "12" * 16
    for transfer_id in (abandoned, recent, slow):
        files.write_chunk("incoming", transfer_id, 0, b"ciphertext", 1 << 20)
    _row(database, slow, "receiving", clock.now())  # offered, and waiting for its sender
    day_ago = (clock.now() - dt.timedelta(hours=25)).timestamp()
    chunks = tmp_path / "blobs" / "transfers" / "incoming" / abandoned / "chunks"
    slow_chunks = chunks.parent.parent / slow / "chunks"
    for path in (chunks, slow_chunks):
        os.utime(path, (day_ago, day_ago))
    recent_chunks = chunks.parent.parent / recent / "chunks"
    hour_ago = (clock.now() - dt.timedelta(hours=1)).timestamp()
    os.utime(recent_chunks, (hour_ago, hour_ago))
    apply_retention(_gateway(database, tmp_path, clock), clock.now())
    assert not chunks.exists()
    assert recent_chunks.exists() and slow_chunks.exists()


def _upload(database: Database, upload_id: str, state: str, now: dt.datetime) -> None:
    with database.transaction() as conn:
        conn.execute(
            uploads.insert().values(
                id=upload_id,
                organisation="E09000030",
                account="benefits.officer",
                length=4,
                offset=4,
                metadata={},
                state=state,
                created_at=iso(now),
                updated_at=iso(now),
            )
        )


def test_files_of_uploads_no_longer_open_that_a_crash_left_are_deleted(
    database: Database, clock: FixedClock, tmp_path: Path
) -> None:
    """An upload recorded as used, deleted or expired whose file is still there (the process
    stopped between recording it and unlinking the file) loses the file; an open upload's
    file, a file no row names, and a used upload's kept second name all stay."""
    files = TransferFiles(tmp_path / "blobs" / "transfers")
    states = {"open": "a1" * 16, "used": "b2" * 16, "deleted": "c3" * 16, "expired": "d4" * 16}
    for state, upload_id in states.items():
        _upload(database, upload_id, state, clock.now())
    unknown = "e5" * 16
    for upload_id in [*states.values(), unknown]:
        files.create_upload(upload_id)
        files.upload_path(upload_id).write_bytes(b"data")
    files.keep_uploads(TID, [states["used"]], "sealed-key")
    apply_retention(_gateway(database, tmp_path, clock), clock.now())
    assert sorted(files.upload_ids()) == sorted([states["open"], unknown])
    assert files.read_kept(TID, 0, 0, 4) == b"data"
    with database.transaction() as conn:
        assert not [e for e in audit.entries(conn) if e.subject in states.values()]
