"""Service calls through real gateway processes over real mutual TLS, on both databases.

A module network (council, DWP, police) has the DWP reference lookup
published by DWP's gateway and granted to the council for GET /customers.
Tests that change the network for good (revoking a gateway, replacing the
provider gateway with a fake one) start their own.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web

from gcx import crypto, listeners
from gcx.config import GatewayConfig
from gcx.gateway.home import load_keys
from gcx.gateway.services.call_log import row_digest
from gcx.localnet import DEMO_GATEWAYS, GatewayProcess, LocalNetwork
from gcx.protocol.services import REQUEST_TYPE, RESPONSE_TYPE, CallRequest, CallResponse
from gcx.reference import sample_ninos
from gcx.reference.network import (
    grant,
    local_api,
    publish,
    set_up_dwp_lookup,
    wait_for_version,
)
from gcx.store import open_database
from gcx.store.schema_services import service_calls

from .conftest import NetworkFactory, run_async
from .netutil import HTTP_TIMEOUT, audit_log, central_call, gcx, log_tails, peer_context

NINO = sample_ninos(1)[0]
PURPOSE = "council tax reduction assessment, case 4471"


@pytest.fixture(scope="module")
def network(network_factory: NetworkFactory) -> LocalNetwork:
    net = network_factory(DEMO_GATEWAYS, name="services")
    try:
        run_async(set_up_dwp_lookup(net))
    except Exception as exc:
        raise AssertionError(f"reference service set-up failed: {exc}\n{log_tails(net)}") from exc
    return net


async def call(
    gateway: GatewayProcess,
    path: str,
    *,
    method: str = "GET",
    user: str | None = "benefits.officer",
    purpose: str | None = PURPOSE,
    data: bytes | None = None,
    provider: str = "DWP",
    service: str = "dwp-cis",
) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Authorization": f"Bearer {gateway.token}"}
    if user:
        headers["X-Gcx-User"] = user
    if purpose:
        headers["X-Gcx-Purpose"] = purpose
    url = f"{gateway.config.api_url}/services/{provider}/{service}{path}"
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
        session.request(method, url, headers=headers, data=data) as response,
    ):
        return response.status, await response.read(), dict(response.headers)


def call_rows(gateway: GatewayProcess, call_id: str) -> list[Any]:
    database = open_database(gateway.config.db_url)
    try:
        with database.read() as conn:
            return list(
                conn.execute(sa.select(service_calls).where(service_calls.c.id == call_id)).all()
            )
    finally:
        database.dispose()


def refused(status: int, body: bytes, headers: dict[str, str], code: str, expected: int) -> None:
    assert status == expected, (status, body[:300])
    assert headers.get("X-Gcx-Error") == code, (headers.get("X-Gcx-Error"), body[:300])
    assert json.loads(body)["code"] == code


# -- a backend the tests control ---------------------------------------------------------


@pytest.fixture
async def test_backend() -> AsyncIterator[str]:
    """A backend that is slow on /slow and answers too much on /big."""

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.json_response({"late": True})

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * 20_000, content_type="text/plain")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_get("/big", big)
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = listeners.bind()
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{listeners.port_of(sock)}"
    finally:
        await runner.cleanup()


async def publish_and_grant(
    network: LocalNetwork, name: str, backend: str, to: str = "E09000030", **settings: Any
) -> dict[str, Any]:
    dwp = network.gateways["dwp"]
    await publish(dwp, name, backend, **settings)
    result: dict[str, Any] = await grant(dwp, name, to, methods=[], paths=[])
    await wait_for_version(list(network.gateways.values()), int(result["directory"]))
    return result


# -- the answered call ----------------------------------------------------------------------


async def test_lookup_is_answered_signed_and_logged_on_both_sides(network: LocalNetwork) -> None:
    """A council officer's lookup is answered, labelled SYNTHETIC, and logged with its purpose
    on the council's and DWP's gateways, with the signed documents and sealed bodies."""
    council, dwp = network.gateways["tower-hamlets"], network.gateways["dwp"]
    status, body, headers = await call(council, f"/customers/{NINO}")
    assert status == 200, body
    data = json.loads(body)
    assert data["data_label"] == "SYNTHETIC" and data["customer"]["nino"] == NINO
    assert "X-Gcx-Error" not in headers
    call_id = headers["X-Gcx-Call-Id"]
    for gateway, side in ((council, "consumer"), (dwp, "provider")):
        rows = await asyncio.to_thread(call_rows, gateway, call_id)
        assert [r.side for r in rows] == [side]
        row = rows[0]
        assert (row.consumer, row.consumer_user, row.purpose) == (
            "E09000030",
            "benefits.officer",
            PURPOSE,
        )
        assert row.status == 200 and row.outcome == "answered"
        assert row.response_sha256 == crypto.sha256_hex(body)
        assert row.request_document and row.response_document
        assert row.sealed_bodies and body not in row.sealed_bodies  # the policy is "full"
        covered = await asyncio.to_thread(_audited_calls, gateway)
        assert [call_id, side, "answered", row_digest(row._asdict())] in covered


def _audited_calls(gateway: GatewayProcess) -> list[list[str]]:
    with audit_log(gateway.config.db_url) as log:
        return [c for e in log.entries("service.calls.logged") for c in e.details_dict["calls"]]


async def test_discovery_lists_what_the_organisation_may_call(network: LocalNetwork) -> None:
    """The council sees the DWP lookup and its OpenAPI; the police force sees nothing."""
    council, police = network.gateways["tower-hamlets"], network.gateways["met-police"]
    listed = await local_api(council, "GET", "/api/v1/services")
    names = [(s["provider"], s["name"]) for s in listed["services"]]
    assert ("DWP", "dwp-cis") in names
    openapi = await local_api(council, "GET", "/api/v1/services/DWP/dwp-cis/openapi.json")
    assert "/customers/{nino}" in openapi["paths"]
    assert (await local_api(police, "GET", "/api/v1/services"))["services"] == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gcx.cli.main", "service", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


async def test_cli_lists_and_calls(network: LocalNetwork) -> None:
    """gcx service list/call work against the council's gateway; a refusal exits 2 with its code."""
    council, police = network.gateways["tower-hamlets"], network.gateways["met-police"]
    auth = ["--api", council.config.api_url, "--token", council.token]
    listed = await asyncio.to_thread(_cli, "list", *auth)
    assert listed.returncode == 0 and "DWP/dwp-cis" in listed.stdout, listed.stderr
    answered = await asyncio.to_thread(
        _cli, "call", *auth, f"DWP/dwp-cis/customers/{NINO}", "--purpose", PURPOSE
    )
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["data_label"] == "SYNTHETIC"
    police_auth = ["--api", police.config.api_url, "--token", police.token]
    refused_call = await asyncio.to_thread(
        _cli, "call", *police_auth, f"DWP/dwp-cis/customers/{NINO}", "--purpose", PURPOSE
    )
    assert refused_call.returncode == 2 and "[service-forbidden]" in refused_call.stderr


