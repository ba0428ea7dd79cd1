"""Downloads of proof: a message's evidence file and a batch of files' signed receipts.

The evidence file is the very one ``gcx evidence export`` writes and the
local API serves (:func:`gcx.gateway.messages.evidence_export.export_for_caller`,
with the same rule of who may have it and the same audit entry), so a
person can hand it to anyone, who checks it offline with ``gcx evidence
verify``. A batch of files' receipt is the signed document the receiving
gateway returned (``gcx.transfer-receipt/1``), served byte for byte as it was
stored when it was verified.
"""

from __future__ import annotations

import re

from aiohttp import web

from gcx.errors import NotFound
from gcx.evidence import MEDIA_TYPE as EVIDENCE_MEDIA_TYPE
from gcx.gateway.messages.evidence_export import export_for_caller
from gcx.gateway.transfers import reading as transfer_reading
from gcx.httpapi import run_sync
from gcx.web.gateway import caller_of, parts_of
from gcx.web.gateway.mail_common import MAIL_ROLES, mail_caller
from gcx.web.site import Site, needs

_ENVELOPE_ID = re.compile(r"[0-9a-f]{32}")

# What the file page says a receipt proves (the message page's words are in
# gateway/_evidence.html, beside the link).
TRANSFER_RECEIPT_WORDS = (
    "A signed receipt is the receiving organisation's gateway's signed statement that "
    "it received every one of these files, naming each file, its size and a "
    "fingerprint of its contents, and when. Keep it as proof of delivery."
)


def navigation(site: Site) -> None:
    """No entry: the downloads are linked from the message and file pages."""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/messages/{id}/evidence", message_evidence)
    app.router.add_get(
        "/files/{id:[0-9a-f]{32}}/receipts/{organisation:[A-Za-z0-9-]{1,16}}", transfer_receipt
    )


@needs(*MAIL_ROLES)
async def message_evidence(request: web.Request) -> web.StreamResponse:
    caller = mail_caller(request)
    envelope_id = request.match_info["id"]
    if not _ENVELOPE_ID.fullmatch(envelope_id):
        raise NotFound("There is no such message.")
    data = await run_sync(export_for_caller, parts_of(request).messaging, caller, envelope_id)
    return web.Response(
        body=data,
        content_type=EVIDENCE_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="gcx-evidence-{envelope_id}.json"'},
    )


@needs("staff")
async def transfer_receipt(request: web.Request) -> web.StreamResponse:
    transfer_id = request.match_info["id"]
    organisation = request.match_info["organisation"]
    status = await run_sync(
        transfer_reading.transfer_status, parts_of(request).gateway, caller_of(request), transfer_id
    )
    for receipt in status.get("receipts", []):
        if receipt["organisation"] == organisation:
            return web.Response(
                body=str(receipt["document"]).encode(),
                content_type="application/json",
                headers={
                    "Content-Disposition": (
                        f'attachment; filename="gcx-receipt-{transfer_id}-{organisation}.json"'
                    )
                },
            )
    raise NotFound("There is no signed receipt from that organisation for these files yet.")
