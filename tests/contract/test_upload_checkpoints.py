"""Checkpoints inside a long tus PATCH (gcx.gateway.transfers.upload_checkpoints), on a
real file and both databases: an offset is recorded only once its bytes are flushed,
and nothing more after a flush fails."""

from __future__ import annotations

import datetime as dt
import errno
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from gcx.clock import FixedClock
from gcx.gateway.transfers.upload_checkpoints import UploadCheckpoints
from gcx.store import iso
from gcx.store.db import Database
from gcx.store.schema_transfers import uploads
from gcx.store.transfer_files import UploadAppender

UPLOAD = "0123456789abcdef0123456789abcdef"
KIB = 1024


def _gateway(database: Database) -> Any:
    clock = FixedClock(dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC))
    with database.transaction() as conn:
        conn.execute(
            uploads.insert().values(
                id=UPLOAD,
                organisation="E09000030",
                account="a.person",
                length=1024 * KIB,
                offset=0,
                metadata={},
                state="open",
                created_at=iso(clock.now()),
                updated_at=iso(clock.now()),
            )
        )
    return SimpleNamespace(db=database, clock=clock)


def _started(database: Database, tmp_path: Path) -> tuple[UploadAppender, UploadCheckpoints]:
    """An empty upload's file open for appending, checkpointed every 64 KiB."""
    path = tmp_path / UPLOAD
    path.touch()
    appender = UploadAppender(path, 0)
    return appender, UploadCheckpoints(_gateway(database), UPLOAD, appender, every=64 * KIB)


def _recorded(database: Database) -> int:
    with database.transaction() as conn:
        return int(conn.execute(sa.select(uploads.c.offset)).scalar_one())


async def _write(appender: UploadAppender, checkpoints: UploadCheckpoints, size: int) -> None:
    appender.write([os.urandom(size)])
    checkpoints.written()
    await checkpoints.caught_up()


async def test_an_offset_is_recorded_once_flushed_every_so_many_bytes(
    database: Database, tmp_path: Path
) -> None:
    appender, checkpoints = _started(database, tmp_path)
    await _write(appender, checkpoints, 40 * KIB)
    assert _recorded(database) == 0  # 40 KiB of 64: no checkpoint yet
    await _write(appender, checkpoints, 40 * KIB)
    assert _recorded(database) == 80 * KIB
    await _write(appender, checkpoints, 40 * KIB)
    assert _recorded(database) == 80 * KIB  # 40 since the last
    await _write(appender, checkpoints, 40 * KIB)
    assert _recorded(database) == 160 * KIB
    assert checkpoints.failed is None
    appender.finish([])


async def test_after_a_failed_flush_nothing_more_is_recorded(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    appender, checkpoints = _started(database, tmp_path)
    await _write(appender, checkpoints, 64 * KIB)
    assert _recorded(database) == 64 * KIB

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as patched:
        patched.setattr(os, "fdatasync", failing)
        await _write(appender, checkpoints, 64 * KIB)
    assert isinstance(checkpoints.failed, OSError)
    await _write(appender, checkpoints, 128 * KIB)  # flushing works again: still nothing
    assert _recorded(database) == 64 * KIB
    appender.finish([])
