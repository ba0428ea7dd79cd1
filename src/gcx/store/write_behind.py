"""Chunks written on another thread while the next one is sealed.

A chunk file is written around the page cache where it can be
(:mod:`gcx.store.direct_io`), and an ``O_DIRECT`` write returns only once the
device holds the bytes: about half a millisecond per 1 MiB chunk on the
benchmark machine. Written on the thread that seals, that wait was a third of
its time; here the sealing thread hands each chunk over and goes on, with at
most ``depth`` chunks waiting, so memory stays bounded.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future

from gcx.store.transfer_files import ChunkWriter

# Sealed chunks waiting for the disk; the sealing waits beyond that.
DEPTH = 4


def _nothing(number: int, data: bytes) -> None:
    """Nothing more to do with a chunk once written."""


class WriteBehind:
    """Writes chunks through ``writer`` on ``pool`` (one thread: the writer's descriptors are
    not shared between threads), then calls ``then(number, data)`` there.

    The first failure is kept: nothing is written after it, and the next
    :meth:`write` and :meth:`wait` raise it.
    """

    def __init__(
        self,
        writer: ChunkWriter,
        pool: Executor,
        then: Callable[[int, bytes], None] = _nothing,
        depth: int = DEPTH,
    ) -> None:
        self._writer, self._pool, self._then = writer, pool, then
        self._room = threading.BoundedSemaphore(depth)
        self._pending: deque[Future[None]] = deque()
        self._failure: BaseException | None = None

    def write(self, number: int, data: bytes) -> None:
        """Queue chunk ``number``; waits while ``depth`` chunks are waiting already."""
        self._raise_failure()
        self._room.acquire()
        while self._pending and self._pending[0].done():
            self._pending.popleft()
        try:
            self._pending.append(self._pool.submit(self._write, number, data))
        except BaseException:
            self._room.release()
            raise

    def wait(self) -> None:
        """Wait until every queued chunk is written; raises the first failure."""
        self.drain()
        self._raise_failure()

    def drain(self) -> None:
        """Wait until nothing queued is left to run (before the writer is closed); never raises."""
        while self._pending:
            self._pending.popleft().exception()

    def _write(self, number: int, data: bytes) -> None:
        try:
            if self._failure is not None:
                return
            self._writer.write(number, data)
        except BaseException as exc:
            self._failure = exc
            return
        finally:
            self._room.release()
        # Only once written: what is done next may read the chunk back from the file.
        self._then(number, data)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure
