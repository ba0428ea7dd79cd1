"""The transfer carrier: a transfer to one receiving gateway, chunk by chunk.

A transfer's delivery to each receiving gateway is one row of the one outbox
(kind ``transfer``), claimed by the one worker, which keeps its lease alive
while this carrier works. The carrier offers the signed manifest, sends the
chunks the receiver says are missing with several in flight
(``transfer_parallel_chunks``), and asks the receiver to complete. The
receipts are verified against the recipient organisations' keys in the
directory and kept in the one receipt store (kind ``transfer``).

Everything is idempotent and resumable: a worker that dies leaves its row
``sending`` with a lease that lapses; whoever claims it next offers again
and the receiver answers with what is still missing, so the transfer
continues from the chunks the receiver holds (the row's ``progress``), not
from zero. A refusal that will not change (bad manifest, quota) fails the
row; a full disk, an unreachable peer or a restart are retried with the
outbox's backoff until the transfer expires. Every request goes through the
one peer client and every refusal through its one parser. When a
transfer's last row ends, the transfer is finished in the same transaction
and its ciphertext deleted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.errors import DirectoryError, GcxError, ReceiptInvalid, SignatureInvalid
from gcx.gateway.exchange import outbox
from gcx.gateway.exchange import receipts as receipt_store
from gcx.gateway.exchange.carrier import receiving_gateway
from gcx.gateway.exchange.outcomes import Outcomes, is_final_refusal
from gcx.gateway.exchange.peer_client import (
    PeerAnswer,
    PeerClient,
    PeerFaults,
    pinned_context,
    refusal_code,
    refusal_of,
)
from gcx.gateway.runtime import Gateway
from gcx.gateway.transfers.chunk_transport import ChunkTransport
from gcx.gateway.transfers.early_push import EarlyPush
from gcx.gateway.transfers.outgoing_chunks import chunk_reader
from gcx.gateway.transfers.policy import RECEIPT_KIND, stored_manifest, transfer_files
from gcx.httpapi import run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol import strict_json
from gcx.protocol.delivery import FINAL_STATES, DeliveryEvent, DeliveryState
from gcx.protocol.transfer import TransferManifest
from gcx.store import iso, parse_iso
from gcx.store.schema import outbox as outbox_table
from gcx.store.schema_transfers import transfers

log = logging.getLogger("gcx.gateway.transfers")

# Transfers one worker carries at once (each with its own chunks in flight).
MAX_TRANSFERS_IN_FLIGHT = 2
CHUNK_RESENDS = 3


# Private control flow inside one try, not a gcx error: it carries the reason
# from wherever the try failed to where the outcome is recorded, and never
# leaves this module (which is why it is not in errors.py).
class _TryFailed(Exception):
    def __init__(self, code: str, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.body = {"code": code, "message": message}
        self.permanent = permanent


class TransferCarrier:
    kinds: tuple[str, ...] = (outbox.TRANSFER,)
    max_rows: int | None = MAX_TRANSFERS_IN_FLIGHT

    def __init__(self, gateway: Gateway, peers: PeerClient, outcomes: Outcomes) -> None:
        self.gateway = gateway
        self.peers = peers
        self.outcomes = outcomes
        # Chunk bodies travel on blocking TLS sockets in threads (see chunk_transport),
        # with the same pinned context the peer client makes; the rest through the client.
        threads = max(1, gateway.config.transfer_parallel_chunks) * MAX_TRANSFERS_IN_FLIGHT
        self.chunks = ChunkTransport(lambda entry: pinned_context(gateway, entry), threads)
        # The peer client's test-only fault hook (tests/integration/fault_gateway.py) sees
        # every chunk too, as it did when chunks went through the client; never set in
        # production.
        self._faults: PeerFaults | None = getattr(peers, "_faults", None)

    def early_push(self) -> EarlyPush | None:
        """Chunks sent ahead while uploads go on, on this carrier's sending threads.

        None when a test's fault hook is set: the fault tests change and count the
        chunks this carrier sends, and a chunk sent ahead would pass them by.
        """
        return None if self._faults is not None else EarlyPush(self.gateway, self.chunks)

    async def carry(self, peer_name: str, entries: list[outbox.OutboxEntry]) -> None:
        for entry in entries:
            await self._carry_one(entry)

    async def _carry_one(self, entry: outbox.OutboxEntry) -> None:
        try:
            receipts_held = await self._deliver(entry)
        except _TryFailed as problem:
            log.warning("transfer %s to %s: %s", entry.subject_id, entry.peer_gateway, problem.body)
            await run_sync(self._failed, entry, problem.body, problem.permanent)
        except Exception as exc:
            log.exception("transfer %s to %s failed", entry.subject_id, entry.peer_gateway)
            body = {"code": "internal-error", "message": f"internal error: {type(exc).__name__}"}
            await run_sync(self._failed, entry, body, False)
        else:
            await run_sync(self._delivered, entry, receipts_held)

    # -- recording ----------------------------------------------------------------

    def _failed(self, entry: outbox.OutboxEntry, body: dict[str, Any], permanent: bool) -> None:
        state = self.outcomes.failed(entry, body, permanent=permanent, then=self._settle)
        if state in FINAL_STATES:
            self._drop_if_finished(entry.subject_id)

    def _delivered(self, entry: outbox.OutboxEntry, held: dict[str, bytes]) -> None:
        now = self.gateway.clock.now()
        with self.gateway.db.transaction() as conn:
            if outbox.state_of(conn, entry.id) != DeliveryState.SENDING.value:
                return  # another worker took it after our lease lapsed and ended it
            for org, document in sorted(held.items()):
                receipt_store.hold(
                    conn,
                    subject_id=entry.subject_id,
                    organisation=org,
                    kind=RECEIPT_KIND,
                    outcome="accepted",
                    document=document,
                    now=now,
                )
            state = outbox.transition(conn, entry.id, DeliveryEvent.RECEIPT, now=now)
            audit.append(
                conn,
                actor="gateway:" + self.gateway.config.name,
                action="transfer.receipted",
                subject=entry.subject_id,
                now=now,
                details={"gateway": entry.peer_gateway, "organisations": sorted(held)},
            )
            self._settle(conn, entry, state or DeliveryState.DELIVERED.value)
        self._drop_if_finished(entry.subject_id)

    def _settle(self, conn: Connection, entry: outbox.OutboxEntry, state: str) -> None:
        """Finish the transfer once all its rows have ended, in the transaction ending the last."""
        if DeliveryState(state) not in FINAL_STATES:
            return
        states = {
            s
            for (s,) in conn.execute(
                sa.select(outbox_table.c.state).where(
                    outbox_table.c.subject_id == entry.subject_id,
                    outbox_table.c.kind == outbox.TRANSFER,
                )
            )
        }
        if not states <= {s.value for s in FINAL_STATES}:
            return
        final = "complete" if states == {DeliveryState.DELIVERED.value} else "failed"
        now = iso(self.gateway.clock.now())
        conn.execute(
            transfers.update()
            .where(transfers.c.id == entry.subject_id, transfers.c.direction == "out")
            .values(state=final, completed_at=now, updated_at=now)
        )

    def _drop_if_finished(self, transfer_id: str) -> None:
        """The ciphertext is no longer needed here once every receiver has it (or never will)."""
        with self.gateway.db.read() as conn:
            state = conn.execute(
                sa.select(transfers.c.state).where(
                    transfers.c.id == transfer_id, transfers.c.direction == "out"
                )
            ).scalar()
        if state in ("complete", "failed"):
            transfer_files(self.gateway).delete("out", transfer_id)

    def _progress(self, entry: outbox.OutboxEntry, held: int) -> None:
        outbox.set_progress(self.gateway.db, entry.id, held, now=self.gateway.clock.now())

    # -- one try ------------------------------------------------------------------

    async def _call(
        self,
        peer: dirproto.GatewayEntry,
        method: str,
        path: str,
        body: bytes,
        content_type: str = "application/json",
    ) -> PeerAnswer:
        try:
            return await self.peers.request(method, peer, path, body, content_type=content_type)
        except GcxError as error:
            raise _TryFailed(error.code, error.message, permanent=False) from error

    def _judge(self, answer: PeerAnswer) -> None:
        refusal = refusal_of(answer, "The receiving gateway")
        code, message = refusal_code(refusal), refusal.message
        if answer.status == 507 or code == "storage-full":
            raise _TryFailed(
                "storage-full",
                f"The receiving gateway is out of space: {message}",
                permanent=False,
            )
        raise _TryFailed(code, message, permanent=is_final_refusal(code, answer.status))

    async def _deliver(self, entry: outbox.OutboxEntry) -> dict[str, bytes]:
        gateway = self.gateway
        try:
            directory, peer = receiving_gateway(gateway, entry.peer_gateway)
        except (GcxError, DirectoryError) as error:
            raise _TryFailed(error.code, error.message, permanent=False) from error
        outgoing = await run_sync(_outgoing, gateway, entry.subject_id)
        if outgoing is None:
            raise _TryFailed(
                "transfer-missing", "The transfer is no longer held here.", permanent=True
            )
        if parse_iso(outgoing.expires_at) <= gateway.clock.now():
            # Not final on its own: the outbox ends the row as expired, not refused.
            raise _TryFailed(
                "envelope-expired",
                "The transfer expired before it was delivered.",
                permanent=False,
            )
        document: bytes = outgoing.manifest
        manifest = await run_sync(stored_manifest, document)
        answer = await self._call(peer, "POST", "/peer/v1/transfers", document)
        if answer.status != 200:
            self._judge(answer)
        offer = strict_json.loads(answer.body)
        missing: list[int] = [int(n) for n in offer.get("missing", [])]
        total = len(manifest.chunks)
        await run_sync(
            gateway.record,
            actor=f"gateway:{gateway.config.name}",
            action="transfer.offer-answered",
            subject=entry.subject_id,
            details={"gateway": peer.name, "missing": len(missing), "chunks": total},
        )
        if offer.get("state") != "complete" and missing:
            await self._send_chunks(peer, entry, missing, manifest)
        answer = await self._call(
            peer, "POST", f"/peer/v1/transfers/{entry.subject_id}/complete", b""
        )
        if answer.status != 200:
            self._judge(answer)
        documents = [str(d).encode() for d in strict_json.loads(answer.body).get("receipts", [])]
        try:
            return await run_sync(self._check_receipts, directory, outgoing, entry, documents)
        except ReceiptInvalid as error:
            raise _TryFailed(error.code, error.message, permanent=False) from error

    async def _send_chunks(
        self,
        peer: dirproto.GatewayEntry,
        entry: outbox.OutboxEntry,
        missing: list[int],
        manifest: TransferManifest,
    ) -> None:
        try:
            read_chunk = await run_sync(chunk_reader, self.gateway, entry.subject_id, manifest)
        except GcxError as error:
            raise _TryFailed(error.code, error.message, permanent=False) from error
        total = len(manifest.chunks)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for number in missing:
            queue.put_nowait(number)
        held = total - len(missing)
        lock = asyncio.Lock()

        async def sender() -> None:
            nonlocal held
            while True:
                try:
                    number = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                for attempt in range(CHUNK_RESENDS + 1):
                    read = functools.partial(read_chunk, number)
                    path = f"/peer/v1/transfers/{entry.subject_id}/chunks/{number}"
                    answer = await self._put_chunk(peer, path, read)
                    if answer.status == 204:
                        break
                    code = refusal_code(refusal_of(answer))
                    if code == "chunk-digest-mismatch" and attempt < CHUNK_RESENDS:
                        log.warning(
                            "chunk %d of %s refused as changed; sending it again",
                            number,
                            entry.subject_id,
                        )
                        continue
                    self._judge(answer)
                async with lock:
                    held += 1
                    if held % 64 == 0:
                        await run_sync(self._progress, entry, held)

        workers = max(1, self.gateway.config.transfer_parallel_chunks)
        await asyncio.gather(*(sender() for _ in range(workers)))
        await run_sync(self._progress, entry, total)

    async def _put_chunk(
        self, peer: dirproto.GatewayEntry, path: str, read: Callable[[], bytes]
    ) -> PeerAnswer:
        """Read one chunk and PUT it to ``peer``, in one trip to a sending thread."""
        loop = asyncio.get_running_loop()
        executor = self.chunks.executor
        try:
            if self._faults is None:
                return await loop.run_in_executor(
                    executor, lambda: self.chunks.put(peer, path, read())
                )
            data = await self._faults.outgoing("PUT", path, await run_sync(read))
            return await loop.run_in_executor(executor, self.chunks.put, peer, path, data)
        except GcxError as error:
            raise _TryFailed(error.code, error.message, permanent=False) from error

    def _check_receipts(
        self,
        directory: dirproto.Directory,
        outgoing: Any,
        entry: outbox.OutboxEntry,
        documents: list[bytes],
    ) -> dict[str, bytes]:
        expected = tuple((f["name"], int(f["size"]), f["sha256"]) for f in outgoing.files)
        found: dict[str, bytes] = {}
        for document in documents:
            for org in entry.organisations:
                holder = directory.organisation(org)
                if holder is None or not holder.signing_key:
                    continue
                try:
                    crypto.verify_transfer_receipt(
                        document,
                        crypto.VerifyKey.from_b64(holder.signing_key),
                        transfer_id=entry.subject_id,
                        manifest_digest=outgoing.manifest_digest,
                        organisation=org,
                        files=expected,
                    )
                except SignatureInvalid:
                    continue  # signed by another recipient: tried against its key in turn
                found[org] = document
        if set(found) != set(entry.organisations):
            raise ReceiptInvalid(
                "The receiving gateway did not return a valid receipt for every recipient."
            )
        return found


def _outgoing(gateway: Gateway, transfer_id: str) -> Any:
    with gateway.db.read() as conn:
        return conn.execute(
            sa.select(transfers).where(
                transfers.c.id == transfer_id, transfers.c.direction == "out"
            )
        ).first()
