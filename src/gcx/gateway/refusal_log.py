"""Refused TLS connections, audited in batches by one writer.

Every refused handshake on the peer endpoint is audited (``connection.refused``
with the peer's address and a stable code). Written one transaction and one
worker thread each, a flood of bad handshakes queued audit writes ahead of
every API request on the same thread pool. Here the handshake's failure is
noted in memory and one task writes what has gathered, each refusal its own
entry at the time it happened, in one transaction a second at most. Past
:data:`MAX_PENDING` waiting, further refusals are counted instead and written
as one ``connection.refused-summarised`` entry with the count per code, so
nothing goes unrecorded and the memory a flood can take is bounded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass

from gcx import audit
from gcx.clock import Clock
from gcx.httpapi import run_sync
from gcx.store import Database

log = logging.getLogger("gcx.gateway")

MAX_PENDING = 10_000
FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class Refusal:
    address: str
    code: str
    sentence: str
    at: dt.datetime


class RefusalLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._pending: list[Refusal] = []
        self._summarised: Counter[str] = Counter()
        self._waiting = asyncio.Event()

    def add(self, address: str, code: str, sentence: str) -> None:
        """Note a refusal (called on the event loop by the TLS gate)."""
        if len(self._pending) < MAX_PENDING:
            self._pending.append(Refusal(address, code, sentence, self.clock.now()))
        else:
            self._summarised[code] += 1
        self._waiting.set()

    async def run(self) -> None:
        """Write what has gathered, at most once a second, until cancelled; then the rest."""
        try:
            while True:
                await self._waiting.wait()
                await self.flush()
                await asyncio.sleep(FLUSH_SECONDS)
        finally:
            if self._pending or self._summarised:
                batch, summarised = self._take()
                try:
                    self.write(batch, summarised)
                except Exception:
                    # Shutting down with the database gone: say so rather than fail the stop.
                    log.exception("%d refused connections could not be recorded", len(batch))

    async def flush(self) -> None:
        if self._pending or self._summarised:
            batch, summarised = self._take()
            try:
                await run_sync(self.write, batch, summarised)
            except Exception:
                # The database away for a moment: keep them for the next flush.
                log.exception("could not record %d refused connections yet", len(batch))
                self._requeue(batch, summarised)

    def _requeue(self, batch: list[Refusal], summarised: Counter[str]) -> None:
        waiting = batch + self._pending
        for refusal in waiting[MAX_PENDING:]:
            summarised[refusal.code] += 1
        self._pending = waiting[:MAX_PENDING]
        self._summarised = summarised + self._summarised
        self._waiting.set()

    def _take(self) -> tuple[list[Refusal], Counter[str]]:
        batch, summarised = self._pending, self._summarised
        self._pending, self._summarised = [], Counter()
        self._waiting.clear()
        return batch, summarised

    def write(self, batch: list[Refusal], summarised: Counter[str]) -> None:
        with self.db.transaction() as conn:
            for refusal in batch:
                audit.append(
                    conn,
                    actor=f"peer:{refusal.address}",
                    action="connection.refused",
                    subject="peer-endpoint",
                    now=refusal.at,
                    details={"code": refusal.code, "message": refusal.sentence},
                )
            if summarised:
                audit.append(
                    conn,
                    actor="gateway",
                    action="connection.refused-summarised",
                    subject="peer-endpoint",
                    now=self.clock.now(),
                    details={"count": sum(summarised.values()), "codes": dict(summarised)},
                )
