"""Local REST API for secure messages (``/api/v1/messages``), documented in the OpenAPI.

Sending accepts JSON (attachments as base64) or multipart/form-data (fields
``to``, ``cc`` (repeatable or comma-separated), ``subject``, ``body``,
``marking``, ``handling``, ``read_receipt`` and files under ``attachment``).
"""

from __future__ import annotations

import base64
import binascii
import logging

from aiohttp import BodyPartReader, web
from pydantic import Field

from gcx.errors import (
    BodyNotUtf8,
    BodyTooLarge,
    InputError,
    MultipartInvalid,
)
from gcx.evidence import MEDIA_TYPE as EVIDENCE_MEDIA_TYPE
from gcx.gateway.app import caller_of
from gcx.gateway.exchange.peer_client import PeerClient
from gcx.gateway.exchange.worker import ExchangeWorker
from gcx.gateway.messages.acceptance import Acceptance
from gcx.gateway.messages.evidence_export import export_for_caller
from gcx.gateway.messages.messaging import Messaging
from gcx.gateway.messages.recall import recall_everywhere
from gcx.gateway.messages.sending import Compose
from gcx.gateway.tokens import require_sender
from gcx.httpapi import (
    multipart_errors,
    multipart_reader,
    part_filename,
    part_media_type,
    read_body,
    run_sync,
)
from gcx.protocol import strict_json
from gcx.protocol.message import MAX_TOTAL_ATTACHMENT_BYTES
from gcx.protocol.validation import StrictModel, validated

log = logging.getLogger("gcx.gateway.messages")
WORKER = web.AppKey("worker", ExchangeWorker)
PEERS = web.AppKey("peers", PeerClient)
MESSAGING = web.AppKey("messaging", Messaging)
ACCEPTANCE = web.AppKey("acceptance", Acceptance)

# Base64 grows data by a third; allow for it and for the JSON around it.
MAX_SUBMISSION_BYTES = MAX_TOTAL_ATTACHMENT_BYTES * 4 // 3 + 4 * 1024 * 1024


class AttachmentRequest(StrictModel):
    """One attachment of a JSON submission; ``content_base64`` is required, never implied."""

    name: str
    content_base64: str
    media_type: str | None = None


class MessageRequest(StrictModel):
    """A JSON submission: exact types, so ``"read_receipt": "false"`` is refused, not true."""

    to: list[str] | str
    subject: str
    body: str
    cc: list[str] | str | None = None
    marking: str | None = None
    handling: str | None = None
    read_receipt: bool = False
    attachments: list[AttachmentRequest] = Field(default_factory=list)


