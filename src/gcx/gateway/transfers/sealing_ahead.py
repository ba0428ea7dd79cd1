"""Sealing an upload while it arrives, so that making the transfer does not read it again.

Without this, the sending gateway works in three passes one after another:
the upload is written to disk, then read back and encrypted into the
transfer's chunks when the transfer is made, then sent. Here the bytes of a
tus upload are also fed, as they arrive, to a :class:`gcx.crypto.TransferSealer`
made for a transfer identifier drawn now, on a thread of its own, so the
encryption runs beside the upload instead of after it. When the transfer is
made from exactly that one complete upload, its sealed chunks are adopted as
the transfer's (one fsync, one rename) and only the manifest remains to sign.

The transfer format does not change: the identifier, the content key, the
file key (index 0) and the chunks are what :func:`create_transfer` would have
made. Nothing here is needed for correctness, only for speed, which is why
it may live in this process's memory alone: the content key is never
written anywhere, and whenever the in-memory state does not fit exactly (a
gateway restarted mid-upload, another replica took a PATCH, a PATCH that did
not continue where the last ended, a batch of several uploads, a failure of
any kind) it is dropped, its chunk file deleted, and the transfer is made
from the plaintext upload as before. The plaintext upload is still written
and fsynced as tus requires, since a client resumes from it.

Each chunk, once written, may also be sent ahead to the receiving gateway
(:mod:`gcx.gateway.transfers.early_push`), so delivery runs beside the upload
too; that is the caller's choice through ``start``'s ``push``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gcx import crypto
from gcx.protocol.transfer import CHUNK_HASHES, FORMAT_2, TAG_BYTES, TransferFormat
from gcx.store.transfer_files import ChunkWriter
from gcx.store.write_behind import WriteBehind

log = logging.getLogger("gcx.gateway.transfers")

# Uploads sealed ahead at once; more are simply sealed when the transfer is made.
MAX_UPLOADS = 8
# Hand-offs of an upload (a segment or a little more each) waiting to be sealed.
SEALING_QUEUE = 4

# Given the transfer identifier, slot size, chunk file and chunk digest's name, what to
# call with each chunk once written.
PushStart = Callable[[str, int, Path, str], Callable[[int, bytes], None] | None]


@dataclass
class _Ahead:
    sealer: crypto.TransferSealer
    file: crypto.FileSealer
    writer: ChunkWriter
    writes: WriteBehind
    length: int
    failed: bool = False


@dataclass(frozen=True)
class Sealed:
    """A complete upload sealed ahead: the transfer's sealer (one file added) and chunk file."""

    sealer: crypto.TransferSealer
    sealed: crypto.SealedFile
    chunks: Path


