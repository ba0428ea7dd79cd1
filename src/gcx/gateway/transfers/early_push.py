"""Pushing an upload's chunks to the receiving gateway while the upload goes on.

The signed manifest lists every chunk's digest, so it can be offered only
once the whole file is sealed. Without this, a large file went in two phases
one after the other: the upload (sealed as it arrived), then the delivery.
When a tus upload says where it is going (``gcx-to`` and ``gcx-marking`` in
its ``Upload-Metadata``, as ``gcx file send`` does; for a batch, its first
file's) and every check the transfer will meet passes for that person now
(:func:`gcx.gateway.transfers.sending.preflight`), each chunk sealed ahead is
also sent at once to each receiving gateway
(``PUT /peer/v1/transfers/{id}/early/{n}``, with the chunk's slot size and the
name of the digest its manifest will list), over the same pinned mutual TLS
as every chunk. The receiver keeps it unread until
the manifest arrives and vouches for it (:mod:`.early_chunks`); the carrier
then sends only what the offer still lists as missing. The upload never
waits for a receiver: a few chunks sealed faster than one takes them wait in
memory, and any beyond those are left to the carrier, which makes them again
from the kept upload once the transfer is made.

It is only ever an early start, never a delivery: no outbox row, no audit
entry and no receipt depend on it. The first refusal or failure from a
receiver stops the pushing for that upload, and whatever did not arrive is
sent by the carrier as before. Only the content's ciphertext travels early;
its key is sealed to the recipients in the manifest, which is signed only when
the person makes the transfer, after every check is made again. A transfer
made to other recipients, or never made, leaves unreadable chunks that the
receiver deletes (``early_chunks.ABANDONED_AFTER``).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor

from gcx.errors import GcxError
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.gateway.transfers.chunk_transport import ChunkTransport
from gcx.gateway.transfers.sealing_ahead import PushStart
from gcx.gateway.transfers.sending import preflight
from gcx.protocol import directory as dirproto
from gcx.protocol.transfer import CHUNK_DIGEST_HEADER, CHUNK_SLOT_HEADER

log = logging.getLogger("gcx.gateway.transfers")

TO_KEY = "gcx-to"
MARKING_KEY = "gcx-marking"
# Chunks of one upload on their way to one receiver at once; later ones wait their turn.
IN_FLIGHT = 8
# Sealed chunks waiting in memory for one of those; any beyond are left to the carrier.
WAITING = 8


class EarlyPush:
    """Makes a :class:`Pushing` for each upload that says where it is going."""

    def __init__(self, gateway: Gateway, transport: ChunkTransport) -> None:
        self.gateway = gateway
        self.transport = transport
        # Threads of their own, not the carrier's: a large upload sent ahead must not
        # hold back the chunks of transfers already being delivered.
        self.executor = ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="gcx-ahead")

    def targets(
        self, caller: Caller, metadata: dict[str, str], length: int
    ) -> list[dirproto.GatewayEntry]:
        """The other gateways hosting the upload's recipients, if the transfer would pass."""
        to = [o.strip() for o in metadata.get(TO_KEY, "").split(",") if o.strip()]
        marking = metadata.get(MARKING_KEY, "")
        if not to or not marking:
            return []
        try:
            preflight(
                self.gateway, caller, to, marking, [(metadata.get("filename", "file"), length)]
            )
        except GcxError:
            return []  # the transfer, if made, will say why; nothing goes early
        directory = self.gateway.directory.current()
        hosts: dict[str, dirproto.GatewayEntry] = {}
        for organisation in to:
            host = directory.gateway_for_organisation(organisation)
            if host is not None and host.name != self.gateway.config.name:
                hosts[host.name] = host
        return list(hosts.values())

    def starter(self, peers: Sequence[dirproto.GatewayEntry]) -> PushStart | None:
        """What :meth:`SealingAhead.start` calls to begin pushing to ``peers`` (None: none)."""
        if not peers:
            return None

        def start(transfer_id: str, slot: int, chunk_hash: str) -> Callable[[int, bytes], None]:
            pushing = [
                Pushing(self.transport, self.executor, transfer_id, slot, p, chunk_hash)
                for p in peers
            ]

            def send(number: int, data: bytes) -> None:
                for each in pushing:
                    each.send(number, data)

            return send

        return start


class Pushing:
    """One upload's chunks on their way to one receiving gateway.

    The sealing never waits for the receiver: a chunk sealed while
    :data:`IN_FLIGHT` are already on their way waits in memory, up to
    :data:`WAITING` of them, and is sent when one of those is answered; a chunk
    beyond that is not sent ahead at all. A receiver slower than the upload
    therefore never slows the upload nor fills the memory; the offer lists
    what was not pushed, and the carrier sends it.
    """

    def __init__(
        self,
        transport: ChunkTransport,
        executor: Executor,
        transfer_id: str,
        slot: int,
        peer: dirproto.GatewayEntry,
        chunk_hash: str,
    ) -> None:
        self._transport = transport
        self._headers = {CHUNK_SLOT_HEADER: str(slot), CHUNK_DIGEST_HEADER: chunk_hash}
        self._executor = executor
        self._transfer_id = transfer_id
        self._peer = peer
        self._lock = threading.Lock()
        self._in_flight = 0
        self._waiting: deque[tuple[int, bytes]] = deque()  # sealed, not yet sent
        self.skipped = 0  # chunks left to the carrier
        self.stopped = False

    def send(self, number: int, data: bytes) -> None:
        """Send chunk ``number`` now if there is room, else once there is; never blocks."""
        with self._lock:
            if self.stopped:
                return
            if self._in_flight >= IN_FLIGHT:
                if len(self._waiting) < WAITING:
                    self._waiting.append((number, data))
                else:
                    self.skipped += 1
                return
            self._in_flight += 1
        try:
            self._executor.submit(self._run, number, data)
        except RuntimeError:  # the gateway is stopping
            self.stop("the gateway is stopping")

    def _run(self, number: int, data: bytes) -> None:
        """PUT this chunk, then each waiting one in turn, on this sending thread."""
        job: tuple[int, bytes] | None = (number, data)
        while job is not None:
            self._put(*job)  # a failure stops the pushing, and _next then ends here
            job = self._next()

    def _next(self) -> tuple[int, bytes] | None:
        with self._lock:
            if self.stopped or not self._waiting:
                self._in_flight -= 1
                return None
            return self._waiting.popleft()

    def _put(self, number: int, data: bytes) -> None:
        if self.stopped:
            return
        path = f"/peer/v1/transfers/{self._transfer_id}/early/{number}"
        try:
            answer = self._transport.put(self._peer, path, data, headers=self._headers)
        except GcxError as error:
            self.stop(f"{self._peer.name}: {error.code}")
            return
        if answer.status != 204:
            self.stop(f"{self._peer.name} answered {answer.status}")

    def stop(self, why: str) -> None:
        with self._lock:
            if self.stopped:
                return
            self.stopped = True
            self._waiting.clear()
        log.info(
            "chunks of %s are no longer sent ahead to %s (%s); the offer sends the rest",
            self._transfer_id,
            self._peer.name,
            why,
        )
