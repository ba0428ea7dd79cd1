"""Local REST API for bulk file transfer: tus 1.0 uploads and transfers (OpenAPI below).

Uploads follow tus 1.0.0 core with the creation and termination extensions
(https://tus.io/protocols/resumable-upload): ``POST /api/v1/uploads`` with
``Upload-Length`` and ``Upload-Metadata`` creates one, ``HEAD`` gives its
offset, ``PATCH`` with ``Upload-Offset`` and ``application/offset+octet-stream``
appends (answered 204 with the new offset), ``DELETE`` ends it. Each PATCH is
fsynced and its offset recorded before it is answered, a long one also every 64 MiB
(:mod:`.upload_checkpoints`); a client resumes from the offset HEAD reports: every
byte received after a dropped connection, the last checkpoint after a restart.

This module is over 400 lines because it holds the whole tus protocol surface
(creation, offsets, termination, its headers and refusals) beside the transfer
routes that consume uploads; the tus header rules are kept in one place.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from aiohttp import web
from pydantic import Field

from gcx.errors import BodyTooLarge, InputError, TusVersionUnsupported, UploadMediaTypeRefused
from gcx.gateway.app import OPENAPI, caller_of
from gcx.gateway.exchange import outbox
from gcx.gateway.exchange.worker import ExchangeWorker
from gcx.gateway.peer import GATEWAY
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller, require_sender
from gcx.gateway.transfers import policy as transfer_policy
from gcx.gateway.transfers import reading as transfer_reading
from gcx.gateway.transfers import sending as transfers
from gcx.gateway.transfers import uploads as transfer_uploads
from gcx.gateway.transfers.carrier import TransferCarrier
from gcx.gateway.transfers.downloads import mark_person_download
from gcx.gateway.transfers.early_push import EarlyPush
from gcx.gateway.transfers.listing import list_transfers as list_visible
from gcx.gateway.transfers.sealing_ahead import Feeding, SealingAhead
from gcx.gateway.transfers.upload_checkpoints import UploadCheckpoints
from gcx.httpapi import attachment_disposition, json_body, run_sync
from gcx.openapi import OBJECT, REFUSALS, json_ok
from gcx.protocol.transfer import MAX_NOTE_CHARS, transfer_format
from gcx.protocol.validation import StrictModel, validated

TUS_VERSION = "1.0.0"
# Bytes of a PATCH body gathered before they are handed to the disk thread.
APPEND_BYTES = 4 * 1024 * 1024
TRANSFER_WORKER = web.AppKey("transfer_worker", ExchangeWorker)
SEALING_AHEAD = web.AppKey("transfer_sealing_ahead", SealingAhead)
EARLY_PUSH = web.AppKey[EarlyPush | None]("transfer_early_push")
_TUS_HEADERS = {"Tus-Resumable": TUS_VERSION}


def _require_tus(request: web.Request) -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise TusVersionUnsupported()


def _int_header(request: web.Request, name: str) -> int:
    # tus offsets and lengths are ASCII digits only: int() would also take
    # "1_0", " 10 ", "+10" and other scripts' digits, which no client sends.
    text = request.headers.get(name, "")
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InputError(f"The {name} header is required and must be a whole number.")
    return int(text)


def parse_metadata(header: str) -> dict[str, str]:
    """tus ``Upload-Metadata``: comma-separated ``key base64value`` pairs."""
    result: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = item.partition(" ")
        try:
            result[key] = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except ValueError as exc:
            # binascii.Error and UnicodeDecodeError are ValueErrors, and so is
            # what b64decode raises for a value that is not ASCII at all.
            raise InputError(
                f"Upload-Metadata value for {key[:40]!r} is not base64 UTF-8."
            ) from exc
    return result


async def tus_options(_: web.Request) -> web.Response:
    return web.Response(
        status=204,
        headers={
            **_TUS_HEADERS,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": "creation,termination",
        },
    )


async def create_upload(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    _require_tus(request)
    length = _int_header(request, "Upload-Length")
    metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
    upload_id = await run_sync(
        transfer_uploads.create_upload, request.app[GATEWAY], caller, length, metadata
    )
    return web.Response(
        status=201, headers={**_TUS_HEADERS, "Location": f"/api/v1/uploads/{upload_id}"}
    )


async def upload_offset(request: web.Request) -> web.Response:
    caller = await caller_of(request, record_use=False)
    state = await run_sync(
        transfer_uploads.upload_state, request.app[GATEWAY], caller, request.match_info["id"]
    )
    return web.Response(
        status=200,
        headers={
            **_TUS_HEADERS,
            "Upload-Offset": str(state.offset),
            "Upload-Length": str(state.length),
            "Cache-Control": "no-store",
        },
    )


async def append_upload(request: web.Request) -> web.Response:
    caller = await caller_of(request, record_use=False)
    _require_tus(request)
    if request.content_type != "application/offset+octet-stream":
        raise UploadMediaTypeRefused()
    gateway = request.app[GATEWAY]
    upload_id = request.match_info["id"]
    offset = _int_header(request, "Upload-Offset")
    state = await run_sync(transfer_uploads.begin_append, gateway, caller, upload_id, offset)
    files = transfer_policy.transfer_files(gateway)
    ahead = request.app[SEALING_AHEAD]
    segment = gateway.config.transfer_segment_bytes
    # A lone upload is sealed as it arrives, and so are the files of a batch that says
    # which batch they belong to (gcx-batch), one after another by one sealer; a file of
    # a batch that does not is sealed with the others when the transfer is made.
    place = transfer_uploads.batch_place(caller.account, upload_id, state.metadata)
    if offset == 0 and place is not None:
        batch, index, count = place
        early = request.app[EARLY_PUSH]
        push = None
        if early is not None and index == 0:  # asked once per batch, by its first file
            push = early.starter(
                await run_sync(early.targets, caller, state.metadata, state.length)
            )
        await run_sync(
            ahead.start,
            upload_id,
            state.length,
            segment,
            push,
            transfer_format(gateway.config.transfer_format),
            batch=batch,
            index=index,
            files=count,
        )
    elif not ahead.covers(upload_id, offset):
        ahead.drop(upload_id)
    sealing = Feeding(ahead, upload_id, segment, active=ahead.covers(upload_id, offset))
    received = offset
    appender = await run_sync(files.append_upload, upload_id, offset)
    checkpoints = UploadCheckpoints(gateway, upload_id, appender)
    # The body's pieces go to the disk on a thread a few MiB at a time, one batch
    # written while the next arrives (aligned writes around the page cache, see
    # gcx.store.direct_io), so the event loop never waits on the disk.
    pieces: list[bytes] = []
    held = 0
    writing: asyncio.Future[None] | None = None
    try:
        async for data in request.content.iter_chunked(1 << 20):
            if received + len(data) > state.length:
                ahead.drop(upload_id)
                raise BodyTooLarge(f"The upload is declared as {state.length} bytes; this is more.")
            pieces.append(data)
            held += len(data)
            received += len(data)
            await sealing.add(data)
            if held >= APPEND_BYTES:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(run_sync(appender.write, pieces))
                writing.add_done_callback(checkpoints.written)
                pieces, held = [], 0
    finally:
        # Whatever arrived is kept, even if the connection dropped, so the
        # client resumes from here rather than from the start of this PATCH.
        if writing is not None:  # never left running while the file is finished
            await asyncio.wait([writing])
        await checkpoints.settle()
        try:
            if writing is not None:
                writing.result()  # its failure, if it failed
            await run_sync(appender.finish, pieces)
        finally:
            if not appender.closed:  # a write failed: cut the file where the bytes end
                await run_sync(appender.finish, [])
            await sealing.finish()
            if checkpoints.failed is None:  # else the last checkpoint stands
                await run_sync(transfer_uploads.record_offset, gateway, upload_id, appender.end)
    if checkpoints.failed is not None:
        raise checkpoints.failed
    return web.Response(status=204, headers={**_TUS_HEADERS, "Upload-Offset": str(appender.end)})


async def delete_upload(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    _require_tus(request)
    await run_sync(
        transfer_uploads.delete_upload, request.app[GATEWAY], caller, request.match_info["id"]
    )
    request.app[SEALING_AHEAD].drop(request.match_info["id"])
    return web.Response(status=204, headers=_TUS_HEADERS)


def _strings(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [v.strip() for v in items if v.strip()]


class FileRequest(StrictModel):
    name: str
    size: int = Field(ge=0)


class PreflightRequest(StrictModel):
    """``POST /api/v1/transfers/preflight``: the checks a transfer will meet, before uploading."""

    to: list[str] | str
    marking: str | None = None
    files: list[FileRequest]


class TransferRequest(StrictModel):
    """``POST /api/v1/transfers``: completed uploads to send as one transfer."""

    to: list[str] | str
    marking: str | None = None
    uploads: list[str]
    names: list[str] | None = None
    # The covering note, encrypted with the files in the transfer's metadata.
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS)


class PolicyRequest(StrictModel):
    """``PUT /api/v1/transfers/policy``: null restores a setting's default."""

    max_file_bytes: int | None = Field(default=None, ge=0)
    max_batch_bytes: int | None = Field(default=None, ge=0)
    storage_bytes: int | None = Field(default=None, ge=0)
    retention_days: int | None = Field(default=None, ge=0)


