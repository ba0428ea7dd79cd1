"""Sealing uploads while they arrive, so that making the transfer does not read them again.

Without this, the sending gateway works in three passes one after another:
the upload is written to disk, then read back and encrypted into the
transfer's chunks when the transfer is made, then sent. Here the bytes of a
tus upload are also fed, as they arrive, to a :class:`gcx.crypto.TransferSealer`
made for a transfer identifier drawn now, on a thread of its own, so the
encryption runs beside the upload instead of after it; the files of a batch
that names itself are fed to one sealer, one after another. The chunks are
not written anywhere: the sealing yields the chunk digests the manifest
lists, and when the transfer is made from exactly those complete uploads,
they are kept as the transfer's files with the content key sealed to the
sending organisation, and each chunk is made again from its plaintext when
it is sent (:meth:`gcx.store.transfer_files.TransferFiles.keep_uploads`).
Only the manifest remains to sign.

The transfer format does not change: the identifier, the content key, the
file keys and the chunks are what :func:`create_transfer` would have made.
Nothing here is needed for correctness, only for speed, which is why it may
live in this process's memory alone: whenever the in-memory state does not
fit exactly (a gateway restarted mid-upload, another replica took a PATCH, a
PATCH that did not continue where the last ended, a file of a batch out of
turn, uploads named in another order, a failure of any kind) it is dropped,
and the transfer is made from the plaintext uploads as before. Each upload
is written and fsynced as tus requires, since a client resumes from it.

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
from dataclasses import dataclass, field

from gcx import crypto
from gcx.protocol.transfer import CHUNK_HASHES, FORMAT_2, TAG_BYTES, TransferFormat

log = logging.getLogger("gcx.gateway.transfers")

# Batches (a lone upload is one) sealed ahead at once; more are simply sealed when the
# transfer is made.
MAX_UPLOADS = 8
# Hand-offs of an upload (a segment or a little more each) waiting to be sealed.
SEALING_QUEUE = 4

# Given the transfer identifier, slot size and chunk digest's name, what to call with
# each chunk as it is sealed.
PushStart = Callable[[str, int, str], Callable[[int, bytes], None] | None]


@dataclass
class _Batch:
    """The files of one transfer being sealed ahead, one after another, by one sealer."""

    sealer: crypto.TransferSealer
    files: int  # how many the batch has
    send: Callable[[int, bytes], None]  # each chunk as it is sealed
    uploads: list[str] = field(default_factory=list)  # begun, in order
    sealed: list[crypto.SealedFile] = field(default_factory=list)  # finished, in order
    current: _Ahead | None = None
    failed: bool = False


@dataclass
class _Ahead:
    batch: _Batch
    file: crypto.FileSealer
    length: int
    failed: bool = False


@dataclass(frozen=True)
class Sealed:
    """A complete batch sealed ahead: the transfer's sealer, with every file added."""

    sealer: crypto.TransferSealer
    files: tuple[crypto.SealedFile, ...]


