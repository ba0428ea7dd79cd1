"""Where the bytes of bulk transfers live: the filesystem chunk store.

Layout under ``<home>/blobs/transfers``::

    uploads/<upload id>            a tus upload being appended to (durable per PATCH)
    out/<transfer id>/chunks       the ciphertext chunks sealed by this gateway, until receipted
    out/<transfer id>/file-<n>     or, for files sealed as they were uploaded, the uploads
    out/<transfer id>/key          with its content key sealed to the sending organisation
    incoming/<transfer id>/chunks  chunks received from a peer and verified
    received/<transfer id>/chunks  a complete transfer: the folder is renamed here from
                                   incoming/ once every chunk is held, in one step

A transfer's chunks are one file, not a file per chunk: chunk ``n`` sits in
its own fixed-size slot at ``n * slot`` (``slot`` = the segment size plus
the 16-byte tag), so chunks arrive in any order and a short last chunk of a
file leaves a hole. A file per chunk cost an fsync and a rename each (about
2,000 of each per GiB across the two gateways, most of the transfer's time).

Durability is one fsync per file instead: the sender fsyncs its sealed
chunks once, before the transfer is recorded; the receiver writes each
verified chunk (around the page cache where it can, see
:mod:`gcx.store.direct_io`, but not yet durably) and fsyncs once, when every chunk is
held, just before the folder is renamed into ``received/`` and a receipt is
signed. Which chunks are held is therefore not known from the filesystem
alone: the receiving side keeps the set it wrote while it runs
(:mod:`gcx.gateway.transfers.held`) and, after a restart, re-checks what is
on disk (:meth:`TransferFiles.verified_chunks`, each slot against the signed
manifest's chunk digest), so a chunk lost with the page cache is sent again and
nothing unverified is ever published. A transfer becomes visible as complete
only by the rename of its whole folder, so nothing half-received is ever
presented as complete. An upload holds the sender's plaintext, so every file
here is 0600 and every folder 0700, whatever the umask (gcx.private_files).

A transfer sealed as its uploads arrived keeps no ciphertext on the sending
side: the uploads, already durable, become the transfer's files (hard links,
so a crash before the transfer is recorded leaves the uploads as they were),
beside the content key sealed to the sending organisation, and each
chunk is made again from its plaintext when it is sent
(``gcx.crypto.TransferKey.reseal_chunk``). One durable copy of the data on
each side, where the ciphertext was a second full write on the sender.

:class:`ChunkStore` is the port the gateway's transfer code uses, as
:class:`gcx.store.blobs.BlobStore` is for message parts; the runtime
(:mod:`gcx.gateway.runtime`) chooses the adapter, and :class:`TransferFiles`
is the filesystem one. An S3-compatible adapter is future work (see
docs/transfers.md).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from gcx.errors import NotFound, StorageFull
from gcx.private_files import FILE_MODE, create_private, private_dir, write_private
from gcx.store import direct_io
from gcx.store.flush_behind import FlushBehind

_ID = re.compile(r"^[0-9a-f]{32}$")
AREAS = ("uploads", "out", "incoming", "received")
CHUNKS = "chunks"
# A transfer kept as plaintext: its files (file-<index>) and its sealed content key.
KEPT = "file-"
KEY = "key"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _disk_errors() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull() from exc
        raise


def _open_chunks(path: Path) -> int:
    """The chunk file, opened for reading and writing, made 0600 if it is new."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


