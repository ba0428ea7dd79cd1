"""The one peer client: every request this gateway makes to another gateway goes through here.

Message delivery, bulk transfer, service calls, ping, recall forwarding and
read receipts all reach peers the same way, so the mechanics live once:

* **A pinned session pool per peer.** Each peer gateway gets one keep-alive
  HTTPS session over mutual TLS: we present our gateway certificate, and the
  server must present exactly the certificate the current directory lists for
  that gateway (:func:`gcx.crypto.pinned_client_context`), checked during the
  handshake, before a byte of the request is sent. A TLS session per request
  would cost a handshake each time. When the directory lists a new certificate
  for a gateway, its old session is closed and a new one made.
* **One** :meth:`PeerClient.request`, returning a :class:`PeerAnswer` (status,
  headers, body) read under a size cap, so a peer cannot make us hold an
  answer of any size in memory.
* **One mapping of transport failures**, to two kinds of error:
  :class:`~gcx.errors.PeerUnreachable` (and its :class:`~gcx.errors.PeerTimeout`)
  when trying again later may work (refused, reset, timed out), and
  :class:`~gcx.errors.PeerRefused` when the same request to the same pinned
  certificate never will (the server is not the gateway the directory names;
  :class:`~gcx.errors.PeerAnswerTooLarge`). The workers retry both until the
  work expires, since a new directory may fix a certificate mismatch; service
  calls and ping report them to the caller.
* **One refusal parser**, :func:`refusal_of`: a gcx refusal (the body
  ``{"code", "message", "details"?}`` with the same code in ``X-Gcx-Error``)
  becomes a :class:`~gcx.errors.RemoteRefusal` carrying the peer's own code;
  any other unsuccessful answer becomes a sentence saying what came back.

Callers differ only in parameters: the pool size (service calls keep more
connections per peer than the workers), the timeouts (a service call's
follow the service's own; a ping's are short) and the size cap.

Tests may pass ``faults`` (a :class:`PeerFaults`) to change or delay what is
sent; production wiring never does (see ``tests/integration/fault_gateway.py``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from gcx import crypto
from gcx.errors import (
    GcxError,
    PeerAnswerTooLarge,
    PeerRefused,
    PeerTimeout,
    PeerUnreachable,
    RemoteRefusal,
)
from gcx.gateway.runtime import Gateway
from gcx.httpapi import read_limited, run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol import strict_json

ERROR_HEADER = "X-Gcx-Error"
# Large enough for a batch of a hundred envelopes' receipts; a peer that
# answers more than this is not speaking the protocol.
DEFAULT_ANSWER_LIMIT = 16 * 1024 * 1024
DEFAULT_POOL_SIZE = 8


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed for a whole request (connect, send, answer) and for connecting."""

    total: float
    connect: float


# A worker's request may carry a batch of envelopes or a 1 MiB chunk over a
# slow link; only a peer that has stopped answering should take this long.
DEFAULT_TIMEOUTS = Timeouts(total=300, connect=10)


