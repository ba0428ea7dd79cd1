"""Pages: a person's drafts, reopened, or deleted after asking.

Drafts are saved by the compose page (:mod:`gcx.web.gateway.mail_compose`)
and sealed at rest (:mod:`gcx.gateway.messages.drafts`). A draft keeps its
attachments, so reopening it shows them as attached already.
"""

from __future__ import annotations

import re

from aiohttp import web

from gcx.errors import NotFound
from gcx.httpapi import run_sync
from gcx.protocol.marking import Marking
from gcx.web.gateway.mail_common import MAIL_ROLES, mail_caller
from gcx.web.gateway.mail_compose import (
    carried_marking,
    compose_page,
    drafts_of,
    source_message,
)
from gcx.web.gateway.mail_form import ComposeForm
from gcx.web.site import Site, needs, redirect, render
from gcx.web.words import moment, size_text

_ID = re.compile(r"[0-9a-f]{32}")


def navigation(site: Site) -> None:
    site.nav(text="Drafts", href="/drafts", roles={"staff"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/drafts", drafts)
    app.router.add_get("/drafts/{id}", reopen)
    app.router.add_get("/drafts/{id}/delete", delete_confirm)
    app.router.add_post("/drafts/{id}/delete", delete)


def draft_id_of(request: web.Request) -> str:
    draft_id = request.match_info["id"]
    if not _ID.fullmatch(draft_id):
        raise NotFound("There is no such draft; it may have been sent or deleted.")
    return draft_id


@needs(*MAIL_ROLES)
async def drafts(request: web.Request) -> web.StreamResponse:
    caller = mail_caller(request)
    listed = await run_sync(drafts_of(request).list, caller.organisation, caller.account)
    rows = []
    for d in listed:
        form = ComposeForm.from_fields(d.fields)
        to = form.to_address() + form.cc_addresses()
        rows.append(
            {
                "id": d.id,
                "subject": form.subject or "(no subject yet)",
                "to": ", ".join(to) or "(nobody yet)",
                "marking": form.marking,
                "attachments": f"{len(d.attachment_sizes)} "
                f"{'file' if len(d.attachment_sizes) == 1 else 'files'}, "
                f"{size_text(sum(d.attachment_sizes))}"
                if d.attachment_sizes
                else "None",
                "when": moment(d.updated_at),
            }
        )
    marked = {r["marking"] for r in rows}
    return render(
        request,
        "gateway/mail_drafts.html",
        title="Drafts",
        marking=Marking.OFFICIAL_SENSITIVE.value
        if Marking.OFFICIAL_SENSITIVE.value in marked
        else Marking.OFFICIAL.value,
        drafts=rows,
    )


@needs(*MAIL_ROLES)
async def reopen(request: web.Request) -> web.StreamResponse:
    caller = mail_caller(request)
    draft_id = draft_id_of(request)
    draft = await run_sync(drafts_of(request).open, caller.organisation, caller.account, draft_id)
    form = ComposeForm.from_fields(draft.fields)
    form.attachments = draft.attachments
    source = await run_sync(source_message, request, caller, form)
    return await compose_page(
        request, form, draft_id=draft_id, floor=carried_marking(source), title="Your draft"
    )


@needs(*MAIL_ROLES)
async def delete_confirm(request: web.Request) -> web.StreamResponse:
    """Ask first: a deleted draft, and its attachments, cannot be brought back."""
    caller = mail_caller(request)
    draft_id = draft_id_of(request)
    draft = await run_sync(drafts_of(request).open, caller.organisation, caller.account, draft_id)
    form = ComposeForm.from_fields(draft.fields)
    return render(
        request,
        "gateway/mail_draft_delete.html",
        title="Are you sure you want to delete this draft?",
        marking=form.marking if form.marking in {m.value for m in Marking} else "OFFICIAL",
        draft_id=draft_id,
        subject=form.subject or "(no subject yet)",
    )


@needs(*MAIL_ROLES)
async def delete(request: web.Request) -> web.StreamResponse:
    caller = mail_caller(request)
    draft_id = draft_id_of(request)
    await run_sync(drafts_of(request).delete, caller.organisation, caller.account, draft_id)
    raise redirect(request, "/drafts", flash="The draft and its attachments were deleted.")