class SealingAhead:
    """The uploads this process is sealing as they arrive (see the module's notes)."""

    def __init__(self, limit: int = MAX_UPLOADS) -> None:
        self._limit = limit
        self._uploads: OrderedDict[str, _Ahead] = OrderedDict()
        self._lock = threading.Lock()
        # One thread: pieces of an upload must be sealed in the order they arrived.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gcx-seal-ahead")
        # One thread, after it: each sealed chunk is written (then sent ahead) while the next
        # is sealed (gcx.store.write_behind).
        self._writing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gcx-seal-write")

    def start(
        self,
        upload_id: str,
        length: int,
        segment_size: int,
        chunks: Path,
        push: PushStart | None = None,
        transfer_format: TransferFormat = FORMAT_2,
    ) -> None:
        """Begin sealing ``upload_id`` (a PATCH at offset 0) into the chunk file ``chunks``.

        ``push``, given the transfer identifier, slot size, chunk file and digest, may return
        what to call with each chunk once written (sending it ahead, see early_push).
        """
        self.drop(upload_id)
        if length == 0:
            return
        try:
            transfer_id = secrets.token_hex(16)
            sealer = crypto.TransferSealer(transfer_id, segment_size, transfer_format)
            writer = ChunkWriter(chunks, segment_size + TAG_BYTES)
        except OSError:
            return
        also = None
        if push is not None:
            also = push(transfer_id, writer.slot, chunks, CHUNK_HASHES[transfer_format])
        if also is None:
            writes = WriteBehind(writer, self._writing)
        else:
            writes = WriteBehind(writer, self._writing, _quietly(also))
        ahead = _Ahead(sealer, sealer.begin_file(length, writes.write), writer, writes, length)
        with self._lock:
            self._uploads[upload_id] = ahead
            while len(self._uploads) > self._limit:
                _, oldest = self._uploads.popitem(last=False)
                self._thread.submit(self._discard, oldest)

    def covers(self, upload_id: str, offset: int) -> bool:
        """Whether the upload is being sealed and has been fed exactly up to ``offset``."""
        with self._lock:
            ahead = self._uploads.get(upload_id)
        return ahead is not None and not ahead.failed and ahead.file.received == offset

    def feed(self, upload_id: str, data: bytes | list[bytes]) -> Future[None] | None:
        """Queue ``data`` (the next bytes of the upload, or the next pieces of them) for
        sealing; None if not sealing it."""
        with self._lock:
            ahead = self._uploads.get(upload_id)
        if ahead is None or ahead.failed:
            return None
        pieces = [data] if isinstance(data, bytes) else data
        return self._thread.submit(self._feed, ahead, pieces)

    @staticmethod
    def _feed(ahead: _Ahead, pieces: list[bytes]) -> None:
        if ahead.failed:
            return
        try:
            for piece in pieces:
                ahead.file.feed(piece)
        except Exception:  # any failure: the transfer is made from the upload instead
            log.warning("sealing an upload as it arrived failed; it is sealed when sent")
            ahead.failed = True

    def take(self, upload_id: str) -> Sealed | None:
        """The upload sealed ahead, finished and fsynced, if it is complete; else None.

        Whatever is taken or found unusable is no longer held here.
        """
        with self._lock:
            ahead = self._uploads.pop(upload_id, None)
        if ahead is None:
            return None
        # On the sealing thread, after every piece queued before: nothing else then
        # touches this upload's sealer or chunk file.
        return self._thread.submit(self._finish, ahead).result()

    @classmethod
    def _finish(cls, ahead: _Ahead) -> Sealed | None:
        if ahead.failed or ahead.file.received != ahead.length:
            cls._discard(ahead)
            return None
        try:
            sealed = ahead.sealer.end_file(ahead.file)
            ahead.writes.wait()
            ahead.writer.sync()
        except Exception:
            log.warning("finishing an upload sealed as it arrived failed; it is sealed again")
            cls._discard(ahead)
            return None
        ahead.writer.close()
        return Sealed(ahead.sealer, sealed, ahead.writer.path)

    def drop(self, upload_id: str) -> None:
        with self._lock:
            ahead = self._uploads.pop(upload_id, None)
        if ahead is not None:
            self._thread.submit(self._discard, ahead)

    @staticmethod
    def _discard(ahead: _Ahead) -> None:
        ahead.failed = True
        ahead.writes.drain()  # no write may reach the descriptor once it is closed
        ahead.writer.close()
        with contextlib.suppress(FileNotFoundError):
            ahead.writer.path.unlink()


def _quietly(send: Callable[[int, bytes], None]) -> Callable[[int, bytes], None]:
    """``send``, with a failure logged rather than raised."""

    def sent(number: int, data: bytes) -> None:
        try:
            send(number, data)
        except Exception:  # sending ahead is only a head start; never a failure here
            log.exception("sending a chunk ahead failed")

    return sent


class Feeding:
    """A tus PATCH's bytes handed to the sealing thread a segment or so at a time.

    The body arrives in pieces of any size; one hand-off per piece cost more than
    the sealing saved, so the pieces are handed over, as they came and without a
    copy here, once they make up a segment (the sealer joins them: one copy, off
    the event loop). At most ``SEALING_QUEUE`` hand-offs wait, so a client faster
    than the encryption does not fill the memory; :meth:`finish` hands over the
    rest and waits for it all, so the upload is sealed exactly as far as it is
    written.
    """

    def __init__(self, ahead: SealingAhead, upload_id: str, segment: int, *, active: bool) -> None:
        self._ahead, self._upload_id, self._segment = ahead, upload_id, segment
        self._active = active  # False when this upload is not being sealed ahead
        self._pieces: list[bytes] = []
        self._size = 0
        self._queued: deque[Future[None]] = deque()

    async def add(self, data: bytes) -> None:
        if not self._active:
            return
        self._pieces.append(data)
        self._size += len(data)
        if self._size >= self._segment:
            self._hand_over()
            if len(self._queued) > SEALING_QUEUE:
                await asyncio.wrap_future(self._queued.popleft())

    async def finish(self) -> None:
        if self._pieces:
            self._hand_over()
        while self._queued:
            await asyncio.wrap_future(self._queued.popleft())

    def _hand_over(self) -> None:
        pieces, self._pieces, self._size = self._pieces, [], 0
        if (queued := self._ahead.feed(self._upload_id, pieces)) is not None:
            self._queued.append(queued)
        else:
            self._active = False
