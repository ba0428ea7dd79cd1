"""Walking every served route with each role's credentials (see test_authorisation.py).

The routes come from the real aiohttp applications, built here from a running
network's homes with the same functions the servers use; the credentials are
real tokens, real web sessions (signed in over HTTP, password then code) and
real gateway certificates. A request "reached" its route when the answer is
not an authorisation refusal: 401 or 403, a web page's redirect to sign-in, or
(on the peer port) a TLS handshake that never completes.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from gcx import crypto
from gcx.central.app import build_app
from gcx.central.server import open_service
from gcx.config import GatewayConfig
from gcx.gateway.carriers import carriers_for
from gcx.gateway.exchange.peer_client import PeerClient
from gcx.gateway.exchange.worker import ExchangeWorker
from gcx.gateway.messages.messaging import Messaging
from gcx.gateway.runtime import Gateway
from gcx.gateway.server import build_local_api, build_peer_api
from gcx.gateway.services.api import LocalCalls
from gcx.gateway.services.calls import ServiceProxy, call_peers
from gcx.localnet import LocalNetwork
from gcx.web.central import build_central_web
from gcx.web.gateway import GatewayParts, build_gateway_web

from .netutil import HTTP_TIMEOUT

Route = tuple[str, str]  # (method, path pattern as aiohttp formats it)

# Path parameters are filled with well-formed values naming nothing, so an
# allowed request ends in 404 or a validation refusal and never changes state.
FILL = {
    "id": "0" * 32,
    "index": "0",
    "n": "0",
    "provider": "DWP",
    "service": "no-such-service",
    "path": "x",
    "version": "0",
    "name": "nobody",
    "control": "X.0",
    "code": "ZZ0",
    "area": "x",
    "gateway": "nobody",
    "username": "nobody",
    "filename": "x",
    "organisation": "DWP",
}
# Refusals that are not about who is asking: a wrong password or code on the
# public sign-in forms (which is what an empty form posted there is), and a
# CSRF refusal, which the web frame makes only after the role was accepted
# (on the sign-in forms it is the double-submit cookie, not a role).
PAST_THE_GATE = frozenset({"sign-in-refused", "csrf-refused"})
# An empty object: well-formed JSON that no route accepts as a whole request,
# so an allowed call is refused by validation (or 404) and changes nothing.
EMPTY_JSON = b"{}"


def served_routes(app: web.Application) -> set[Route]:
    """Every (method, path) ``app`` answers, without the HEAD aiohttp adds beside each GET."""
    found = set()
    with_get = {id(r.resource) for r in app.router.routes() if r.method == "GET"}
    for route in app.router.routes():
        if route.method == "HEAD" and id(route.resource) in with_get:
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        if "prefix" in info:  # a static folder
            path = f"{info['prefix']}/{{filename}}"
        else:
            path = info.get("formatter") or info["path"]
        found.add((route.method, path))
    return found


def build_applications(network: LocalNetwork, gateway_name: str) -> dict[str, web.Application]:
    """The five applications a network serves, built as ``gcx`` builds them."""
    gateway = Gateway.open(GatewayConfig.load(network.gateways[gateway_name].home))
    peers = PeerClient.for_gateway(gateway)
    worker = ExchangeWorker(gateway, carriers_for(gateway, peers))
    services = ServiceProxy(gateway, call_peers(gateway))
    messaging = Messaging(gateway)
    central = open_service(network.central_home)
    return {
        "peer": build_peer_api(gateway, services),
        "local": build_local_api(gateway, messaging, worker, peers, services),
        "gateway-web": build_gateway_web(
            GatewayParts(gateway, messaging, worker, peers, LocalCalls(services))
        ),
        "central-api": build_app(central, republish=False),
        "central-web": build_central_web(central),
    }


Fills = dict[str, dict[str, str]]  # path prefix -> real values for its parameters


def concrete(path: str, fills: Fills) -> str:
    """``path`` with its parameters filled: real values where ``fills`` names the longest
    matching prefix, else well-formed values naming nothing."""
    prefixes = [prefix for prefix in fills if path.startswith(prefix)]
    values = {**FILL, **(fills[max(prefixes, key=len)] if prefixes else {})}
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: values[m.group(1)], path)


@dataclass
class WebSession:
    """A signed-in person's session cookie and CSRF token (empty for nobody)."""

    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}


