"""Pages: writing a secure message, which is kept as a draft until it is checked and sent.

The journey follows the Design System's "check answers" pattern::

    /compose (or /drafts/ID, or reply/forward) --Continue--> /drafts/ID/check
        --Send message--> /messages/ENVELOPE/sent (confirmation)

Every post of the form saves it as the person's draft first (sealed at rest:
:mod:`gcx.gateway.messages.drafts`), with its attachments, so nothing typed
or attached is lost when something must be put right, when the person goes
to check it, or when they choose "Save as draft" and come back later.

A reply or forward names the message it carries (``source``): its marking is
a floor the new message cannot go under, and a forward is refused when the
handling instructions forbid passing it on (:mod:`gcx.protocol.forwarding`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from gcx.errors import GcxError, RecipientUnknown
from gcx.gateway.messages.drafts import DraftStore
from gcx.gateway.tokens import Caller
from gcx.httpapi import run_sync
from gcx.protocol.forwarding import check_forward_allowed, check_marking_floor
from gcx.protocol.marking import Marking, highest, parse_marking
from gcx.protocol.message import check_attachment_sizes, check_file_name
from gcx.web.gateway import parts_of
from gcx.web.gateway.address_book import gather, name_of, recipients
from gcx.web.gateway.mail_common import (
    MAIL_ROLES,
    MARKING_HINTS,
    mail_caller,
    organisation_name,
    organisation_names,
)
from gcx.web.gateway.mail_form import (
    ComposeForm,
    form_errors,
    problems,
    read_compose,
)
from gcx.web.site import FormErrors, needs, redirect, render, streamed_form, user_of
from gcx.web.words import size_text


def add_routes(app: web.Application) -> None:
    app.router.add_get("/compose", compose_form)
    app.router.add_post("/compose", save)


def drafts_of(request: web.Request) -> DraftStore:
    return DraftStore(parts_of(request).gateway)


def source_message(
    request: web.Request, caller: Caller, form: ComposeForm
) -> dict[str, Any] | None:
    """The message a reply or forward carries, read as the person (who must be able to read it)."""
    if not form.source:
        return None
    message, _ = parts_of(request).messaging.read(caller, form.source)
    return dict(message)


def carried_marking(source: dict[str, Any] | None) -> Marking | None:
    if source is None:
        return None
    try:
        return parse_marking(source["marking"]).marking
    except GcxError:
        return Marking.OFFICIAL_SENSITIVE  # unknown: the most careful we carry


def source_problems(form: ComposeForm, source: dict[str, Any] | None) -> list[tuple[str, GcxError]]:
    """What the message carried forbids: a lower marking, or forwarding at all."""
    found: list[tuple[str, GcxError]] = []
    floor = carried_marking(source)
    if source is None or floor is None:
        return found
    if form.source_kind == "forward":
        try:
            check_forward_allowed(source.get("handling"))
        except GcxError as error:
            found.append(("to_org", error))
    try:
        chosen = parse_marking(form.marking or None).marking
    except GcxError:
        return found  # reported by the form's own checks
    try:
        check_marking_floor(chosen, floor)
    except GcxError as error:
        found.append(("marking", error))
    return found


async def all_problems(
    request: web.Request, form: ComposeForm, source: dict[str, Any] | None
) -> list[tuple[str, GcxError]]:
    """The form's own checks, the organisations it names, and what the source forbids.

    Organisations are checked against the directory here, so that "Check your
    message" never shows an address the send would refuse.
    """
    found = problems(form)
    codes = {o.code for o in await gather(request)}
    if codes and not found:
        for field_id, addresses in (("to_org", form.to_address()), ("cc", form.cc_addresses())):
            unknown = [a.rpartition("@")[2] for a in addresses if a.rpartition("@")[2] not in codes]
            if unknown:
                found.append(
                    (
                        field_id,
                        RecipientUnknown(
                            f"{unknown[0][:16]} is not an organisation the network directory "
                            "lists as connected; check the address."
                        ),
                    )
                )
    return found + source_problems(form, source)


def page_marking(form: ComposeForm, floor: Marking | None) -> str:
    """The highest marking on the page: what is carried and what is being written."""
    shown = [floor] if floor else []
    with contextlib.suppress(GcxError):  # no marking chosen yet: the floor alone
        shown.append(parse_marking(form.marking or None).marking)
    return highest(shown).value if shown else Marking.OFFICIAL.value


async def compose_page(
    request: web.Request,
    form: ComposeForm,
    *,
    draft_id: str = "",
    floor: Marking | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
    title: str = "New message",
) -> web.Response:
    names = organisation_names(request)
    book = await gather(request)
    known = recipients(book)
    organisations = [{"code": o.code, "name": o.name} for o in book]
    addresses = sorted(
        (r for r in known.values() if r.kind != "organisation"), key=lambda r: r.label
    )
    to = form.to_address()
    return render(
        request,
        "gateway/mail_compose.html",
        status=status,
        errors=errors,
        title=title,
        marking=page_marking(form, floor),
        floor=floor.value if floor else Marking.OFFICIAL.value,
        form=form,
        draft_id=draft_id,
        kept=[
            {"position": i, "name": name, "size_text": size_text(len(data))}
            for i, (name, _, data) in enumerate(form.attachments)
        ]
        if draft_id
        else [],
        organisations=organisations,
        addresses=addresses,
        to_names=[name_of(a, known, names) for a in to] if to else [],
        cc_names=[name_of(a, known, names) for a in form.cc_addresses()],
        marking_hints=MARKING_HINTS,
        markings=[m.value for m in Marking],
        own_name=organisation_name(user_of(request).organisation or "", names),
    )


@needs(*MAIL_ROLES)
async def compose_form(request: web.Request) -> web.StreamResponse:
    mail_caller(request)
    form = ComposeForm()
    if "to" in request.query:
        form.prefill(request.query["to"])
    return await compose_page(request, form)


def _merge_attachments(
    store: DraftStore, caller: Caller, draft_id: str, form: ComposeForm
) -> list[tuple[str, str, bytes]]:
    """The draft's kept attachments, less those ticked for removal, then the new uploads."""
    kept: list[tuple[str, str, bytes]] = []
    if draft_id:
        draft = store.open(caller.organisation, caller.account, draft_id)
        kept = [a for i, a in enumerate(draft.attachments) if i not in form.remove]
    return kept + form.attachments