async def preflight(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    require_sender(caller, "files")
    asked = validated(PreflightRequest, await json_body(request))
    result = await run_sync(
        transfers.preflight,
        request.app[GATEWAY],
        caller,
        _strings(asked.to),
        asked.marking or "",
        [(f.name, f.size) for f in asked.files],
    )
    return web.json_response(result)


async def create_transfer(request: web.Request) -> web.Response:
    caller = await caller_of(request, record_use=False)
    require_sender(caller, "files")
    asked = validated(TransferRequest, await json_body(request))
    result = await run_sync(
        lambda: transfers.create_transfer(
            request.app[GATEWAY],
            caller,
            to=_strings(asked.to),
            marking=asked.marking or "",
            upload_ids=_strings(asked.uploads),
            names=asked.names,
            note=asked.note,
            ahead=request.app[SEALING_AHEAD],
        )
    )
    request.app[TRANSFER_WORKER].wake()
    return web.json_response(result, status=201, headers={"Location": result["status_url"]})


async def list_transfers(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    limit_text = request.query.get("limit", "100")
    if not limit_text.isdigit() or len(limit_text) > 9:
        raise InputError("limit must be a whole number.")
    page = await run_sync(
        list_visible,
        request.app[GATEWAY],
        caller,
        int(limit_text),
        request.query.get("before"),
    )
    return web.json_response({"transfers": page.items, "older": page.older})


async def transfer_status(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    body = await run_sync(
        transfer_reading.transfer_status, request.app[GATEWAY], caller, request.match_info["id"]
    )
    return web.json_response(body)


async def download_file(request: web.Request) -> web.StreamResponse:
    caller = await caller_of(request)
    gateway = request.app[GATEWAY]
    transfer_id = request.match_info["id"]
    try:
        index = int(request.match_info["n"])
    except ValueError as exc:
        raise InputError("The file number must be a number.") from exc
    return await stream_incoming_file(request, gateway, caller, transfer_id, index)


async def stream_incoming_file(
    request: web.Request, gateway: Gateway, caller: Caller, transfer_id: str, index: int
) -> web.StreamResponse:
    """Decrypt one received file as it is sent; the API and the web page both use this."""
    manifest, metadata, key = await run_sync(
        transfer_reading.open_incoming, gateway, caller, transfer_id
    )
    if not 0 <= index < len(metadata.files):
        raise InputError(f"The transfer has files 0 to {len(metadata.files) - 1}.")
    described = metadata.files[index]
    segments = transfer_reading.decrypted_segments(gateway, manifest, metadata, key, index)
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Length": str(described.size),
            "Content-Disposition": attachment_disposition(described.name),
            "X-Gcx-Sha256": described.sha256,
        }
    )
    await run_sync(transfer_reading.record_download, gateway, caller, transfer_id, index)
    await response.prepare(request)
    end = object()
    held = b""
    # A segment that fails its check raises here, after the headers went: the
    # connection is dropped, so the client sees a failed download, never a short file.
    while (plain := await run_sync(next, segments, end)) is not end:
        assert isinstance(plain, bytes)
        await response.write(held)
        held = plain
    # Every segment has passed its check: the person has downloaded the file, noted
    # before its last bytes go, so nobody holds the whole file before it counts.
    await run_sync(mark_person_download, gateway, caller, transfer_id)
    await response.write(held)
    await response.write_eof()
    return response


async def set_policy(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    body = await json_body(request)
    validated(PolicyRequest, body)  # exact types; only the settings given are changed
    result = await run_sync(transfer_policy.set_policy, request.app[GATEWAY], caller, body)
    return web.json_response(result)


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_JSON_BODY = {"content": {"application/json": {"schema": OBJECT}}}
_TRANSFERS_PAGE = {
    "type": "object",
    "required": ["transfers", "older"],
    "properties": {"transfers": {"type": "array", "items": OBJECT}, "older": {}},
}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/uploads": {
        "options": {
            "summary": "tus capabilities",
            "security": [],
            "responses": {"204": {"description": "ok"}, **REFUSALS},
        },
        "post": {
            "summary": (
                "Create a tus upload (Upload-Length, Upload-Metadata: filename, filetype; "
                "gcx-to and gcx-marking to send its chunks ahead; gcx-files, gcx-batch and "
                "gcx-index for a file of a batch sealed as it arrives)"
            ),
            "security": [{"token": []}],
            "responses": {"201": {"description": "created; Location names it"}, **REFUSALS},
        },
    },
    "/api/v1/uploads/{id}": {
        "parameters": [_ID],
        "head": {
            "summary": "The upload's offset",
            "responses": {"200": {"description": "ok"}, **REFUSALS},
        },
        "patch": {
            "summary": "Append at Upload-Offset (application/offset+octet-stream)",
            "requestBody": {
                "content": {
                    "application/offset+octet-stream": {
                        "schema": {"type": "string", "format": "binary"}
                    }
                }
            },
            "responses": {"204": {"description": "appended"}, **REFUSALS},
        },
        "delete": {
            "summary": "End the upload",
            "responses": {"204": {"description": "ok"}, **REFUSALS},
        },
    },
    "/api/v1/transfers/preflight": {
        "post": {
            "summary": "Check recipients, marking, names, quotas and space before uploading",
            "requestBody": _JSON_BODY,
            "responses": json_ok("would be accepted"),
        }
    },
    "/api/v1/transfers": {
        "get": {
            "summary": "Transfers sent by or to you, newest first",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
                {
                    "name": "before",
                    "in": "query",
                    "description": "the 'older' value of the previous page",
                    "schema": {"type": "string"},
                },
            ],
            "responses": json_ok("transfers, and 'older' for the next page", _TRANSFERS_PAGE),
        },
        "post": {
            "summary": "Make a transfer of completed uploads: {to, marking, uploads, names?}",
            "requestBody": _JSON_BODY,
            "responses": json_ok("encrypted and queued", status="201"),
        },
    },
    "/api/v1/transfers/policy": {
        "put": {
            "summary": "Set your organisation's quotas and retention (admin)",
            "requestBody": _JSON_BODY,
            "responses": json_ok("the policy in force"),
        }
    },
    "/api/v1/transfers/{id}": {
        "parameters": [_ID],
        "get": {"summary": "Status, files and receipts", "responses": json_ok("ok")},
    },
    "/api/v1/transfers/{id}/files/{n}": {
        "parameters": [
            _ID,
            {"name": "n", "in": "path", "required": True, "schema": {"type": "integer"}},
        ],
        "get": {
            "summary": "Download file n decrypted (recipient staff or system accounts)",
            "responses": {
                "200": {
                    "description": "the file; X-Gcx-Sha256 gives its digest",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                **REFUSALS,
            },
        },
    },
}
# Merged when this module is imported (the gateway's server always imports it), so
# the served document describes these routes whatever builds the app.
OPENAPI["paths"].update(OPENAPI_PATHS)


def add_transfer_routes(app: web.Application, worker: ExchangeWorker) -> None:
    app[TRANSFER_WORKER] = worker
    app[SEALING_AHEAD] = SealingAhead()
    carrier = worker.carriers.get(outbox.TRANSFER)
    app[EARLY_PUSH] = carrier.early_push() if isinstance(carrier, TransferCarrier) else None
    app.router.add_route("OPTIONS", "/api/v1/uploads", tus_options)
    app.router.add_post("/api/v1/uploads", create_upload)
    app.router.add_route("HEAD", "/api/v1/uploads/{id}", upload_offset)
    app.router.add_patch("/api/v1/uploads/{id}", append_upload)
    app.router.add_delete("/api/v1/uploads/{id}", delete_upload)
    app.router.add_post("/api/v1/transfers/preflight", preflight)
    app.router.add_put("/api/v1/transfers/policy", set_policy)
    app.router.add_post("/api/v1/transfers", create_transfer)
    app.router.add_get("/api/v1/transfers", list_transfers)
    app.router.add_get("/api/v1/transfers/{id}", transfer_status)
    app.router.add_get("/api/v1/transfers/{id}/files/{n}", download_file)
