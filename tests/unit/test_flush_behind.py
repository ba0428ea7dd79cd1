"""Background flushes of growing files (gcx.store.flush_behind), on real files."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest

from gcx.errors import StorageFull
from gcx.store.flush_behind import FlushBehind
from gcx.store.transfer_files import ChunkWriter


def _settled(behind: FlushBehind) -> None:
    """Wait for the background thread to run everything queued so far."""
    thread = behind._thread
    if thread is not None:
        thread.submit(lambda: None).result(timeout=30)


def test_a_file_is_flushed_once_enough_is_written_and_not_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (flushed.append(fd), real(fd))[1])
    path = tmp_path / "chunks"
    path.write_bytes(b"x" * 10)
    behind = FlushBehind(every=100)
    behind.wrote(path, 60)
    _settled(behind)
    assert flushed == []  # 60 of 100
    behind.wrote(path, 50)
    _settled(behind)
    assert len(flushed) == 1  # 110: flushed, and the count starts again
    behind.wrote(path, 60)
    _settled(behind)
    assert len(flushed) == 1
    behind.check(path)  # nothing failed: no error, and the count is forgotten
    behind.wrote(path, 60)
    _settled(behind)
    assert len(flushed) == 1


def test_a_failed_flush_is_raised_by_the_owners_check_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdatasync", failing)
    path = tmp_path / "chunks"
    path.write_bytes(b"x")
    behind = FlushBehind(every=1)
    behind.wrote(path, 1)
    _settled(behind)
    with pytest.raises(OSError) as raised:
        behind.check(path)
    assert raised.value.errno == errno.ENOSPC
    behind.check(path)  # reported once; the owner's own fsync decides from here


def test_a_file_gone_before_its_flush_is_no_failure(tmp_path: Path) -> None:
    behind = FlushBehind(every=1)
    behind.wrote(tmp_path / "deleted", 5)
    _settled(behind)
    behind.check(tmp_path / "deleted")


def test_one_flush_of_a_file_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes while a flush runs are counted towards the next, not queued as more flushes."""
    started, release = threading.Event(), threading.Event()
    calls: list[float] = []

    def slow(fd: int) -> None:
        calls.append(time.monotonic())
        started.set()
        release.wait(30)

    monkeypatch.setattr(os, "fdatasync", slow)
    path = tmp_path / "chunks"
    path.write_bytes(b"x")
    behind = FlushBehind(every=10)
    behind.wrote(path, 10)
    assert started.wait(30)
    for _ in range(5):
        behind.wrote(path, 10)  # 50 while the first flush runs
    release.set()
    _settled(behind)
    assert len(calls) == 1
    behind.wrote(path, 1)  # the 50 counted meanwhile and this one: the next flush
    _settled(behind)
    assert len(calls) == 2


def test_a_chunk_writer_flushes_behind_and_its_sync_reports_a_background_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = [OSError(errno.ENOSPC, "No space left on device")]
    real = os.fdatasync

    def once_failing(fd: int) -> None:
        if failures:
            raise failures.pop()
        real(fd)

    monkeypatch.setattr(os, "fdatasync", once_failing)
    behind = FlushBehind(every=8192)
    with ChunkWriter(tmp_path / "chunks", 4096, behind) as writer:
        writer.write(0, b"a" * 4096)
        writer.write(1, b"b" * 4096)  # 8 KiB written: a flush, which fails
        _settled(behind)
        with pytest.raises(StorageFull):
            writer.sync()
        writer.sync()  # the failure was reported; the file's own fsync decides now
    assert (tmp_path / "chunks").read_bytes() == b"a" * 4096 + b"b" * 4096