class ChunkWriter:
    """Writes one transfer's chunks into its file; :meth:`sync` makes them durable at once.

    Where every slot starts on a 4 KiB boundary (the default segment is 16 bytes
    short of 2 MiB, so a sealed chunk fills a 2 MiB slot) and the filesystem allows
    it, chunks are written around the page cache (:mod:`gcx.store.direct_io`); a
    short chunk's padding stays inside its own slot.
    """

    def __init__(self, path: Path, slot: int, behind: FlushBehind | None = None) -> None:
        self.path = path
        self.slot = slot
        self._behind = behind  # flushes the file as it grows, when given
        self._fd = _open_chunks(path)
        self._direct: int | None = None
        if slot % direct_io.ALIGN == 0:
            try:
                self._direct = direct_io.open_direct(path)
            except BaseException:
                os.close(self._fd)
                raise

    def write(self, number: int, data: bytes | direct_io.Pieces) -> None:
        """Write chunk ``number``: its bytes, or the pieces it arrived in, in order."""
        pieces: direct_io.Pieces = data if isinstance(data, list) else [data]
        size = sum(len(piece) for piece in pieces)
        if size > self.slot:
            raise ValueError("a chunk is larger than its slot")
        self._write(number, pieces)
        if self._behind is not None:
            self._behind.wrote(self.path, size)

    def _write(self, number: int, pieces: direct_io.Pieces) -> None:
        with _disk_errors():
            if self._direct is not None:
                try:
                    direct_io.write_padded(self._direct, pieces, number * self.slot)
                    return
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    # The device wants a larger alignment: through the page cache instead.
                    os.close(self._direct)
                    self._direct = None
            offset = number * self.slot
            for piece in pieces:
                direct_io.pwrite_all(self._fd, memoryview(piece), offset)
                offset += len(piece)

    def sync(self) -> None:
        with _disk_errors():
            if self._behind is not None:
                self._behind.check(self.path)
            os.fsync(self._fd)
        _fsync_dir(self.path.parent)

    def close(self) -> None:
        os.close(self._fd)
        if self._direct is not None:
            os.close(self._direct)

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class UploadAppender(direct_io.Appender):
    """Continues a tus upload; a full disk is refused as :class:`StorageFull`."""

    def write(self, pieces: direct_io.Pieces) -> None:
        with _disk_errors():
            super().write(pieces)

    def flush(self) -> int:
        with _disk_errors():
            return super().flush()

    def finish(self, pieces: direct_io.Pieces) -> None:
        with _disk_errors():
            super().finish(pieces)


class ChunkStore(Protocol):
    """Uploads being appended to, and transfers' chunks in their areas (out, incoming, received)."""

    def free_bytes(self) -> tuple[int, int]: ...
    def spool_dir(self) -> Path: ...
    def upload_path(self, upload_id: str) -> Path: ...
    def create_upload(self, upload_id: str) -> None: ...
    def upload_size(self, upload_id: str) -> int: ...
    def truncate_upload(self, upload_id: str, offset: int) -> None: ...
    def append_upload(self, upload_id: str, offset: int) -> UploadAppender: ...
    def delete_upload(self, upload_id: str) -> None: ...
    def upload_ids(self) -> list[str]: ...
    def keep_uploads(
        self, transfer_id: str, upload_ids: Sequence[str], sealed_key: str
    ) -> None: ...
    def kept_key(self, transfer_id: str) -> str | None: ...
    def read_kept(self, transfer_id: str, index: int, offset: int, size: int) -> bytes: ...
    def chunk_writer(self, area: str, transfer_id: str, slot: int) -> ChunkWriter: ...
    def write_chunk(
        self, area: str, transfer_id: str, number: int, data: bytes | direct_io.Pieces, slot: int
    ) -> None: ...
    def read_chunk(
        self, area: str, transfer_id: str, number: int, size: int, slot: int
    ) -> bytes: ...
    def verified_chunks(
        self,
        area: str,
        transfer_id: str,
        digests: Sequence[str],
        sizes: Sequence[int],
        slot: int,
        digest_of: Callable[[bytes], str],
    ) -> set[int]: ...
    def untouched_since(self, area: str, before: float) -> list[str]: ...
    def held_bytes(self, area: str, transfer_id: str) -> int: ...
    def publish(self, transfer_id: str) -> None: ...
    def is_published(self, transfer_id: str) -> bool: ...
    def delete(self, area: str, transfer_id: str) -> None: ...


