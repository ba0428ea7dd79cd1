"""A TCP server that performs the TLS handshake itself before handing over to HTTP.

Why not let the HTTP server do TLS? Because a failed handshake (no client
certificate, a self-signed one, one from another network) then vanishes
inside the event loop's SSL machinery, and the issue we serve asks for every
refused connection to be audited. Here the handshake is an awaited step
(``loop.start_tls``), so its failure is an exception we can classify, log and
audit, and success hands the TLS transport to the aiohttp protocol as if
aiohttp had accepted it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

log = logging.getLogger("gcx.gateway.tls")

HANDSHAKE_TIMEOUT = 10.0

RefusalHook = Callable[[str, str, str], None]  # (peer address, code, sentence)


def classify_handshake_error(exc: BaseException) -> tuple[str, str]:
    """A stable code and a sentence for a failed peer handshake."""
    reason = getattr(exc, "reason", "") or ""
    text = f"{reason} {exc}".upper()
    if "PEER_DID_NOT_RETURN_A_CERTIFICATE" in text or "CERTIFICATE REQUIRED" in text:
        return (
            "peer-certificate-missing",
            "The peer presented no client certificate; gateways must use their network "
            "certificate.",
        )
    if "CERTIFICATE_VERIFY_FAILED" in text or "UNKNOWN_CA" in text or "VERIFY" in text:
        return (
            "peer-certificate-untrusted",
            "The peer's certificate was not issued by this network's root.",
        )
    if isinstance(exc, TimeoutError):
        return ("tls-handshake-timeout", "The peer did not complete the TLS handshake in time.")
    if "VERSION" in text or "PROTOCOL" in text:
        return ("tls-version-refused", "The peer did not offer TLS 1.3.")
    return ("tls-handshake-failed", "The TLS handshake with the peer failed.")


class _Gate(asyncio.Protocol):
    """The TLS layer's application protocol: it forwards to the HTTP protocol once made.

    Bytes decrypted between the end of the handshake and the moment the HTTP
    protocol exists (a TLS 1.3 client sends its request right behind its
    Finished message) are buffered and replayed, never dropped.
    """

    def __init__(
        self,
        app_protocol_factory: Callable[[], Any],
        context: ssl.SSLContext,
        on_refused: RefusalHook,
    ) -> None:
        self._factory = app_protocol_factory
        self._context = context
        self._on_refused = on_refused
        self._app: Any = None
        self._early: list[bytes] = []
        self._early_eof = False
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not derive from
        # asyncio.Transport, though they implement it.
        transport = cast(asyncio.Transport, transport)
        # Stop reading until start_tls takes over, so that no byte of the
        # ClientHello can reach this protocol instead of the TLS layer.
        transport.pause_reading()
        self._task = asyncio.get_running_loop().create_task(self._upgrade(transport))

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        address = f"{peer[0]}:{peer[1]}" if peer else "unknown"
        try:
            tls = await loop.start_tls(
                transport,
                self,
                self._context,
                server_side=True,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            )
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
            transport.abort()
            code, sentence = classify_handshake_error(exc)
            try:
                self._on_refused(address, code, sentence)
            except Exception:
                log.exception("could not record a refused connection")
            return
        if tls is None:  # the connection closed during the handshake
            return
        app = self._factory()
        app.connection_made(tls)
        self._app = app
        for chunk in self._early:
            app.data_received(chunk)
        self._early.clear()
        if self._early_eof:
            app.eof_received()

    def data_received(self, data: bytes) -> None:
        if self._app is None:
            self._early.append(data)
        else:
            self._app.data_received(data)

    def eof_received(self) -> bool | None:
        if self._app is None:
            self._early_eof = True
            return None
        result: bool | None = self._app.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        if self._app is not None:
            self._app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._app is not None:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        if self._app is not None:
            self._app.resume_writing()


async def serve_tls(
    app_protocol_factory: Callable[[], Any],
    context: ssl.SSLContext,
    host: str,
    port: int,
    on_refused: RefusalHook,
    *,
    sock: socket.socket | None = None,
) -> asyncio.Server:
    """Serve on ``host:port``, or on ``sock`` when one was handed down (gcx.listeners)."""
    loop = asyncio.get_running_loop()

    def gate() -> _Gate:
        return _Gate(app_protocol_factory, context, on_refused)

    if sock is not None:
        return await loop.create_server(gate, sock=sock)
    return await loop.create_server(gate, host, port, reuse_address=True)
