"""Pages: "What I did", the signed-in person's own entries in the service's audit log.

Each site says which actors are the person's (:func:`add_activity_routes`):
on a gateway ``user:<name>@<org>`` when its use cases act for them and
``web:<name>@<org>`` for what only the pages do; at central ``operator:`` or
``account:`` with their name, and ``web:`` for the pages' own entries.
Sign-in refusals and locks are written by ``anonymous`` (nobody is signed in
yet) with the user name as their subject, so those are matched by subject.
The page reads the log through an indexed query, newest first, one page at a
time: a log grows with every message, so reading it whole for one person
would cost more with every day it runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from gcx.errors import InputError
from gcx.httpapi import run_sync
from gcx.store import Database
from gcx.store.schema import audit_entries
from gcx.web.accounts import WebUser
from gcx.web.site import needs, render, user_of
from gcx.web.words import moment

PAGE_SIZE = 50
# Events about a person's account that are recorded before (or without) a session.
_ACCOUNT_EVENTS = (
    "web.signed-in",
    "web.signed-out",
    "web.sign-in-refused",
    "web.user-locked",
)

# What an action code means, said as the person would say it. An action not
# listed is shown by its code, so a new kind of entry is never hidden.
ACTIONS = {
    "web.signed-in": "Signed in",
    "web.signed-out": "Signed out",
    "web.sign-in-refused": "A sign-in to your account was refused",
    "web.user-locked": "Your account was locked after failed sign-ins",
    "web.service-called": "Looked up a record through a service",
    "web.user-added": "Added a person",
    "web.roles-changed": "Changed a person's roles",
    "web.user-unlocked": "Unlocked a person's account",
    "web.user-disabled": "Disabled a person's account",
    "web.sign-in-reset": "Reset a person's sign-in details",
    "web.password-changed": "Changed your password",
    "web.key-added": "Added a security key",
    "web.key-removed": "Removed a security key",
    "message.sent": "Sent a message",
    "message.refused": "A message you sent was refused",
    "message.read": "Read a message",
    "message.recall-requested": "Asked to recall a message",
    "message.recalled": "Recalled a message",
    "upload.created": "Uploaded a file",
    "upload.deleted": "Deleted an upload",
    "transfer.created": "Sent files",
    "transfer.downloaded": "Downloaded a file",
    "transfer.policy-set": "Changed your organisation's file-transfer quotas",
    "token.added": "Created an API token",
    "token.revoked": "Revoked an API token",
    "mailbox.added": "Added a shared mailbox",
    "mailbox.members-changed": "Changed who can use a shared mailbox",
    # Central.
    "enrolment.approved": "Approved a gateway's enrolment",
    "enrolment.rejected": "Rejected a gateway's enrolment",
    "gateway.revoked": "Revoked a gateway",
    "organisation.added": "Registered an organisation",
    "compliance.statement.created": "Started a Code of Connection statement",
    "compliance.answer.written": "Answered a control",
    "compliance.answers.reconfirmed": "Re-confirmed last year's answers",
    "compliance.evidence.added": "Added evidence",
    "compliance.evidence.read": "Read evidence",
    "compliance.statement.request-sign-off": "Asked for sign-off",
    "compliance.statement.decline-sign-off": "Declined to sign off a statement",
    "compliance.statement.sign-off": "Signed off a statement",
    "compliance.statement.start-assessment": "Started an assessment",
    "compliance.result.recorded": "Recorded an assessment result",
    "compliance.statement.return": "Returned a statement for changes",
    "compliance.statement.complete-assessment": "Completed an assessment",
    "compliance.statement.approve": "Approved a statement",
    "compliance.statement.reject": "Rejected a statement",
    "compliance.extension.requested": "Asked for an extension",
    "compliance.extension.granted": "Granted an extension",
    "compliance.extension.refused": "Refused an extension",
}


# Where the thing an entry is about can be opened, by the start of its action.
# Identifiers are for programs: the page links to the thing instead of showing one.
_LINKS = (
    ("message.", "/messages/{}", "the message"),
    ("transfer.", "/files/{}", "the files"),
    ("compliance.statement.", "/statements/{}", "the statement"),
)
_OPAQUE = re.compile(r"[0-9a-fA-F]{16,}|[A-Za-z0-9_-]{22,}")


@dataclass(frozen=True)
class Activity:
    at: str
    action: str
    words: str
    subject: str
    link: str | None = None
    # The entry's details, for a site that can say more about some actions (explain).
    details: dict[str, Any] = field(default_factory=dict, compare=False)


# A site's way of saying more about some entries than their action's words (the
# gateway names a service call by its service and purpose): the page's items in,
# the same items, some reworded, out. Runs off the event loop.
Explain = Callable[[web.Request, list[Activity]], list[Activity]]


def _about(action: str, subject: str) -> tuple[str, str | None]:
    """What the "About" column shows for an entry: words, and a link where one helps."""
    for prefix, href, words in _LINKS:
        if action.startswith(prefix) and _OPAQUE.fullmatch(subject):
            return words, href.format(subject)
    return ("" if _OPAQUE.fullmatch(subject) else subject), None


def _mine(actors: set[str], username: str) -> Any:
    return sa.or_(
        audit_entries.c.actor.in_(sorted(actors)),
        sa.and_(
            audit_entries.c.action.in_(_ACCOUNT_EVENTS),
            audit_entries.c.subject == username,
        ),
    )


def my_activity(
    database: Any, actors: set[str], username: str, page: int
) -> tuple[list[Activity], int]:
    """One page of the person's entries, newest first, and how many there are in all."""
    where = _mine(actors, username)
    with database.read() as conn:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(audit_entries).where(where)
        ).scalar_one()
        rows = conn.execute(
            sa.select(
                audit_entries.c.at,
                audit_entries.c.action,
                audit_entries.c.subject,
                audit_entries.c.details,
            )
            .where(where)
            .order_by(audit_entries.c.seq.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
    items = [
        Activity(
            moment(row.at),
            row.action,
            ACTIONS.get(row.action, row.action),
            *_about(row.action, row.subject),
            _details(row.details),
        )
        for row in rows
    ]
    return items, int(total)


def _details(text: str | None) -> dict[str, Any]:
    try:
        details = json.loads(text) if text else {}
    except ValueError:
        return {}
    return details if isinstance(details, dict) else {}


def _page_number(request: web.Request) -> int:
    text = request.query.get("page", "1")
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise InputError("The page number must be a whole number from 1.")
    return int(text)


def pagination(page: int, pages: int, path: str) -> dict[str, Any] | None:
    """Parameters for govukPagination: previous, next and nearby page numbers."""
    if pages <= 1:
        return None
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    items: list[dict[str, Any]] = []
    for number in shown:
        if items and number - items[-1].get("number", number) > 1:
            items.append({"ellipsis": True})
        items.append({"number": number, "href": f"{path}?page={number}", "current": number == page})
    params: dict[str, Any] = {"items": items, "landmarkLabel": "Pages of your activity"}
    if page > 1:
        params["previous"] = {"href": f"{path}?page={page - 1}"}
    if page < pages:
        params["next"] = {"href": f"{path}?page={page + 1}"}
    return params


def add_activity_routes(
    app: web.Application,
    *,
    roles: tuple[str, ...],
    database: Callable[[web.Request], Database],
    actors: Callable[[WebUser], set[str]],
    where: str,
    explain: Explain | None = None,
) -> None:
    """Serve /activity for ``roles``, from ``database``, matching each person's ``actors``."""

    @needs(*roles)
    async def activity_page(request: web.Request) -> web.StreamResponse:
        page = _page_number(request)
        user = user_of(request)
        items, total = await run_sync(
            my_activity, database(request), actors(user), user.username, page
        )
        if explain is not None:
            items = await run_sync(explain, request, items)
        pages = max(1, -(-total // PAGE_SIZE))
        return render(
            request,
            "activity_list.html",
            title="What I did" if page == 1 else f"What I did (page {page} of {pages})",
            items=items,
            total=total,
            page=page,
            pages=pages,
            pagination=pagination(page, pages, "/activity"),
            where=where,
        )

    app.router.add_get("/activity", activity_page)