def _addresses(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [v.strip() for v in items if v.strip()]


async def _compose_from_json(request: web.Request) -> Compose:
    raw = await read_body(request, MAX_SUBMISSION_BYTES)
    message = validated(MessageRequest, strict_json.loads_object(raw))
    attachments: list[tuple[str, str, bytes]] = []
    for index, item in enumerate(message.attachments):
        try:
            data = base64.b64decode(item.content_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError(
                f"The field 'attachments[{index}].content_base64' is not valid base64.",
                field=f"attachments[{index}].content_base64",
            ) from exc
        attachments.append((item.name, item.media_type or "application/octet-stream", data))
    return Compose(
        to=_addresses(message.to),
        cc=_addresses(message.cc),
        subject=message.subject,
        body=message.body,
        marking=message.marking,
        handling=message.handling,
        read_receipt=message.read_receipt,
        attachments=attachments,
    )


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
_FORM_FIELDS = frozenset(
    {"to", "cc", "subject", "body", "marking", "handling", "read_receipt", "attachment"}
)


async def _compose_from_multipart(request: web.Request) -> Compose:
    reader = await multipart_reader(request)
    fields: dict[str, list[str]] = {}
    attachments: list[tuple[str, str, bytes]] = []
    total = 0
    with multipart_errors():
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                raise MultipartInvalid("Nested or unnamed multipart parts are not accepted.")
            if part.name not in _FORM_FIELDS:
                raise InputError(
                    f"The field {part.name[:40]!r} is not one this request accepts.",
                    field=part.name[:40],
                )
            filename = part_filename(part)
            if filename is not None:
                data = bytearray()
                while chunk := await part.read_chunk(1 << 16):
                    data += chunk
                    total += len(chunk)
                    if total > MAX_TOTAL_ATTACHMENT_BYTES:
                        raise BodyTooLarge("The attachments add up to more than 100 MiB.")
                attachments.append((filename, part_media_type(part), bytes(data)))
            else:
                raw = await part.read()
                try:
                    fields.setdefault(part.name, []).append(bytes(raw).decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise BodyNotUtf8(f"The field {part.name!r} is not valid UTF-8.") from exc

    def one(name: str) -> str | None:
        values = fields.get(name)
        if values and len(values) > 1:
            raise InputError(f"The field {name!r} is given more than once.", field=name)
        return values[0] if values else None

    receipt = (one("read_receipt") or "").strip().lower()
    if receipt not in _TRUE | _FALSE:
        raise InputError("The field 'read_receipt' must be true or false.", field="read_receipt")
    return Compose(
        to=[a for v in fields.get("to", []) for a in _addresses(v)],
        cc=[a for v in fields.get("cc", []) for a in _addresses(v)],
        subject=one("subject") or "",
        body=one("body") or "",
        marking=one("marking"),
        handling=one("handling"),
        read_receipt=receipt in _TRUE,
        attachments=attachments,
    )


async def send_message(request: web.Request) -> web.Response:
    # The token's use is recorded in the message.sent entry, in the same transaction.
    caller = await caller_of(request, record_use=False)
    require_sender(caller, "messages")
    if request.content_type.startswith("multipart/"):
        compose = await _compose_from_multipart(request)
    else:
        compose = await _compose_from_json(request)
    # Stored with whatever else was submitted meanwhile, in one transaction.
    result = await request.app[ACCEPTANCE].submit(caller, compose)
    request.app[WORKER].wake()
    return web.json_response(result, status=202, headers={"Location": result["status_url"]})


async def list_messages(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    limit = _whole_number(request, "limit", 50)
    before = _whole_number(request, "before", None)
    page = await run_sync(
        request.app[MESSAGING].list_box,
        caller,
        request.query.get("box", "inbox"),
        limit,
        before,
    )
    return web.json_response({"messages": page.items, "older": page.older})


def _whole_number(request: web.Request, name: str, default: int | None) -> int | None:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or len(text) > 18:
        raise InputError(f"{name} must be a whole number.")
    return int(text)


async def read_message(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    envelope_id = request.match_info["id"]
    body, receipt_queued = await run_sync(request.app[MESSAGING].read, caller, envelope_id)
    if receipt_queued:
        # The read receipt is already in the outbox, committed with the read.
        request.app[WORKER].wake()
    return web.json_response(body)


async def message_status(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    return web.json_response(
        await run_sync(request.app[MESSAGING].status, caller, request.match_info["id"])
    )


async def download_attachment(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    try:
        index = int(request.match_info["index"])
    except ValueError as exc:
        raise InputError("The attachment index must be a number.") from exc
    name, media_type, data = await run_sync(
        request.app[MESSAGING].attachment, caller, request.match_info["id"], index
    )
    safe = name.replace('"', "")
    return web.Response(
        body=data,
        content_type=media_type if "/" in media_type else "application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )


async def recall_message(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    result = await recall_everywhere(
        request.app[MESSAGING], request.app[PEERS], caller, request.match_info["id"]
    )
    return web.json_response(result)


async def message_evidence(request: web.Request) -> web.Response:
    """The evidence file for a message, for its sender or a person it was addressed to."""
    caller = await caller_of(request)
    envelope_id = request.match_info["id"]
    data = await run_sync(export_for_caller, request.app[MESSAGING], caller, envelope_id)
    # Only reached for an id the gateway holds (32 hex digits), so it is safe in a header.
    return web.Response(
        body=data,
        content_type=EVIDENCE_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="gcx-evidence-{envelope_id}.json"'},
    )


def add_message_routes(
    app: web.Application, messaging: Messaging, worker: ExchangeWorker, peers: PeerClient
) -> None:
    app[MESSAGING] = messaging
    app[ACCEPTANCE] = acceptance = Acceptance(messaging)

    async def stop_acceptance(_app: web.Application) -> None:
        await acceptance.stop()

    app.on_cleanup.append(stop_acceptance)
    app[WORKER] = worker
    app[PEERS] = peers
    app.router.add_post("/api/v1/messages", send_message)
    app.router.add_get("/api/v1/messages", list_messages)
    app.router.add_get("/api/v1/messages/{id}", read_message)
    app.router.add_get("/api/v1/messages/{id}/status", message_status)
    app.router.add_get("/api/v1/messages/{id}/attachments/{index}", download_attachment)
    app.router.add_post("/api/v1/messages/{id}/recall", recall_message)
    app.router.add_get("/api/v1/messages/{id}/evidence", message_evidence)
