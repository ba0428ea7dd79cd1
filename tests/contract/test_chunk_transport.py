"""Chunk bodies over blocking mutual TLS (gateway/transfers/chunk_transport.py), against a real
server: the same pinning, answers and failure mapping as the one peer client.

The small network (root, server and client gateway certificates) is the peer
client's contract test's own; the server here takes PUTs as the chunk
endpoint does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from tests.contract.test_peer_client import PASSPHRASE, Network, entry, pinned
from tests.contract.test_peer_client import closed_address as closed_address
from tests.contract.test_peer_client import network as network

from gcx import crypto, listeners
from gcx.errors import (
    ChunkDigestMismatch,
    PeerAnswerTooLarge,
    PeerRefused,
    PeerTimeout,
    PeerUnreachable,
    RemoteRefusal,
)
from gcx.gateway.exchange.peer_client import Timeouts, refusal_of
from gcx.gateway.transfers.chunk_transport import ANSWER_LIMIT, ChunkTransport
from gcx.httpapi import refusal


@dataclass
class Server:
    address: str
    seen: list[tuple[str, bytes, str, tuple[str, int]]]  # path, body, type, client address
    release: asyncio.Event


@pytest.fixture
async def server(network: Network) -> AsyncIterator[Server]:
    state = Server("", [], asyncio.Event())

    async def chunk(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else ("", 0)
        body = await request.read()
        state.seen.append((request.path, body, request.content_type, tuple(peer[:2])))
        name = request.match_info["name"]
        if name == "refused":
            return refusal(ChunkDigestMismatch("Chunk 3 does not match."))
        if name == "big":
            return web.Response(status=200, body=b"x" * (ANSWER_LIMIT + 1))
        if name == "slow":
            await state.release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_put("/chunks/{name}", chunk)
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


@pytest.fixture
def transport(network: Network) -> Iterator[ChunkTransport]:
    chunks = ChunkTransport(pinned(network), threads=2, timeouts=Timeouts(total=5, connect=5))
    try:
        yield chunks
    finally:
        chunks.close()


async def test_chunks_arrive_whole_over_one_kept_connection(
    server: Server, transport: ChunkTransport, network: Network
) -> None:
    """Each PUT arrives with its body and type, answered 204; the second reuses the connection."""
    peer = entry(server.address, network.server.certificate)
    first = await asyncio.to_thread(transport.put, peer, "/chunks/0", b"a" * 100_000)
    second = await asyncio.to_thread(transport.put, peer, "/chunks/1", b"b")
    assert (first.status, second.status) == (204, 204)
    assert [(s[0], s[1], s[2]) for s in server.seen] == [
        ("/chunks/0", b"a" * 100_000, "application/octet-stream"),
        ("/chunks/1", b"b", "application/octet-stream"),
    ]
    assert server.seen[0][3] == server.seen[1][3]


async def test_a_refusal_is_read_with_the_peers_code(
    server: Server, transport: ChunkTransport, network: Network
) -> None:
    """A gcx refusal comes back whole, its header found whatever its case."""
    peer = entry(server.address, network.server.certificate)
    answer = await asyncio.to_thread(transport.put, peer, "/chunks/refused", b"c")
    error = refusal_of(answer)
    assert isinstance(error, RemoteRefusal)
    assert error.remote_code == "chunk-digest-mismatch"


async def test_a_server_with_another_certificate_is_refused_before_anything_is_sent(
    server: Server, transport: ChunkTransport, network: Network
) -> None:
    """A server that chains to the network but is not the pinned gateway: PeerRefused, and no
    chunk reaches it."""
    wrong = entry(server.address, network.client.certificate)
    with pytest.raises(PeerRefused):
        await asyncio.to_thread(transport.put, wrong, "/chunks/0", b"secret")
    assert server.seen == []


async def test_nobody_listening_is_unreachable(
    transport: ChunkTransport, closed_address: str, network: Network
) -> None:
    """Connection refused: PeerUnreachable, worth retrying, not a timeout or a refusal."""
    with pytest.raises(PeerUnreachable) as caught:
        await asyncio.to_thread(
            transport.put, entry(closed_address, network.server.certificate), "/chunks/0", b"c"
        )
    assert not isinstance(caught.value, PeerTimeout)


async def test_an_answer_over_the_cap_is_refused(
    server: Server, transport: ChunkTransport, network: Network
) -> None:
    """A chunk is answered in a few hundred bytes; more than the cap is PeerAnswerTooLarge."""
    peer = entry(server.address, network.server.certificate)
    with pytest.raises(PeerAnswerTooLarge):
        await asyncio.to_thread(transport.put, peer, "/chunks/big", b"c")


async def test_no_answer_in_time_is_a_timeout(server: Server, network: Network) -> None:
    """A peer that takes the chunk and never answers: PeerTimeout, a PeerUnreachable."""
    chunks = ChunkTransport(pinned(network), threads=1, timeouts=Timeouts(total=0.5, connect=0.5))
    try:
        with pytest.raises(PeerTimeout) as caught:
            await asyncio.to_thread(
                chunks.put, entry(server.address, network.server.certificate), "/chunks/slow", b"c"
            )
    finally:
        chunks.close()
    assert isinstance(caught.value, PeerUnreachable)
