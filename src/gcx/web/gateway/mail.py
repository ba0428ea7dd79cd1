"""Pages: secure mail for staff (inbox, sent items, compose, read, download, status, recall).

Every page calls the same :class:`gcx.gateway.messages.messaging.Messaging` use cases as
the local API (``gcx.gateway.messages.api``), with the signed-in person as the
caller, so who may send or read what, the refusals and the audit entries are
the API's own. Recall and read receipts also reuse the API's steps that talk
to peer gateways, so the checks on what a peer answers live in one place.

Addresses are ``person@ORG``, ``mailbox@ORG`` or ``ORG``. The network
directory lists organisations but never people, so the compose page offers
the organisations to choose from and asks for the person or shared mailbox
there in words; the receiving gateway, which alone knows its people, says
in its receipt which addresses it did not know.

Composing and sending is in :mod:`gcx.web.gateway.mail_compose`.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from gcx.errors import (
    GcxError,
    NotFound,
)
from gcx.gateway.messages.api import PEERS, WORKER
from gcx.gateway.messages.recall import recall_everywhere
from gcx.gateway.peer import GATEWAY
from gcx.gateway.tokens import Caller
from gcx.httpapi import attachment_disposition, run_sync
from gcx.protocol.marking import Marking, highest
from gcx.web.gateway import PARTS, mail_compose, parts_of
from gcx.web.gateway.address_book import Recipient, gather, name_of, recipients
from gcx.web.gateway.mail_common import (
    MAIL_ROLES,
    MARKING_HINTS,
    mail_caller,
    organisation_names,
)
from gcx.web.site import (
    FormErrors,
    Site,
    needs,
    redirect,
    render,
)
from gcx.web.words import moment, size_text

LIST_LIMIT = 50
_ENVELOPE_ID = re.compile(r"[0-9a-f]{32}")
# The media type comes from the sender; only a plain type/subtype goes into a header.
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}"
)

DELIVERY_STATES = {
    "queued": ("Waiting to be sent", "govuk-tag--grey"),
    "sending": ("Being sent", "govuk-tag--blue"),
    "retrying": ("Retrying", "govuk-tag--yellow"),
    "delivered": ("Delivered", "govuk-tag--green"),
    "failed": ("Not delivered", "govuk-tag--red"),
    "expired": ("Expired before delivery", "govuk-tag--red"),
    "recalled": ("Recalled", "govuk-tag--purple"),
}


def navigation(site: Site) -> None:
    # Administrators read what is sent to the whole organisation, so they have an Inbox too.
    site.nav(text="Inbox", href="/inbox", roles={"staff", "admin"})
    site.nav(text="Sent", href="/sent", roles={"staff"})
    site.nav(text="New message", href="/compose", roles={"staff"})


def add_routes(app: web.Application) -> None:
    app.on_startup.append(_share_parts)
    mail_compose.add_routes(app)
    app.router.add_get("/messages/{id}", read)
    app.router.add_get("/messages/{id}/status", status_fragment)
    app.router.add_get("/messages/{id}/attachments/{index}", download)
    app.router.add_get("/messages/{id}/recall", recall_confirm)
    app.router.add_post("/messages/{id}/recall", recall)


async def _share_parts(app: web.Application) -> None:
    # The shared steps (recall, waking the delivery worker) find the gateway
    # and the delivery worker under these keys; the application is not frozen
    # until after startup.
    parts = app[PARTS]
    app[GATEWAY] = parts.gateway
    app[WORKER] = parts.exchange
    app[PEERS] = parts.peers


# -- small helpers -------------------------------------------------------------------


def _envelope_id(request: web.Request) -> str:
    envelope_id = request.match_info["id"]
    if not _ENVELOPE_ID.fullmatch(envelope_id):
        raise NotFound("There is no such message.")
    return envelope_id


def _marking_of(markings: list[str]) -> str:
    carried = {m.value for m in Marking}
    known = [Marking(m) for m in markings if m in carried]
    return highest(known).value if known else Marking.OFFICIAL.value


async def _listed_names(request: web.Request) -> dict[str, Recipient]:
    """People and mailboxes by the names their organisations list, as the check page
    names them; anyone unlisted is shown by address with their organisation's name.

    Only listings already cached are read (the address book and compose fetch
    them): asking a peer could hold a message's page for as long as the peer
    takes to fail, and the names are a courtesy, so an organisation whose
    listing is not cached has its people shown by address.
    """
    return recipients(await gather(request, ask_peers=False))


def _named(address: str, names: dict[str, str], listed: dict[str, str] | None = None) -> str:
    """``Claims Processor, Department for Work and Pensions`` for a listed person or
    mailbox; anyone else by address with their organisation's name."""
    org = address.rpartition("@")[2]
    if listed and address in listed:
        return f"{listed[address]}, {names.get(org, org)}"
    return f"{address} ({names[org]})" if org in names else address


def _state(state: str) -> dict[str, str]:
    if state in DELIVERY_STATES:
        text, colour = DELIVERY_STATES[state]
    else:
        # "partly delivered/retrying" when the organisations are on several gateways.
        text, colour = state.capitalize(), "govuk-tag--yellow"
    return {"value": state, "text": text, "classes": colour}


# The inbox and sent lists are gcx.web.gateway.mail_lists.


# -- reading a message ---------------------------------------------------------------


