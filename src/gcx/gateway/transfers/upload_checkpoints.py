"""Durable points inside a long tus PATCH: the upload is flushed and its offset recorded
as the bytes arrive, not only when the PATCH ends.

Why: tus answers a PATCH only once its bytes are durable, and on a virtual disk
with a write cache the one fsync at the end of a large PATCH waited for all of
it at once: writes went into the cache at about 700 MB/s while the flush to
stable storage ran at about 360 MB/s, so a 1 GiB upload stood still for 1.5 to
2.2 s before its answer (bench/README.md, 7 December). Flushing every
:data:`CHECKPOINT_BYTES` beside the writing spreads that work over the upload,
and recording each flushed offset means a gateway that dies in the middle of a
PATCH is resumed from the last checkpoint rather than from the PATCH's start,
so the client can send larger PATCHes (fewer pauses between them) without
losing more on a crash.

A checkpoint never records an offset beyond bytes that an ``fdatasync`` has
covered. If a flush fails, no later offset is recorded for this PATCH: the
error of a failed flush may not be reported again by the next ``fsync`` (Linux
reports a writeback error to each open file once), so the bytes after the last
good checkpoint are treated as never written and the client sends them again.
"""

from __future__ import annotations

import asyncio
import logging

from gcx.gateway.runtime import Gateway
from gcx.gateway.transfers import uploads as transfer_uploads
from gcx.httpapi import run_sync
from gcx.store.transfer_files import UploadAppender

log = logging.getLogger(__name__)

CHECKPOINT_BYTES = 64 * 1024 * 1024


class UploadCheckpoints:
    """The checkpoints of one PATCH; one flush at a time, on a worker thread."""

    def __init__(
        self,
        gateway: Gateway,
        upload_id: str,
        appender: UploadAppender,
        every: int = CHECKPOINT_BYTES,
    ) -> None:
        self._gateway, self._upload_id, self._appender = gateway, upload_id, appender
        self._every = every
        self._durable = appender.end
        self._running: asyncio.Task[None] | None = None
        self._settling = False
        self.failed: BaseException | None = None

    def written(self, _write: object = None) -> None:
        """Start a checkpoint if enough has been written since the last and none is running.

        Called on the event loop when a write has finished (a done callback)."""
        if self._settling or self.failed is not None or self._running is not None:
            return
        if self._appender.end - self._durable >= self._every:
            self._running = asyncio.ensure_future(self._checkpoint())

    async def _checkpoint(self) -> None:
        try:
            end = await run_sync(self._appender.flush)
            await run_sync(transfer_uploads.record_offset, self._gateway, self._upload_id, end)
            self._durable = end
        except Exception as exc:  # kept for the PATCH to raise; nothing later is recorded
            log.warning("an upload checkpoint failed: %s", type(exc).__name__)
            self.failed = exc
        finally:
            self._running = None

    async def settle(self) -> None:
        """Start no more checkpoints and wait for the one in progress, if any (before the
        appender is finished)."""
        self._settling = True
        await self.caught_up()

    async def caught_up(self) -> None:
        """Wait for the checkpoint in progress, if any."""
        running = self._running
        if running is not None:
            await asyncio.wait([running])
