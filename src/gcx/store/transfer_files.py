"""Where the bytes of bulk transfers live: the filesystem chunk store.

Layout under ``<home>/blobs/transfers``::

    uploads/<upload id>            a tus upload being appended to (fsynced per PATCH)
    out/<transfer id>/<n>          ciphertext chunk n, sealed by this gateway, until receipted
    incoming/<transfer id>/<n>     chunk n received from a peer and verified
    received/<transfer id>/<n>     a complete transfer: the directory is renamed here
                                   from incoming/ once every chunk is held, in one step

Every chunk is written to a temporary name, fsynced and renamed, so a chunk
file that exists is complete: after a crash, the chunks held are exactly the
files present, and no database row per chunk is needed. A transfer becomes
visible as complete only by the rename of its whole directory, so nothing
half-received is ever presented as complete. An upload holds the sender's
plaintext, so every file here is 0600 and every folder 0700, whatever the
umask (gcx.private_files).

:class:`ChunkStore` is the port the gateway's transfer code uses, as
:class:`gcx.store.blobs.BlobStore` is for message parts; the runtime
(:mod:`gcx.gateway.runtime`) chooses the adapter, and :class:`TransferFiles`
is the filesystem one. An S3-compatible adapter is future work (see
docs/transfers.md).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from gcx.errors import NotFound, StorageFull
from gcx.private_files import create_private, open_private, private_dir

_ID = re.compile(r"^[0-9a-f]{32}$")
AREAS = ("uploads", "out", "incoming", "received")


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


class ChunkStore(Protocol):
    """Uploads being appended to, and transfers' chunks in their areas (out, incoming, received)."""

    def free_bytes(self) -> tuple[int, int]: ...
    def spool_dir(self) -> Path: ...
    def upload_path(self, upload_id: str) -> Path: ...
    def create_upload(self, upload_id: str) -> None: ...
    def upload_size(self, upload_id: str) -> int: ...
    def truncate_upload(self, upload_id: str, offset: int) -> None: ...
    def delete_upload(self, upload_id: str) -> None: ...
    def write_chunk(self, area: str, transfer_id: str, number: int, data: bytes) -> None: ...
    def read_chunk(self, area: str, transfer_id: str, number: int) -> bytes: ...
    def chunks_held(self, area: str, transfer_id: str) -> set[int]: ...
    def chunk_sha256(self, area: str, transfer_id: str, number: int) -> str: ...
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

    def delete_upload(self, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.upload_path(upload_id).unlink()

    # -- chunks ---------------------------------------------------------------------

    def _chunk_dir(self, area: str, transfer_id: str) -> Path:
        return self.root / area / self._check(transfer_id)

    def write_chunk(self, area: str, transfer_id: str, number: int, data: bytes) -> None:
        directory = self._chunk_dir(area, transfer_id)
        temporary = directory / f".partial-{number}"
        with _disk_errors():
            private_dir(directory)
            try:
                with open_private(temporary) as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, directory / str(number))
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    temporary.unlink()
                raise

    def read_chunk(self, area: str, transfer_id: str, number: int) -> bytes:
        try:
            return (self._chunk_dir(area, transfer_id) / str(number)).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"Chunk {number} of transfer {transfer_id} is not held.") from exc

    def chunks_held(self, area: str, transfer_id: str) -> set[int]:
        directory = self._chunk_dir(area, transfer_id)
        if not directory.exists():
            return set()
        return {int(name) for name in os.listdir(directory) if name.isdigit()}

    def chunk_sha256(self, area: str, transfer_id: str, number: int) -> str:
        return hashlib.sha256(self.read_chunk(area, transfer_id, number)).hexdigest()

    def publish(self, transfer_id: str) -> None:
        """Make an incoming transfer complete by renaming its directory (atomic)."""
        source = self._chunk_dir("incoming", transfer_id)
        target = self._chunk_dir("received", transfer_id)
        if target.exists():
            return
        _fsync_dir(source)
        private_dir(target.parent)
        os.replace(source, target)
        _fsync_dir(target.parent)

    def is_published(self, transfer_id: str) -> bool:
        return self._chunk_dir("received", transfer_id).exists()

    def delete(self, area: str, transfer_id: str) -> None:
        shutil.rmtree(self._chunk_dir(area, transfer_id), ignore_errors=True)