class TransferFiles:
    """The filesystem adapter of :class:`ChunkStore`."""

    # The store is made once, when the gateway starts, and lives as long as it does;
    # each area folder is made again when it is used, so an operator who mounts a
    # new filesystem over the store (a bigger disk) does not have to recreate them.
    def __init__(self, root: Path) -> None:
        self.root = root
        self._behind = FlushBehind()
        for name in AREAS:
            private_dir(root / name)

    @staticmethod
    def _check(identifier: str) -> str:
        if not _ID.match(identifier):
            raise NotFound("No transfer or upload has that identifier.")
        return identifier

    # -- free space -------------------------------------------------------------

    def free_bytes(self) -> tuple[int, int]:
        """Bytes free to this process, and the size of the filesystem."""
        stats = os.statvfs(self.root)
        return stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize

    # -- uploads ------------------------------------------------------------------

    def spool_dir(self) -> Path:
        """Where a web form's files are spooled (private, on the uploads' disk) before use."""
        return private_dir(self.root / "uploads")

    def upload_path(self, upload_id: str) -> Path:
        return self.root / "uploads" / self._check(upload_id)

    def create_upload(self, upload_id: str) -> None:
        with _disk_errors():
            private_dir(self.root / "uploads")
            create_private(self.upload_path(upload_id))

    def upload_size(self, upload_id: str) -> int:
        try:
            return self.upload_path(upload_id).stat().st_size
        except FileNotFoundError:
            return 0

    def truncate_upload(self, upload_id: str, offset: int) -> None:
        """Cut bytes a crashed PATCH wrote past the last offset recorded."""
        path = self.upload_path(upload_id)
        if path.exists() and path.stat().st_size > offset:
            with path.open("r+b") as handle:
                handle.truncate(offset)
                os.fsync(handle.fileno())

    def append_upload(self, upload_id: str, offset: int) -> UploadAppender:
        """A writer continuing the upload at ``offset`` (see :class:`direct_io.Appender`)."""
        with _disk_errors():
            return UploadAppender(self.upload_path(upload_id), offset)

    def delete_upload(self, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.upload_path(upload_id).unlink()
        # Chunks sealed beside an upload by earlier versions of gcx.
        for sealed in (self.root / "uploads").glob(f"{self._check(upload_id)}.sealed-*"):
            with contextlib.suppress(FileNotFoundError):
                sealed.unlink()

    def upload_ids(self) -> list[str]:
        """The uploads with a file in the uploads folder."""
        with contextlib.suppress(FileNotFoundError):
            return [p.name for p in (self.root / "uploads").iterdir() if _ID.match(p.name)]
        return []

    def keep_uploads(self, transfer_id: str, upload_ids: Sequence[str], sealed_key: str) -> None:
        """Make the uploads the plaintext of ``transfer_id``'s files, in order (a second name
        for each, so an upload stays whole until it is deleted), with its sealed content key."""
        directory = self._chunk_dir("out", transfer_id)
        with _disk_errors():
            private_dir(directory)
            write_private(directory / KEY, sealed_key.encode("ascii"))
            for index, upload_id in enumerate(upload_ids):
                os.link(self.upload_path(upload_id), directory / f"{KEPT}{index}")
            _fsync_dir(directory)
            _fsync_dir(directory.parent)

    def kept_key(self, transfer_id: str) -> str | None:
        """The sealed content key of a transfer kept as plaintext; None if it is held as chunks."""
        try:
            return (self._chunk_dir("out", transfer_id) / KEY).read_text("ascii")
        except FileNotFoundError:
            return None

    def read_kept(self, transfer_id: str, index: int, offset: int, size: int) -> bytes:
        """``size`` plaintext bytes at ``offset`` of file ``index`` of a kept transfer."""
        path = self._chunk_dir("out", transfer_id) / f"{KEPT}{index}"
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise NotFound(f"File {index} of transfer {transfer_id} is not held.") from exc
        try:
            data = os.pread(descriptor, size, offset)
        finally:
            os.close(descriptor)
        if len(data) != size:
            raise NotFound(f"File {index} of transfer {transfer_id} is shorter than it was.")
        return data

    # -- chunks ---------------------------------------------------------------------

    def _chunk_dir(self, area: str, transfer_id: str) -> Path:
        return self.root / area / self._check(transfer_id)

    def chunk_writer(self, area: str, transfer_id: str, slot: int) -> ChunkWriter:
        """A writer for many chunks of one transfer (the sender sealing a whole file)."""
        directory = self._chunk_dir(area, transfer_id)
        with _disk_errors():
            private_dir(directory)
            return ChunkWriter(directory / CHUNKS, slot, self._behind)

    def write_chunk(
        self, area: str, transfer_id: str, number: int, data: bytes | direct_io.Pieces, slot: int
    ) -> None:
        """Write one chunk (its bytes or its pieces) into its slot, not yet durably (see the
        module's notes; flushed behind as the file grows, :mod:`gcx.store.flush_behind`)."""
        with self.chunk_writer(area, transfer_id, slot) as writer:
            writer.write(number, data)

    def read_chunk(self, area: str, transfer_id: str, number: int, size: int, slot: int) -> bytes:
        directory = self._chunk_dir(area, transfer_id)
        try:
            descriptor = os.open(directory / CHUNKS, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            # Transfers stored before the one-file layout keep a file per chunk,
            # named by its number; they are still read (and sent) from there.
            try:
                return (directory / str(number)).read_bytes()
            except FileNotFoundError as exc:
                raise NotFound(f"Chunk {number} of transfer {transfer_id} is not held.") from exc
        try:
            data = os.pread(descriptor, size, number * slot)
        finally:
            os.close(descriptor)
        if len(data) != size:
            raise NotFound(f"Chunk {number} of transfer {transfer_id} is not held.")
        return data

    def verified_chunks(
        self,
        area: str,
        transfer_id: str,
        digests: Sequence[str],
        sizes: Sequence[int],
        slot: int,
        digest_of: Callable[[bytes], str],
    ) -> set[int]:
        """The chunks on disk whose slot holds exactly the bytes with the digest expected
        (``digest_of``, the manifest's chunk digest).

        One read of the whole file: used after a restart, when what was written
        before it is known only from the disk.
        """
        path = self._chunk_dir(area, transfer_id) / CHUNKS
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return set()
        held: set[int] = set()
        try:
            for number, (digest, size) in enumerate(zip(digests, sizes, strict=True)):
                data = os.pread(descriptor, size, number * slot)
                if len(data) == size and digest_of(data) == digest:
                    held.add(number)
        finally:
            os.close(descriptor)
        return held

    def untouched_since(self, area: str, before: float) -> list[str]:
        """The transfers in ``area`` whose chunk file was last written before ``before``
        (seconds since the epoch)."""
        found = []
        for chunks in (self.root / area).glob(f"*/{CHUNKS}"):
            with contextlib.suppress(FileNotFoundError):
                if _ID.match(chunks.parent.name) and chunks.stat().st_mtime < before:
                    found.append(chunks.parent.name)
        return found

    def held_bytes(self, area: str, transfer_id: str) -> int:
        """Bytes of disk the transfer's chunk file occupies (its slots are sparse until written)."""
        try:
            return (self._chunk_dir(area, transfer_id) / CHUNKS).stat().st_blocks * 512
        except FileNotFoundError:
            return 0

    def publish(self, transfer_id: str) -> None:
        """Make an incoming transfer complete: one fsync of its chunks, then rename (atomic)."""
        source = self._chunk_dir("incoming", transfer_id)
        target = self._chunk_dir("received", transfer_id)
        if target.exists():
            return
        chunks = source / CHUNKS
        if chunks.exists():
            descriptor = os.open(chunks, os.O_RDONLY | os.O_CLOEXEC)
            try:
                with _disk_errors():
                    self._behind.check(chunks)
                    os.fsync(descriptor)
            finally:
                os.close(descriptor)
        _fsync_dir(source)
        private_dir(target.parent)
        os.replace(source, target)
        _fsync_dir(target.parent)

    def is_published(self, transfer_id: str) -> bool:
        return self._chunk_dir("received", transfer_id).exists()

    def delete(self, area: str, transfer_id: str) -> None:
        self._behind.forget(self._chunk_dir(area, transfer_id) / CHUNKS)
        shutil.rmtree(self._chunk_dir(area, transfer_id), ignore_errors=True)
