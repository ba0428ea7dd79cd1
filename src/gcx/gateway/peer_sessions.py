"""Keep-alive HTTPS sessions to peer gateways, shared by every worker that calls them.

Message delivery, bulk transfer and service calls all reach peers over mutual
TLS; making a TLS session per request would cost a handshake each time, so
each caller keeps one pooled session per peer, pinned to the certificate the
current directory lists for it.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp

from gcx.errors import PeerRefused, PeerUnreachable
from gcx.gateway.peer import peer_client_context
from gcx.gateway.runtime import Gateway
from gcx.httpapi import run_sync
from gcx.protocol import directory as dirproto


class PeerSessions:
    """One keep-alive HTTPS session per peer gateway, pinned to its directory certificate.

    ``pool_size`` bounds the connections to each peer: message delivery
    batches envelopes over a few, synchronous service calls need more.
    """

    def __init__(self, gateway: Gateway, *, pool_size: int = 8) -> None:
        self.gateway = gateway
        self.pool_size = pool_size
        self._sessions: dict[tuple[str, str], aiohttp.ClientSession] = {}
        # Many requests arrive at once when traffic starts; they must share the
        # one session made for a peer, not each make their own.
        self._making = asyncio.Lock()

    async def session(self, entry: dirproto.GatewayEntry) -> aiohttp.ClientSession:
        key = (entry.name, entry.certificate_fingerprint)
        session = self._sessions.get(key)
        if session is not None and not session.closed:
            return session
        async with self._making:
            session = self._sessions.get(key)
            if session is None or session.closed:
                context: ssl.SSLContext = await run_sync(peer_client_context, self.gateway, entry)
                session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=context, limit=self.pool_size),
                    timeout=aiohttp.ClientTimeout(total=300, connect=10),
                )
                # A gateway whose certificate changed gets a fresh session; close the old one.
                for old_key in [k for k in self._sessions if k[0] == entry.name and k != key]:
                    await self._sessions.pop(old_key).close()
                self._sessions[key] = session
        return session

    async def post(
        self, entry: dirproto.GatewayEntry, path: str, body: bytes, content_type: str
    ) -> tuple[int, bytes]:
        host, _, port = entry.peer_address.rpartition(":")
        session = await self.session(entry)
        try:
            async with session.post(
                f"https://{host}:{port}{path}", data=body, headers={"Content-Type": content_type}
            ) as response:
                return response.status, await response.read()
        except aiohttp.ClientConnectorCertificateError as exc:
            raise PeerRefused(
                f"The server at {entry.peer_address} is not the gateway the directory names."
            ) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PeerUnreachable(
                f"Gateway {entry.name} at {entry.peer_address} could not be reached: "
                f"{type(exc).__name__}."
            ) from exc

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