def _client(ssl_context: ssl.SSLContext | bool) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ssl_context),
        timeout=HTTP_TIMEOUT,
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def _take_cookies(response: aiohttp.ClientResponse, into: dict[str, str]) -> None:
    # The site's cookies are __Host- and Secure, which a client jar keeps away
    # from http://localhost; the walk carries them by hand.
    for name, morsel in response.cookies.items():
        if morsel.value:
            into[name] = morsel.value
        else:
            into.pop(name, None)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_in(base: str, person: dict[str, Any]) -> WebSession:
    """Sign in over plain HTTP as a browser would: password, then the authenticator's code."""
    session = WebSession()
    async with _client(False) as client:
        async with client.get(f"{base}/sign-in") as response:
            _take_cookies(response, session.cookies)
            csrf = _CSRF.search(await response.text())
        assert csrf, "no CSRF token on the sign-in form"
        form = {
            "username": person["username"],
            "password": person["password"],
            "csrf_token": csrf.group(1),
        }
        async with client.post(
            f"{base}/sign-in", data=form, headers=session.header(), allow_redirects=False
        ) as response:
            assert response.status == 302, (
                f"password step for {person['username']}: {response.status}"
            )
            _take_cookies(response, session.cookies)
        async with client.get(f"{base}/sign-in/code", headers=session.header()) as response:
            _take_cookies(response, session.cookies)
            csrf = _CSRF.search(await response.text())
        assert csrf, "no CSRF token on the code form"
        secret = crypto.totp_secret_from_text(person["totp_secret"])
        code = crypto.totp_code(secret, dt.datetime.now(dt.UTC))
        async with client.post(
            f"{base}/sign-in/code",
            data={"code": code, "csrf_token": csrf.group(1)},
            headers=session.header(),
            allow_redirects=False,
        ) as response:
            assert response.status == 302, f"code step for {person['username']}: {response.status}"
            _take_cookies(response, session.cookies)
        async with client.get(f"{base}/account", headers=session.header()) as response:
            assert response.status == 200, f"account page after sign-in: {response.status}"
            csrf = _CSRF.search(await response.text())
        assert csrf, "no CSRF token on the account page"
        session.csrf = csrf.group(1)
    return session


async def anonymous(base: str) -> WebSession:
    """Nobody signed in, holding only the sign-in form's double-submit cookie and token."""
    session = WebSession()
    async with _client(False) as client, client.get(f"{base}/sign-in") as response:
        _take_cookies(response, session.cookies)
        csrf = _CSRF.search(await response.text())
    assert csrf, "no CSRF token on the sign-in form"
    session.csrf = csrf.group(1)
    return session


@dataclass(frozen=True)
class Outcome:
    status: int  # 0: the connection was refused before any HTTP answer
    code: str
    location: str

    @property
    def reached(self) -> bool:
        if self.status == 0:
            return False
        # The frame's own redirect for a page that needs a session names the page.
        if self.status in (302, 303) and self.location.startswith("/sign-in?next="):
            return False
        return self.status not in (401, 403) or self.code in PAST_THE_GATE

    def __str__(self) -> str:
        return f"{self.status} {self.code or self.location}".strip()


def _outcome(response: aiohttp.ClientResponse) -> Outcome:
    return Outcome(
        response.status,
        response.headers.get("X-Gcx-Error", ""),
        response.headers.get("Location", ""),
    )


def _ordered(routes: Iterable[Route]) -> list[Route]:
    # Signing out ends the session the rest of the walk uses, so it goes last.
    return sorted(routes, key=lambda r: (r[1] == "/sign-out", r))


async def walk_api(
    base: str,
    routes: Iterable[Route],
    token: str | None,
    ssl_context: ssl.SSLContext | bool,
    fills: Fills,
) -> dict[Route, Outcome]:
    """Call each route once with ``token`` (or none) and an empty JSON object as any body."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    found = {}
    async with _client(ssl_context) as client:
        for method, path in _ordered(routes):
            verb = "GET" if method == "*" else method
            body = EMPTY_JSON if verb in ("POST", "PUT", "PATCH") else None
            async with client.request(
                verb,
                base + concrete(path, fills),
                data=body,
                headers={**headers, "Content-Type": "application/json"} if body else headers,
                allow_redirects=False,
            ) as response:
                found[(method, path)] = _outcome(response)
    return found


async def walk_web(
    base: str, routes: Iterable[Route], session: WebSession, fills: Fills
) -> dict[Route, Outcome]:
    """Call each page once in ``session``; posts carry the session's CSRF token and nothing else."""
    found = {}
    async with _client(False) as client:
        for method, path in _ordered(routes):
            data = {"csrf_token": session.csrf} if method == "POST" else None
            async with client.request(
                method,
                base + concrete(path, fills),
                data=data,
                headers=session.header(),
                allow_redirects=False,
            ) as response:
                found[(method, path)] = _outcome(response)
    return found


async def walk_peer(
    address: str, routes: Iterable[Route], ssl_context: ssl.SSLContext
) -> dict[Route, Outcome]:
    """Call each peer route once over TLS with ``ssl_context``'s client certificate (or none)."""
    found = {}
    for method, path in _ordered(routes):
        body = EMPTY_JSON if method in ("POST", "PUT") else None
        # A connection each: a refused handshake must not be retried on a pooled one.
        async with _client(ssl_context) as client:
            try:
                async with client.request(
                    method, f"https://{address}{concrete(path, {})}", data=body
                ) as response:
                    found[(method, path)] = _outcome(response)
            except (aiohttp.ClientConnectionError, ssl.SSLError):
                found[(method, path)] = Outcome(0, "tls-refused", "")
    return found
