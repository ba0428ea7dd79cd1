"""Pages: the inbox and sent messages, with search, filters, a sort and pages.

Everything a person chooses travels in the address (GET query parameters):
the filter form is an ordinary form that works without JavaScript, a
filtered page can be bookmarked or shared with a colleague who may see the
same mailbox, and the page links keep the filters. The finding itself is
:mod:`gcx.gateway.messages.finding`; this module reads the form, says what
is wrong with it beside the field, and lays out the rows.

The inbox also lists batches of files received by the person's organisation
(:mod:`gcx.web.gateway.files_received`), between the messages of the same
time, so nothing that arrived is only in one place.

The navigation shows how many messages are unread: a small middleware
counts them for pages a person with a mailbox sees (one indexed count).
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from gcx.errors import GcxError, InputError
from gcx.gateway.messages.addresses import AddressBook
from gcx.gateway.messages.finding import (
    MAX_SEARCH_CHARS,
    FoundPage,
    MailFilter,
    find,
    unread_count,
)
from gcx.gateway.tokens import Caller
from gcx.httpapi import run_sync
from gcx.protocol.marking import Marking
from gcx.web.gateway import parts_of
from gcx.web.gateway.files_received import received_between
from gcx.web.gateway.mail import LIST_LIMIT, _marking_of, _named, _state
from gcx.web.gateway.mail_common import MAIL_ROLES, mail_caller, organisation_names
from gcx.web.site import NAV_COUNTS_KEY, SESSION_KEY, FormErrors, Site, needs, render
from gcx.web.words import moment

_DATE_PARTS = ("day", "month", "year")


def navigation(site: Site) -> None:
    """None of its own: "Inbox" and "Sent" are in gcx.web.gateway.mail's navigation."""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/inbox", inbox)
    app.router.add_get("/sent", sent)
    app.middlewares.append(_count_unread)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _count_unread(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The unread count beside "Inbox", for full pages only (not fragments or files)."""
    session = request.get(SESSION_KEY)
    if (
        request.method == "GET"
        and session is not None
        and session.user.organisation
        and MAIL_ROLES_SET & session.user.roles
        and not request.path.startswith("/assets/")
        and not request.path.endswith(("/status", "/live"))
    ):
        try:
            count = await run_sync(unread_count, parts_of(request).messaging, mail_caller(request))
        except GcxError:
            count = 0  # a count is a convenience; a page never fails for want of one
        request[NAV_COUNTS_KEY] = {"/inbox": (count, "unread")}
    return await handler(request)


MAIL_ROLES_SET = frozenset(MAIL_ROLES)


# -- the filter form ---------------------------------------------------------------------


@dataclass
class FilterForm:
    """The filter form as typed, to show again, and what it means."""

    values: dict[str, str]
    wanted: MailFilter
    cursor: int | None
    errors: FormErrors | None

    @property
    def active(self) -> bool:
        return any(self.values.get(k) for k in _FILTER_KEYS if k != "sort")


_FILTER_KEYS = (
    "q",
    "unread",
    "marking",
    "organisation",
    *(f"since-{p}" for p in _DATE_PARTS),
    *(f"until-{p}" for p in _DATE_PARTS),
    "sort",
)


def _date(values: dict[str, str], name: str, label: str) -> dt.date | None:
    parts = [values.get(f"{name}-{p}", "") for p in _DATE_PARTS]
    if not any(parts):
        return None
    if not all(p.isdigit() and len(p) <= 4 for p in parts):
        raise InputError(f"The '{label}' date must be a real date, like 27 3 2026.")
    try:
        return dt.date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError as exc:
        raise InputError(f"The '{label}' date must be a real date, like 27 3 2026.") from exc


def read_filter(query: MultiMapping[str]) -> FilterForm:
    """The filters in the address, each refused beside its own field."""
    values = {key: str(query.get(key, ""))[:200].strip() for key in _FILTER_KEYS}
    problems: list[tuple[str, str, str]] = []

    def checked(field_id: str, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except InputError as exc:
            problems.append((field_id, exc.message, exc.code))
            return None

    def text() -> str:
        if len(values["q"]) > MAX_SEARCH_CHARS:
            raise InputError(f"Search for at most {MAX_SEARCH_CHARS} characters.")
        return values["q"]

    def marking() -> str | None:
        if values["marking"] and values["marking"] not in {m.value for m in Marking}:
            raise InputError("Choose a marking from the list.")
        return values["marking"] or None

    def organisation() -> str | None:
        code = values["organisation"]
        if code and not (code.replace("-", "").isalnum() and len(code) <= 16):
            raise InputError("Choose an organisation from the list.")
        return code or None

    since = checked("since-day", lambda: _date(values, "since", "from"))
    until = checked("until-day", lambda: _date(values, "until", "to"))
    if since and until and since > until:
        problems.append(
            ("since-day", "The 'from' date must be on or before the 'to' date.", "input-invalid")
        )
    wanted = MailFilter(
        text=checked("q", text) or "",
        unread=values["unread"] == "yes",
        marking=checked("marking", marking),
        organisation=checked("organisation", organisation),
        since=since,
        until=until,
        oldest_first=values["sort"] == "oldest",
    )
    cursor_text = query.get("after" if wanted.oldest_first else "before")
    cursor = None
    if cursor_text is not None:
        if not cursor_text.isdigit() or len(cursor_text) > 18 or int(cursor_text) < 1:
            raise InputError("That is not a page of this list; go back to the first page.")
        cursor = int(cursor_text)
    return FilterForm(values, wanted, cursor, FormErrors(problems) if problems else None)


def page_link(path: str, values: dict[str, str], **extra: str | int) -> str:
    """``path`` with the filters kept (empty ones left out) and ``extra`` added."""
    kept = [(k, v) for k, v in values.items() if v and not (k == "sort" and v == "newest")]
    kept += [(k, str(v)) for k, v in extra.items()]
    return path + ("?" + urllib.parse.urlencode(kept) if kept else "")


def _paging(path: str, form: FilterForm, page: FoundPage, what: str) -> dict[str, Any]:
    oldest_first = form.wanted.oldest_first
    cursor_name = "after" if oldest_first else "before"
    return {
        "first": page_link(path, form.values) if form.cursor is not None else None,
        "first_text": f"{'Oldest' if oldest_first else 'Newest'} {what}",
        "next": (
            page_link(path, form.values, **{cursor_name: page.next_cursor})
            if page.next_cursor is not None
            else None
        ),
        "next_text": (
            f"Search further {'forward' if oldest_first else 'back'}"
            if page.stopped_early
            else f"{'Newer' if oldest_first else 'Older'} {what}"
        ),
        "stopped_early": page.stopped_early,
    }


def _organisation_choices(request: web.Request, own: str) -> list[dict[str, str]]:
    names = organisation_names(request)
    return [
        {"code": code, "name": name}
        for code, name in sorted(names.items(), key=lambda item: item[1])
        if code != own
    ]


# -- the two lists -----------------------------------------------------------------------


def _my_mailboxes(request: web.Request, caller: Caller) -> list[str]:
    from gcx.gateway.messages.mailboxes import MailboxService

    gateway = parts_of(request).gateway
    service = MailboxService(gateway.db, list(gateway.config.organisations), gateway.clock)
    return [
        m["mailbox"]
        for m in service.list()
        if m["mailbox"].endswith(f"@{caller.organisation}") and caller.account in m["members"]
    ]


async def _list_page(
    request: web.Request, box: str
) -> tuple[FilterForm, FoundPage, Caller, dict[str, str]]:
    caller = mail_caller(request)
    form = read_filter(request.query)
    page = FoundPage([], None)
    if form.errors is None:
        page = await run_sync(
            find, parts_of(request).messaging, caller, box, form.wanted, LIST_LIMIT, form.cursor
        )
    return form, page, caller, organisation_names(request)


@needs(*MAIL_ROLES)
async def inbox(request: web.Request) -> web.StreamResponse:
    form, page, caller, names = await _list_page(request, "inbox")
    listed = await run_sync(AddressBook(parts_of(request).gateway).listed_names)
    rows: list[dict[str, Any]] = []
    for item in page.items:
        owner = item["mailbox"]
        rows.append(
            {
                **item,
                "kind": "message",
                "from_text": _named(item["from"], names, listed),
                "for_text": (
                    "You"
                    if owner == caller.account
                    else "The whole organisation"
                    if owner == "*"
                    else f"{owner}@{caller.organisation}"
                ),
                "when": moment(item["created_at"]),
                "read_when": moment(item["read_at"]),
            }
        )
    if form.errors is None:
        rows = await run_sync(_with_files, request, caller, form, page, rows)
    mailboxes = await run_sync(_my_mailboxes, request, caller)
    return render(
        request,
        "gateway/mail_inbox.html",
        status=400 if form.errors else 200,
        errors=form.errors,
        title="Inbox",
        marking=_marking_of([i["marking"] for i in rows]),
        messages=rows,
        mailboxes=mailboxes,
        form=form,
        organisations=_organisation_choices(request, caller.organisation),
        paging=_paging("/inbox", form, page, "messages"),
        path="/inbox",
    )


def _with_files(
    request: web.Request,
    caller: Caller,
    form: FilterForm,
    page: FoundPage,
    rows: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The messages with the file batches received in the same stretch of time.

    A page of messages covers the time from its oldest message to where the
    previous page stopped; the batches received in that stretch are shown on
    it, so every batch is on exactly one page without a second cursor.
    """
    if "staff" not in caller.roles:
        return rows
    wanted = form.wanted
    if wanted.text or wanted.oldest_first:
        # Batches have no subject to search, and the stretch of time is
        # worked out for the newest-first order only.
        return rows
    newest = None if form.cursor is None else _created_at_of(request, form.cursor)
    oldest = rows[-1]["created_at"] if page.next_cursor is not None and rows else None
    batches = received_between(parts_of(request).gateway, caller, oldest, newest, wanted)
    return _merged_newest_first(rows, batches)


def _merged_newest_first(
    rows: list[dict[str, Any]], batches: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The batches put between the messages by time, the messages kept in their order.

    Messages are listed in the order they were stored, which two deliveries
    committing together may not share with their timestamps; sorting the
    messages again by time would make "newest first" disagree with "oldest
    first" reversed.
    """
    waiting = sorted(batches, key=lambda b: b["created_at"], reverse=True)
    merged: list[dict[str, Any]] = []
    for row in rows:
        while waiting and waiting[0]["created_at"] > row["created_at"]:
            merged.append(waiting.pop(0))
        merged.append(row)
    return merged + waiting


def _created_at_of(request: web.Request, position: int) -> str | None:
    import sqlalchemy as sa

    from gcx.store.schema import mailbox_items

    with parts_of(request).gateway.db.read() as conn:
        value = conn.execute(
            sa.select(mailbox_items.c.created_at).where(mailbox_items.c.id == position)
        ).scalar_one_or_none()
    return None if value is None else str(value)


def _sent_rows(
    request: web.Request, caller: Caller, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    messaging = parts_of(request).messaging
    rows = []
    for item in items:
        status = messaging.status(caller, item["id"])
        reads = [r for r in status["receipts"] if r["kind"] == "read"]
        rows.append(
            {
                **item,
                "to_text": ", ".join(item.get("to", [])),
                "when": moment(item["created_at"]),
                "state": _state(status["state"]),
                "read_text": ", ".join(
                    f"{r.get('reader', 'someone')}@{r['organisation']}, {moment(r['received_at'])}"
                    for r in reads
                ),
            }
        )
    return rows


@needs(*MAIL_ROLES)
async def sent(request: web.Request) -> web.StreamResponse:
    form, page, caller, _ = await _list_page(request, "sent")
    rows = await run_sync(_sent_rows, request, caller, page.items)
    return render(
        request,
        "gateway/mail_sent.html",
        status=400 if form.errors else 200,
        errors=form.errors,
        title="Sent messages",
        marking=_marking_of([r["marking"] for r in rows]),
        messages=rows,
        form=form,
        organisations=_organisation_choices(request, caller.organisation),
        paging=_paging("/sent", form, page, "messages"),
        path="/sent",
    )
