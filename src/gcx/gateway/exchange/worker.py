"""The one worker: claims outbox rows of every kind and hands them to their carriers.

It claims due rows after commit (never inside the sender's transaction),
groups them by kind and receiving gateway, and calls the carrier registered
for the kind (:mod:`gcx.gateway.carriers`). It knows nothing of any kind; it
only knows two shapes of carrier:

* batch carriers (``max_rows`` None: messages, control documents) get every
  claimed row of their kind for one gateway in one call; at most
  ``MAX_IN_FLIGHT`` such calls run at once, and a new claim is made as soon
  as there is room, so a steady stream does not wait behind the slowest batch;
* carriers of long work (``max_rows`` set: transfers) get one row per call,
  and the worker claims their kinds apart, never more rows than it has room
  for, so rows it could not start stay free for other replicas.

It claims only when something is due. Claiming is a write transaction (on
SQLite it takes the database's one write lock, which the local API's
acceptance and the receipts' transactions wait for), so before claiming the
worker asks :func:`outbox.next_due`, a read, and sleeps until the earliest
next attempt or lease end when nothing is due yet. Work queued in this
process wakes it at once through :meth:`ExchangeWorker.wake` (the local API,
the web pages, the receiver queueing alerts through ``Gateway.work_queued``)
and is claimed without asking. Work another replica queued, on a shared
PostgreSQL database, wakes nobody here: the read every ``IDLE_POLL_SECONDS``
finds it. A claim that comes back full is followed by another at once, since
more may be waiting; one that does not waits for a wake-up, a carrier
finishing (room made) or the next due time. While ``DEFER_AT`` batches are
in flight, work queued here waits (at most ``DEFER_SECONDS``) for one to
finish, so a busy gateway sends fewer, larger batches.

Every row it holds keeps its lease alive with one ``UPDATE`` every few
seconds (:func:`outbox.renew`), so a transfer may take an hour while a
worker that dies frees its rows within ``CLAIM_LEASE``. Carriers record each
row's outcome themselves; a carrier that raises leaves its rows ``sending``
until the lease lapses, and they are claimed again. Everything is
idempotent: a row taken again after a crash is sent again, and the receiver
answers a repeat with what it answered the first time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from gcx.errors import KindNotSupported
from gcx.gateway.exchange import outbox
from gcx.gateway.exchange.carrier import Carrier
from gcx.gateway.exchange.outcomes import Outcomes
from gcx.gateway.runtime import Gateway
from gcx.httpapi import run_sync

log = logging.getLogger("gcx.gateway.exchange")

CLAIM_LIMIT = 100
MAX_IN_FLIGHT = 4
IDLE_POLL_SECONDS = 1.0
RENEW_SECONDS = outbox.CLAIM_LEASE.total_seconds() / 3
# While this many batches are in flight, work queued here waits for one of them to finish,
# for at most DEFER_SECONDS, so that it goes out in a larger batch: each batch costs a
# claim, a peer request and a receipts transaction whatever its size. The bound keeps a
# slow or hung peer from holding back work for others.
DEFER_AT = 2
DEFER_SECONDS = 0.05


class ExchangeWorker:
    def __init__(self, gateway: Gateway, carriers: Sequence[Carrier]) -> None:
        self.gateway = gateway
        self.carriers: dict[str, Carrier] = {}
        for carrier in carriers:
            for kind in carrier.kinds:
                if kind in self.carriers:
                    raise ValueError(f"two carriers registered for outbox kind {kind!r}")
                self.carriers[kind] = carrier
        self._outcomes = Outcomes(gateway)
        self._wake = asyncio.Event()
        # Set by wake(): work was queued here, so claim without asking first.
        self._queued = True
        self._held: set[int] = set()
        self._batches: set[asyncio.Task[None]] = set()
        self._single: Counter[str] = Counter()
        # How long to sleep when idle: until the next row falls due, at most a poll.
        self._idle_for = IDLE_POLL_SECONDS
        # When work queued here was first left for a batch in flight (see DEFER_AT).
        self._deferred_at: float | None = None
        # The receiver and other parts that only hold the gateway wake the worker through it.
        gateway.work_queued = self.wake

    def wake(self) -> None:
        """Work was queued in this process: claim it now."""
        self._queued = True
        self._wake.set()

    async def run(self) -> None:
        """Claim and carry for ever, keeping the leases of everything held alive."""
        renewing = asyncio.create_task(self._keep_leases())
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                queued, self._queued = self._queued, False
                self._wake.clear()
                self._idle_for = IDLE_POLL_SECONDS
                claimed: list[outbox.OutboxEntry] = []
                full = False
                if queued and self._defer():
                    self._queued = True
                elif queued or await self._anything_due():
                    claimed, full = await self._claim()
                for kind, peer, entries in self._work(claimed):
                    # Counted before the task first runs, so the next claim sees the room taken.
                    single = self._is_single(kind)
                    if single:
                        self._single[kind] += 1
                    task = asyncio.create_task(self._carry(kind, peer, entries, single))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    if not single:
                        self._batches.add(task)
                        task.add_done_callback(self._batches.discard)
                if full:
                    continue
                wake = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait(
                        [wake, *tasks],
                        timeout=self._idle_for,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    wake.cancel()
        finally:
            renewing.cancel()

    def _defer(self) -> bool:
        """Whether to leave work queued here for a batch in flight to finish first."""
        if len(self._batches) < DEFER_AT:
            self._deferred_at = None
            return False
        now = time.monotonic()
        if self._deferred_at is None:
            self._deferred_at = now
        waited = now - self._deferred_at
        if waited >= DEFER_SECONDS:
            self._deferred_at = None
            return False
        self._idle_for = DEFER_SECONDS - waited
        return True

    def _is_single(self, kind: str) -> bool:
        carrier = self.carriers.get(kind)
        return carrier is not None and carrier.max_rows is not None

    async def _anything_due(self) -> bool:
        """Whether a row is due now (then claim); if not, sleep until one is, at most a poll."""
        try:
            due = await run_sync(outbox.next_due, self.gateway.db)
        except Exception:
            log.exception("reading when exchange work falls due failed; claiming instead")
            return True
        if due is None:
            return False
        wait = (due - self.gateway.clock.now()).total_seconds()
        if wait <= 0:
            return True
        self._idle_for = min(IDLE_POLL_SECONDS, wait)
        return False

    async def _claim(self) -> tuple[list[outbox.OutboxEntry], bool]:
        """Rows claimed for this worker, and whether the batch claim came back full."""
        now = self.gateway.clock.now()
        single = {k for k, c in self.carriers.items() if c.max_rows is not None}
        claimed: list[outbox.OutboxEntry] = []
        full = False
        try:
            if len(self._batches) < MAX_IN_FLIGHT:
                claimed += await run_sync(
                    outbox.claim_due,
                    self.gateway.db,
                    now=now,
                    limit=CLAIM_LIMIT,
                    other_than=single,
                )
                full = len(claimed) == CLAIM_LIMIT
            for kind in sorted(single):
                room = (self.carriers[kind].max_rows or 0) - self._single[kind]
                if room > 0:
                    claimed += await run_sync(
                        outbox.claim_due, self.gateway.db, now=now, limit=room, kinds=(kind,)
                    )
        except Exception:
            log.exception("claiming exchange work failed; trying again shortly")
        # A row this worker still carries can come back if a renewal was late (the
        # database stalled past the lease): the claim has taken its lease again, and
        # the carrier already at work on it goes on; it is not started twice.
        claimed = [e for e in claimed if e.id not in self._held]
        self._held.update(e.id for e in claimed)
        return claimed, full

    def _work(
        self, claimed: Iterable[outbox.OutboxEntry]
    ) -> list[tuple[str, str, list[outbox.OutboxEntry]]]:
        """Claimed rows as carrier calls: one per (kind, gateway), or one per row."""
        groups: dict[tuple[str, str], list[outbox.OutboxEntry]] = defaultdict(list)
        work: list[tuple[str, str, list[outbox.OutboxEntry]]] = []
        for entry in claimed:
            if self._is_single(entry.kind):
                work.append((entry.kind, entry.peer_gateway, [entry]))
            else:
                groups[(entry.kind, entry.peer_gateway)].append(entry)
        work += [(kind, peer, entries) for (kind, peer), entries in groups.items()]
        return work

    async def _carry(
        self, kind: str, peer_name: str, entries: list[outbox.OutboxEntry], single: bool
    ) -> None:
        carrier = self.carriers.get(kind)
        try:
            if carrier is None:
                # No carrier can take it here: end it with an alert in the audit
                # log rather than claim it again at every lease.
                error = KindNotSupported(f"This gateway has no carrier for outbox kind {kind!r}.")
                await run_sync(self._outcomes.failed_all, entries, error, True)
                return
            await carrier.carry(peer_name, entries)
        except Exception:
            # The rows stay "sending" until their lease lapses, then are claimed again.
            log.exception("carrying %s rows to %s failed", kind, peer_name)
        finally:
            if single:
                self._single[kind] -= 1
            self._held.difference_update(e.id for e in entries)
            # Room was made: claim again now rather than at the next poll.
            self._wake.set()

    async def _keep_leases(self) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                await run_sync(
                    outbox.renew, self.gateway.db, set(self._held), now=self.gateway.clock.now()
                )
            except Exception:
                log.exception("renewing outbox leases failed; trying again shortly")
