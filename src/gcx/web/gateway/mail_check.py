"""Pages: "Check your message" before it is sent, and the confirmation after.

The Design System's check answers pattern: every part of the message in a
summary list (recipients by name and organisation, the marking and what it
means, handling instructions, attachments), each with a Change link back to
the draft, then one button that sends. A draft is checked again on sending,
with the same rules, since it could have been changed in another window.
The confirmation page follows the confirmation pattern: a panel saying it
was sent, and what happens next.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from gcx.errors import GcxError, NotFound
from gcx.gateway.messages.api import WORKER
from gcx.httpapi import run_sync
from gcx.protocol.forwarding import onward_restriction
from gcx.web.gateway import parts_of
from gcx.web.gateway.address_book import gather, name_of, recipients
from gcx.web.gateway.mail_common import MAIL_ROLES, MARKING_HINTS, mail_caller, organisation_names
from gcx.web.gateway.mail_compose import (
    all_problems,
    carried_marking,
    compose_page,
    drafts_of,
    page_marking,
    source_message,
)
from gcx.web.gateway.mail_drafts import draft_id_of
from gcx.web.gateway.mail_form import ComposeForm, field_for, form_errors
from gcx.web.site import Site, needs, redirect, render
from gcx.web.words import moment, size_text

_ENVELOPE_ID = re.compile(r"[0-9a-f]{32}")
BODY_PREVIEW_CHARS = 600


def navigation(site: Site) -> None:
    """No entry: these pages are steps of writing a message."""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/drafts/{id}/check", check)
    app.router.add_post("/drafts/{id}/send", send)
    app.router.add_get("/messages/{id}/sent", confirmation)


async def _load(request: web.Request, draft_id: str) -> tuple[ComposeForm, dict[str, Any] | None]:
    caller = mail_caller(request)
    draft = await run_sync(drafts_of(request).open, caller.organisation, caller.account, draft_id)
    form = ComposeForm.from_fields(draft.fields)
    form.attachments = draft.attachments
    return form, await run_sync(source_message, request, caller, form)


async def _refused(
    request: web.Request,
    form: ComposeForm,
    draft_id: str,
    source: dict[str, Any] | None,
    found: list[tuple[str, GcxError]],
) -> web.Response:
    """Back to the draft, with every problem listed, as the compose page shows them."""
    return await compose_page(
        request,
        form,
        draft_id=draft_id,
        floor=carried_marking(source),
        errors=form_errors(found),
        status=found[0][1].status,
        title="Your draft",
    )


@needs(*MAIL_ROLES)
async def check(request: web.Request) -> web.StreamResponse:
    draft_id = draft_id_of(request)
    form, source = await _load(request, draft_id)
    found = await all_problems(request, form, source)
    if found:
        return await _refused(request, form, draft_id, source, found)
    names = organisation_names(request)
    known = recipients(await gather(request))
    change = f"/drafts/{draft_id}"
    body = form.body if len(form.body) <= BODY_PREVIEW_CHARS else form.body[:BODY_PREVIEW_CHARS]
    return render(
        request,
        "gateway/mail_check.html",
        title="Check your message",
        marking=page_marking(form, carried_marking(source)),
        form=form,
        draft_id=draft_id,
        change=change,
        to=[name_of(a, known, names) for a in form.to_address()],
        cc=[name_of(a, known, names) for a in form.cc_addresses()],
        marking_hint=MARKING_HINTS.get(form.marking, ""),
        body=body,
        body_cut=len(form.body) > BODY_PREVIEW_CHARS,
        attachments=[
            {"name": name, "size_text": size_text(len(data))} for name, _, data in form.attachments
        ],
        forward_note=form.source_kind == "forward",
        onward=onward_restriction(form.handling),
    )


@needs(*MAIL_ROLES)
async def send(request: web.Request) -> web.StreamResponse:
    caller = mail_caller(request)
    draft_id = draft_id_of(request)
    form, source = await _load(request, draft_id)
    found = await all_problems(request, form, source)
    if not found:
        try:
            result = await run_sync(parts_of(request).messaging.send, caller, form.compose())
        except GcxError as error:
            found = [(field_for(error, form), error)]
        else:
            # Sent: the draft has done its work. If this step failed the draft
            # would remain, which is safe (sending it again is a new message,
            # and the person sees it in Sent).
            await run_sync(drafts_of(request).delete, caller.organisation, caller.account, draft_id)
            request.app[WORKER].wake()
            raise redirect(request, f"/messages/{result['id']}/sent")
    return await _refused(request, form, draft_id, source, found)


@needs(*MAIL_ROLES)
async def confirmation(request: web.Request) -> web.StreamResponse:
    caller = mail_caller(request)
    envelope_id = request.match_info["id"]
    if not _ENVELOPE_ID.fullmatch(envelope_id):
        raise NotFound("There is no such message.")
    messaging = parts_of(request).messaging
    status = await run_sync(messaging.status, caller, envelope_id)
    message, _ = await run_sync(messaging.read, caller, envelope_id)
    names = organisation_names(request)
    known = recipients(await gather(request))
    return render(
        request,
        "gateway/mail_sent_confirmation.html",
        title="Message sent",
        marking=message["marking"],
        message=message,
        when=moment(message["created_at"]),
        to=[name_of(a, known, names) for a in message["to"] + message["cc"]],
        state=status["state"],
    )
