"""Pushing an upload's chunks to the receiving gateway while the upload goes on.

The signed manifest lists every chunk's SHA-256, so it can be offered only
once the whole file is sealed. Without this, a large file went in two phases
one after the other: the upload (sealed as it arrived), then the delivery.
When a tus upload says where it is going (``gcx-to`` and ``gcx-marking`` in
its ``Upload-Metadata``, as ``gcx file send`` does for a one-file batch) and
every check the transfer will meet passes for that person now
(:func:`gcx.gateway.transfers.sending.preflight`), each chunk sealed ahead is
also sent at once to each receiving gateway
(``PUT /peer/v1/transfers/{id}/early/{n}``, with the chunk's slot size), over
the same pinned mutual TLS as every chunk. The receiver keeps it unread until
the manifest arrives and vouches for it (:mod:`.early_chunks`); the carrier
then sends only what the offer still lists as missing.

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
from collections.abc import Callable, Sequence

from gcx.errors import GcxError
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.gateway.transfers.chunk_transport import ChunkTransport
from gcx.gateway.transfers.sealing_ahead import PushStart
from gcx.gateway.transfers.sending import preflight
from gcx.protocol import directory as dirproto

log = logging.getLogger("gcx.gateway.transfers")

TO_KEY = "gcx-to"
MARKING_KEY = "gcx-marking"
# Chunks of one upload on their way at once; the sealing waits for room beyond that.
IN_FLIGHT = 8
# A receiver that takes longer than this to make room stops the pushing.
ROOM_SECONDS = 30.0
CHUNK_SLOT_HEADER = "Gcx-Chunk-Slot"


class EarlyPush:
    """Makes a :class:`Pushing` for each upload that says where it is going."""

    def __init__(self, gateway: Gateway, transport: ChunkTransport) -> None:
        self.gateway = gateway
        self.transport = transport

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

        def start(transfer_id: str, slot: int) -> Callable[[int, bytes], None]:
            return Pushing(self.transport, transfer_id, slot, peers).send

        return start


class Pushing:
    """One upload's chunks on their way to the receiving gateways."""

    def __init__(
        self,
        transport: ChunkTransport,
        transfer_id: str,
        slot: int,
        peers: Sequence[dirproto.GatewayEntry],
    ) -> None:
        self._transport = transport
        self._transfer_id = transfer_id
        self._slot = str(slot)
        self._peers = list(peers)
        self._room = threading.BoundedSemaphore(IN_FLIGHT * len(self._peers))
        self.stopped = False

    def send(self, number: int, data: bytes) -> None:
        """Send chunk ``number`` to every receiver; called on the sealing thread."""
        for peer in self._peers:
            if self.stopped:
                return
            if not self._room.acquire(timeout=ROOM_SECONDS):
                self.stop("its receiver made no room in time")
                return
            try:
                self._transport.executor.submit(self._put, peer, number, data)
            except RuntimeError:  # the gateway is stopping
                self._room.release()
                self.stop("the gateway is stopping")

    def _put(self, peer: dirproto.GatewayEntry, number: int, data: bytes) -> None:
        try:
            if self.stopped:
                return
            path = f"/peer/v1/transfers/{self._transfer_id}/early/{number}"
            try:
                answer = self._transport.put(
                    peer, path, data, headers={CHUNK_SLOT_HEADER: self._slot}
                )
            except GcxError as error:
                self.stop(f"{peer.name}: {error.code}")
                return
            if answer.status != 204:
                self.stop(f"{peer.name} answered {answer.status}")
        finally:
            self._room.release()

    def stop(self, why: str) -> None:
        if not self.stopped:
            self.stopped = True
            log.info(
                "chunks of %s are no longer sent ahead (%s); the offer sends the rest",
                self._transfer_id,
                why,
            )