@dataclass(frozen=True)
class PeerAnswer:
    """What a peer answered: its status, its headers (case-insensitive) and its body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class PeerFaults(Protocol):
    """A test-only hook that sees each request before it is sent (never set in production)."""

    async def outgoing(self, method: str, path: str, body: bytes) -> bytes:
        """The body to send instead of ``body``; may also wait, to widen a window."""
        ...


ContextFor = Callable[[dirproto.GatewayEntry], ssl.SSLContext]


def pinned_context(gateway: Gateway, entry: dirproto.GatewayEntry) -> ssl.SSLContext:
    """Mutual TLS to one peer, pinned to the certificate the directory lists for it."""
    home = gateway.config.home
    return crypto.pinned_client_context(
        home / "anchor.pem",
        home / "tls.pem",
        home / "tls.key",
        gateway.config.passphrase(),
        frozenset({entry.certificate_fingerprint}),
    )


class PeerClient:
    """Requests to peer gateways over pinned, pooled mutual-TLS sessions.

    ``context_for`` makes the TLS context for a peer (loading our key, so it is
    run off the event loop); :meth:`for_gateway` gives the one gcx uses.
    ``pool_size`` bounds the connections to each peer.
    """

    def __init__(
        self,
        context_for: ContextFor,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        faults: PeerFaults | None = None,
    ) -> None:
        self._context_for = context_for
        self.pool_size = pool_size
        self.timeouts = timeouts
        self._faults = faults
        self._sessions: dict[tuple[str, str], aiohttp.ClientSession] = {}
        # Many requests arrive at once when traffic starts; they must share the
        # one session made for a peer, not each make their own.
        self._making = asyncio.Lock()

    @classmethod
    def for_gateway(
        cls,
        gateway: Gateway,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        faults: PeerFaults | None = None,
    ) -> PeerClient:
        """The client ``gateway`` uses: its own certificate, pinned to each peer's."""
        return cls(
            lambda entry: pinned_context(gateway, entry),
            pool_size=pool_size,
            timeouts=timeouts,
            faults=faults,
        )

    async def __aenter__(self) -> PeerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _session(self, entry: dirproto.GatewayEntry) -> aiohttp.ClientSession:
        key = (entry.name, entry.certificate_fingerprint)
        session = self._sessions.get(key)
        if session is not None and not session.closed:
            return session
        async with self._making:
            session = self._sessions.get(key)
            if session is None or session.closed:
                context = await run_sync(self._context_for, entry)
                session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=context, limit=self.pool_size),
                    # Gateways keep no state from a peer between requests.
                    cookie_jar=aiohttp.DummyCookieJar(),
                    timeout=_client_timeout(self.timeouts),
                )
                # A gateway whose certificate changed gets a fresh session; close the old one.
                for old_key in [k for k in self._sessions if k[0] == entry.name and k != key]:
                    await self._sessions.pop(old_key).close()
                self._sessions[key] = session
        return session

    async def request(
        self,
        method: str,
        peer: dirproto.GatewayEntry,
        path: str,
        body: bytes = b"",
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        limit: int = DEFAULT_ANSWER_LIMIT,
    ) -> PeerAnswer:
        """Send one request to ``peer`` and read its whole answer, of at most ``limit`` bytes.

        Raises :class:`~gcx.errors.PeerUnreachable` (or :class:`~gcx.errors.PeerTimeout`)
        if it may work later, :class:`~gcx.errors.PeerRefused` (or
        :class:`~gcx.errors.PeerAnswerTooLarge`) if it will not. An answer of
        any status is returned, not raised: see :func:`refusal_of`.
        """
        if self._faults is not None:
            body = await self._faults.outgoing(method, path, body)
        host, _, port = peer.peer_address.rpartition(":")
        session = await self._session(peer)
        sent_headers = {"Content-Type": content_type, **(headers or {})}
        options: dict[str, Any] = {}
        if timeouts is not None:
            options["timeout"] = _client_timeout(timeouts)
        try:
            async with session.request(
                method, f"https://{host}:{port}{path}", data=body, headers=sent_headers, **options
            ) as response:
                data = await read_limited(
                    response.content,
                    response.content_length,
                    limit,
                    lambda: PeerAnswerTooLarge(
                        f"Gateway {peer.name} answered more than the limit of {limit} bytes."
                    ),
                )
                return PeerAnswer(response.status, response.headers, data)
        except aiohttp.ClientConnectorCertificateError as exc:
            raise PeerRefused(
                f"The server at {peer.peer_address} is not the gateway the directory names "
                f"({peer.name}); the connection was dropped before anything was sent."
            ) from exc
        except TimeoutError as exc:
            total = (timeouts or self.timeouts).total
            raise PeerTimeout(
                f"Gateway {peer.name} at {peer.peer_address} did not answer within "
                f"{total:g} seconds."
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise PeerUnreachable(
                f"Gateway {peer.name} at {peer.peer_address} could not be reached: "
                f"{type(exc).__name__}."
            ) from exc

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


def _client_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=timeouts.total, connect=timeouts.connect)


def refusal_of(answer: PeerAnswer, peer: str = "The peer gateway") -> GcxError:
    """Why an unsuccessful answer was unsuccessful, as an error to raise or record.

    A gcx refusal, a JSON object ``{"code", "message", "details"?}`` whose code
    ``X-Gcx-Error`` repeats, is the peer's own word: a
    :class:`~gcx.errors.RemoteRefusal` with its code and message. Anything else
    (a proxy's page, an empty body, a success where a refusal was due) is not a
    refusal gcx can read, and becomes :class:`~gcx.errors.PeerUnreachable`
    with a sentence saying what came back.
    """
    try:
        data = strict_json.loads(answer.body)
    except ValueError:
        data = None
    if (
        isinstance(data, dict)
        and set(data) <= {"code", "message", "details"}
        and isinstance(data.get("code"), str)
        and isinstance(data.get("message"), str)
        and isinstance(data.get("details", {}), dict)
        and answer.headers.get(ERROR_HEADER) == data["code"]
    ):
        return RemoteRefusal(answer.status, data["code"], data["message"])
    return PeerUnreachable(
        f"{peer} answered HTTP {answer.status} without a gcx refusal "
        f"({len(answer.body)} bytes of {answer.headers.get('Content-Type', 'no type')})."
    )


def refusal_code(error: GcxError) -> str:
    """The code to act on: a peer's own code for a refusal it sent, else the error's."""
    return error.remote_code if isinstance(error, RemoteRefusal) else error.code
