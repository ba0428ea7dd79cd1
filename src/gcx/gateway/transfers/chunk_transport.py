"""Chunk bodies to a peer over blocking mutual-TLS sockets in threads.

Every other request to a peer goes through the one peer client
(:mod:`gcx.gateway.exchange.peer_client`); only the ``PUT`` of a transfer's
chunks comes here, because that is where the bytes are. asyncio's TLS
(aiohttp over ``SSLProtocol``) costs 2.3 to 2.9 ms of CPU per MiB on the
sending side, nearly all of it in the event loop's thread, while the ``ssl``
module used directly on a socket costs about a quarter of that and releases
the GIL while it encrypts, so several chunks travel at once on two cores.
Each sending thread reads its chunk from disk and sends it in one trip.

The trust rules are the peer client's, not a second set: the TLS context is
the one :func:`gcx.gateway.exchange.peer_client.pinned_context` builds (our
certificate, the network's anchor, TLS 1.3, the host name checked), and, as
that client does during the handshake, the server's certificate must be
exactly the one the current directory lists for the gateway, checked before
a byte of the request is sent. Failures are mapped as the peer client maps
them: :class:`~gcx.errors.PeerRefused` for a server that is not the gateway
named, :class:`~gcx.errors.PeerTimeout` and
:class:`~gcx.errors.PeerUnreachable` for what may work later. Answers are
read under a small cap (a chunk is answered 204, or with a refusal).

Connections are kept per peer and certificate and reused; a chunk ``PUT`` is
idempotent, so one that fails on a reused connection (the server closed it
while idle) is sent once more on a fresh one.
"""

from __future__ import annotations

import http.client
import queue
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from gcx import crypto
from gcx.errors import PeerAnswerTooLarge, PeerRefused, PeerTimeout, PeerUnreachable
from gcx.gateway.exchange.peer_client import DEFAULT_TIMEOUTS, PeerAnswer, Timeouts
from gcx.protocol import directory as dirproto

# A chunk's answer is 204 or a refusal of a few hundred bytes.
ANSWER_LIMIT = 64 * 1024
# Idle connections kept per peer (more are made when more chunks are in flight).
IDLE_PER_PEER = 16

ContextFor = Callable[[dirproto.GatewayEntry], ssl.SSLContext]


class _Connection(http.client.HTTPSConnection):
    """An HTTPS connection that checks the server's certificate against the pinned one."""

    def __init__(
        self, host: str, port: int, context: ssl.SSLContext, pinned: str, timeouts: Timeouts
    ) -> None:
        super().__init__(host, port, timeout=timeouts.connect, context=context, blocksize=1 << 20)
        self._pinned = pinned
        self._total = timeouts.total

    def connect(self) -> None:
        super().connect()
        assert isinstance(self.sock, ssl.SSLSocket)
        if crypto.peer_certificate_fingerprint(self.sock) != self._pinned:
            self.close()
            raise ssl.SSLCertVerificationError(
                "the server's certificate is not the one the directory lists for this peer"
            )
        self.sock.settimeout(self._total)


class ChunkTransport:
    """Blocking chunk PUTs to peers, pooled per peer; :meth:`put` runs in :attr:`executor`."""

    def __init__(
        self, context_for: ContextFor, threads: int, timeouts: Timeouts = DEFAULT_TIMEOUTS
    ) -> None:
        self._context_for = context_for
        self._timeouts = timeouts
        self._contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        self._idle: dict[tuple[str, str], queue.SimpleQueue[_Connection]] = {}
        # The sending threads share the tables above; the lock keeps them whole.
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gcx-chunks")

    def _context(self, peer: dirproto.GatewayEntry) -> ssl.SSLContext:
        key = (peer.name, peer.certificate_fingerprint)
        with self._lock:
            return self._context_locked(peer, key)

    def _context_locked(self, peer: dirproto.GatewayEntry, key: tuple[str, str]) -> ssl.SSLContext:
        context = self._contexts.get(key)
        if context is None:
            context = self._context_for(peer)
            # A gateway whose certificate changed: its old connections are never used again.
            for old in [k for k in self._contexts if k[0] == peer.name and k != key]:
                self._contexts.pop(old, None)
                self._drain(self._idle.pop(old, None))
            self._contexts[key] = context
        return context

    @staticmethod
    def _drain(idle: queue.SimpleQueue[_Connection] | None) -> None:
        while idle is not None and not idle.empty():
            idle.get_nowait().close()

    def _take(self, peer: dirproto.GatewayEntry) -> tuple[_Connection, bool]:
        """A connection to ``peer`` and whether it was used before."""
        with self._lock:
            idle = self._idle.setdefault(
                (peer.name, peer.certificate_fingerprint), queue.SimpleQueue()
            )
        try:
            return idle.get_nowait(), True
        except queue.Empty:
            pass
        host, _, port = peer.peer_address.rpartition(":")
        fresh = _Connection(
            host, int(port), self._context(peer), peer.certificate_fingerprint, self._timeouts
        )
        return fresh, False

    def _give_back(self, peer: dirproto.GatewayEntry, connection: _Connection) -> None:
        idle = self._idle.get((peer.name, peer.certificate_fingerprint))
        if idle is None or idle.qsize() >= IDLE_PER_PEER:
            connection.close()
        else:
            idle.put(connection)

    def put(
        self,
        peer: dirproto.GatewayEntry,
        path: str,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> PeerAnswer:
        """PUT ``body`` (a chunk) at ``path`` on ``peer``; blocking, so call it in a thread."""
        for _ in range(2):
            connection, reused = self._take(peer)
            try:
                answer = self._send(connection, path, body, headers or {})
            except ssl.SSLCertVerificationError as exc:
                connection.close()
                raise PeerRefused(
                    f"The server at {peer.peer_address} is not the gateway the directory names "
                    f"({peer.name}); the connection was dropped before anything was sent."
                ) from exc
            except TimeoutError as exc:
                connection.close()
                raise PeerTimeout(
                    f"Gateway {peer.name} at {peer.peer_address} did not answer within "
                    f"{self._timeouts.total:g} seconds."
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if reused:
                    continue  # closed by the server while idle: once more, on a new connection
                raise PeerUnreachable(
                    f"Gateway {peer.name} at {peer.peer_address} could not be reached: "
                    f"{type(exc).__name__}."
                ) from exc
            except BaseException:
                connection.close()
                raise
            self._give_back(peer, connection)
            return answer
        raise AssertionError("unreachable: a fresh connection either answers or raises")

    @staticmethod
    def _send(
        connection: _Connection, path: str, body: bytes, headers: dict[str, str]
    ) -> PeerAnswer:
        connection.request(
            "PUT",
            path,
            body=body,
            headers={"Content-Type": "application/octet-stream", **headers},
        )
        response = connection.getresponse()
        data = response.read(ANSWER_LIMIT + 1)
        if len(data) > ANSWER_LIMIT:
            raise PeerAnswerTooLarge(
                f"The peer gateway answered a chunk with more than {ANSWER_LIMIT} bytes."
            )
        if not response.isclosed():
            # What was not read (nothing, for a well-formed answer) must not be left
            # in the connection for the next request.
            response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return PeerAnswer(response.status, _Headers(headers), data)

    def close(self) -> None:
        with self._lock:
            for idle in self._idle.values():
                self._drain(idle)
            self._idle.clear()
        self.executor.shutdown(wait=False)


class _Headers(dict[str, str]):
    """Answer headers looked up case-insensitively, as aiohttp's are."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)