async def test_operator_sees_services_and_rights(network: LocalNetwork) -> None:
    """Central shows the operator what DWP published and granted."""
    status, body, _ = await central_call(
        network, "GET", "/api/v1/services", token=network.operator_token
    )
    assert status == 200, body
    assert any(s["name"] == "dwp-cis" for s in body["services"])
    assert any(r["grantee"] == "org:E09000030" for r in body["rights"])


async def test_call_evidence_verifies_offline(network: LocalNetwork) -> None:
    """The evidence file for a call verifies against the anchor, on both sides."""
    from gcx.evidence import verify_call_evidence

    council, dwp = network.gateways["tower-hamlets"], network.gateways["dwp"]
    status, _, headers = await call(council, f"/customers/{NINO}")
    assert status == 200
    call_id = headers["X-Gcx-Call-Id"]
    anchor = crypto.Certificate.from_pem(network.anchor.read_bytes())
    for gateway in (council, dwp):
        url = f"{gateway.config.api_url}/api/v1/services/calls/{call_id}/evidence"
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                url, headers={"Authorization": f"Bearer {gateway.admin_token}"}
            ) as response,
        ):
            assert response.status == 200, await response.text()
            data = await response.read()
        verified = verify_call_evidence(data, anchor=anchor)
        assert verified.request.purpose == PURPOSE and verified.response.status == 200
        # Both gateways sign call documents in batches (a lone call is a batch of one).
        documents = json.loads(data)["call"]
        assert crypto.is_batch_signed(documents["request"].encode())
        assert crypto.is_batch_signed(documents["response"].encode())
    # The evidence command dispatches a call id to call evidence.
    out = dwp.home.parent / f"call-{call_id}.json"
    result = await asyncio.to_thread(
        gcx, "evidence", "export", call_id, "--home", str(dwp.home), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert verify_call_evidence(out.read_bytes(), anchor=anchor).request.id == call_id
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "gcx.cli.main",
            "service",
            "verify-evidence",
            str(out),
            "--anchor",
            str(network.anchor),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and '"ok": true' in result.stdout, result.stdout + result.stderr
    # `gcx evidence verify` recognises a call's evidence too, and refuses a changed byte.
    result = await asyncio.to_thread(
        gcx, "evidence", "verify", str(out), "--anchor", str(network.anchor)
    )
    assert result.returncode == 0 and '"ok": true' in result.stdout, result.stdout + result.stderr
    tampered = out.with_name("tampered.json")
    original = out.read_bytes()
    at = original.index(b'\\"payload\\":\\"') + 60  # inside the signed request
    flipped = b"A" if original[at : at + 1] != b"A" else b"B"
    tampered.write_bytes(original[:at] + flipped + original[at + 1 :])
    result = await asyncio.to_thread(
        gcx, "evidence", "verify", str(tampered), "--anchor", str(network.anchor)
    )
    assert result.returncode == 1, result.stdout + result.stderr


# -- refusals ----------------------------------------------------------------------------------


async def test_no_access_right_is_refused(network: LocalNetwork) -> None:
    """The police force holds no right to the DWP lookup: 403 service-forbidden."""
    police = network.gateways["met-police"]
    status, body, headers = await call(police, f"/customers/{NINO}", user=None)
    refused(status, body, headers, "service-forbidden", 403)


async def test_path_outside_the_grant_is_refused(network: LocalNetwork) -> None:
    """The council may GET /customers only: /samples and a dot-dot escape are refused."""
    council = network.gateways["tower-hamlets"]
    status, body, headers = await call(council, "/samples")
    refused(status, body, headers, "service-forbidden", 403)
    status, body, headers = await call(council, "/customers/%2e%2e/samples")
    assert status in (400, 403) and headers.get("X-Gcx-Error"), body
    status, body, headers = await call(council, f"/customers/{NINO}", method="DELETE")
    refused(status, body, headers, "service-forbidden", 403)


async def test_missing_or_overlong_purpose_is_refused(network: LocalNetwork) -> None:
    """The lookup requires a purpose (400 purpose-required); an overlong one is refused."""
    council = network.gateways["tower-hamlets"]
    status, body, headers = await call(council, f"/customers/{NINO}", purpose=None)
    refused(status, body, headers, "purpose-required", 400)
    status, body, headers = await call(council, f"/customers/{NINO}", purpose="p" * 600)
    refused(status, body, headers, "input-invalid", 400)


async def test_system_caller_without_user_is_refused(network: LocalNetwork) -> None:
    """A system token (no person behind it) must name the end user: 400 user-required."""
    council = network.gateways["tower-hamlets"]
    made = await asyncio.to_thread(
        gcx,
        "gateway",
        "token",
        "add",
        "--home",
        str(council.home),
        "--org",
        "E09000030",
        "--account",
        f"batch.{crypto.random_id(3)}",
        "--kind",
        "system",
        "--role",
        "system",
    )
    assert made.returncode == 0, made.stderr
    system = GatewayProcess(council.spec, council.home, council.config, token=made.stdout.strip())
    status, body, headers = await call(system, f"/customers/{NINO}", user=None)
    refused(status, body, headers, "user-required", 400)
    status, body, _ = await call(system, f"/customers/{NINO}", user="batch.job.7")
    assert status == 200, body


async def test_unknown_service_is_refused(network: LocalNetwork) -> None:
    """A service nobody published: 404 service-unknown."""
    council = network.gateways["tower-hamlets"]
    status, body, headers = await call(council, "/x", service="no-such-service")
    refused(status, body, headers, "service-unknown", 404)


async def test_backend_answers_are_not_gateway_errors(network: LocalNetwork) -> None:
    """The backend's own 404 comes through signed, with no X-Gcx-Error header."""
    council = network.gateways["tower-hamlets"]
    status, body, headers = await call(council, "/customers/ZZ123456A")
    assert status == 400 and "X-Gcx-Error" not in headers
    assert json.loads(body)["data_label"] == "SYNTHETIC"


@pytest.fixture
def closed_backend() -> Iterator[str]:
    """A URL nothing listens at: its port is bound here and never listened on, so it is
    refused for as long as the test runs, and no other process can start listening there."""
    with listeners.bind() as sock:
        yield f"http://127.0.0.1:{listeners.port_of(sock)}"


async def test_backend_down_slow_and_too_large(
    network: LocalNetwork, test_backend: str, closed_backend: str
) -> None:
    """Backend unreachable 502, too slow 504, answering too much 502, request too large 413."""
    suffix = crypto.random_id(3)
    await publish_and_grant(network, f"down-{suffix}", closed_backend)
    await publish_and_grant(
        network, f"edge-{suffix}", test_backend, timeout_seconds=1.0, max_body_bytes=4096
    )
    council = network.gateways["tower-hamlets"]
    status, body, headers = await call(council, "/x", service=f"down-{suffix}")
    refused(status, body, headers, "backend-unreachable", 502)
    status, body, headers = await call(council, "/slow", service=f"edge-{suffix}")
    refused(status, body, headers, "backend-timeout", 504)
    status, body, headers = await call(council, "/big", service=f"edge-{suffix}")
    refused(status, body, headers, "backend-answer-too-large", 502)
    status, body, headers = await call(
        council, "/echo", method="POST", data=b"y" * 10_000, service=f"edge-{suffix}"
    )
    refused(status, body, headers, "body-too-large", 413)
    status, body, _ = await call(
        council, "/echo", method="POST", data=b"y" * 100, service=f"edge-{suffix}"
    )
    assert status == 200 and body == b"y" * 100


async def test_rate_limit_answers_429_with_retry_after(
    network: LocalNetwork, test_backend: str
) -> None:
    """Past the provider's rate for the council: 429 rate-limited with Retry-After."""
    name = f"rl-{crypto.random_id(3)}"
    await publish_and_grant(network, name, test_backend, rate_per_second=0.5, burst=2)
    council = network.gateways["tower-hamlets"]
    results = [
        await call(council, "/echo", method="POST", data=b"a", service=name) for _ in range(3)
    ]
    assert [r[0] for r in results[:2]] == [200, 200]
    status, body, headers = results[2]
    refused(status, body, headers, "rate-limited", 429)
    assert int(headers["Retry-After"]) >= 1


async def test_revoked_right_is_refused_from_the_next_directory(
    network: LocalNetwork, test_backend: str
) -> None:
    """After DWP revokes the right, the call is refused once the new directory is held."""
    name = f"rv-{crypto.random_id(3)}"
    result = await publish_and_grant(network, name, test_backend)
    council, dwp = network.gateways["tower-hamlets"], network.gateways["dwp"]
    status, _, _ = await call(council, "/echo", method="POST", data=b"a", service=name)
    assert status == 200
    revoked = await local_api(
        dwp, "POST", f"/api/v1/services/grants/{result['right']['id']}/revoke", admin=True
    )
    await wait_for_version([council, dwp], int(revoked["directory"]))
    status, body, headers = await call(council, "/echo", method="POST", data=b"a", service=name)
    refused(status, body, headers, "service-forbidden", 403)


def _signed_request(home: Any, org: str, call: CallRequest) -> bytes:
    keys = load_keys(GatewayConfig.load(home)).organisations[org]
    return crypto.sign_document(
        REQUEST_TYPE, call.to_bytes(), keys.signing, crypto.key_id(keys.signing.public)
    )


async def test_request_hash_mismatch_is_refused(network: LocalNetwork) -> None:
    """A signed request whose body is not the one it names: 400 call-request-digest-mismatch."""
    import datetime as dt

    from .netutil import central_directory

    council, dwp = network.gateways["tower-hamlets"], network.gateways["dwp"]
    _, directory = await central_directory(network)
    entry = directory.gateway_named("dwp")
    assert entry is not None
    request = CallRequest(
        id=crypto.random_id(16),
        consumer="E09000030",
        consumer_gateway="tower-hamlets",
        user="benefits.officer",
        purpose=PURPOSE,
        provider="DWP",
        service="dwp-cis",
        method="GET",
        path=f"/customers/{NINO}",
        body_sha256=crypto.sha256_hex(b"what was signed"),
        body_size=15,
        created_at=dt.datetime.now(dt.UTC),
        directory_version=directory.version,
    )
    signed = await asyncio.to_thread(_signed_request, council.home, "E09000030", request)
    context = await asyncio.to_thread(peer_context, council, entry.certificate_fingerprint)
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.post(
            f"https://{dwp.config.peer_address}/peer/v1/calls",
            data=b"something else!",
            headers={"X-Gcx-Call-Request": signed.decode()},
        ) as response,
    ):
        body = await response.read()
        refused(response.status, body, dict(response.headers), "call-request-digest-mismatch", 400)


