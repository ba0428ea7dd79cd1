"""Page: "Files", the transfers a person sent and the batches their organisation received.

The list works as the inbox does (:mod:`gcx.web.gateway.mail_lists`):
everything chosen travels in the address, so the search, the filters, the
sort and the pages work without JavaScript and can be bookmarked. A search
looks in file names, covering notes and who sent the files
(:mod:`gcx.web.gateway.files_finding`); a received batch is "New" to each
person until they download it (:mod:`gcx.web.gateway.files_seen`).

The other files pages are modules of their own: sending
(:mod:`~gcx.web.gateway.files_send`), one transfer's status and a file's
download (:mod:`~gcx.web.gateway.files_status`), and what a received batch
adds, with "download all" (:mod:`~gcx.web.gateway.files_received`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from multidict import MultiDict

from gcx.gateway.messages.addresses import AddressBook
from gcx.gateway.messages.finding import MailFilter
from gcx.gateway.tokens import Caller
from gcx.httpapi import run_sync
from gcx.protocol.marking import Marking, highest
from gcx.store.schema_transfers import transfers as transfer_rows
from gcx.web.gateway import caller_of, parts_of
from gcx.web.gateway.files_finding import FilesPage, find_transfers, parse_cursor
from gcx.web.gateway.files_received import day_start, organisation_names, sender_text
from gcx.web.gateway.files_seen import not_seen_by, seen_by
from gcx.web.gateway.files_status import TRANSFER_WORDS
from gcx.web.gateway.mail_lists import FilterForm, page_link, read_filter
from gcx.web.site import Site, needs, render
from gcx.web.words import moment, size_text

# Transfers listed a page at a time (sent and received together).
PAGE_SIZE = 50


def navigation(site: Site) -> None:
    site.nav(text="Files", href="/files", roles=("staff",))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/files", files_page)


def _page_marking(markings: list[str]) -> str:
    if not markings:
        return Marking.OFFICIAL.value
    return highest(Marking(m) for m in markings).value


def _conditions(caller: Caller, wanted: MailFilter) -> list[sa.ColumnElement[bool]]:
    """The Files page's filters as SQL on the transfers table (see mail_lists)."""
    conditions: list[sa.ColumnElement[bool]] = []
    if wanted.marking:
        conditions.append(transfer_rows.c.marking == wanted.marking)
    if wanted.organisation:
        # Sent to it or received from it. Recipients are a JSON list of codes
        # (letters, digits, hyphens), so the quoted code matches one element.
        conditions.append(
            sa.or_(
                sa.and_(
                    transfer_rows.c.direction == "in",
                    transfer_rows.c.sender_org == wanted.organisation,
                ),
                sa.and_(
                    transfer_rows.c.direction == "out",
                    sa.cast(transfer_rows.c.recipients, sa.Text).like(f'%"{wanted.organisation}"%'),
                ),
            )
        )
    if wanted.since:
        conditions.append(transfer_rows.c.created_at >= day_start(wanted.since))
    if wanted.until:
        conditions.append(
            transfer_rows.c.created_at < day_start(wanted.until + dt.timedelta(days=1))
        )
    if wanted.unread:
        conditions.append(transfer_rows.c.direction == "in")
        conditions.append(not_seen_by(caller, transfer_rows.c.id))
    return conditions


def _paging(form: FilterForm, cursor: str | None, page: FilesPage) -> dict[str, Any]:
    oldest_first = form.wanted.oldest_first
    cursor_name = "after" if oldest_first else "before"
    return {
        "first": page_link("/files", form.values) if cursor else None,
        "first_text": "Oldest files" if oldest_first else "Newest files",
        "next": (
            page_link("/files", form.values, **{cursor_name: page.next_cursor})
            if page.next_cursor
            else None
        ),
        "next_text": (
            f"Search further {'forward' if oldest_first else 'back'}"
            if page.stopped_early
            else ("Newer files" if oldest_first else "Older files")
        ),
        "stopped_early": page.stopped_early,
    }


@needs("staff")
async def files_page(request: web.Request) -> web.StreamResponse:
    gateway = parts_of(request).gateway
    caller = caller_of(request)
    form = read_filter(
        MultiDict((k, v) for k, v in request.query.items() if k not in ("before", "after"))
    )
    cursor = request.query.get("after" if form.wanted.oldest_first else "before")
    parse_cursor(cursor)  # a cursor that is not one is refused before anything is read
    names = await run_sync(organisation_names, gateway)
    page = FilesPage([], None)
    if form.errors is None:
        page = await run_sync(
            lambda: find_transfers(
                gateway,
                caller,
                conditions=_conditions(caller, form.wanted),
                text=form.wanted.text,
                oldest_first=form.wanted.oldest_first,
                limit=PAGE_SIZE,
                cursor=cursor,
                names=names,
            )
        )
    items = page.items
    listed = await run_sync(AddressBook(gateway).listed_names) if items else {}
    seen = await run_sync(
        seen_by, gateway, caller, [i["id"] for i in items if i["direction"] == "in"]
    )
    for item in items:
        item["when"] = moment(item["created_at"])
        item["size"] = size_text(item["bytes"])
        item["state_words"] = TRANSFER_WORDS.get(item["state"], item["state"])
        item["to_names"] = ", ".join(names.get(o, o) for o in item["recipients"])
        user, _, org = item["sender"].partition("@")
        item["from_text"] = sender_text(user, org, names, listed)
        item["new"] = item["direction"] == "in" and item["id"] not in seen
    return render(
        request,
        "gateway/files_list.html",
        status=400 if form.errors else 200,
        errors=form.errors,
        title="Files",
        sent=[i for i in items if i["direction"] == "out"],
        received=[i for i in items if i["direction"] == "in"],
        marking=_page_marking([i["marking"] for i in items]),
        form=form,
        organisations=[
            {"code": code, "name": name}
            for code, name in sorted(names.items(), key=lambda item: item[1])
            if code != caller.organisation
        ],
        path="/files",
        paging=_paging(form, cursor, page),
    )
