"""The delivery worker: carries outbox rows to peer gateways and records the receipts.

It claims due rows after commit (never inside the sender's transaction),
groups them by receiving gateway, and sends up to ``BATCH_SIZE`` envelopes
in one mutual-TLS request, so a busy queue is not limited to one round trip
per message. Each row's outcome is recorded in its own short transaction
with its audit entry. Everything here is idempotent: a row taken again after
a crash is sent again, and the receiver answers a repeat with the receipts it
issued the first time.

Rows whose receiving gateway is this one (sender and recipient organisations
hosted together) are accepted in-process through the same checks a peer's
envelope passes.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.errors import DirectoryError, GcxError, PeerUnreachable, ReceiptInvalid
from gcx.gateway import outbox
from gcx.gateway.envelopes import load_envelope, stored_digest
from gcx.gateway.exchange.peer_client import PeerAnswer, PeerClient, refusal_of
from gcx.gateway.receive import accept_batch
from gcx.gateway.runtime import Gateway
from gcx.httpapi import run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol import strict_json
from gcx.protocol.batch import RECALL_TYPE, Recall, frame_batch
from gcx.protocol.delivery import DeliveryEvent, DeliveryState, is_late_receipt, next_attempt_at
from gcx.protocol.envelope import frame
from gcx.protocol.receipt import Receipt
from gcx.store import iso
from gcx.store.schema import receipts

log = logging.getLogger("gcx.gateway.delivery")

BATCH_SIZE = 100
CLAIM_LIMIT = 500
MAX_IN_FLIGHT = 4
IDLE_POLL_SECONDS = 1.0
# Refusal codes that will not change on a retry.
PERMANENT_CODES = frozenset(
    {"envelope-malformed", "envelope-replayed", "kind-not-supported", "input-invalid"}
)


class DeliveryWorker:
    def __init__(self, gateway: Gateway, peers: PeerClient) -> None:
        self.gateway = gateway
        self.peers = peers
        self._wake = asyncio.Event()
        self._random = random.SystemRandom().random

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Claim and deliver for ever, keeping up to ``MAX_IN_FLIGHT`` batches on the wire.

        A new batch is claimed as soon as there is room, rather than after the
        whole previous round is recorded, so a steady stream of messages does
        not wait behind the slowest batch.
        """
        in_flight: set[asyncio.Task[None]] = set()
        while True:
            self._wake.clear()
            claimed: list[outbox.OutboxEntry] = []
            if len(in_flight) < MAX_IN_FLIGHT:
                try:
                    claimed = await run_sync(
                        outbox.claim_due,
                        self.gateway.db,
                        now=self.gateway.clock.now(),
                        limit=BATCH_SIZE,
                    )
                except Exception:
                    log.exception("claiming delivery work failed; trying again shortly")
            if claimed:
                groups: dict[str, list[outbox.OutboxEntry]] = defaultdict(list)
                for entry in claimed:
                    groups[entry.peer_gateway].append(entry)
                for peer, entries in groups.items():
                    task = asyncio.create_task(self._deliver_logged(peer, entries))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
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

    async def run_once(self) -> bool:
        """Claim one round of due rows and deliver it completely; True if there was any."""
        claimed = await run_sync(
            outbox.claim_due, self.gateway.db, now=self.gateway.clock.now(), limit=CLAIM_LIMIT
        )
        if not claimed:
            return False
        groups: dict[str, list[outbox.OutboxEntry]] = defaultdict(list)
        for entry in claimed:
            groups[entry.peer_gateway].append(entry)
        await asyncio.gather(
            *(
                self._deliver(peer, entries[i : i + BATCH_SIZE])
                for peer, entries in groups.items()
                for i in range(0, len(entries), BATCH_SIZE)
            )
        )
        return True

    async def _deliver_logged(self, peer_name: str, entries: list[outbox.OutboxEntry]) -> None:
        try:
            await self._deliver(peer_name, entries)
        except Exception:
            # The rows stay "sending" until their lease lapses, then are claimed again.
            log.exception("delivering a batch to %s failed", peer_name)

    async def _deliver(self, peer_name: str, entries: list[outbox.OutboxEntry]) -> None:
        gateway = self.gateway
        try:
            directory = gateway.directory.current()
            peer = directory.gateway_named(peer_name)
            if peer is None:
                raise PeerUnreachable(
                    f"Gateway {peer_name} is not in the current directory; delivery will be "
                    "tried again until the message expires."
                )
            frames = await run_sync(self._frames, entries)
            if peer_name == gateway.config.name:
                results = await run_sync(accept_batch, gateway, peer, directory, frames)
            else:
                answer = await self.peers.request(
                    "POST",
                    peer,
                    "/peer/v1/envelopes",
                    frame_batch(frames),
                    content_type="application/vnd.gcx.batch",
                )
                results = _batch_results(answer, len(entries))
        except (GcxError, DirectoryError) as error:
            await run_sync(self._failed_all, entries, error)
            return
        recalled = await run_sync(self._record, entries, results, directory)
        if recalled and peer_name != gateway.config.name:
            await self._forward_recalls(peer, recalled)

    async def _forward_recalls(
        self, peer: dirproto.GatewayEntry, entries: list[outbox.OutboxEntry]
    ) -> None:
        """Carry a recall made while its envelope was on the wire to the peer that took it.

        The sender recalled the message while this batch was in flight; the
        peer has now accepted it, so the recall must follow it there. A peer
        that has already let it be read refuses, and that is recorded.
        """
        for entry in entries:
            document, sender = await run_sync(self._signed_recall, entry.envelope_id)
            try:
                answer = await self.peers.request("POST", peer, "/peer/v1/recalls", document)
                outcome = "recalled" if answer.status == 200 else f"refused ({answer.status})"
            except GcxError as error:
                outcome = f"not delivered: {error.code}"
            await run_sync(
                self.gateway.record,
                actor=sender,
                action="message.recall-forwarded",
                subject=entry.envelope_id,
                details={"gateway": peer.name, "outcome": outcome},
            )

    def _signed_recall(self, envelope_id: str) -> tuple[bytes, str]:
        with self.gateway.db.read() as conn:
            stored = load_envelope(conn, self.gateway.blobs, envelope_id, "out")
        sender = stored.header.sender
        keys = self.gateway.keys.organisations[sender.organisation]
        recall = Recall(envelope_id, sender.organisation, sender.user, self.gateway.clock.now())
        document = crypto.sign_document(
            RECALL_TYPE, recall.to_bytes(), keys.signing, crypto.key_id(keys.signing.public)
        )
        return document, f"user:{sender.user}@{sender.organisation}"

    def _frames(self, entries: Sequence[outbox.OutboxEntry]) -> list[bytes]:
        with self.gateway.db.read() as conn:
            stored = [
                load_envelope(conn, self.gateway.blobs, e.envelope_id, "out") for e in entries
            ]
        return [frame(s.signed_header, s.parts) for s in stored]

    # -- recording outcomes ------------------------------------------------------

    def _failed_all(self, entries: Sequence[outbox.OutboxEntry], error: GcxError) -> None:
        for entry in entries:
            self._failed(entry, error, permanent=False)

    def _failed(
        self, entry: outbox.OutboxEntry, error: GcxError | dict[str, Any], *, permanent: bool
    ) -> None:
        gateway = self.gateway
        now = gateway.clock.now()
        body = error.to_dict() if isinstance(error, GcxError) else error
        code, message = str(body.get("code")), str(body.get("message"))
        with gateway.db.transaction() as conn:
            if permanent:
                outbox.transition(
                    conn,
                    entry.id,
                    DeliveryEvent.PERMANENT_REFUSAL,
                    now=now,
                    error_code=code,
                    error=message,
                )
                audit.append(
                    conn,
                    actor="delivery",
                    action="delivery.failed",
                    subject=entry.envelope_id,
                    now=now,
                    details={
                        "gateway": entry.peer_gateway,
                        "code": code,
                        "message": message,
                        "alert": True,
                    },
                )
                return
            retry_at = next_attempt_at(now, max(entry.attempts, 1), entry.expires_at, self._random)
            if retry_at is None:
                outbox.transition(
                    conn, entry.id, DeliveryEvent.EXPIRE, now=now, error_code=code, error=message
                )
                audit.append(
                    conn,
                    actor="delivery",
                    action="delivery.expired",
                    subject=entry.envelope_id,
                    now=now,
                    details={
                        "gateway": entry.peer_gateway,
                        "code": code,
                        "message": message,
                        "alert": True,
                    },
                )
            else:
                outbox.transition(
                    conn,
                    entry.id,
                    DeliveryEvent.TRANSIENT_FAILURE,
                    now=now,
                    next_attempt_at=retry_at,
                    error_code=code,
                    error=message,
                )
                audit.append(
                    conn,
                    actor="delivery",
                    action="delivery.retrying",
                    subject=entry.envelope_id,
                    now=now,
                    details={
                        "gateway": entry.peer_gateway,
                        "code": code,
                        "attempts": entry.attempts,
                        "next": iso(retry_at),
                    },
                )

    def _record(
        self,
        entries: Sequence[outbox.OutboxEntry],
        results: list[dict[str, Any]],
        directory: dirproto.Directory,
    ) -> list[outbox.OutboxEntry]:
        """Check every receipt outside any transaction, then record the batch in one.

        Returns the entries that had been recalled while on the wire and that
        the peer accepted: the recall must now be carried to it.
        """
        with self.gateway.db.read() as conn:
            digests = {e.envelope_id: stored_digest(conn, e.envelope_id, "out") for e in entries}
        received: list[tuple[outbox.OutboxEntry, dict[str, tuple[Receipt, bytes]]]] = []
        for entry, result in zip(entries, results, strict=True):
            if result.get("error"):
                error = result["error"]
                self._failed(entry, error, permanent=str(error.get("code")) in PERMANENT_CODES)
                continue
            try:
                held = self._verified_receipts(
                    entry, result.get("receipts", []), directory, digests[entry.envelope_id]
                )
            except GcxError as error:
                self._failed(entry, error, permanent=False)
                continue
            missing = set(entry.organisations) - set(held)
            if missing:
                self._failed(
                    entry,
                    PeerUnreachable(f"No receipt came back for {', '.join(sorted(missing))}."),
                    permanent=False,
                )
                continue
            received.append((entry, held))
        recalled: list[outbox.OutboxEntry] = []
        if received:
            now = self.gateway.clock.now()
            with self.gateway.db.transaction() as conn:
                for entry, held in received:
                    if self._store_receipts(conn, entry, held, now):
                        recalled.append(entry)
        return recalled

    def _verified_receipts(
        self,
        entry: outbox.OutboxEntry,
        documents: Sequence[Any],
        directory: dirproto.Directory,
        digest: str | None,
    ) -> dict[str, tuple[Receipt, bytes]]:
        if digest is None:
            raise ReceiptInvalid(f"Envelope {entry.envelope_id} is no longer held here.")
        held: dict[str, tuple[Receipt, bytes]] = {}
        for document in documents:
            raw = str(document).encode()
            claimed = _claimed_recipient(raw)
            if claimed not in entry.organisations:
                raise ReceiptInvalid(f"A receipt came back from {claimed[:16]}, not a recipient.")
            org = directory.organisation(claimed)
            if org is None or org.signing_key is None:
                raise ReceiptInvalid(f"{claimed} has no signing key in the directory.")
            receipt = crypto.verify_receipt(
                raw,
                crypto.VerifyKey.from_b64(org.signing_key),
                envelope_id=entry.envelope_id,
                envelope_digest=digest,
                recipient=claimed,
            )
            held[claimed] = (receipt, raw)
        return held

    def _store_receipts(
        self,
        conn: Connection,
        entry: outbox.OutboxEntry,
        held: dict[str, tuple[Receipt, bytes]],
        now: dt.datetime,
    ) -> bool:
        """Record an entry's receipts; True if it was recalled meanwhile and is now held."""
        all_refused = all(not r.accepted for r, _ in held.values())
        state = outbox.state_of(conn, entry.id)
        late = is_late_receipt(DeliveryState(state))
        for org, (receipt, raw) in sorted(held.items()):
            exists = conn.execute(
                sa.select(receipts.c.id).where(
                    receipts.c.envelope_id == entry.envelope_id,
                    receipts.c.organisation == org,
                    receipts.c.kind == "delivery",
                )
            ).first()
            if exists:
                continue
            conn.execute(
                receipts.insert().values(
                    envelope_id=entry.envelope_id,
                    organisation=org,
                    kind="delivery",
                    outcome=receipt.outcome,
                    document=raw,
                    received_at=iso(now),
                    late=late,
                )
            )
            audit.append(
                conn,
                actor=f"organisation:{org}",
                action="receipt.received",
                subject=entry.envelope_id,
                now=now,
                details={
                    "outcome": receipt.outcome,
                    "late": late,
                    "unknown_addresses": list(receipt.unknown_addresses),
                    "refusal": receipt.refusal.model_dump() if receipt.refusal else None,
                },
            )
        if all_refused and state == DeliveryState.RECALLED.value:
            pass  # refused where it was going anyway; the sender's recall stands
        elif all_refused:
            refusal = next(r.refusal for r, _ in held.values() if r.refusal)
            outbox.transition(
                conn,
                entry.id,
                DeliveryEvent.PERMANENT_REFUSAL,
                now=now,
                error_code=refusal.code,
                error=refusal.message,
            )
        else:
            # From recalled this keeps recalled (the recall must then travel to
            # the peer); from failed or expired it is the late receipt case.
            outbox.transition(conn, entry.id, DeliveryEvent.RECEIPT, now=now)
        return state == DeliveryState.RECALLED.value and not all_refused


def _claimed_recipient(document: bytes) -> str:
    """The recipient a receipt claims, read before verifying to pick the key."""
    try:
        payload = strict_json.loads(base64.b64decode(strict_json.loads(document)["payload"]))
        return str(payload["recipient"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ReceiptInvalid("A receipt is not a signed gcx.receipt/1 document.") from exc


def _batch_results(answer: PeerAnswer, count: int) -> list[dict[str, Any]]:
    """One result per envelope from the peer's answer; a refused batch is retried whole."""
    if answer.status != 200:
        raise refusal_of(answer)
    try:
        data = strict_json.loads(answer.body)
    except ValueError as exc:
        raise PeerUnreachable("The peer answered 200 with a body that is not JSON.") from exc
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or len(results) != count:
        raise PeerUnreachable("The peer's answer does not have one result per envelope.")
    return [r if isinstance(r, dict) else {"error": {"code": "input-invalid"}} for r in results]