# -- tests that change the network for good ------------------------------------------------


@pytest.fixture
def own_network(fresh_network: NetworkFactory) -> Iterator[LocalNetwork]:
    net = fresh_network(DEMO_GATEWAYS[:2], name="own")
    run_async(set_up_dwp_lookup(net))
    yield net


async def test_revoked_caller_organisation_is_refused(own_network: LocalNetwork) -> None:
    """Once the council's gateway is revoked, DWP's gateway refuses its calls."""
    council = own_network.gateways["tower-hamlets"]
    status, _, _ = await call(council, f"/customers/{NINO}")
    assert status == 200
    async with own_network.operator() as operator:
        await operator.revoke_gateway("tower-hamlets", "test: approval withdrawn")
    _, body, _ = await central_call(own_network, "GET", "/api/v1/health")
    from .netutil import central_directory

    _, directory = await central_directory(own_network)
    await wait_for_version([own_network.gateways["dwp"]], directory.version)
    status, body, headers = await call(council, f"/customers/{NINO}")
    assert status == 403, body
    assert headers.get("X-Gcx-Error") in {"peer-revoked", "peer-unknown", "service-forbidden"}


async def test_response_changed_in_transit_is_detected(own_network: LocalNetwork) -> None:
    """A provider-side answer whose body is not the one signed: the council's gateway refuses
    it with 502 call-response-invalid and never hands the changed body on."""
    council, dwp = own_network.gateways["tower-hamlets"], own_network.gateways["dwp"]
    own_network.stop_process(dwp.process)
    keys = await asyncio.to_thread(lambda: load_keys(dwp.config).organisations["DWP"])
    config = dwp.config
    context = await asyncio.to_thread(
        crypto.server_context,
        config.home / "anchor.pem",
        config.home / "tls.pem",
        config.home / "tls.key",
        config.passphrase(),
        require_client_cert=True,
    )

    async def fake(request: web.Request) -> web.Response:
        import base64
        import datetime as dt

        signed = request.headers["X-Gcx-Call-Request"].encode()
        call_request = CallRequest.from_bytes(base64.b64decode(json.loads(signed)["payload"]))
        original = b'{"data_label":"SYNTHETIC","customer":{}}'
        response = CallResponse(
            call_id=call_request.id,
            request_sha256=crypto.sha256_hex(signed),
            provider="DWP",
            provider_gateway="dwp",
            service=call_request.service,
            status=200,
            headers={"content-type": "application/json"},
            body_sha256=crypto.sha256_hex(original),
            body_size=len(original),
            created_at=dt.datetime.now(dt.UTC),
            directory_version=call_request.directory_version,
        )
        document = crypto.sign_document(
            RESPONSE_TYPE, response.to_bytes(), keys.signing, crypto.key_id(keys.signing.public)
        )
        changed = original.replace(b"{}", b'{"x":1}')
        return web.Response(body=changed, headers={"X-Gcx-Call-Response": document.decode()})

    app = web.Application()
    app.router.add_post("/peer/v1/calls", fake)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.peer_host, config.peer_port))
    site = web.SockSite(runner, sock, ssl_context=context)
    await site.start()
    try:
        status, body, headers = await call(council, f"/customers/{NINO}")
        refused(status, body, headers, "call-response-invalid", 502)
        assert b'"x":1' not in body
    finally:
        await runner.cleanup()


