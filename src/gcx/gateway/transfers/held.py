"""Which chunks of each incoming transfer this process has written, while it runs.

The receiving gateway writes verified chunks without an fsync each and fsyncs
a transfer's chunk file once, when it completes (see
:mod:`gcx.store.transfer_files`), so the filesystem alone cannot say which
chunks are held. This process remembers the chunks it wrote; a transfer it
knows nothing about (after a restart, on another replica, or pushed out of
this bounded table) is re-checked against the signed manifest on disk, once,
and remembered from then on. Forgetting is always safe: it costs a re-check,
and a chunk wrongly thought missing is only sent again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

# Transfers remembered at once; a forgotten one is re-checked on disk when next needed.
MAX_TRANSFERS = 64


class HeldChunks:
    """Chunk numbers written per transfer id; safe to use from the loop and worker threads."""

    def __init__(self, limit: int = MAX_TRANSFERS) -> None:
        self._limit = limit
        self._held: OrderedDict[str, set[int]] = OrderedDict()
        self._lock = threading.Lock()

    def held(self, transfer_id: str, on_disk: Callable[[], set[int]]) -> set[int]:
        """A copy of the chunks held, asking ``on_disk`` (a full re-check) if not remembered."""
        with self._lock:
            known = self._held.get(transfer_id)
            if known is not None:
                self._held.move_to_end(transfer_id)
                return set(known)
        found = on_disk()
        with self._lock:
            # Chunks written while the disk was re-read are kept as well.
            merged = found | self._held.get(transfer_id, set())
            self._remember(transfer_id, merged)
            return set(merged)

    def add(self, transfer_id: str, number: int) -> None:
        """Record a chunk written; only added to a transfer already being tracked."""
        with self._lock:
            known = self._held.get(transfer_id)
            if known is not None:
                known.add(number)

    def forget(self, transfer_id: str) -> None:
        with self._lock:
            self._held.pop(transfer_id, None)

    def _remember(self, transfer_id: str, chunks: set[int]) -> None:
        self._held[transfer_id] = chunks
        self._held.move_to_end(transfer_id)
        while len(self._held) > self._limit:
            self._held.popitem(last=False)
