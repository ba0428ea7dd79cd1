"""Writing bulk files around the page cache (``O_DIRECT``) where the filesystem allows it.

Why: a bulk transfer writes each byte three times across the two gateways
(the tus upload, the sender's sealed chunks, the receiver's), and on the
virtual machine measured (bench/README.md) writing 1 GiB of fresh pages into
the page cache cost 1.45 s of system time plus 0.46 s of fsync, against
0.05 s of CPU and 0.53 s in all with ``O_DIRECT`` (the fsync after it is then
only the file's metadata): the three copies cost more CPU than all of the
transfer's cryptography. The bytes are read again rarely (a resend, a download), so
caching them gains nothing, and ten gigabytes of transfer no longer push
everything else out of the cache.

``O_DIRECT`` wants the file offset, the length and the memory address
aligned to the device's logical block. :data:`ALIGN` (4 KiB) covers every
common one. The data is copied into a page-aligned buffer kept per thread
and padded with zeros to the alignment; callers only write where that
padding is harmless (inside a chunk's own slot, or past an upload's end,
which is then truncated). Where the filesystem refuses ``O_DIRECT`` (tmpfs
before Linux 6.6, some network filesystems: ``EINVAL`` when opening) or the
platform has no such flag, :func:`open_direct` returns None and the caller writes through
the page cache as before; nothing else changes.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from pathlib import Path

from gcx.private_files import FILE_MODE

ALIGN = 4096
_O_DIRECT = getattr(os, "O_DIRECT", 0)


def open_direct(path: Path) -> int | None:
    """A descriptor writing ``path`` around the page cache, or None where that is refused."""
    if not _O_DIRECT:
        return None
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | _O_DIRECT, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        raise


def aligned_up(size: int) -> int:
    return -(-size // ALIGN) * ALIGN


class _Buffer(threading.local):
    """A page-aligned buffer for each thread (anonymous mmap memory is page-aligned)."""

    memory: mmap.mmap | None = None

    def view(self, size: int) -> memoryview:
        if self.memory is None or len(self.memory) < size:
            # The old one is freed once no view of it is left.
            self.memory = mmap.mmap(-1, aligned_up(size))
        return memoryview(self.memory)[:size]


_BUFFER = _Buffer()
Pieces = list[bytes | memoryview]


def pwrite_all(descriptor: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(descriptor, data, offset)
        data, offset = data[written:], offset + written


def write_padded(descriptor: int, pieces: Pieces, offset: int) -> int:
    """Write ``pieces`` one after another at ``offset`` (aligned) through a direct
    descriptor, zero-padded to :data:`ALIGN`; the number of bytes of data written."""
    size = sum(len(piece) for piece in pieces)
    padded = aligned_up(size)
    view = _BUFFER.view(padded)
    try:
        at = 0
        for piece in pieces:
            view[at : at + len(piece)] = piece
            at += len(piece)
        # Zeros, never what the buffer held before (another transfer's bytes).
        view[size:padded] = bytes(padded - size)
        pwrite_all(descriptor, view, offset)
    finally:
        view.release()
    return size


def _split(pieces: Pieces, at: int) -> tuple[Pieces, Pieces]:
    """``pieces`` cut after ``at`` bytes, without copying."""
    head: Pieces = []
    for index, piece in enumerate(pieces):
        if at >= len(piece):
            head.append(piece)
            at -= len(piece)
            continue
        if at:
            view = memoryview(piece)
            head.append(view[:at])
            return head, [view[at:], *pieces[index + 1 :]]
        return head, pieces[index:]
    return head, []


class Appender:
    """Appends to an existing file from ``offset``, in whole aligned blocks written around
    the page cache where allowed (else through it). Written and finished from one thread
    at a time; :meth:`flush` may run on another beside a write.

    A block that would end off the alignment waits, with the bytes of the partial
    block before ``offset`` read back, for the next :meth:`write` or for
    :meth:`finish`, which writes it padded, cuts the file back to its true end and
    fsyncs. :attr:`end` is how far the file holds the bytes given; after a failure
    it stays where the last whole write ended, and :meth:`finish` cuts the file there.
    """

    def __init__(self, path: Path, offset: int, *, direct: bool = True) -> None:
        self.end = offset
        self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            self._direct = open_direct(path) if direct else None
            self._base = offset - offset % ALIGN if self._direct is not None else offset
            self._held: Pieces = []
            if os.fstat(self._fd).st_size < offset:
                # Never write past a gap: the bytes after it would be misplaced.
                raise OSError(errno.EIO, "the file is shorter than the offset to append at")
            if self._base != offset:
                self._held.append(os.pread(self._fd, offset - self._base, self._base))
        except BaseException:
            self.close()
            raise
        self._broken = False

    def write(self, pieces: Pieces) -> None:
        if self._broken:
            raise OSError(errno.EIO, "an earlier write to this file failed")
        try:
            self._write(pieces)
        except BaseException:
            self._broken = True
            raise

    def _write(self, pieces: Pieces) -> None:
        if self._direct is not None:
            held = [*self._held, *pieces]
            size = sum(len(piece) for piece in held)
            whole = size - size % ALIGN
            head, rest = _split(held, whole)
            try:
                if whole:
                    write_padded(self._direct, head, self._base)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._stop_direct()
                self._held, pieces = [], held
            else:
                self._held = rest
                self._base += whole
                self.end = max(self.end, self._base)
                return
        for piece in pieces:
            pwrite_all(self._fd, memoryview(piece), self.end)
            self.end += len(piece)

    def flush(self) -> int:
        """Make the bytes written so far durable, without waiting for the writer; returns
        how far the file is durable (at least that far: a write may end meanwhile).

        ``end`` is read before the ``fdatasync``, so every byte below it was handed to
        the kernel before the flush began: through the page cache the flush covers
        it, and an ``O_DIRECT`` write returns only once the device holds it.
        """
        end = self.end
        os.fdatasync(self._fd)
        return end

    def finish(self, pieces: Pieces) -> None:
        """Write ``pieces`` and whatever waits, then make the file end at :attr:`end`, durably."""
        try:
            if self._broken:  # the failure was raised to the write that met it
                return
            self.write(pieces)
            if self._held:  # fewer than ALIGN bytes, written padded
                held, self._held = self._held, []
                assert self._direct is not None  # bytes are held back only when writing direct
                try:
                    self.end = self._base + write_padded(self._direct, held, self._base)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self._stop_direct()
                    self._write(held)
        finally:
            try:
                os.ftruncate(self._fd, self.end)
                os.fsync(self._fd)
            finally:
                self.close()

    def _stop_direct(self) -> None:
        """The device wants a larger alignment than ALIGN: write through the page cache
        from here, starting again where the bytes held back begin."""
        if self._direct is not None:
            os.close(self._direct)
        self._direct, self.end = None, self._base

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        for descriptor in (self._fd, getattr(self, "_direct", None)):
            if descriptor is not None and descriptor >= 0:
                os.close(descriptor)
        self._fd, self._direct = -1, None
