"""Peer endpoints of the envelope pipeline: batches of envelopes, recalls, read receipts.

They sit behind the same mutual-TLS and directory checks as every peer
endpoint (:func:`gcx.gateway.peer.peer_check`), so ``request["peer"]`` is the
authenticated gateway and ``request["directory"]`` the directory in force.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from gcx import audit, crypto
from gcx.errors import NotFound, PeerRefused, RecallTooLate
from gcx.gateway.exchange import receipts as receipt_store
from gcx.gateway.messages.receive import RECEIPTS_HEADER, accept_batch
from gcx.gateway.peer import GATEWAY, verify_signed_by_org
from gcx.gateway.runtime import Gateway
from gcx.httpapi import read_body, run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol.batch import (
    READ_RECEIPT_TYPE,
    RECALL_RESULT_TYPE,
    RECALL_TYPE,
    ReadReceipt,
    Recall,
    RecallResult,
    unframe_batch,
)
from gcx.store import iso
from gcx.store.schema import envelopes, mailbox_items

# A batch holds whole messages (attachments up to 100 MiB in all, as
# ciphertext) plus framing; larger payloads are the bulk-transfer path's job.
MAX_BATCH_BYTES = 160 * 1024 * 1024
MAX_CONTROL_BYTES = 64 * 1024


def _require_sender_gateway(
    directory: dirproto.Directory, peer: dirproto.GatewayEntry, organisation: str
) -> None:
    host = directory.gateway_for_organisation(organisation)
    if host is None or host.name != peer.name:
        raise PeerRefused(
            f"Only the gateway the directory names for {organisation[:16]} may speak for it."
        )


async def handle_envelopes(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    frames = unframe_batch(await read_body(request, MAX_BATCH_BYTES))
    together = crypto.BATCH_FORMAT in request.headers.get(RECEIPTS_HEADER, "").split(",")
    results = await run_sync(
        functools.partial(accept_batch, batch_signed=together),
        gateway,
        request["peer"],
        request["directory"],
        frames,
    )
    if gateway.config.smtp_host and any(r["error"] is None for r in results):
        # Storing them may have queued email alerts: carry those now, not at the next poll.
        gateway.work_queued()
    return web.json_response({"results": results})


async def handle_recall(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    directory: dirproto.Directory = request["directory"]
    document = await read_body(request, MAX_CONTROL_BYTES)
    recall = Recall.from_bytes(verify_signed_by_org(directory, document, RECALL_TYPE, claimed=None))
    # Verify again against exactly the organisation the recall speaks for.
    verify_signed_by_org(directory, document, RECALL_TYPE, claimed=recall.organisation)
    _require_sender_gateway(directory, request["peer"], recall.organisation)
    results = await run_sync(apply_recall, gateway, request["peer"].name, recall)
    return web.json_response({"results": results})


def apply_recall(gateway: Gateway, peer_name: str, recall: Recall) -> list[str]:
    """Withdraw an unread message from every mailbox here; refuse if anyone has read it."""
    now = gateway.clock.now()
    with gateway.db.transaction() as conn:
        held = conn.execute(
            sa.select(envelopes.c.sender_org, envelopes.c.recipients).where(
                envelopes.c.id == recall.envelope_id, envelopes.c.direction == "in"
            )
        ).first()
        if held is None or held.sender_org != recall.organisation:
            raise NotFound(
                f"This gateway holds no message {recall.envelope_id[:40]} from "
                f"{recall.organisation[:16]}."
            )
        items = conn.execute(
            sa.select(mailbox_items).where(
                mailbox_items.c.envelope_id == recall.envelope_id, mailbox_items.c.box == "inbox"
            )
        ).all()
        read = [i for i in items if i.read_at is not None]
        orgs = sorted({i.organisation for i in items})
        if read:
            outcome, code = "refused", RecallTooLate.code
            message = (
                f"Already read by {read[0].read_by}@{read[0].organisation} at "
                f"{read[0].read_at}; a message cannot be recalled once read."
            )
        else:
            outcome, code, message = "recalled", None, None
            conn.execute(
                mailbox_items.update()
                .where(
                    mailbox_items.c.envelope_id == recall.envelope_id,
                    mailbox_items.c.box == "inbox",
                )
                .values(recalled_at=iso(now))
            )
        audit.append(
            conn,
            actor=f"gateway:{peer_name}",
            action="message.recalled" if outcome == "recalled" else "message.recall-refused",
            subject=recall.envelope_id,
            now=now,
            details={"requested_by": f"{recall.requested_by}@{recall.organisation}", "code": code},
        )
    documents = []
    for org in orgs:
        keys = gateway.keys.organisations[org]
        result = RecallResult(recall.envelope_id, org, outcome, code, message, now)
        documents.append(
            crypto.sign_document(
                RECALL_RESULT_TYPE,
                result.to_bytes(),
                keys.signing,
                crypto.key_id(keys.signing.public),
            ).decode()
        )
    return documents


async def handle_read_receipt(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    directory: dirproto.Directory = request["directory"]
    document = await read_body(request, MAX_CONTROL_BYTES)
    receipt = ReadReceipt.from_bytes(
        verify_signed_by_org(directory, document, READ_RECEIPT_TYPE, claimed=None)
    )
    verify_signed_by_org(directory, document, READ_RECEIPT_TYPE, claimed=receipt.organisation)
    _require_sender_gateway(directory, request["peer"], receipt.organisation)
    await run_sync(store_read_receipt, gateway, receipt, document)
    return web.json_response({"stored": True})


def store_read_receipt(gateway: Gateway, receipt: ReadReceipt, document: bytes) -> None:
    now = gateway.clock.now()
    with gateway.db.transaction() as conn:
        held = conn.execute(
            sa.select(envelopes.c.recipients).where(
                envelopes.c.id == receipt.envelope_id, envelopes.c.direction == "out"
            )
        ).first()
        if held is None or receipt.organisation not in held.recipients:
            raise NotFound(
                f"No message {receipt.envelope_id[:40]} was sent to "
                f"{receipt.organisation[:16]} from here."
            )
        if not receipt_store.hold(
            conn,
            subject_id=receipt.envelope_id,
            organisation=receipt.organisation,
            kind="read",
            outcome="read",
            document=document,
            now=now,
        ):
            return
        audit.append(
            conn,
            actor=f"organisation:{receipt.organisation}",
            action="receipt.read",
            subject=receipt.envelope_id,
            now=now,
            details={"reader": receipt.reader, "read_at": iso(receipt.read_at)},
        )


def add_message_routes(app: web.Application) -> None:
    app.router.add_post("/peer/v1/envelopes", handle_envelopes)
    app.router.add_post("/peer/v1/recalls", handle_recall)
    app.router.add_post("/peer/v1/read-receipts", handle_read_receipt)


def recall_results(documents: list[Any]) -> list[RecallResult]:
    """Parse signed recall results (verification is the caller's, against the directory)."""
    return [RecallResult.from_bytes(d) for d in documents]