async def test_cli_publishes_grants_and_revokes(network: LocalNetwork, test_backend: str) -> None:
    """gcx service publish/grant/revoke drive the provider's gateway; the right comes and goes."""
    dwp, council = network.gateways["dwp"], network.gateways["tower-hamlets"]
    auth = ["--api", dwp.config.api_url, "--token", dwp.admin_token]
    name = f"cli-{crypto.random_id(3)}"
    published = await asyncio.to_thread(
        _cli, "publish", *auth, "--name", name, "--backend", test_backend, "--no-requires-purpose"
    )
    assert published.returncode == 0, published.stderr
    granted = await asyncio.to_thread(
        _cli, "grant", *auth, name, "--to", "E09000030", "--method", "POST", "--path", "/echo"
    )
    assert granted.returncode == 0, granted.stderr
    right_id = granted.stdout.split()[1]
    version = int(granted.stdout.rsplit(" ", 1)[1])
    await wait_for_version([council, dwp], version)
    status, body, _ = await call(
        council, "/echo", method="POST", data=b"hi", service=name, purpose=None
    )
    assert status == 200 and body == b"hi"
    revoked = await asyncio.to_thread(_cli, "revoke", *auth, right_id)
    assert revoked.returncode == 0, revoked.stderr
    await wait_for_version([council, dwp], int(revoked.stdout.rsplit(" ", 1)[1]))
    status, body, headers = await call(
        council, "/echo", method="POST", data=b"hi", service=name, purpose=None
    )
    refused(status, body, headers, "service-forbidden", 403)
