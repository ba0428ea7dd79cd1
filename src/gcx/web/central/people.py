"""Pages: the network operator manages the people who sign in to central's pages.

The same pages as a gateway administrator's (:mod:`gcx.web.people_pages`),
over everyone at central: operators, assessors, and each organisation's
information security and sign-off officers, who are added for the
organisation they act for.
"""

from __future__ import annotations

from aiohttp import web

from gcx.web.central import CENTRAL, CENTRAL_WEB_ROLES
from gcx.web.people_pages import PeopleScope, add_people_routes
from gcx.web.site import Site

ROLE_HINTS = {
    "operator": "Runs the network: enrolments, revocations, extensions and these people.",
    "assessor": "Assesses organisations' Code of Connection statements.",
    "security-officer": "Drafts their organisation's Code of Connection statement.",
    "sign-off": "Signs off their organisation's statement (the senior information risk owner).",
}


def _registered(request: web.Request) -> list[tuple[str, str]]:
    return [(o["code"], o["name"]) for o in request.app[CENTRAL].list_organisations()]


PEOPLE = PeopleScope(
    manager="operator",
    base="/network/people",
    roles=CENTRAL_WEB_ROLES,
    role_hints=ROLE_HINTS,
    service_words="central's pages",
    manager_words="operator",
    per_organisation=False,
    organisations=_registered,
    roles_needing_organisation=frozenset({"security-officer", "sign-off"}),
)


def navigation(site: Site) -> None:
    site.nav(text="People", href=PEOPLE.base, roles=("operator",))


def add_routes(app: web.Application) -> None:
    add_people_routes(app, PEOPLE)