def _forwarded_attachments(
    request: web.Request, caller: Caller, source: dict[str, Any]
) -> list[tuple[str, str, bytes]]:
    messaging = parts_of(request).messaging
    return [
        messaging.attachment(caller, source["id"], a["index"])[:3]
        for a in source.get("attachments", [])
    ]


@needs(*MAIL_ROLES)
@streamed_form
async def save(request: web.Request) -> web.StreamResponse:
    caller = mail_caller(request)
    form, draft_id, attachment_refusal = await read_compose(request)
    store = drafts_of(request)
    found: list[tuple[str, GcxError]] = []
    source = await run_sync(source_message, request, caller, form)
    if source is not None and form.source_kind == "forward" and not draft_id:
        # The first save of a forward takes the original's attachments with it.
        carried = await run_sync(_forwarded_attachments, request, caller, source)
        form.attachments = carried + form.attachments
    if attachment_refusal is None:
        try:
            # A name the message could not carry (a path, a device name) is refused
            # now, before it is kept in a draft, as sending would refuse it.
            for name, _media_type, _data in form.attachments:
                check_file_name(name)
            form.attachments = await run_sync(_merge_attachments, store, caller, draft_id, form)
            check_attachment_sizes([len(d) for _, _, d in form.attachments])
        except GcxError as error:
            found.append(("attachments", error))
    else:
        found.append(("attachments", attachment_refusal))
        # Nothing new was kept; show what the draft already holds, if anything.
        form.attachments = []
        form.attachments = await run_sync(_merge_attachments, store, caller, draft_id, form)
    if not found:
        draft_id = await run_sync(
            store.save,
            caller.organisation,
            caller.account,
            draft_id or None,
            form.fields(),
            form.attachments,
        )
        if form.action == "save":
            raise redirect(
                request,
                "/drafts",
                flash="Your draft was saved with its attachments. Nobody else can see it.",
            )
    found = await all_problems(request, form, source) + found
    if not found:
        raise redirect(request, f"/drafts/{draft_id}/check")
    found.sort(key=lambda item: _ORDER.index(item[0]) if item[0] in _ORDER else len(_ORDER))
    return await compose_page(
        request,
        form,
        draft_id=draft_id,
        floor=carried_marking(source),
        errors=form_errors(found),
        status=found[0][1].status,
    )


_ORDER = ["to_org", "to_person", "cc", "subject", "marking", "handling", "body", "attachments"]