def _status_view(status: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The sender's view of delivery: overall state, each gateway, and every receipt."""
    receipts = []
    for receipt in status["receipts"]:
        org = receipt["organisation"]
        if receipt["kind"] == "read":
            what = "Read"
            detail = f"Read by {receipt.get('reader', 'someone')}@{org}"
        elif receipt["outcome"] == "accepted":
            what = "Delivered"
            unknown = receipt.get("unknown_addresses") or []
            detail = (
                "Not known there, so not delivered to: " + ", ".join(unknown) if unknown else ""
            )
        else:
            what = "Refused"
            refusal = receipt.get("refusal") or {}
            detail = str(refusal.get("message", "")) if isinstance(refusal, dict) else ""
        receipts.append(
            {
                "organisation": f"{names.get(org, org)} ({org})",
                "what": what,
                "detail": detail,
                "when": moment(receipt["received_at"]),
                "late": receipt["late"],
            }
        )
    deliveries = [
        {
            # Named as people know them; the gateway's name is for the IT team.
            "organisations": ", ".join(names.get(o, o) for o in d["organisations"]),
            "gateway": d["gateway"],
            "state": _state(d["state"]),
            "error": (d["last_error"] or {}).get("message", ""),
        }
        for d in status["deliveries"]
    ]
    read = any(r["kind"] == "read" for r in status["receipts"])
    return {
        "state": _state(status["state"]),
        "deliveries": deliveries,
        "receipts": receipts,
        "read": read,
        # A message can be recalled until someone has read it; the receiving
        # gateway has the last word, since a read receipt may still be on its way.
        "recallable": not read and status["state"] not in ("recalled", "failed", "expired"),
    }


async def _message_page(
    request: web.Request,
    caller: Caller,
    envelope_id: str,
    *,
    errors: FormErrors | None = None,
    status: int = 200,
) -> web.Response:
    messaging = parts_of(request).messaging
    message, receipt_queued = await run_sync(messaging.read, caller, envelope_id)
    if receipt_queued:
        # As the API does: the read receipt was written to the outbox with the
        # read, and the delivery worker carries it to the sender's gateway.
        request.app[WORKER].wake()
    names = organisation_names(request)
    delivery = None
    if message["box"] == "sent":
        delivery = _status_view(await run_sync(messaging.status, caller, envelope_id), names)
    attachments = [
        {
            **a,
            "size_text": size_text(a["size"]),
            "href": f"/messages/{envelope_id}/attachments/{a['index']}",
        }
        for a in message["attachments"]
    ]
    known = await _listed_names(request)
    return render(
        request,
        "gateway/mail_message.html",
        status=status,
        errors=errors,
        marking=message["marking"],
        title=message["subject"],
        message=message,
        sender=name_of(message["from"], known, names),
        to=[name_of(a, known, names) for a in message["to"]],
        cc=[name_of(a, known, names) for a in message["cc"]],
        when=moment(message["created_at"]),
        attachments=attachments,
        delivery=delivery,
        marking_hint=MARKING_HINTS.get(message["marking"], ""),
    )


@needs(*MAIL_ROLES)
async def read(request: web.Request) -> web.StreamResponse:
    return await _message_page(request, mail_caller(request), _envelope_id(request))


@needs(*MAIL_ROLES)
async def status_fragment(request: web.Request) -> web.StreamResponse:
    """The delivery status alone, which the message page's script fetches every few seconds."""
    caller = mail_caller(request)
    envelope_id = _envelope_id(request)
    status = await run_sync(parts_of(request).messaging.status, caller, envelope_id)
    return render(
        request,
        "gateway/mail_status.html",
        delivery=_status_view(status, organisation_names(request)),
    )


@needs(*MAIL_ROLES)
async def download(request: web.Request) -> web.StreamResponse:
    caller = mail_caller(request)
    envelope_id = _envelope_id(request)
    try:
        index = int(request.match_info["index"])
    except ValueError as exc:
        raise NotFound("There is no such attachment.") from exc
    name, media_type, data = await run_sync(
        parts_of(request).messaging.attachment, caller, envelope_id, index
    )
    # The use case has the attachment in memory already (at most 25 MiB), so it is
    # sent as one response, which also keeps the frame's no-store and nosniff headers.
    return web.Response(
        body=data,
        content_type=media_type
        if _MEDIA_TYPE.fullmatch(media_type)
        else "application/octet-stream",
        headers={"Content-Disposition": attachment_disposition(name)},
    )


# -- recall ----------------------------------------------------------------------------


async def _recall(request: web.Request, caller: Caller, envelope_id: str) -> dict[str, Any]:
    """Recall as the API does: withdraw what has not left, then ask each gateway holding it."""
    parts = parts_of(request)
    return await recall_everywhere(parts.messaging, parts.peers, caller, envelope_id)


@needs(*MAIL_ROLES)
async def recall_confirm(request: web.Request) -> web.StreamResponse:
    """The page that asks before a recall: a recall cannot be undone, so never one click."""
    caller = mail_caller(request)
    envelope_id = _envelope_id(request)
    messaging = parts_of(request).messaging
    # Status is the sender's view only, so nobody else reaches this page.
    status = await run_sync(messaging.status, caller, envelope_id)
    message, _ = await run_sync(messaging.read, caller, envelope_id)
    view = _status_view(status, organisation_names(request))
    if not view["recallable"]:
        raise redirect(request, f"/messages/{envelope_id}")
    return render(
        request,
        "gateway/mail_recall_confirm.html",
        title="Are you sure you want to recall this message?",
        marking=message["marking"],
        message=message,
        to=[_named(a, organisation_names(request)) for a in message["to"] + message["cc"]],
    )


@needs(*MAIL_ROLES)
async def recall(request: web.Request) -> web.StreamResponse:
    caller = mail_caller(request)
    envelope_id = _envelope_id(request)
    try:
        await _recall(request, caller, envelope_id)
    except GcxError as error:
        return await _message_page(
            request,
            caller,
            envelope_id,
            errors=FormErrors.of(error, "recall"),
            status=error.status,
        )
    raise redirect(
        request,
        f"/messages/{envelope_id}",
        flash="The message was recalled: nobody it was sent to can open it now.",
    )
