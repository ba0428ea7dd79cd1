"""The one peer client over real mutual TLS: answers, refusals and each transport failure.

A small network is made here with gcx's own recipes (a root, a server gateway
certificate and a client gateway certificate, keys encrypted on disk), and a
real aiohttp server listens with the peer endpoint's TLS context; the client
pins the server's certificate as the directory would list it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from gcx import crypto, listeners
from gcx.errors import (
    PeerAnswerTooLarge,
    PeerRefused,
    PeerTimeout,
    PeerUnreachable,
    QuotaExceeded,
    RemoteRefusal,
)
from gcx.gateway.exchange.peer_client import (
    PeerAnswer,
    PeerClient,
    Timeouts,
    refusal_code,
    refusal_of,
)
from gcx.httpapi import refusal
from gcx.protocol import directory as dirproto

PASSPHRASE = b"peer-client-test-passphrase-0123456789"
NOW = dt.datetime.now(dt.UTC)
LIMIT = 1000


@dataclass(frozen=True)
class GatewayFiles:
    cert: Path
    key: Path
    certificate: crypto.Certificate


@dataclass(frozen=True)
class Network:
    anchor: Path
    server: GatewayFiles
    client: GatewayFiles


def _gateway(
    root_key: crypto.SigningKey, root: crypto.Certificate, folder: Path, name: str
) -> GatewayFiles:
    key = crypto.SigningKey.generate()
    request = crypto.parse_enrolment_request(
        crypto.build_enrolment_request(key, name, ["E09000030"])
    )
    certificate = crypto.issue_gateway_certificate(
        root_key, root, request, ["127.0.0.1"], NOW, dt.timedelta(days=1)
    )
    folder.mkdir()
    crypto.save_signing_key(folder / "tls.key", key, PASSPHRASE)
    (folder / "tls.pem").write_bytes(certificate.pem)
    return GatewayFiles(folder / "tls.pem", folder / "tls.key", certificate)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    root_key = crypto.SigningKey.generate()
    root = crypto.create_network_root(root_key, "peer-client-test", NOW, dt.timedelta(days=1))
    folder = tmp_path_factory.mktemp("peer-client")
    (folder / "anchor.pem").write_bytes(root.pem)
    return Network(
        folder / "anchor.pem",
        _gateway(root_key, root, folder / "server", "server-gw"),
        _gateway(root_key, root, folder / "client", "client-gw"),
    )


@dataclass
class Server:
    address: str
    seen: list[tuple[str, str, bytes, tuple[str, int]]]  # method, path, body, client address
    release: asyncio.Event


@pytest.fixture
async def server(network: Network) -> AsyncIterator[Server]:
    """A peer-like endpoint over mutual TLS, recording every request that reached it."""
    state = Server("", [], asyncio.Event())

    async def record(request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else ("", 0)
        state.seen.append((request.method, request.path, await request.read(), tuple(peer[:2])))

    async def echo(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(
            status=201,
            body=state.seen[-1][2],
            headers={"X-Seen-Type": request.headers.get("Content-Type", ""), "X-Extra": "yes"},
        )

    async def refuse(request: web.Request) -> web.Response:
        await record(request)
        return refusal(QuotaExceeded("Over the quota for this test."))

    async def proxy_page(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=502, text="<html>Bad gateway</html>", content_type="text/html")

    async def big(request: web.Request) -> web.StreamResponse:
        await record(request)
        if request.query.get("chunked"):
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for _ in range(20):
                await response.write(b"x" * 100)
            await response.write_eof()
            return response
        return web.Response(body=b"x" * 2 * LIMIT)

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await state.release.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_post("/refuse", refuse)
    app.router.add_get("/proxy", proxy_page)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    context = crypto.server_context(
        network.anchor,
        network.server.cert,
        network.server.key,
        PASSPHRASE,
        require_client_cert=True,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = listeners.bind(listen=True)
    state.address = f"127.0.0.1:{listeners.port_of(sock)}"
    await web.SockSite(runner, sock, ssl_context=context).start()
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()
        sock.close()


def entry(address: str, certificate: crypto.Certificate) -> dirproto.GatewayEntry:
    """The directory's entry for the server: its address and the certificate pinned."""
    return dirproto.GatewayEntry(
        name="server-gw",
        peer_address=address,
        certificate_fingerprint=certificate.fingerprint,
        certificate_serial=certificate.serial,
        certificate_not_after=certificate.not_after,
        organisations=("E09000030",),
    )


def pinned(network: Network) -> Callable[[dirproto.GatewayEntry], ssl.SSLContext]:
    """The client gateway's contexts, pinned to the certificate each entry lists."""

    def context_for(peer: dirproto.GatewayEntry) -> ssl.SSLContext:
        return crypto.pinned_client_context(
            network.anchor,
            network.client.cert,
            network.client.key,
            PASSPHRASE,
            frozenset({peer.certificate_fingerprint}),
        )

    return context_for


@pytest.fixture
async def client(network: Network) -> AsyncIterator[PeerClient]:
    async with PeerClient(pinned(network), pool_size=2) as peer_client:
        yield peer_client


@pytest.fixture
def closed_address() -> Iterator[str]:
    """An address nothing listens at for as long as the test runs."""
    sock: socket.socket = listeners.bind()
    try:
        yield f"127.0.0.1:{listeners.port_of(sock)}"
    finally:
        sock.close()


