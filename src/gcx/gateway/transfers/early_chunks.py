"""Chunks that reach the receiving gateway before their transfer's manifest.

The signed manifest lists every chunk's digest, so it exists only once the
whole file is sealed; without this, delivery could begin only after the
upload had ended, and a large transfer took two phases of similar length one
after the other. A sending gateway that knows where an upload is going pushes
each chunk as soon as it is sealed (``PUT /peer/v1/transfers/{id}/early/{n}``,
:mod:`gcx.gateway.transfers.early_push`). Here the receiver writes such a
chunk into the slot the transfer's chunk file will use and remembers its size
and digest (of the kind the sender names in ``Gcx-Chunk-Digest``), and nothing
more: it is not a transfer, is not audited, is not shown to anyone and cannot
be read (its key travels in the manifest).

When the manifest is offered, the chunks remembered for it count as held
only if they came from the gateway that offers it, in slots of the manifest's
size, and their size and digest (of the manifest's kind) are exactly what the
signed manifest lists;
every other one is answered as missing and sent again, as before. Nothing is
trusted that the manifest does not vouch for, so the guarantees of
``docs/transfers.md`` are unchanged.

What a peer can make this gateway hold ahead of a manifest is bounded: the
chunks of at most :data:`MAX_TRANSFERS` transfers, at most
``transfer_early_bytes`` per peer gateway (0 turns early chunks off), and
only while the disk keeps its reserve. Once a transfer has been offered, its
early chunks are refused (``early-chunks-refused``) and go the usual way. An
offer waits for the transfer's early chunks still being written; one that is
still being written after :data:`SETTLE_SECONDS` (a disk stalled) makes the
offer answer ``early-chunks-unsettled`` (503, offered again later), since
counting then would let that write land in a slot after it was counted, over
the chunk the manifest vouches for.
The table lives in this process alone: after a restart the offer re-checks
the chunk file on disk against the manifest, and chunk files no manifest
claimed within :data:`ABANDONED_AFTER` are deleted by housekeeping.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from gcx import crypto
from gcx.errors import EarlyChunksRefused, EarlyChunksUnsettled, EnvelopeMalformed
from gcx.protocol.transfer import MAX_CHUNKS, MAX_SEGMENT, MIN_SEGMENT, TAG_BYTES, TransferManifest
from gcx.store.direct_io import Pieces

MAX_TRANSFERS = 64
# Chunk files no manifest claimed in this time are deleted (housekeeping).
ABANDONED_AFTER = dt.timedelta(hours=24)
# How long an offer waits for early chunks still being written.
SETTLE_SECONDS = 30.0
# Offered transfers remembered, so a late early chunk is refused rather than taken.
_CLOSED = 4096


@dataclass
class _Early:
    peer: str
    slot: int
    chunk_hash: str
    started: float
    # False if the chunk file held bytes before this table knew the transfer.
    fresh: bool
    digests: dict[int, tuple[int, str]] = field(default_factory=dict)
    reserved: int = 0
    writing: int = 0


class EarlyChunks:
    """Early chunks per transfer id; safe to use from the loop and worker threads."""

    def __init__(
        self, per_peer_bytes: int, limit: int = MAX_TRANSFERS, settle: float = SETTLE_SECONDS
    ) -> None:
        self._per_peer = per_peer_bytes
        self._limit = limit
        self._settle = settle
        self._early: OrderedDict[str, _Early] = OrderedDict()
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._settled = threading.Condition()

    @staticmethod
    def check_slot(slot: int, number: int, size: int, chunk_hash: str) -> None:
        """Refuse a slot size, chunk number, body size or digest no manifest could have."""
        if chunk_hash not in crypto.CHUNK_DIGESTS:
            raise EnvelopeMalformed(
                f"Gcx-Chunk-Digest must be one of {', '.join(crypto.CHUNK_DIGESTS)}."
            )
        if not MIN_SEGMENT + TAG_BYTES <= slot <= MAX_SEGMENT + TAG_BYTES:
            raise EnvelopeMalformed(
                f"Gcx-Chunk-Slot must be a segment size from {MIN_SEGMENT} to {MAX_SEGMENT} "
                f"bytes plus the {TAG_BYTES}-byte tag."
            )
        if not 0 <= number < MAX_CHUNKS:
            raise EnvelopeMalformed(f"Chunk {number} is outside any transfer.")
        if not TAG_BYTES <= size <= slot:
            raise EnvelopeMalformed(f"A chunk of {size} bytes does not fit a {slot}-byte slot.")

    def reserve(
        self,
        transfer_id: str,
        peer: str,
        slot: int,
        chunk_hash: str,
        size: int,
        offered: Callable[[], bool],
        on_disk: Callable[[], bool],
    ) -> None:
        """Make room for one chunk about to be written; refuses what the bounds do not allow.

        This table does not outlive the process, so for a transfer it does not know
        it asks, once: ``offered`` (a database read), whether the transfer was offered
        before; ``on_disk``, whether its chunk file already holds anything (written
        before a restart: the offer must then re-check the file, not trust the table).
        """
        with self._settled:
            known = transfer_id in self._early
        fresh = True
        if not known:
            if offered():
                self._close(transfer_id)
            fresh = not on_disk()
        with self._settled:
            if transfer_id in self._closed:
                raise EarlyChunksRefused(
                    "This transfer has been offered: send its chunks to "
                    f"/peer/v1/transfers/{transfer_id}/chunks/."
                )
            self._forget_abandoned()
            early = self._early.get(transfer_id)
            if early is None and len(self._early) >= self._limit:
                raise EarlyChunksRefused(
                    "This gateway holds early chunks for as many transfers as it will; "
                    "send them after the offer."
                )
            if early is not None and (
                early.peer != peer or early.slot != slot or early.chunk_hash != chunk_hash
            ):
                raise EarlyChunksRefused(
                    "Early chunks of this transfer came from another gateway, in another "
                    "slot size or with another digest; send them after the offer."
                )
            held = sum(e.reserved for e in self._early.values() if e.peer == peer)
            if held + size > self._per_peer:
                raise EarlyChunksRefused(
                    f"Your gateway already has {held} bytes here ahead of their manifests; "
                    "send the rest after the offer."
                )
            if early is None:
                early = _Early(peer, slot, chunk_hash, time.monotonic(), fresh)
                self._early[transfer_id] = early
            early.reserved += size
            early.writing += 1

    def written(self, transfer_id: str, number: int, pieces: Pieces, *, ok: bool) -> None:
        """Record a reserved chunk (the pieces it came in) once written (``ok``) or give its
        room back (not ``ok``)."""
        size = sum(len(piece) for piece in pieces)
        with self._settled:
            known = self._early.get(transfer_id)
        # Hashed outside the lock, with the digest the sender named for this transfer.
        digest = crypto.pieces_digest(known.chunk_hash, pieces) if ok and known else ""
        with self._settled:
            early = self._early.get(transfer_id)
            if early is not None:
                early.writing -= 1
                if ok:
                    early.digests[number] = (size, digest)
                else:
                    early.reserved -= size
            self._settled.notify_all()

    def take(self, transfer_id: str, peer: str, manifest: TransferManifest) -> set[int] | None:
        """The chunks held early that the manifest vouches for, or None if none were taken.

        Called when ``peer`` offers the manifest: from then on this transfer takes no
        more early chunks. Waits (at most ``settle`` seconds) for any still being
        written, so that nothing lands in a slot after it was counted; if one is still
        being written then, raises :class:`EarlyChunksUnsettled` (the offer is made
        again later) and keeps the transfer's entry, so that the next offer waits for
        the same writes.
        """
        deadline = time.monotonic() + self._settle
        with self._settled:
            self._close(transfer_id)
            early = self._early.get(transfer_id)
            while early is not None and early.writing > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise EarlyChunksUnsettled()
                self._settled.wait(left)
            early = self._early.pop(transfer_id, None)
        if early is None or not early.fresh:
            # Unknown, or chunks from before a restart: the chunk file is re-checked
            # against the manifest instead.
            return None
        if (
            early.peer != peer
            or early.slot != manifest.chunk_slot
            or early.chunk_hash != manifest.chunk_hash
        ):
            return set()
        count = len(manifest.chunks)
        return {
            number
            for number, (size, digest) in early.digests.items()
            if number < count
            and size == manifest.chunk_size(number)
            and digest == manifest.chunks[number]
        }

    def _close(self, transfer_id: str) -> None:
        with self._settled:  # re-entrant: also called with it held
            self._closed[transfer_id] = None
            while len(self._closed) > _CLOSED:
                self._closed.popitem(last=False)

    def _forget_abandoned(self) -> None:
        """Forget transfers no manifest claimed in time (their files go with housekeeping)."""
        cutoff = time.monotonic() - ABANDONED_AFTER.total_seconds()
        for transfer_id in [
            i for i, e in self._early.items() if e.started < cutoff and e.writing == 0
        ]:
            del self._early[transfer_id]
