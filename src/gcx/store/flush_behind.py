"""Flushing files to stable storage in the background while they are still being written.

Why: a receiving gateway writes a transfer's chunks without an fsync each and
makes them durable with one fsync before it signs the receipt (as a sending
gateway that seals a batch when the transfer is made does before recording
it). On a disk with a write cache (the benchmark machine's: writes accepted at
about 700 MB/s, flushed to stable storage at about 360 MB/s, bench/README.md)
that one fsync after the last chunk of a 1 GiB transfer waits for the whole
gigabyte, 1.5 to 3 s in which nothing else moves. Flushing each file once
every :data:`FLUSH_EVERY` bytes written, on one background thread, does the
same work while the chunks are still arriving, so the final fsync finds little
left. It is what databases call
flushing behind (PostgreSQL's ``backend_flush_after``, RocksDB's
``bytes_per_sync``).

Nothing here makes a file durable by itself: the owner's final fsync still
does, and a failure seen in the background is kept and raised by
:meth:`FlushBehind.check` before that fsync, because Linux reports a writeback
error to each open file once and a background flush would otherwise have been
the one to see it.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

FLUSH_EVERY = 64 * 1024 * 1024


class FlushBehind:
    """Background ``fdatasync`` of files as they grow; one flush of a file at a time."""

    def __init__(self, every: int = FLUSH_EVERY) -> None:
        self._every = every
        self._lock = threading.Lock()
        self._written: dict[Path, int] = {}  # bytes since the last flush of each file began
        self._flushing: set[Path] = set()
        self._failed: dict[Path, int] = {}  # the errno a background flush met
        self._thread: ThreadPoolExecutor | None = None

    def wrote(self, path: Path, size: int) -> None:
        """Count ``size`` bytes written to ``path``; start a flush once enough have been."""
        with self._lock:
            written = self._written.get(path, 0) + size
            if written < self._every or path in self._flushing:
                self._written[path] = written
                return
            self._written.pop(path, None)
            self._flushing.add(path)
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="gcx-flush-behind")
            thread = self._thread
        thread.submit(self._flush, path)

    def _flush(self, path: Path) -> None:
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # deleted or moved on meanwhile: its owner syncs it
            descriptor = None
        except OSError as exc:
            self._fail(path, exc)
            descriptor = None
        try:
            if descriptor is not None:
                os.fdatasync(descriptor)
        except OSError as exc:
            self._fail(path, exc)
        finally:
            if descriptor is not None:
                os.close(descriptor)
            with self._lock:
                self._flushing.discard(path)

    def _fail(self, path: Path, exc: OSError) -> None:
        log.warning("flushing %s in the background failed: %s", path.name, exc.strerror)
        with self._lock:
            self._failed[path] = exc.errno or errno.EIO

    def check(self, path: Path) -> None:
        """Forget ``path``; raise if a background flush of it failed (call before its fsync)."""
        if (failed := self.forget(path)) is not None:
            raise OSError(failed, "an earlier flush of this file failed", str(path))

    def forget(self, path: Path) -> int | None:
        """Stop counting ``path`` (deleted, or synced by its owner); the errno of a
        background flush of it that failed, if one did."""
        with self._lock:
            self._written.pop(path, None)
            return self._failed.pop(path, None)