async def test_success_returns_status_headers_and_body_over_one_kept_connection(
    client: PeerClient, server: Server, network: Network
) -> None:
    """A request arrives with its method, path, body and headers; the answer comes back whole,
    and a second request to the same peer reuses the connection."""
    peer = entry(server.address, network.server.certificate)
    first = await client.request(
        "POST", peer, "/echo", b"hello", content_type="application/vnd.gcx.batch"
    )
    second = await client.request("POST", peer, "/echo", b"again", headers={"X-Gcx-Call": "1"})
    assert (first.status, first.body) == (201, b"hello")
    assert first.headers["x-seen-type"] == "application/vnd.gcx.batch"
    assert first.headers["X-Extra"] == "yes"
    assert second.headers["X-Seen-Type"] == "application/json"
    assert [s[:3] for s in server.seen] == [
        ("POST", "/echo", b"hello"),
        ("POST", "/echo", b"again"),
    ]
    assert server.seen[0][3] == server.seen[1][3]


async def test_gcx_refusal_is_passed_on_with_the_peers_code(
    client: PeerClient, server: Server, network: Network
) -> None:
    """A gcx refusal (body and X-Gcx-Error) becomes a RemoteRefusal carrying the peer's code."""
    answer = await client.request(
        "POST", entry(server.address, network.server.certificate), "/refuse"
    )
    error = refusal_of(answer)
    assert isinstance(error, RemoteRefusal)
    assert (error.remote_status, error.remote_code) == (413, "quota-exceeded")
    assert error.message == "Over the quota for this test."
    assert refusal_code(error) == "quota-exceeded"
    assert error.to_dict()["code"] == "quota-exceeded"


async def test_a_non_gcx_error_body_becomes_a_sentence(
    client: PeerClient, server: Server, network: Network
) -> None:
    """An answer that is not a gcx refusal (a proxy's page) is reported, not parsed as one."""
    answer = await client.request(
        "GET", entry(server.address, network.server.certificate), "/proxy"
    )
    error = refusal_of(answer, "Gateway server-gw")
    assert type(error) is PeerUnreachable
    assert refusal_code(error) == "peer-unreachable"
    assert "502" in error.message and error.message.startswith("Gateway server-gw")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"code": "quota-exceeded", "message": "m"}', {}),
        (b'{"code": "quota-exceeded", "message": "m"}', {"X-Gcx-Error": "other-code"}),
        (b'{"code": 7, "message": "m"}', {"X-Gcx-Error": "7"}),
        (b'{"code": "a", "message": "m", "extra": 1}', {"X-Gcx-Error": "a"}),
        (b'{"code": "a", "message": "m", "code": "b"}', {"X-Gcx-Error": "a"}),
        (b"[]", {"X-Gcx-Error": "a"}),
        (b"", {}),
    ],
)
def test_only_a_whole_gcx_refusal_is_believed(body: bytes, headers: dict[str, str]) -> None:
    """Without the matching header, with a wrong shape or duplicate keys, it is not a refusal."""
    assert type(refusal_of(PeerAnswer(400, headers, body))) is PeerUnreachable


def test_a_refusal_with_details_is_believed() -> None:
    """The optional details object does not stop a refusal being read."""
    body = b'{"code": "rate-limited", "message": "Slow down.", "details": {"retry": 3}}'
    error = refusal_of(PeerAnswer(429, {"X-Gcx-Error": "rate-limited"}, body))
    assert isinstance(error, RemoteRefusal) and error.remote_code == "rate-limited"


async def test_connection_refused_is_unreachable_and_worth_retrying(
    client: PeerClient, closed_address: str, network: Network
) -> None:
    """Nobody listening: PeerUnreachable (retry later), not a refusal."""
    with pytest.raises(PeerUnreachable) as caught:
        await client.request("POST", entry(closed_address, network.server.certificate), "/echo")
    assert not isinstance(caught.value, PeerTimeout)


async def test_a_server_with_another_certificate_is_refused_before_anything_is_sent(
    client: PeerClient, server: Server, network: Network
) -> None:
    """A server that chains to the network but is not the pinned gateway: PeerRefused
    (permanent), and the request never reaches it."""
    wrong = entry(server.address, network.client.certificate)
    with pytest.raises(PeerRefused):
        await client.request("POST", wrong, "/echo", b"secret")
    assert server.seen == []


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_answer_over_the_limit_is_refused(
    client: PeerClient, server: Server, network: Network, chunked: bool
) -> None:
    """Over the caller's cap, declared or streamed: PeerAnswerTooLarge, a permanent refusal."""
    path = "/big?chunked=1" if chunked else "/big"
    peer = entry(server.address, network.server.certificate)
    with pytest.raises(PeerAnswerTooLarge) as caught:
        await client.request("GET", peer, path, limit=LIMIT)
    assert isinstance(caught.value, PeerRefused)
    answer = await client.request("GET", peer, path, limit=4 * LIMIT)
    assert len(answer.body) == 2 * LIMIT


async def test_no_answer_in_time_is_a_timeout_worth_retrying(
    client: PeerClient, server: Server, network: Network
) -> None:
    """A peer that accepts the request and never answers: PeerTimeout, a PeerUnreachable."""
    with pytest.raises(PeerTimeout) as caught:
        await client.request(
            "GET",
            entry(server.address, network.server.certificate),
            "/slow",
            timeouts=Timeouts(total=0.5, connect=0.5),
        )
    assert isinstance(caught.value, PeerUnreachable)
    assert [s[1] for s in server.seen] == ["/slow"]


async def test_faults_see_each_request_before_it_is_sent(server: Server, network: Network) -> None:
    """A test's fault hook may change the body the peer receives (production passes none)."""

    class Shout:
        async def outgoing(self, method: str, path: str, body: bytes) -> bytes:
            return body.upper()

    async with PeerClient(pinned(network), faults=Shout()) as client:
        answer = await client.request(
            "POST", entry(server.address, network.server.certificate), "/echo", b"quiet"
        )
    assert answer.body == b"QUIET"
