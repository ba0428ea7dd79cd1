"""Central's "What I did" page (:mod:`gcx.web.activity`) over central's audit log."""

from __future__ import annotations

from aiohttp import web

from gcx.web.accounts import WebUser
from gcx.web.activity import add_activity_routes
from gcx.web.central import CENTRAL, CENTRAL_WEB_ROLES, principal_actor
from gcx.web.site import Site


def _actors(user: WebUser) -> set[str]:
    # The compliance use cases name the person as a Principal; the operator's
    # decisions on enrolments name them as "operator:"; the pages' own entries "web:".
    return {principal_actor(user), f"operator:{user.username}", user.actor}


def navigation(site: Site) -> None:
    site.nav(text="What I did", href="/activity", roles=CENTRAL_WEB_ROLES)


def add_routes(app: web.Application) -> None:
    add_activity_routes(
        app,
        roles=CENTRAL_WEB_ROLES,
        database=lambda request: request.app[CENTRAL].db,
        actors=_actors,
        where="central's",
    )
