"""Authorisation as a table: every route of every served application, walked with each role.

``authz_table.TABLE`` names, for each route the gateway's peer port, its local
API and web pages, and central's API and web pages serve, the roles that get
past its authorisation. The routes are read from the real applications, so a
new route without a rule (or a rule for a route that has gone) fails
``test_every_served_route_has_a_rule``; the walk then calls each route with
each role's real credentials against a running network and compares.

Only SQLite: authorisation is decided above the store, so running the walk on
PostgreSQL as well would double its time in CI and test nothing more. One
network serves the whole module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from gcx import crypto
from gcx.config import GatewayConfig
from gcx.localnet import DEMO_GATEWAYS, GatewaySpec, LocalNetwork, OrganisationSpec
from gcx.web.assets import govuk_frontend_dir

from . import authz_table as table
from .authz_walk import (
    Fills,
    Outcome,
    Route,
    WebSession,
    anonymous,
    build_applications,
    served_routes,
    sign_in,
    walk_api,
    walk_peer,
    walk_web,
)
from .conftest import NetworkFactory, run_async
from .netutil import http

# The council's gateway also hosts a second organisation (an aggregate
# connection), so "another organisation's staff" is a real account on it.
COUNCIL = "E09000030"
NEIGHBOUR = "E09000001"
SPECS = (
    GatewaySpec(
        "tower-hamlets",
        (
            OrganisationSpec(COUNCIL, "London Borough of Tower Hamlets", "local-authority"),
            OrganisationSpec(NEIGHBOUR, "City of London Corporation", "local-authority"),
        ),
        "benefits.officer",
    ),
    DEMO_GATEWAYS[1],
)


@pytest.fixture(scope="module")
def network_backend() -> str:
    """SQLite only (see the module's docstring)."""
    return "sqlite"


@dataclass
class Credentials:
    tokens: dict[str, str | None]  # local API, by role
    central_tokens: dict[str, str | None]
    gateway_web: dict[str, WebSession]
    central_web: dict[str, WebSession]
    # Real messages of the council's staff member, so the message routes answer
    # with the owner's rules rather than "not yours" for an id naming nothing.
    gateway_fills: Fills


@pytest.fixture(scope="module")
def network(network_factory: NetworkFactory) -> LocalNetwork:
    net = network_factory(SPECS, name="authz", web=True)
    net.add_web_user(
        "tower-hamlets", "council.iso", "Council Security Officer", ("security-officer",), COUNCIL
    )
    net.add_web_user("tower-hamlets", "city.clerk", "City Clerk", ("staff",), NEIGHBOUR)
    return net


def _token(network: LocalNetwork, org: str, account: str, kind: str, *roles: str) -> str:
    # A person's token is issued only to the person (their account page's use
    # case); a system's is made by the gateway's operator with the CLI.
    if kind == "system":
        return network.add_system_token("tower-hamlets", account, roles)
    return network.add_token("tower-hamlets", account, roles)


def _person(network: LocalNetwork, where: str, username: str) -> dict[str, str]:
    return next(p for p in network.web_users[where] if p["username"] == username)


@pytest.fixture(scope="module")
def credentials(network: LocalNetwork) -> Credentials:
    tokens: dict[str, str | None] = {
        "none": None,
        "staff": _token(network, COUNCIL, "benefits.officer", "user", "staff"),
        "admin": _token(network, COUNCIL, "tower-hamlets.admin", "user", "admin"),
        "system": _token(network, COUNCIL, "housing-system", "system", "system"),
        "security-officer": _token(network, COUNCIL, "council.iso", "user", "security-officer"),
        "other-org-staff": _token(network, NEIGHBOUR, "city.clerk", "user", "staff"),
        "other-gateway-staff": network.gateways["dwp"].token,
    }
    compliance = network.compliance_tokens
    central_tokens: dict[str, str | None] = {
        "none": None,
        "operator": network.operator_token,
        "assessor": compliance["assessor"],
        "security-officer": compliance[f"security-officer:{COUNCIL}"],
        "sign-off": compliance[f"sign-off:{COUNCIL}"],
        "other-org-officer": compliance["security-officer:DWP"],
    }
    gateway_people = {
        "staff": "benefits.officer",
        "admin": "tower-hamlets.admin",
        "security-officer": "council.iso",
        "other-org-staff": "city.clerk",
    }
    central_people = {
        "operator": "network.operator",
        "assessor": "lead.assessor",
        "security-officer": f"iso.{COUNCIL.lower()}",
        "sign-off": f"siro.{COUNCIL.lower()}",
        "other-org-officer": "iso.dwp",
    }

    async def sessions(where: str, people: dict[str, str]) -> dict[str, WebSession]:
        base = network.web_url(where)
        found = {"none": await anonymous(base)}
        for role, username in people.items():
            found[role] = await sign_in(base, _person(network, where, username))
        return found

    async def message(subject: str) -> str:
        body = {
            "to": ["DWP"],
            "subject": subject,
            "body": "[synthetic] authorisation walk",
            "marking": "OFFICIAL",
            "attachments": [{"name": "note.txt", "content_base64": "bm90ZQ=="}],
        }
        api = network.gateways["tower-hamlets"].config.api_url
        status, sent, _ = await http(
            "POST", f"{api}/api/v1/messages", token=tokens["staff"], body=body
        )
        assert status == 202, sent
        return str(sent["id"])

    read, recalled = run_async(message("to read")), run_async(message("to recall"))
    fills = {
        "/api/v1/messages/": {"id": read},
        "/api/v1/messages/{id}/recall": {"id": recalled},
        "/messages/": {"id": read},
        "/messages/{id}/recall": {"id": recalled},
    }
    return Credentials(
        tokens,
        central_tokens,
        run_async(sessions("tower-hamlets", gateway_people)),
        run_async(sessions("central", central_people)),
        fills,
    )


@pytest.fixture(scope="module")
def applications(network: LocalNetwork) -> Iterator[dict[str, web.Application]]:
    yield build_applications(network, "tower-hamlets")


def test_every_served_route_has_a_rule(applications: dict[str, web.Application]) -> None:
    """Each route the five applications serve has a table entry, and each entry a route."""
    served = {
        (app, *route) for app, built in applications.items() for route in served_routes(built)
    }
    ruled = set(table.TABLE)
    if govuk_frontend_dir() is None:
        # Without GOV.UK Frontend installed (npm ci) its fonts and images are not served.
        ruled = {
            rule for rule in ruled if not rule[2].startswith(("/assets/fonts/", "/assets/images/"))
        }
    assert sorted(served - ruled) == [], "routes without a rule in authz_table.TABLE"
    assert sorted(ruled - served) == [], "rules in authz_table.TABLE for routes no longer served"


def _rules(app: str) -> dict[Route, frozenset[str]]:
    roles = table.ROLES[app]
    return {
        (method, path): roles if allowed is table.ANYONE else allowed
        for (name, method, path), allowed in table.TABLE.items()
        if name == app
    }


def _compare(app: str, observed: dict[str, dict[Route, Outcome]]) -> list[str]:
    wrong = []
    for route, allowed in sorted(_rules(app).items()):
        for role in table.ROLES[app]:
            outcome = observed[role][route]
            if outcome.status >= 500:
                wrong.append(f"{route} as {role}: server error {outcome}")
            elif (
                (app, *route) in table.VALIDATES_FIRST
                and role not in allowed
                and outcome.status in (400, 422)
            ):
                continue  # a known gap, listed in the table
            elif outcome.reached != (role in allowed):
                expected = "allowed" if role in allowed else "refused"
                wrong.append(f"{route} as {role}: expected {expected}, got {outcome}")
    return wrong


Walk = Callable[[str], Awaitable[dict[Route, Outcome]]]


def _walk_all(roles: Iterable[str], walk: Walk) -> dict[str, dict[Route, Outcome]]:
    """Walk as each role in turn, in a fixed order, so what one role's allowed call
    changes (a recall) is the same on every run when the next role walks."""

    async def walk_each() -> dict[str, dict[Route, Outcome]]:
        return {role: await walk(role) for role in sorted(roles)}

    return run_async(walk_each())


def test_local_api_roles(network: LocalNetwork, credentials: Credentials) -> None:
    """Each role reaches exactly the local API routes the table allows it."""
    base = network.gateways["tower-hamlets"].config.api_url
    routes = list(_rules("local"))
    tokens, fills = credentials.tokens, credentials.gateway_fills
    observed = _walk_all(tokens, lambda r: walk_api(base, routes, tokens[r], False, fills))
    assert _compare("local", observed) == []


def test_central_api_roles(network: LocalNetwork, credentials: Credentials) -> None:
    """Each role reaches exactly the central API routes the table allows it."""
    context = crypto.client_context(network.anchor)
    routes = list(_rules("central-api"))
    tokens = credentials.central_tokens
    observed = _walk_all(
        tokens, lambda r: walk_api(network.central_url, routes, tokens[r], context, {})
    )
    assert _compare("central-api", observed) == []


def test_gateway_web_roles(network: LocalNetwork, credentials: Credentials) -> None:
    """Each person reaches exactly the gateway's web pages the table allows their role."""
    base = network.web_url("tower-hamlets")
    routes = list(_rules("gateway-web"))
    people, fills = credentials.gateway_web, credentials.gateway_fills
    observed = _walk_all(people, lambda r: walk_web(base, routes, people[r], fills))
    assert _compare("gateway-web", observed) == []


def test_central_web_roles(network: LocalNetwork, credentials: Credentials) -> None:
    """Each person reaches exactly central's web pages the table allows their role."""
    base = network.web_url("central")
    routes = list(_rules("central-web"))
    people = credentials.central_web
    observed = _walk_all(people, lambda r: walk_web(base, routes, people[r], {}))
    assert _compare("central-web", observed) == []


def test_peer_port_roles(network: LocalNetwork) -> None:
    """Only a member gateway's certificate reaches the peer routes; no certificate, none."""
    council = network.gateways["tower-hamlets"].config
    dwp = GatewayConfig.load(network.gateways["dwp"].home)
    member = crypto.client_context(
        network.anchor, dwp.home / "tls.pem", dwp.home / "tls.key", dwp.passphrase()
    )
    routes = list(_rules("peer"))
    contexts = {"none": crypto.client_context(network.anchor), "member": member}
    observed = _walk_all(contexts, lambda r: walk_peer(council.peer_address, routes, contexts[r]))
    assert _compare("peer", observed) == []
