"""The delivery worker: carries outbox rows of every kind to peer gateways.

It claims due rows after commit (never inside the sender's transaction),
groups them by kind and receiving gateway, and hands each group to the
carrier registered for its kind in :attr:`DeliveryWorker.carriers`:

* ``message``: up to ``BATCH_SIZE`` envelopes in one mutual-TLS request, so a
  busy queue is not limited to one round trip per message, and the signed
  receipts recorded.
* ``read-receipt`` and ``recall``: the signed control document kept on the
  row, one request each (:mod:`gcx.gateway.messages.control`).

This module is over 400 lines because it still holds the message carrier
(batching and receipt recording) beside the kind-agnostic loop; the two part
when the transfer worker joins the one outbox (issue 15) and every carrier
moves to a module of its own.

Every kind shares the outbox's lease, backoff, expiry and lifecycle. Each
row's outcome is recorded in its own short transaction with its audit entry.
Everything here is idempotent: a row taken again after a crash is sent
again, and the receiver answers a repeat with what it answered the first time
(see :mod:`gcx.gateway.exchange.outbox`).

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
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.errors import (
    DirectoryError,
    GcxError,
    KindNotSupported,
    PeerUnreachable,
    ReceiptInvalid,
)
from gcx.gateway.exchange import outbox
from gcx.gateway.exchange.peer_client import PeerAnswer, PeerClient, refusal_of
from gcx.gateway.messages import control
from gcx.gateway.messages.envelopes import load_envelope, stored_digest
from gcx.gateway.messages.receive import accept_batch
from gcx.gateway.runtime import Gateway
from gcx.httpapi import run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol import strict_json
from gcx.protocol.batch import frame_batch
from gcx.protocol.delivery import DeliveryEvent, DeliveryState, is_late_receipt, next_attempt_at
from gcx.protocol.envelope import frame
from gcx.protocol.receipt import Receipt
from gcx.store import iso
from gcx.store.schema import envelopes, receipts

log = logging.getLogger("gcx.gateway.exchange.worker")

BATCH_SIZE = 100
CLAIM_LIMIT = 500
MAX_IN_FLIGHT = 4
IDLE_POLL_SECONDS = 1.0
# Refusal codes that will not change on a retry.
PERMANENT_CODES = frozenset(
    {"envelope-malformed", "envelope-replayed", "kind-not-supported", "input-invalid"}
)

# A carrier takes the claimed rows of its kind for one receiving gateway and
# records every row's outcome itself.
Carrier = Callable[[str, list[outbox.OutboxEntry]], Awaitable[None]]


class DeliveryWorker:
    def __init__(self, gateway: Gateway, peers: PeerClient) -> None:
        self.gateway = gateway
        self.peers = peers
        self._wake = asyncio.Event()
        self._random = random.SystemRandom().random
        self.carriers: dict[str, Carrier] = {
            outbox.MESSAGE: self._deliver,
            outbox.READ_RECEIPT: self._deliver_control,
            outbox.RECALL: self._deliver_control,
        }

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
                for (kind, peer), entries in _grouped(claimed).items():
                    task = asyncio.create_task(self._carry_logged(kind, peer, entries))
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
        await asyncio.gather(
            *(
                self._carry_logged(kind, peer, entries[i : i + BATCH_SIZE])
                for (kind, peer), entries in _grouped(claimed).items()
                for i in range(0, len(entries), BATCH_SIZE)
            )
        )
        return True

    async def _carry_logged(
        self, kind: str, peer_name: str, entries: list[outbox.OutboxEntry]
    ) -> None:
        carrier = self.carriers.get(kind)
        try:
            if carrier is None:
                # No carrier can take it here: end it with an alert in the audit
                # log rather than claim it again at every lease.
                error = KindNotSupported(f"This gateway has no carrier for outbox kind {kind!r}.")
                await run_sync(self._failed_all, entries, error, True)
                return
            await carrier(peer_name, entries)
        except Exception:
            # The rows stay "sending" until their lease lapses, then are claimed again.
            log.exception("delivering %s rows to %s failed", kind, peer_name)

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
        await run_sync(self._record, entries, results, directory)

    async def _deliver_control(self, peer_name: str, entries: list[outbox.OutboxEntry]) -> None:
        """Carry control documents (read receipts, recalls) one request each."""
        gateway = self.gateway
        try:
            directory = gateway.directory.current()
            peer = directory.gateway_named(peer_name)
            if peer is None:
                raise PeerUnreachable(
                    f"Gateway {peer_name} is not in the current directory; the document will "
                    "be sent again until it expires."
                )
        except (GcxError, DirectoryError) as error:
            await run_sync(self._failed_all, entries, error)
            return
        for entry in entries:
            try:
                sent = await control.send_control(gateway, self.peers, peer, directory, entry)
            except GcxError as error:
                final = control.is_final_refusal(error)
                await run_sync(self._failed, entry, error, permanent=final)
                continue
            await run_sync(self._control_sent, entry, sent)

    def _control_sent(self, entry: outbox.OutboxEntry, sent: control.ControlSent) -> None:
        now = self.gateway.clock.now()
        with self.gateway.db.transaction() as conn:
            outbox.transition(conn, entry.id, DeliveryEvent.RECEIPT, now=now)
            audit.append(
                conn,
                actor="delivery",
                action=(
                    "message.recall-forwarded"
                    if entry.kind == outbox.RECALL
                    else "receipt.read-sent"
                ),
                subject=entry.envelope_id,
                now=now,
                details={"gateway": entry.peer_gateway, "outcome": sent.outcome},
            )

    def _frames(self, entries: Sequence[outbox.OutboxEntry]) -> list[bytes]:
        with self.gateway.db.read() as conn:
            stored = [
                load_envelope(conn, self.gateway.blobs, e.envelope_id, "out") for e in entries
            ]
        return [frame(s.signed_header, s.parts) for s in stored]

    # -- recording outcomes ------------------------------------------------------

    def _failed_all(
        self, entries: Sequence[outbox.OutboxEntry], error: GcxError, permanent: bool = False
    ) -> None:
        for entry in entries:
            self._failed(entry, error, permanent=permanent)

    def _failed(
        self, entry: outbox.OutboxEntry, error: GcxError | dict[str, Any], *, permanent: bool
    ) -> None:
        gateway = self.gateway
        now = gateway.clock.now()
        body = error.to_dict() if isinstance(error, GcxError) else error
        code, message = str(body.get("code")), str(body.get("message"))
        # Envelope deliveries keep their historic action names; control rows
        # are named by kind, so an alert says what it was that did not arrive.
        prefix = "delivery" if entry.kind == outbox.MESSAGE else entry.kind
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
                    action=f"{prefix}.failed",
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
                    action=f"{prefix}.expired",
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
                    action=f"{prefix}.retrying",
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
    ) -> None:
        """Check every receipt outside any transaction, then record the batch in one."""
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
        if received:
            now = self.gateway.clock.now()
            with self.gateway.db.transaction() as conn:
                for entry, held in received:
                    self._store_receipts(conn, entry, held, now)

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
    ) -> None:
        """Record an entry's receipts, and queue the recall if it was recalled on the wire.

        The sender recalled the message while this batch was in flight and the
        peer has now accepted it, so the recall must follow it there. It is
        queued in this transaction, with the receipts that show it is due, and
        only when they are first recorded: a batch taken again after a crash
        is answered with the same receipts and queues nothing more.
        """
        newly_held = False
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
            newly_held = True
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
        if state == DeliveryState.RECALLED.value and not all_refused and newly_held:
            sender = conn.execute(
                sa.select(envelopes.c.sender_org, envelopes.c.sender_user).where(
                    envelopes.c.id == entry.envelope_id, envelopes.c.direction == "out"
                )
            ).one()
            control.enqueue_recall(
                conn,
                self.gateway,
                envelope_id=entry.envelope_id,
                organisation=sender.sender_org,
                user=sender.sender_user,
                peer_gateway=entry.peer_gateway,
                now=now,
            )


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


def _grouped(
    claimed: Sequence[outbox.OutboxEntry],
) -> dict[tuple[str, str], list[outbox.OutboxEntry]]:
    """Claimed rows by (kind, receiving gateway): one carrier call per group."""
    groups: dict[tuple[str, str], list[outbox.OutboxEntry]] = defaultdict(list)
    for entry in claimed:
        groups[(entry.kind, entry.peer_gateway)].append(entry)
    return groups
