"""Hostile request bodies over real sockets: each is refused with 400 and a stable code, never 500.

Deeply nested JSON at every endpoint that reads JSON (the gateway's local API,
its peer port over mutual TLS, and central, with and without a token);
malformed multipart bodies; lone surrogate escapes; values of the wrong type;
attachment names with a path; not-found changes to services; a NUL gateway
name. The endpoints are found from the apps' routers, so a new one that reads
a body must be added here or named as not reading JSON.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any
from unittest.mock import MagicMock

import aiohttp
import pytest

from gcx import crypto
from gcx.localnet import DEMO_GATEWAYS, LocalNetwork
from gcx.protocol.batch import MAGIC

from . import authz_table
from .conftest import NetworkFactory
from .netutil import HTTP_TIMEOUT, central_directory, peer_context

pytestmark = pytest.mark.integration

DEPTH = 5_000  # past both our limit (64) and Python's recursion limit, under every size limit
DEEP = b"[" * DEPTH + b"]" * DEPTH
DEEP_OBJECT = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
HEADER_DEEP = "[" * 3000 + "]" * 3000  # fits a request header, still past the recursion limit

# Routes that take a body but never read it as JSON, with the reason.
NOT_JSON = {
    ("local", "POST", "/api/v1/messages/{id}/recall"): "no body",
    ("local", "POST", "/api/v1/uploads"): "tus: headers only",
    ("local", "PATCH", "/api/v1/uploads/{id}"): "tus: the file's bytes",
    ("local", "POST", "/api/v1/services/published/{service}/withdraw"): "no body",
    ("local", "POST", "/api/v1/services/grants/{id}/revoke"): "no body",
    ("local", "*", "/services/{provider}/{service}"): "passed to the backend as it is",
    ("local", "*", "/services/{provider}/{service}/{path}"): "passed to the backend as it is",
    ("peer", "POST", "/peer/v1/envelopes"): "a framed batch: see the test of its own below",
    ("peer", "POST", "/peer/v1/calls"): "JSON only in a header: see the test of its own below",
    ("peer", "PUT", "/peer/v1/transfers/{id}/chunks/{n}"): "ciphertext",
    ("peer", "PUT", "/peer/v1/transfers/{id}/early/{n}"): "ciphertext",
    ("peer", "POST", "/peer/v1/transfers/{id}/complete"): "no body",
    ("central", "POST", "/api/v1/compliance/statements/{id}/evidence"): "the evidence file",
    ("central", "POST", "/api/v1/compliance/accounts/{name}/revoke"): "no body",
    ("central", "POST", "/api/v1/compliance/sweep"): "no body",
}

# Routes whose body is not JSON but a format JSON is part of, with the codes they may
# refuse with. A signed document's reader may say only that its signature does not
# verify: failures an attacker could probe collapse into one opaque refusal.
SIGNED = (400, {"json-invalid", "signature-invalid"})
OTHER_CODES: dict[tuple[str, str, str], tuple[int, set[str]]] = {
    ("central", "POST", "/api/v1/compliance/catalogues"): (422, {"catalogue-invalid"}),
    ("peer", "POST", "/peer/v1/ping"): SIGNED,
    ("peer", "POST", "/peer/v1/recalls"): SIGNED,
    ("peer", "POST", "/peer/v1/read-receipts"): SIGNED,
    ("peer", "POST", "/peer/v1/transfers"): SIGNED,
    ("central", "POST", "/api/v1/checkpoints"): SIGNED,
    ("central", "POST", "/api/v1/services/changes"): SIGNED,
    ("central", "POST", "/api/v1/compliance/selfchecks"): SIGNED,
}

# Steps whose role is checked before the body is read: the operator is refused first.
ROLE_FIRST = {
    ("central", "POST", f"/api/v1/compliance/statements/{{id}}/{step}")
    for step in ("abandon", "assessments", "decline-sign-off", "request-sign-off", "sign-off")
}


# Central routes whose role the operator lacks and which check it before the body:
# called with the compliance account that holds the role, so the body is read.
CALLER = {
    ("central", "POST", "/api/v1/compliance/statements"): "security-officer",
    ("central", "POST", "/api/v1/compliance/extensions"): "security-officer",
    ("central", "PUT", "/api/v1/compliance/statements/{id}/answers/{control}"): "security-officer",
    ("central", "PUT", "/api/v1/compliance/assessments/{id}/results/{control}"): "assessor",
}


UNAUTHENTICATED = frozenset(
    {
        "/api/v1/enrolments",
        "/api/v1/services/changes",
        "/api/v1/checkpoints",
        "/api/v1/compliance/selfchecks",
    }
)


def body_routes() -> set[tuple[str, str, str]]:
    """Every (app, method, path) that takes a request body, from the real routers."""
    from gcx.central.app import build_app
    from gcx.gateway.app import build_local_app
    from gcx.gateway.messages.api import add_message_routes
    from gcx.gateway.messages.peer_api import add_message_routes as add_peer_message_routes
    from gcx.gateway.peer import build_peer_app
    from gcx.gateway.services.api import add_peer_service_routes, add_service_routes
    from gcx.gateway.transfers.api import add_transfer_routes
    from gcx.gateway.transfers.peer_api import add_transfer_routes as add_peer_transfer_routes

    stand_in = MagicMock()  # the routers only hold it; nothing is called
    local = build_local_app(stand_in)
    add_message_routes(local, stand_in, stand_in, stand_in)
    add_transfer_routes(local, stand_in)
    add_service_routes(local, stand_in)
    peer = build_peer_app(stand_in)
    add_peer_message_routes(peer)
    add_peer_transfer_routes(peer)
    add_peer_service_routes(peer, stand_in)
    central = build_app(stand_in, republish=False)
    found: set[tuple[str, str, str]] = set()
    for name, app in (("local", local), ("peer", peer), ("central", central)):
        for route in app.router.routes():
            if route.method in ("POST", "PUT", "PATCH", "*"):
                found.add((name, route.method, route.resource.canonical))  # type: ignore[union-attr]
    return found


@pytest.fixture(scope="module")
def network(network_factory: NetworkFactory) -> LocalNetwork:
    return network_factory(DEMO_GATEWAYS[:2], name="hostile")


async def send(
    method: str,
    url: str,
    body: bytes,
    *,
    token: str | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    ssl_context: Any = False,
) -> tuple[int, Any, dict[str, str]]:
    sent = {"Content-Type": content_type, **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl_context), timeout=HTTP_TIMEOUT
        ) as session,
        session.request(method, url, data=body, headers=sent) as response,
    ):
        raw = await response.read()
        try:
            data: Any = json.loads(raw)
        except ValueError:
            data = raw.decode(errors="replace")
        return response.status, data, dict(response.headers)


def assert_refused(answer: tuple[int, Any, dict[str, str]], status: int, code: str) -> None:
    got, body, headers = answer
    seen = body.get("code") if isinstance(body, dict) else str(body)[:200]
    assert (got, seen) == (status, code)
    assert headers.get("X-Gcx-Error") == code


class Endpoints:
    """Where each app of the started network listens, and with what it is called."""

    def __init__(self, network: LocalNetwork, peer_context: ssl.SSLContext) -> None:
        self.council = network.gateways["tower-hamlets"]
        self.dwp = network.gateways["dwp"]
        self.network = network
        self.peer_context = peer_context

    async def call(
        self, app: str, method: str, path: str, body: bytes, **options: Any
    ) -> tuple[int, Any, dict[str, str]]:
        concrete = (
            path.replace("{id}", "0" * 32)
            .replace("{service}", "nothing-here")
            .replace("{name}", "nobody")
            .replace("{control}", "A-01")
            .replace("{code}", "E09000030")
        )
        method = "POST" if method == "*" else method
        if app == "local":
            # Administration over the API is a system token's where the network has one.
            token = getattr(self.council, "admin_token", "") or self.council.token
            return await send(
                method, self.council.config.api_url + concrete, body, token=token, **options
            )
        if app == "peer":
            return await send(
                method,
                f"https://{self.dwp.config.peer_address}{concrete}",
                body,
                ssl_context=self.peer_context,
                **options,
            )
        # Central's endpoints that need no token are called without one.
        token = None if concrete in UNAUTHENTICATED else self.network.operator_token
        account = CALLER.get((app, method, path))
        if account == "security-officer":
            token = self.network.compliance_tokens[f"security-officer:{self.council.codes[0]}"]
        elif account is not None:
            token = self.network.compliance_tokens[account]
        return await send(
            method,
            self.network.central_url + concrete,
            body,
            token=token,
            ssl_context=crypto.client_context(self.network.anchor),
            **options,
        )


@pytest.fixture(scope="module")
def endpoints(network: LocalNetwork) -> Endpoints:
    async def context() -> ssl.SSLContext:
        _, directory = await central_directory(network)
        entry = directory.gateway_named("dwp")
        assert entry is not None
        return peer_context(network.gateways["tower-hamlets"], entry.certificate_fingerprint)

    return Endpoints(network, asyncio.run(context()))


# -- finding 3: deeply nested JSON ---------------------------------------------------


JSON_ROUTES = sorted(r for r in body_routes() if r not in NOT_JSON)


def test_every_body_route_is_covered() -> None:
    """Every route that takes a body is either sent deep JSON below or named as not JSON."""
    assert set(NOT_JSON) <= body_routes(), set(NOT_JSON) - body_routes()
    # The routers built here are the ones served: the role table (which fails on any
    # served route it lacks) names exactly these routes that take a body.
    apps = {"local": "local", "peer": "peer", "central-api": "central"}
    ruled = {
        (apps[app], method, path)
        for app, method, path in authz_table.TABLE
        if app in apps and method in ("POST", "PUT", "PATCH", "*")
    }
    assert body_routes() == ruled
    assert len(JSON_ROUTES) >= 30


@pytest.mark.parametrize("route", JSON_ROUTES, ids=lambda r: f"{r[0]} {r[1]} {r[2]}")
async def test_deeply_nested_json_is_refused(
    endpoints: Endpoints, route: tuple[str, str, str]
) -> None:
    """Nesting 100,000 levels deep is 400 json-invalid at every JSON endpoint, never a 500."""
    app, method, path = route
    status, codes = OTHER_CODES.get(route, (400, {"json-invalid"}))
    if route in ROLE_FIRST:
        status, codes = 403, {"role-required"}
    for body in (DEEP, DEEP_OBJECT):
        got, answer, headers = await endpoints.call(app, method, path, body)
        code = answer.get("code") if isinstance(answer, dict) else str(answer)[:200]
        assert got == status and code in codes, (got, code)
        assert headers.get("X-Gcx-Error") == code


async def test_deep_json_in_a_peer_envelope_batch_is_refused(endpoints: Endpoints) -> None:
    """A framed batch whose envelope is deeply nested JSON is refused, not a 500."""
    batch = MAGIC + (1).to_bytes(4, "big") + len(DEEP).to_bytes(4, "big") + DEEP
    status, body, _ = await endpoints.call(
        "peer", "POST", "/peer/v1/envelopes", batch, content_type="application/octet-stream"
    )
    assert status < 500, body
    if status == 200:
        assert [r["code"] for r in body["results"]] == ["json-invalid"]


async def test_deep_json_in_a_call_request_header_is_refused(endpoints: Endpoints) -> None:
    """A signed call request header nested past the recursion limit is 400, not a 500."""
    answer = await endpoints.call(
        "peer",
        "POST",
        "/peer/v1/calls",
        b"",
        headers={"X-Gcx-Call-Request": HEADER_DEEP},
    )
    assert_refused(answer, 400, "json-invalid")


# -- finding 5: malformed multipart ----------------------------------------------------

PART = b'--x\r\nContent-Disposition: form-data; name="subject"\r\n\r\nhello\r\n'
MULTIPART_CASES = {
    "no-boundary": ("multipart/form-data", PART + b"--x--\r\n"),
    "garbage-after-boundary": (
        "multipart/form-data; boundary=x",
        PART + b"--xjunk\r\n",
    ),
    "control-character-in-part-header": (
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="sub\x01ject"\r\n\r\nhi\r\n--x--\r\n',
    ),
    "boundary-too-long": ("multipart/form-data; boundary=" + "b" * 80, PART),
    "cut-short": ("multipart/form-data; boundary=x", PART[:-8]),
}


@pytest.mark.parametrize("case", sorted(MULTIPART_CASES))
async def test_malformed_multipart_message_is_refused(endpoints: Endpoints, case: str) -> None:
    """A malformed multipart body to POST /api/v1/messages is 400 multipart-invalid."""
    content_type, body = MULTIPART_CASES[case]
    answer = await endpoints.call(
        "local", "POST", "/api/v1/messages", body, content_type=content_type
    )
    assert_refused(answer, 400, "multipart-invalid")


def _multipart(fields: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, value in fields:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--x\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return out + b"--x--\r\n"


# -- finding 12: an attachment name with a path ----------------------------------------


@pytest.mark.parametrize("name", ["/abs", "\\\\server\\share", "../up"])
async def test_attachment_name_with_a_path_is_refused(endpoints: Endpoints, name: str) -> None:
    """An attachment named /abs is refused (attachment-refused), never renamed to abs."""
    body = _multipart(
        [
            ("to", None, b"DWP"),
            ("subject", None, b"paths"),
            ("body", None, b"hello"),
            ("marking", None, b"OFFICIAL"),
            ("attachment", name.replace("\\", "\\\\"), b"data"),
        ]
    )
    answer = await endpoints.call(
        "local", "POST", "/api/v1/messages", body, content_type="multipart/form-data; boundary=x"
    )
    assert_refused(answer, 400, "attachment-refused")


async def test_checkpoint_of_a_nul_gateway_name_is_refused(endpoints: Endpoints) -> None:
    """GET /api/v1/checkpoints/%00 at central is 400 input-invalid, not 200."""
    answer = await send(
        "GET",
        endpoints.network.central_url + "/api/v1/checkpoints/%00",
        b"",
        ssl_context=crypto.client_context(endpoints.network.anchor),
    )
    assert_refused(answer, 400, "input-invalid")


# -- finding 6: lone surrogates ------------------------------------------------------------

SURROGATE = "\\udfff"


def _message(**fields: Any) -> dict[str, Any]:
    return {
        "to": ["DWP"],
        "subject": "checks",
        "body": "hello",
        "marking": "OFFICIAL",
        **fields,
    }


def _raw(value: dict[str, Any]) -> bytes:
    # json.dumps escapes the placeholder's backslash; undo it so the escape is sent as is.
    return json.dumps(value).replace("\\\\udfff", "\\udfff").encode()


SURROGATE_CASES = {
    "handling": ("local", "/api/v1/messages", _message(handling=SURROGATE)),
    "attachment-name": (
        "local",
        "/api/v1/messages",
        _message(attachments=[{"name": SURROGATE, "content_base64": "aGk="}]),
    ),
    "attachment-media-type": (
        "local",
        "/api/v1/messages",
        _message(
            attachments=[{"name": "a.txt", "media_type": SURROGATE, "content_base64": "aGk="}]
        ),
    ),
    "enrolment-csr": (
        "central",
        "/api/v1/enrolments",
        {"csr": SURROGATE, "peer_address": "x:1", "organisation_keys": {}},
    ),
    "organisation-name": (
        "central",
        "/api/v1/organisations",
        {"code": "E09000001", "name": SURROGATE, "type": "local-authority"},
    ),
}


@pytest.mark.parametrize("case", sorted(SURROGATE_CASES))
async def test_lone_surrogate_is_refused(endpoints: Endpoints, case: str) -> None:
    """A lone surrogate escape in a JSON field is 400 body-not-utf8."""
    app, path, value = SURROGATE_CASES[case]
    assert_refused(await endpoints.call(app, "POST", path, _raw(value)), 400, "body-not-utf8")


async def test_non_utf8_attachment_name_in_multipart_is_refused(endpoints: Endpoints) -> None:
    """An attachment name of bytes that are not UTF-8 is 400 body-not-utf8, not a 500."""
    body = _multipart(
        [("to", None, b"DWP"), ("subject", None, b"s"), ("body", None, b"b")]
    ).replace(
        b"--x--\r\n",
        b'--x\r\nContent-Disposition: form-data; name="attachment"; filename="\xed\xbf\xbf"'
        b"\r\n\r\ndata\r\n--x--\r\n",
    )
    answer = await endpoints.call(
        "local", "POST", "/api/v1/messages", body, content_type="multipart/form-data; boundary=x"
    )
    assert_refused(answer, 400, "body-not-utf8")


# -- finding 7: wrong types ----------------------------------------------------------------

WRONG_TYPES = {
    "read-receipt-as-text": (
        "local",
        "/api/v1/messages",
        _message(read_receipt="false"),
        "read_receipt",
    ),
    "attachment-without-content": (
        "local",
        "/api/v1/messages",
        _message(attachments=[{"name": "a.txt"}]),
        "attachments[0].content_base64",
    ),
    "attachment-content-null": (
        "local",
        "/api/v1/messages",
        _message(attachments=[{"name": "a.txt", "content_base64": None}]),
        "attachments[0].content_base64",
    ),
    "handling-as-number": ("local", "/api/v1/messages", _message(handling=5), "handling"),
    "misspelt-field": ("local", "/api/v1/messages", _message(read_reciept=True), "read_reciept"),
    "file-size-as-text": (
        "local",
        "/api/v1/transfers/preflight",
        {"to": ["DWP"], "marking": "OFFICIAL", "files": [{"name": "a", "size": "5"}]},
        "files[0].size",
    ),
    "uploads-as-number": (
        "local",
        "/api/v1/transfers",
        {"to": ["DWP"], "marking": "OFFICIAL", "uploads": 5},
        "uploads",
    ),
    "grant-burst-as-text": (
        "local",
        "/api/v1/services/published/nothing-here/grants",
        {"to": "DWP", "burst": "5"},
        "burst",
    ),
    "publish-requires-user-as-text": (
        "local",
        "/api/v1/services/published",
        {
            "name": "lookup",
            "version": "1",
            "backend_url": "http://127.0.0.1:1/",
            "requires_user": "false",
        },
        "requires_user",
    ),
    "group-members-as-text": (
        "local",
        "/api/v1/services/groups",
        {"name": "councils", "members": "E09000030"},
        "members",
    ),
    "organisation-code-as-number": (
        "central",
        "/api/v1/organisations",
        {"code": 5, "name": "A council", "type": "local-authority"},
        "code",
    ),
    "enrolment-keys-as-list": (
        "central",
        "/api/v1/enrolments",
        {"csr": "x", "peer_address": "x:1", "organisation_keys": []},
        "organisation_keys",
    ),
    "approve-override-as-text": (
        "central",
        "/api/v1/enrolments/" + "0" * 32 + "/approve",
        {"reason": "checked", "override": "false"},
        "override",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
async def test_wrong_type_is_refused_naming_the_field(endpoints: Endpoints, case: str) -> None:
    """A value of the wrong type is 400 input-invalid naming the field, never coerced."""
    app, path, value, field = WRONG_TYPES[case]
    status, body, _ = await endpoints.call(app, "POST", path, json.dumps(value).encode())
    assert (status, body.get("code")) == (400, "input-invalid"), body
    assert body["details"]["field"] == field
    assert field in body["message"]
    # Our sentence, not pydantic's: no "validation error for", no "[type=".
    assert "validation error" not in body["message"] and "type=" not in body["message"]


async def test_transfer_policy_of_the_wrong_type_is_refused(endpoints: Endpoints) -> None:
    """PUT /api/v1/transfers/policy with a size as text is 400 input-invalid naming it."""
    status, body, _ = await endpoints.call(
        "local", "PUT", "/api/v1/transfers/policy", json.dumps({"storage_bytes": "9"}).encode()
    )
    assert (status, body["code"], body["details"]["field"]) == (
        400,
        "input-invalid",
        "storage_bytes",
    )


# -- finding 9: not found is 404 -------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/services/grants/" + "0" * 32 + "/revoke",
        "/api/v1/services/published/never-published/withdraw",
    ],
    ids=["revoke-unknown-grant", "withdraw-unknown-service"],
)
async def test_changing_what_does_not_exist_is_not_found(endpoints: Endpoints, path: str) -> None:
    """Revoking a grant or withdrawing a service that does not exist is 404 not-found."""
    assert_refused(await endpoints.call("local", "POST", path, b""), 404, "not-found")
