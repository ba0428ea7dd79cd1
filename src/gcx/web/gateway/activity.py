"""The gateway's "What I did" page (:mod:`gcx.web.activity`) over the gateway's audit log."""

from __future__ import annotations

from aiohttp import web

from gcx.web.accounts import WebUser
from gcx.web.activity import add_activity_routes
from gcx.web.gateway import GATEWAY_WEB_ROLES, caller_for, parts_of
from gcx.web.site import Site


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
    )