class SealingAhead:
    """The uploads this process is sealing as they arrive (see the module's notes).

    Every upload sealed ahead belongs to a batch, named by the caller: a lone upload
    is a batch of one, and the files of a larger batch (``gcx-batch``, see
    :func:`gcx.gateway.transfers.uploads.batch_place`) are sealed by one sealer as
    they arrive, in order, each begun once the one before it is complete.
    """

    def __init__(self, limit: int = MAX_UPLOADS) -> None:
        self._limit = limit
        self._batches: OrderedDict[str, _Batch] = OrderedDict()
        self._uploads: dict[str, _Ahead] = {}
        self._lock = threading.Lock()
        # One thread: pieces of an upload, and the files of a batch, must be sealed in
        # the order they arrived.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gcx-seal-ahead")

    def start(
        self,
        upload_id: str,
        length: int,
        segment_size: int,
        push: PushStart | None = None,
        transfer_format: TransferFormat = FORMAT_2,
        *,
        batch: str | None = None,
        index: int = 0,
        files: int = 1,
    ) -> None:
        """Begin sealing ``upload_id`` (a PATCH at offset 0) as file ``index`` of ``files`` in
        ``batch`` (by default a batch of its own).

        ``push``, given the transfer identifier, slot size and digest, may return what to
        call with each chunk as it is sealed (sending it ahead, see early_push); it is
        asked when a batch's first file begins. A file that does not follow the one
        before it in its batch, complete, drops the batch's sealing.
        """
        self.drop(upload_id)
        key = f"upload {upload_id}" if batch is None else batch
        self._thread.submit(
            self._begin, key, upload_id, length, segment_size, push, transfer_format, index, files
        ).result()

    def _begin(
        self,
        key: str,
        upload_id: str,
        length: int,
        segment_size: int,
        push: PushStart | None,
        transfer_format: TransferFormat,
        index: int,
        files: int,
    ) -> None:
        with self._lock:
            batch = self._batches.pop(key, None)
        if index == 0:
            if batch is not None:
                self._fail(batch)
            if length == 0:
                return  # an empty file is sealed when the transfer is made
            transfer_id = secrets.token_hex(16)
            sealer = crypto.TransferSealer(transfer_id, segment_size, transfer_format)
            also = None
            if push is not None:
                also = push(transfer_id, segment_size + TAG_BYTES, CHUNK_HASHES[transfer_format])
            batch = _Batch(sealer, files, _quietly(also))
        elif batch is None:
            return
        elif (
            batch.failed
            or (batch.files, len(batch.uploads)) != (files, index)
            or batch.sealer.segment_size != segment_size
            or not self._end_current(batch)
        ):
            self._fail(batch)
            return
        ahead = _Ahead(batch, batch.sealer.begin_file(length, batch.send), length)
        batch.uploads.append(upload_id)
        batch.current = ahead
        with self._lock:
            self._uploads[upload_id] = ahead
            self._batches[key] = batch
            while len(self._batches) > self._limit:
                _, oldest = self._batches.popitem(last=False)
                self._fail_locked(oldest)

    def _end_current(self, batch: _Batch) -> bool:
        """Finish the batch's file being fed, if it was fed whole (on the sealing thread)."""
        ahead = batch.current
        if ahead is None or ahead.failed or ahead.file.received != ahead.length:
            return False
        try:
            batch.sealed.append(batch.sealer.end_file(ahead.file))
        except Exception:
            log.warning("finishing an upload sealed as it arrived failed; it is sealed again")
            return False
        batch.current = None
        with self._lock:
            self._uploads.pop(batch.uploads[-1], None)
        return True

    def _fail(self, batch: _Batch) -> None:
        with self._lock:
            self._fail_locked(batch)

    def _fail_locked(self, batch: _Batch) -> None:
        batch.failed = True
        if batch.current is not None:
            batch.current.failed = True
            self._uploads.pop(batch.uploads[-1], None)

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

    def take(self, upload_ids: list[str]) -> Sealed | None:
        """The batch sealed ahead whose files are exactly ``upload_ids``, in that order, each
        complete; else None.

        The batch taken, and any batch holding one of these uploads, is no longer held here.
        """
        with self._lock:
            found = [
                (key, batch)
                for key, batch in self._batches.items()
                if set(batch.uploads) & set(upload_ids)
            ]
            for key, batch in found:
                del self._batches[key]
                if batch.uploads != upload_ids:
                    self._fail_locked(batch)
        if len(found) != 1 or found[0][1].uploads != upload_ids:
            return None
        # On the sealing thread, after every piece queued before: nothing else then
        # touches this batch's sealer.
        return self._thread.submit(self._finish, found[0][1]).result()

    def _finish(self, batch: _Batch) -> Sealed | None:
        if batch.failed or not self._end_current(batch) or len(batch.sealed) != batch.files:
            self._fail(batch)
            return None
        return Sealed(batch.sealer, tuple(batch.sealed))

    def drop(self, upload_id: str) -> None:
        """Stop sealing ``upload_id``, and with it the rest of its batch."""
        with self._lock:
            ahead = self._uploads.get(upload_id)
            if ahead is not None:
                self._fail_locked(ahead.batch)


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
