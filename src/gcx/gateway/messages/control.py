"""Control documents on the outbox: read receipts and recalls that follow a message.

A control document is small, signed by an organisation this gateway hosts,
and about one message. It is signed once, when the action it reports
happens, and written to the outbox as a row of its own kind in that same
transaction (:func:`enqueue_read_receipt`, :func:`enqueue_recall`); the
signed bytes are kept on the row, so a retry after a crash sends exactly the
document first signed. The one worker then hands it to
:class:`ControlCarrier`, the carrier registered for both kinds, under the
outbox's lease, backoff and expiry. Nothing here is sent fire-and-forget.

The wire is unchanged: ``POST /peer/v1/read-receipts`` and
``POST /peer/v1/recalls`` with the signed document as the body.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.errors import (
    CryptoError,
    DirectoryError,
    GcxError,
    InputError,
    KindNotSupported,
    RemoteRefusal,
)
from gcx.gateway.exchange import outbox
from gcx.gateway.exchange.carrier import receiving_gateway
from gcx.gateway.exchange.outcomes import Outcomes, is_final_refusal
from gcx.gateway.exchange.peer_client import PeerClient, refusal_of
from gcx.gateway.messages.peer_api import apply_recall, store_read_receipt
from gcx.gateway.messages.recall_results import Outcome, judge_recall_answer, judge_recall_results
from gcx.gateway.peer import verify_signed_by_org
from gcx.gateway.runtime import Gateway
from gcx.httpapi import run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol.batch import READ_RECEIPT_TYPE, RECALL_TYPE, ReadReceipt, Recall
from gcx.store.schema import envelopes

PATHS = {outbox.READ_RECEIPT: "/peer/v1/read-receipts", outbox.RECALL: "/peer/v1/recalls"}


@dataclass(frozen=True)
class ControlSent:
    """A control document the peer took; ``outcome`` is what to audit it as."""

    outcome: str


def _signed(gateway: Gateway, organisation: str, payload_type: str, payload: bytes) -> bytes:
    keys = gateway.keys.organisations[organisation]
    return crypto.sign_document(
        payload_type, payload, keys.signing, crypto.key_id(keys.signing.public)
    )


def enqueue_read_receipt(
    conn: Connection,
    gateway: Gateway,
    *,
    envelope_id: str,
    organisation: str,
    reader: str,
    actor: str,
    now: dt.datetime,
) -> None:
    """Sign the read receipt and queue it for the gateway that sent the envelope."""
    sender_gateway = conn.execute(
        sa.select(envelopes.c.sender_gateway).where(
            envelopes.c.id == envelope_id, envelopes.c.direction == "in"
        )
    ).scalar_one()
    receipt = ReadReceipt(envelope_id, organisation, reader, now)
    outbox.enqueue(
        conn,
        kind=outbox.READ_RECEIPT,
        document=_signed(gateway, organisation, READ_RECEIPT_TYPE, receipt.to_bytes()),
        subject_id=envelope_id,
        peer_gateway=str(sender_gateway),
        organisations=[organisation],
        now=now,
        expires_at=now + outbox.CONTROL_LIFETIME,
    )
    audit.append(
        conn,
        actor=actor,
        action="receipt.read-queued",
        subject=envelope_id,
        now=now,
        details={"gateway": str(sender_gateway)},
    )


def enqueue_recall(
    conn: Connection,
    gateway: Gateway,
    *,
    envelope_id: str,
    organisation: str,
    user: str,
    peer_gateway: str,
    now: dt.datetime,
) -> None:
    """Sign a recall by the envelope's sender and queue it for ``peer_gateway``."""
    recall = Recall(envelope_id, organisation, user, now)
    outbox.enqueue(
        conn,
        kind=outbox.RECALL,
        document=_signed(gateway, organisation, RECALL_TYPE, recall.to_bytes()),
        subject_id=envelope_id,
        peer_gateway=peer_gateway,
        organisations=[organisation],
        now=now,
        expires_at=now + outbox.CONTROL_LIFETIME,
    )


async def send_control(
    gateway: Gateway,
    peers: PeerClient,
    peer: dirproto.GatewayEntry,
    directory: dirproto.Directory,
    entry: outbox.OutboxEntry,
) -> ControlSent:
    """Carry one control row to ``peer``; raises :class:`GcxError` if it was not taken.

    A refusal the peer sent (:class:`~gcx.errors.RemoteRefusal`) will not
    change on a retry, and the caller records it as final; anything else is
    tried again until the row expires.
    """
    document = entry.document
    if document is None or entry.kind not in PATHS:
        raise KindNotSupported(
            f"Outbox row {entry.id} of kind {entry.kind[:16]!r} is not a control document."
        )
    if peer.name == gateway.config.name:
        # Both ends are hosted here: apply it as the peer endpoint would.
        if entry.kind == outbox.READ_RECEIPT:
            payload = verify_signed_by_org(directory, document, READ_RECEIPT_TYPE, claimed=None)
            receipt = ReadReceipt.from_bytes(payload)
            await run_sync(store_read_receipt, gateway, receipt, document)
            return ControlSent("stored")
        payload = verify_signed_by_org(directory, document, RECALL_TYPE, claimed=None)
        results = await run_sync(apply_recall, gateway, peer.name, Recall.from_bytes(payload))
        return _recall_sent(judge_recall_results(directory, peer.name, document, results))
    answer = await peers.request("POST", peer, PATHS[entry.kind], document)
    if answer.status != 200:
        raise refusal_of(answer, f"Gateway {peer.name}")
    if entry.kind == outbox.RECALL:
        # Believed only as far as the signed results go, as the sender's own recall is.
        return _recall_sent(judge_recall_answer(directory, peer.name, document, answer.body))
    return ControlSent("stored")


def _recall_sent(outcome: Outcome) -> ControlSent:
    state, why = outcome
    return ControlSent(state if why is None else f"{state}: {why}"[:500])


def _never_taken(error: GcxError) -> bool:
    """Whether sending the same signed document again could never help.

    A peer's own refusal is judged as every carrier judges one
    (:func:`~gcx.gateway.exchange.outcomes.is_final_refusal`); the same checks
    failing in-process are final too; a transport failure or an answer that is
    not a gcx refusal is tried again until the row expires.
    """
    if isinstance(error, RemoteRefusal):
        return is_final_refusal(error.remote_code, error.remote_status)
    return isinstance(error, InputError | CryptoError)


class ControlCarrier:
    """Carries control documents (read receipts, recalls), one request each."""

    kinds: tuple[str, ...] = (outbox.READ_RECEIPT, outbox.RECALL)
    max_rows: int | None = None

    def __init__(self, gateway: Gateway, peers: PeerClient, outcomes: Outcomes) -> None:
        self.gateway = gateway
        self.peers = peers
        self.outcomes = outcomes

    async def carry(self, peer_name: str, entries: list[outbox.OutboxEntry]) -> None:
        try:
            directory, peer = receiving_gateway(self.gateway, peer_name)
        except (GcxError, DirectoryError) as error:
            await run_sync(self.outcomes.failed_all, entries, error)
            return
        for entry in entries:
            try:
                sent = await send_control(self.gateway, self.peers, peer, directory, entry)
            except GcxError as error:
                final = _never_taken(error)
                await run_sync(self.outcomes.failed, entry, error, permanent=final)
                continue
            action = (
                "message.recall-forwarded" if entry.kind == outbox.RECALL else "receipt.read-sent"
            )
            details = {"gateway": entry.peer_gateway, "outcome": sent.outcome}
            await run_sync(self.outcomes.delivered, entry, action, details)
