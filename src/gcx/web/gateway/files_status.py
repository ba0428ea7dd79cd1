"""Pages: one transfer's status (sent or received), and downloading one of its files.

The status page names every recipient organisation with its delivery in
words and its signed receipt; for a received batch it adds the sender, the
covering note, "download all" and who in the organisation has downloaded
it (:mod:`gcx.web.gateway.files_seen`). Downloads decrypt segment by segment
as the download API does, and record the download in the audit log before
the first byte is sent.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gcx.errors import InputError
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.gateway.transfers import reading as transfer_reading
from gcx.gateway.transfers.api import stream_incoming_file
from gcx.httpapi import run_sync
from gcx.web.gateway import caller_of, parts_of
from gcx.web.gateway.evidence_pages import TRANSFER_RECEIPT_WORDS
from gcx.web.gateway.files_received import organisation_names, received_details
from gcx.web.site import Site, needs, render
from gcx.web.words import moment, size_text

DELIVERY_WORDS = {
    "queued": "Waiting to send",
    "sending": "Sending",
    "retrying": "Trying again",
    "delivered": "Delivered",
    "failed": "Failed",
    "expired": "Expired",
}
TRANSFER_WORDS = {
    "sending": "Sending",
    "receiving": "Arriving",
    "complete": "Complete",
    "failed": "Failed",
}


def navigation(site: Site) -> None:
    """None of its own: transfers are reached from "Files" and the inbox."""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/files/{id:[0-9a-f]{32}}", status_page)
    app.router.add_get("/files/{id:[0-9a-f]{32}}/live", status_fragment)
    app.router.add_get("/files/{id:[0-9a-f]{32}}/files/{n:[0-9]{1,6}}", download)


def _status(gateway: Gateway, caller: Caller, transfer_id: str) -> dict[str, Any]:
    """The API's status of a transfer, with what the page shows worked out."""
    status = transfer_reading.transfer_status(gateway, caller, transfer_id)
    names = organisation_names(gateway)
    receipts = {r["organisation"]: r for r in status["receipts"]}
    recipients = []
    for org in status["recipients"]:
        delivery = next(
            (d for d in status.get("deliveries", []) if org in d["organisations"]), None
        )
        receipt = receipts.get(org)
        recipients.append(
            {
                "code": org,
                "name": names.get(org, org),
                "state": delivery["state"] if delivery else "",
                "state_words": DELIVERY_WORDS.get(delivery["state"], delivery["state"])
                if delivery
                else "",
                "attempts": delivery["attempts"] if delivery else 0,
                "last_error": (delivery["last_error"] or {}).get("message") if delivery else None,
                "receipt_at": moment(receipt["received_at"]) if receipt else "",
            }
        )
    status["recipient_rows"] = recipients
    for receipt in status.get("receipts") or []:
        receipt["organisation_name"] = names.get(receipt["organisation"], receipt["organisation"])
    # Nothing changes once a transfer is complete or failed, so the page stops asking.
    status["final"] = status["state"] in ("complete", "failed")
    status["state_words"] = TRANSFER_WORDS.get(status["state"], status["state"])
    status["when"] = moment(status["created_at"])
    status["completed"] = moment(status.get("completed_at"))
    status["kept_until"] = moment(status.get("retain_until"))
    status["size"] = size_text(status["bytes"])
    status.update(received_details(gateway, caller, status))
    for described in status.get("files") or []:
        described["size_text"] = size_text(described["size"])
    return status


def _transfer_id(request: web.Request) -> str:
    return request.match_info["id"]


@needs("staff")
async def status_page(request: web.Request) -> web.StreamResponse:
    status = await run_sync(
        _status, parts_of(request).gateway, caller_of(request), _transfer_id(request)
    )
    return render(
        request,
        "gateway/files_status.html",
        title="Files sent" if status["direction"] == "out" else "Files received",
        transfer=status,
        marking=status["marking"],
        receipt_words=TRANSFER_RECEIPT_WORDS,
    )


@needs("staff")
async def status_fragment(request: web.Request) -> web.StreamResponse:
    """The changing part of the status page, for gcx.js to refresh in place."""
    status = await run_sync(
        _status, parts_of(request).gateway, caller_of(request), _transfer_id(request)
    )
    return render(request, "gateway/files_status_live.html", transfer=status, marking=None)


@needs("staff")
async def download(request: web.Request) -> web.StreamResponse:
    gateway = parts_of(request).gateway
    caller = caller_of(request)
    transfer_id = _transfer_id(request)
    text = request.match_info["n"]
    if not text.isdigit():
        raise InputError("The file number must be a whole number.")
    index = int(text)
    # It notes the person's download once the file was sent whole.
    return await stream_incoming_file(request, gateway, caller, transfer_id, index)
