"""The transfer worker: carries transfers to receiving gateways, chunk by chunk.

One ``transfer_deliveries`` row is one transfer for one receiving gateway. The
worker claims a due row with a short lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so replicas share the work), renews the lease while it works,
offers the signed manifest, sends the chunks the receiver says are missing
with several in flight, and asks the receiver to complete. The receipts are
verified against the recipient organisations' keys in the directory and kept.

Everything is idempotent and resumable: a worker that dies leaves its row
``sending`` with a lease that lapses; whoever claims it next offers again
and the receiver answers with what is still missing, so the transfer
continues from the last chunk the receiver acknowledged (stored), not from
zero. A refusal that will not change (bad manifest, quota) fails the row; a
full disk, an unreachable peer or a restart are retried with backoff. Every
request goes through the one peer client, whose transport failures (the
server not being the gateway named included) are all retried here: a new
directory may mend them before the transfer expires.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa

from gcx import audit, crypto
from gcx.errors import GcxError, ReceiptInvalid
from gcx.gateway.exchange.peer_client import PeerAnswer, PeerClient, refusal_code, refusal_of
from gcx.gateway.runtime import Gateway
from gcx.gateway.transfers.policy import stored_manifest, transfer_files
from gcx.httpapi import run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol import strict_json
from gcx.protocol.transfer import (
    RECEIPT_TYPE,
    DeliveryEvent,
    DeliveryState,
    TransferReceipt,
    check_receipt,
    next_state,
    retry_delay,
)
from gcx.store import iso, parse_iso
from gcx.store.schema_transfers import deliveries, transfer_receipts, transfers

log = logging.getLogger("gcx.gateway.transfers.sending")

LEASE = dt.timedelta(seconds=10)
LEASE_RENEW_SECONDS = 3.0
MAX_TRANSFERS_IN_FLIGHT = 2
CHUNK_RESENDS = 3
IDLE_POLL_SECONDS = 1.0
# Refusals that will not change if the same manifest is offered again.
PERMANENT_CODES = frozenset(
    {
        "envelope-malformed",
        "envelope-expired",
        "envelope-from-future",
        "signature-invalid",
        "transfer-refused",
        "quota-exceeded",
        "transfer-unreadable",
        "peer-refused",
    }
)


# Private control flow inside one delivery attempt, not gcx errors: they carry a
# sentence from where a chunk failed to the loop that records the outcome, and
# never leave this module (which is why they are not in errors.py).
class _Temporary(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Permanent(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def claim_due(gateway: Gateway, limit: int) -> list[Any]:
    now = gateway.clock.now()
    with gateway.db.transaction() as conn:
        query = (
            sa.select(deliveries)
            .where(
                sa.or_(
                    sa.and_(
                        deliveries.c.state.in_(
                            (DeliveryState.QUEUED.value, DeliveryState.RETRYING.value)
                        ),
                        deliveries.c.next_attempt_at <= iso(now),
                    ),
                    sa.and_(
                        deliveries.c.state == DeliveryState.SENDING.value,
                        deliveries.c.lease_until < iso(now),
                    ),
                )
            )
            .order_by(deliveries.c.id)
            .limit(limit)
        )
        if not gateway.db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        rows = list(conn.execute(query).all())
        for row in rows:
            next_state(DeliveryState(row.state), DeliveryEvent.CLAIM)
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id == row.id)
                .values(
                    state=DeliveryState.SENDING.value,
                    lease_until=iso(now + LEASE),
                    attempts=row.attempts + 1,
                    updated_at=iso(now),
                )
            )
    return rows


def _renew(gateway: Gateway, delivery_id: int) -> None:
    now = gateway.clock.now()
    with gateway.db.transaction() as conn:
        conn.execute(
            deliveries.update()
            .where(
                deliveries.c.id == delivery_id,
                deliveries.c.state == DeliveryState.SENDING.value,
            )
            .values(lease_until=iso(now + LEASE))
        )


def _progress(gateway: Gateway, delivery_id: int, held: int) -> None:
    with gateway.db.transaction() as conn:
        conn.execute(
            deliveries.update()
            .where(deliveries.c.id == delivery_id)
            .values(chunks_held=held, updated_at=iso(gateway.clock.now()))
        )


def _outcome(
    gateway: Gateway,
    row: Any,
    event: DeliveryEvent,
    message: str | None,
    receipts: dict[str, bytes] | None = None,
) -> None:
    now = gateway.clock.now()
    with gateway.db.transaction() as conn:
        current = conn.execute(
            sa.select(deliveries.c.state, deliveries.c.attempts).where(deliveries.c.id == row.id)
        ).first()
        if current is None or current.state != DeliveryState.SENDING.value:
            return
        state = next_state(DeliveryState(current.state), event)
        values: dict[str, Any] = {
            "state": state.value,
            "last_error": message,
            "updated_at": iso(now),
        }
        if state is DeliveryState.RETRYING:
            values["next_attempt_at"] = iso(now + retry_delay(current.attempts))
        conn.execute(deliveries.update().where(deliveries.c.id == row.id).values(**values))
        if receipts:
            for org, document in receipts.items():
                exists = conn.execute(
                    sa.select(transfer_receipts.c.id).where(
                        transfer_receipts.c.transfer_id == row.transfer_id,
                        transfer_receipts.c.direction == "out",
                        transfer_receipts.c.organisation == org,
                    )
                ).first()
                if exists is None:
                    conn.execute(
                        transfer_receipts.insert().values(
                            transfer_id=row.transfer_id,
                            direction="out",
                            organisation=org,
                            document=document,
                            received_at=iso(now),
                        )
                    )
        action = {
            DeliveryState.RECEIPTED: "transfer.receipted",
            DeliveryState.RETRYING: "transfer.retrying",
            DeliveryState.FAILED: "transfer.failed",
        }.get(state, "transfer." + state.value)
        audit.append(
            conn,
            actor="gateway:" + gateway.config.name,
            action=action,
            subject=row.transfer_id,
            now=now,
            details={"gateway": row.peer_gateway, "message": message},
        )
        pending = conn.execute(
            sa.select(deliveries.c.state).where(deliveries.c.transfer_id == row.transfer_id)
        ).all()
        states = {p.state for p in pending}
        finished = states <= {DeliveryState.RECEIPTED.value, DeliveryState.FAILED.value}
        if finished:
            final = "complete" if states == {DeliveryState.RECEIPTED.value} else "failed"
            conn.execute(
                transfers.update()
                .where(transfers.c.id == row.transfer_id, transfers.c.direction == "out")
                .values(state=final, completed_at=iso(now), updated_at=iso(now))
            )
    if finished:
        # The ciphertext is no longer needed here once every receiver has it (or never will).
        transfer_files(gateway).delete("out", row.transfer_id)


def _outgoing(gateway: Gateway, transfer_id: str) -> Any:
    with gateway.db.read() as conn:
        return conn.execute(
            sa.select(transfers).where(
                transfers.c.id == transfer_id, transfers.c.direction == "out"
            )
        ).first()


class TransferWorker:
    def __init__(self, gateway: Gateway, peers: PeerClient) -> None:
        self.gateway = gateway
        self.peers = peers
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        while True:
            self._wake.clear()
            claimed: list[Any] = []
            room = MAX_TRANSFERS_IN_FLIGHT - len(in_flight)
            if room > 0:
                try:
                    claimed = await run_sync(claim_due, self.gateway, room)
                except Exception:
                    log.exception("claiming transfer work failed; trying again shortly")
            for row in claimed:
                task = asyncio.create_task(self._deliver_logged(row))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if claimed:
                continue
            wake = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait(
                    [wake, *in_flight],
                    timeout=IDLE_POLL_SECONDS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                wake.cancel()

    async def _deliver_logged(self, row: Any) -> None:
        renew = asyncio.create_task(self._keep_lease(row.id))
        try:
            receipts = await self._deliver(row)
            await run_sync(_outcome, self.gateway, row, DeliveryEvent.RECEIPT, None, receipts)
        except _Temporary as problem:
            log.warning("transfer %s to %s: %s", row.transfer_id, row.peer_gateway, problem.message)
            await run_sync(
                _outcome, self.gateway, row, DeliveryEvent.TEMPORARY_FAILURE, problem.message
            )
        except _Permanent as problem:
            log.warning(
                "transfer %s refused by %s: %s", row.transfer_id, row.peer_gateway, problem.message
            )
            await run_sync(_outcome, self.gateway, row, DeliveryEvent.REFUSED, problem.message)
        except Exception as exc:
            log.exception("transfer %s to %s failed", row.transfer_id, row.peer_gateway)
            await run_sync(
                _outcome,
                self.gateway,
                row,
                DeliveryEvent.TEMPORARY_FAILURE,
                f"internal error: {type(exc).__name__}",
            )
        finally:
            renew.cancel()

    async def _keep_lease(self, delivery_id: int) -> None:
        while True:
            await asyncio.sleep(LEASE_RENEW_SECONDS)
            try:
                await run_sync(_renew, self.gateway, delivery_id)
            except Exception:
                log.exception("renewing a transfer lease failed")

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
            raise _Temporary(f"{error.code}: {error.message}") from error

    def _judge(self, answer: PeerAnswer) -> None:
        refusal = refusal_of(answer, "The receiving gateway")
        code, message = refusal_code(refusal), refusal.message
        if answer.status == 507 or code == "storage-full":
            raise _Temporary(f"storage-full: the receiving gateway is out of space: {message}")
        if code in PERMANENT_CODES or answer.status in (400, 403, 413):
            raise _Permanent(f"{code}: {message}")
        raise _Temporary(f"{code}: {message}")

    async def _deliver(self, row: Any) -> dict[str, bytes]:
        gateway = self.gateway
        try:
            directory = gateway.directory.current()
        except GcxError as error:
            raise _Temporary(error.message) from error
        peer = directory.gateway_named(row.peer_gateway)
        if peer is None:
            raise _Temporary(f"Gateway {row.peer_gateway} is not in the current directory.")
        outgoing = await run_sync(_outgoing, gateway, row.transfer_id)
        if outgoing is None:
            raise _Permanent("The transfer is no longer held here.")
        if parse_iso(outgoing.expires_at) <= gateway.clock.now():
            raise _Permanent("envelope-expired: the transfer expired before it was delivered.")
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
            subject=row.transfer_id,
            details={"gateway": peer.name, "missing": len(missing), "chunks": total},
        )
        if offer.get("state") != "complete" and missing:
            await self._send_chunks(peer, row, missing, total)
        answer = await self._call(
            peer, "POST", f"/peer/v1/transfers/{row.transfer_id}/complete", b""
        )
        if answer.status != 200:
            self._judge(answer)
        documents = [str(d).encode() for d in strict_json.loads(answer.body).get("receipts", [])]
        return await run_sync(self._check_receipts, directory, outgoing, row, documents)

    async def _send_chunks(
        self, peer: dirproto.GatewayEntry, row: Any, missing: list[int], total: int
    ) -> None:
        files = transfer_files(self.gateway)
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
                    data = await run_sync(files.read_chunk, "out", row.transfer_id, number)
                    answer = await self._call(
                        peer,
                        "PUT",
                        f"/peer/v1/transfers/{row.transfer_id}/chunks/{number}",
                        data,
                        "application/octet-stream",
                    )
                    if answer.status == 204:
                        break
                    code = refusal_code(refusal_of(answer))
                    if code == "chunk-digest-mismatch" and attempt < CHUNK_RESENDS:
                        log.warning(
                            "chunk %d of %s refused as changed; sending it again",
                            number,
                            row.transfer_id,
                        )
                        continue
                    self._judge(answer)
                async with lock:
                    held += 1
                    if held % 64 == 0:
                        await run_sync(_progress, self.gateway, row.id, held)

        workers = max(1, self.gateway.config.transfer_parallel_chunks)
        await asyncio.gather(*(sender() for _ in range(workers)))
        await run_sync(_progress, self.gateway, row.id, total)

    def _check_receipts(
        self, directory: dirproto.Directory, outgoing: Any, row: Any, documents: list[bytes]
    ) -> dict[str, bytes]:
        expected = tuple((f["name"], int(f["size"]), f["sha256"]) for f in outgoing.files)
        found: dict[str, bytes] = {}
        for document in documents:
            for org in row.organisations:
                entry = directory.organisation(org)
                if entry is None or not entry.signing_key:
                    continue
                key = crypto.VerifyKey.from_b64(entry.signing_key)
                try:
                    payload = crypto.verify_document(
                        document, RECEIPT_TYPE, {crypto.key_id(key): key}
                    )
                except GcxError:
                    continue
                receipt = TransferReceipt.from_bytes(payload)
                check_receipt(
                    receipt,
                    transfer_id=row.transfer_id,
                    manifest_digest=outgoing.manifest_digest,
                    organisation=org,
                    files=expected,
                )
                found[org] = document
        if set(found) != set(row.organisations):
            raise ReceiptInvalid(
                "The receiving gateway did not return a valid receipt for every recipient."
            )
        return found
