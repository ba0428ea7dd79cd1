"""Sealing an upload while it arrives, so that making the transfer does not read it again.

Without this, the sending gateway works in three passes one after another:
the upload is written to disk, then read back and encrypted into the
transfer's chunks when the transfer is made, then sent. Here the bytes of a
tus upload are also fed, as they arrive, to a :class:`gcx.crypto.TransferSealer`
made for a transfer identifier drawn now, on a thread of its own, so the
encryption runs beside the upload instead of after it. The chunks are not
written anywhere: the sealing yields the chunk digests the manifest lists,
and when the transfer is made from exactly that one complete upload, the
upload itself is kept as the transfer's file with the content key sealed to
the sending organisation, and each chunk is made again from its plaintext
when it is sent (:meth:`gcx.store.transfer_files.TransferFiles.keep_upload`).
Only the manifest remains to sign.

The transfer format does not change: the identifier, the content key, the
file key (index 0) and the chunks are what :func:`create_transfer` would have
made. Nothing here is needed for correctness, only for speed, which is why
it may live in this process's memory alone: whenever the in-memory state
does not fit exactly (a gateway restarted mid-upload, another replica took a
PATCH, a PATCH that did not continue where the last ended, a batch of
several uploads, a failure of any kind) it is dropped, and the transfer is
made from the plaintext upload as before. The plaintext upload is written
and fsynced as tus requires, since a client resumes from it.

Each chunk, as it is sealed, may also be sent ahead to the receiving gateway
(:mod:`gcx.gateway.transfers.early_push`), so delivery runs beside the upload
too; that is the caller's choice through ``start``'s ``push``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from gcx import crypto
from gcx.protocol.transfer import CHUNK_HASHES, FORMAT_2, TAG_BYTES, TransferFormat

log = logging.getLogger("gcx.gateway.transfers")

# Uploads sealed ahead at once; more are simply sealed when the transfer is made.
MAX_UPLOADS = 8
# Hand-offs of an upload (a segment or a little more each) waiting to be sealed.
SEALING_QUEUE = 4

# Given the transfer identifier, slot size and chunk digest's name, what to call with
# each chunk as it is sealed.
PushStart = Callable[[str, int, str], Callable[[int, bytes], None] | None]


@dataclass
class _Ahead:
    sealer: crypto.TransferSealer
    file: crypto.FileSealer
    length: int
    failed: bool = False


@dataclass(frozen=True)
class Sealed:
    """A complete upload sealed ahead: the transfer's sealer, with its one file added."""

    sealer: crypto.TransferSealer
    sealed: crypto.SealedFile


class SealingAhead:
    """The uploads this process is sealing as they arrive (see the module's notes)."""

    def __init__(self, limit: int = MAX_UPLOADS) -> None:
        self._limit = limit
        self._uploads: OrderedDict[str, _Ahead] = OrderedDict()
        self._lock = threading.Lock()
        # One thread: pieces of an upload must be sealed in the order they arrived.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gcx-seal-ahead")

    def start(
        self,
        upload_id: str,
        length: int,
        segment_size: int,
        push: PushStart | None = None,
        transfer_format: TransferFormat = FORMAT_2,
    ) -> None:
        """Begin sealing ``upload_id`` (a PATCH at offset 0).

        ``push``, given the transfer identifier, slot size and digest, may return what to
        call with each chunk as it is sealed (sending it ahead, see early_push).
        """
        self.drop(upload_id)
        if length == 0:
            return
        transfer_id = secrets.token_hex(16)
        sealer = crypto.TransferSealer(transfer_id, segment_size, transfer_format)
        also = None
        if push is not None:
            also = push(transfer_id, segment_size + TAG_BYTES, CHUNK_HASHES[transfer_format])
        ahead = _Ahead(sealer, sealer.begin_file(length, _quietly(also)), length)
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
        """The upload sealed ahead, finished, if it is complete; else None.

        Whatever is taken or found unusable is no longer held here.
        """
        with self._lock:
            ahead = self._uploads.pop(upload_id, None)
        if ahead is None:
            return None
        # On the sealing thread, after every piece queued before: nothing else then
        # touches this upload's sealer.
        return self._thread.submit(self._finish, ahead).result()

    @staticmethod
    def _finish(ahead: _Ahead) -> Sealed | None:
        if ahead.failed or ahead.file.received != ahead.length:
            ahead.failed = True
            return None
        try:
            sealed = ahead.sealer.end_file(ahead.file)
        except Exception:
            log.warning("finishing an upload sealed as it arrived failed; it is sealed again")
            ahead.failed = True
            return None
        return Sealed(ahead.sealer, sealed)

    def drop(self, upload_id: str) -> None:
        with self._lock:
            ahead = self._uploads.pop(upload_id, None)
        if ahead is not None:
            self._thread.submit(self._discard, ahead)

    @staticmethod
    def _discard(ahead: _Ahead) -> None:
        ahead.failed = True


def _quietly(send: Callable[[int, bytes], None] | None) -> Callable[[int, bytes], None]:
    """``send`` (or nothing), with a failure logged rather than raised."""

    def sent(number: int, data: bytes) -> None:
        if send is None:
            return
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
