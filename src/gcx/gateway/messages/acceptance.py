"""Group commit for messages submitted through the local API.

Submissions that arrive together are sealed and stored together: one thread
hop and one transaction for the batch (see :mod:`gcx.gateway.messages.sending`)
instead of one of each per message. The writer takes whatever is waiting as
soon as it is free, so an idle gateway stores a lone message at once and a
busy one in batches as large as the backlog (at most :data:`BATCH`). Each
submitter waits for its own message's outcome: its answer once the batch has
committed, or the error that message alone raised. Nothing is answered
before it is stored, so a crash loses only messages that were never
accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from gcx.errors import GcxError
from gcx.gateway.messages.messaging import Messaging
from gcx.gateway.messages.sending import Compose
from gcx.gateway.tokens import Caller
from gcx.httpapi import run_sync

log = logging.getLogger("gcx.gateway.messages")

BATCH = 200

_Waiting = tuple[Caller, Compose, "asyncio.Future[dict[str, Any]]"]


class Acceptance:
    """Seals and stores submitted messages in batches, one batch at a time."""

    def __init__(self, messaging: Messaging) -> None:
        self.messaging = messaging
        self._waiting: list[_Waiting] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, caller: Caller, compose: Compose) -> dict[str, Any]:
        """The message's answer once it is stored; raises what storing it raised."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((caller, compose, future))
        self._wake.set()
        return await future

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        waiting, self._waiting = self._waiting, []
        for _, _, future in waiting:
            if not future.done():
                future.set_exception(GcxError("The gateway stopped before the message was kept."))

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
                try:
                    outcomes = await run_sync(
                        self.messaging.send_many, [(c, m) for c, m, _ in batch]
                    )
                except Exception as error:
                    log.exception("storing %d submitted messages failed", len(batch))
                    outcomes = [error] * len(batch)
                for (_, _, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
