"""The gateway's "What I did" page (:mod:`gcx.web.activity`) over the gateway's audit log.

A service call made on the Lookups page is named by its service and the
purpose the person gave, as they would say it ("Looked up a record with
Benefits record, Department for Work and Pensions"; "Purpose: Housing benefit
assessment"), never by the call's identifier or the service's code. The
purpose is read from the call log by the call's identifier in the audit
entry; the call log is written a moment after the call, so a call made an
instant ago may show without its purpose until the page is loaded again.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from aiohttp import web

from gcx.errors import GcxError
from gcx.store.schema_services import service_calls
from gcx.web.accounts import WebUser
from gcx.web.activity import Activity, add_activity_routes
from gcx.web.gateway import GATEWAY_WEB_ROLES, caller_for, parts_of
from gcx.web.site import Site

SERVICE_CALLED = "web.service-called"


def _actors(user: WebUser) -> set[str]:
    return {caller_for(user).actor, user.actor, f"web:{user.username}"}


def navigation(site: Site) -> None:
    site.nav(text="What I did", href="/activity", roles=GATEWAY_WEB_ROLES)


def add_routes(app: web.Application) -> None:
    add_activity_routes(
        app,
        roles=GATEWAY_WEB_ROLES,
        database=lambda request: parts_of(request).gateway.db,
        actors=_actors,
        where="this gateway's",
        explain=_explain,
    )


def _explain(request: web.Request, items: list[Activity]) -> list[Activity]:
    """Service calls named by service and purpose; every other entry as it was."""
    calls = [i for i in items if i.action == SERVICE_CALLED]
    if not calls:
        return items
    gateway = parts_of(request).gateway
    ids = [str(i.details.get("call")) for i in calls if i.details.get("call")]
    purposes: dict[str, str] = {}
    if ids:
        with gateway.db.read() as conn:
            rows = conn.execute(
                sa.select(service_calls.c.id, service_calls.c.purpose).where(
                    service_calls.c.id.in_(ids), service_calls.c.side == "consumer"
                )
            ).all()
        purposes = {row.id: row.purpose or "" for row in rows}
    try:
        directory = gateway.directory.current()
        orgs = {o.code: o.name for o in directory.organisations}
        titles = {(s.provider, s.name): s.title or s.name for s in directory.services}
    except GcxError:
        orgs, titles = {}, {}
    explained = []
    for item in items:
        if item.action != SERVICE_CALLED:
            explained.append(item)
            continue
        provider, _, name = item.subject.partition("/")
        service = titles.get((provider, name), name.replace("-", " ").capitalize())
        purpose = purposes.get(str(item.details.get("call")), "")
        refused = item.details.get("outcome") not in (None, "answered")
        words = f"Looked up a record with {service}, {orgs.get(provider, provider)}" + (
            " (refused)" if refused else ""
        )
        explained.append(
            dataclasses.replace(
                item,
                words=words,
                subject=f"Purpose: {purpose}" if purpose else "",
                link=None,
            )
        )
    return explained
