"""The message carrier: envelopes to a receiving gateway, in batches, and their signed receipts.

Up to ``BATCH_SIZE`` envelopes for one gateway travel in one mutual-TLS
request (``POST /peer/v1/envelopes``, a ``application/vnd.gcx.batch`` body),
so a busy queue is not limited to one round trip per message. The answer
holds one result per envelope: the signed receipts of its recipient
organisations, or a refusal. Every receipt is checked against the
recipient's key in the directory outside any transaction; the batch's
receipts are then recorded in one. Envelopes whose receiving gateway is this
one (sender and recipient organisations hosted together) are accepted
in-process through the same checks a peer's envelope passes.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.errors import DirectoryError, GcxError, NotFound, PeerUnreachable, ReceiptInvalid
from gcx.gateway.directory_keys import verify_key
from gcx.gateway.exchange import outbox
from gcx.gateway.exchange import receipts as receipt_store
from gcx.gateway.exchange.carrier import receiving_gateway
from gcx.gateway.exchange.outcomes import Outcomes, is_final_refusal
from gcx.gateway.exchange.peer_client import PeerAnswer, PeerClient, refusal_of
from gcx.gateway.messages import control
from gcx.gateway.messages.envelopes import load_envelopes, stored_digests
from gcx.gateway.messages.receive import RECEIPTS_HEADER, accept_batch
from gcx.gateway.runtime import Gateway
from gcx.httpapi import run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol import strict_json
from gcx.protocol.batch import frame_batch
from gcx.protocol.delivery import DeliveryEvent, DeliveryState, is_late_receipt
from gcx.protocol.envelope import frame
from gcx.protocol.receipt import Receipt
from gcx.store.schema import envelopes

BATCH_SIZE = 100


class MessageCarrier:
    kinds: tuple[str, ...] = (outbox.MESSAGE,)
    max_rows: int | None = None

    def __init__(self, gateway: Gateway, peers: PeerClient, outcomes: Outcomes) -> None:
        self.gateway = gateway
        self.peers = peers
        self.outcomes = outcomes
        # Batch-signed receipts' roots already verified, by the exact key that verified them.
        self._roots = crypto.VerifiedRoots()

    async def carry(self, peer_name: str, entries: list[outbox.OutboxEntry]) -> None:
        for start in range(0, len(entries), BATCH_SIZE):
            await self._deliver(peer_name, entries[start : start + BATCH_SIZE])

    async def _deliver(self, peer_name: str, entries: list[outbox.OutboxEntry]) -> None:
        gateway = self.gateway
        try:
            directory, peer = receiving_gateway(gateway, peer_name)
            frames = await run_sync(self._frames, entries)
            if peer_name == gateway.config.name:
                results = await run_sync(
                    functools.partial(accept_batch, batch_signed=True),
                    gateway,
                    peer,
                    directory,
                    frames,
                )
            else:
                answer = await self.peers.request(
                    "POST",
                    peer,
                    "/peer/v1/envelopes",
                    frame_batch(frames),
                    content_type="application/vnd.gcx.batch",
                    headers={RECEIPTS_HEADER: crypto.BATCH_FORMAT},
                )
                results = _batch_results(answer, len(entries))
        except (GcxError, DirectoryError) as error:
            await run_sync(self.outcomes.failed_all, entries, error)
            return
        await run_sync(self._record, entries, results, directory)

    def _frames(self, entries: Sequence[outbox.OutboxEntry]) -> list[bytes]:
        ids = [e.subject_id for e in entries]
        with self.gateway.db.read() as conn:
            stored = load_envelopes(conn, self.gateway.blobs, ids, "out")
        missing = [i for i in ids if i not in stored]
        if missing:
            # As load_envelope would say of the first one: the batch cannot be sent whole.
            raise NotFound(f"There is no message {missing[0][:40]!r}.")
        return [frame(stored[i].signed_header, stored[i].parts) for i in ids]

    def _record(
        self,
        entries: Sequence[outbox.OutboxEntry],
        results: list[dict[str, Any]],
        directory: dirproto.Directory,
    ) -> None:
        """Check every receipt outside any transaction, then record the batch in one."""
        with self.gateway.db.read() as conn:
            digests = stored_digests(conn, [e.subject_id for e in entries], "out")
        received: list[tuple[outbox.OutboxEntry, dict[str, tuple[Receipt, bytes]]]] = []
        for entry, result in zip(entries, results, strict=True):
            if result.get("error"):
                error = result["error"]
                final = is_final_refusal(str(error.get("code")))
                self.outcomes.failed(entry, error, permanent=final)
                continue
            try:
                held = self._verified_receipts(
                    entry, result.get("receipts", []), directory, digests.get(entry.subject_id)
                )
            except GcxError as error:
                self.outcomes.failed(entry, error, permanent=False)
                continue
            missing = set(entry.organisations) - set(held)
            if missing:
                self.outcomes.failed(
                    entry,
                    PeerUnreachable(f"No receipt came back for {', '.join(sorted(missing))}."),
                    permanent=False,
                )
                continue
            received.append((entry, held))
        if received:
            now = self.gateway.clock.now()
            with self.gateway.db.transaction() as conn:
                self._store_receipts(conn, received, now)

    def _verified_receipts(
        self,
        entry: outbox.OutboxEntry,
        documents: Sequence[Any],
        directory: dirproto.Directory,
        digest: str | None,
    ) -> dict[str, tuple[Receipt, bytes]]:
        if digest is None:
            raise ReceiptInvalid(f"Envelope {entry.subject_id} is no longer held here.")
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
                verify_key(org.signing_key),
                envelope_id=entry.subject_id,
                envelope_digest=digest,
                recipient=claimed,
                roots=self._roots,
            )
            held[claimed] = (receipt, raw)
        return held

    def _store_receipts(
        self,
        conn: Connection,
        received: Sequence[tuple[outbox.OutboxEntry, dict[str, tuple[Receipt, bytes]]]],
        now: dt.datetime,
    ) -> None:
        """Record a batch's receipts and move its rows on, in a few statements for the batch.

        Each receipt is kept once (a batch taken again after a crash is
        answered with the same receipts, which are then not new, and audited
        only the first time). A row whose receipts all refused ends as refused;
        every other row takes the receipt event from the lifecycle table, in
        one update for all of them.

        The sender may have recalled a message while its batch was in flight
        and the peer has now accepted it, so the recall must follow it there.
        It is queued in this transaction, with the receipts that show it is
        due, and only when they are first recorded: a batch taken again after
        a crash queues nothing more.
        """
        states = outbox.states_of(conn, [entry.id for entry, _ in received])
        present = [(entry, held) for entry, held in received if entry.id in states]
        if len(present) != len(received):
            # As before batching: a row that is gone cannot take its receipts.
            gone = next(e for e, _ in received if e.id not in states)
            raise NotFound(f"Outbox row {gone.id} is no longer held here.")
        to_hold = [
            receipt_store.Held(
                entry.subject_id,
                org,
                "delivery",
                receipt.outcome,
                raw,
                late=is_late_receipt(DeliveryState(states[entry.id])),
            )
            for entry, held in present
            for org, (receipt, raw) in sorted(held.items())
        ]
        new = receipt_store.hold_many(conn, to_hold, now=now)
        records: list[audit.Record] = []
        newly_held: set[int] = set()
        to_receipt: dict[int, str] = {}
        for entry, held in present:
            state = states[entry.id]
            late = is_late_receipt(DeliveryState(state))
            for org, (receipt, _raw) in sorted(held.items()):
                if (entry.subject_id, org, "delivery") not in new:
                    continue
                newly_held.add(entry.id)
                records.append(
                    audit.Record(
                        f"organisation:{org}",
                        "receipt.received",
                        entry.subject_id,
                        {
                            "outcome": receipt.outcome,
                            "late": late,
                            "unknown_addresses": list(receipt.unknown_addresses),
                            "refusal": receipt.refusal.model_dump() if receipt.refusal else None,
                        },
                    )
                )
            all_refused = all(not r.accepted for r, _ in held.values())
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
                to_receipt[entry.id] = state
        audit.append_many(conn, records, now=now)
        outbox.transition_many(conn, to_receipt, DeliveryEvent.RECEIPT, now=now)
        for entry, held in present:
            all_refused = all(not r.accepted for r, _ in held.values())
            if (
                states[entry.id] == DeliveryState.RECALLED.value
                and not all_refused
                and entry.id in newly_held
            ):
                self._recall_follows(conn, entry, now)

    def _recall_follows(
        self, conn: Connection, entry: outbox.OutboxEntry, now: dt.datetime
    ) -> None:
        sender = conn.execute(
            sa.select(envelopes.c.sender_org, envelopes.c.sender_user).where(
                envelopes.c.id == entry.subject_id, envelopes.c.direction == "out"
            )
        ).one()
        control.enqueue_recall(
            conn,
            self.gateway,
            envelope_id=entry.subject_id,
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
