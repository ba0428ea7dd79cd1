"""Reaching an organisation's own backend systems: a port, its HTTP adapter, and the registry.

The provider side of a service call ends in one HTTP request to the system
that actually answers (a benefits record system, a school meals checker).
That request goes through a :class:`BackendClient`, so the provider's use case
does not depend on an HTTP library and a faster client can replace
:class:`HttpBackendClient` without touching it. The adapter is chosen in one
place, :meth:`gcx.gateway.runtime.Gateway.open`.

The adapter maps its library's failures to the gcx errors a caller sees
(:class:`~gcx.errors.BackendTimeout`, :class:`~gcx.errors.BackendUnreachable`,
:class:`~gcx.errors.BackendAnswerTooLarge`); nothing of the library escapes it.

:class:`BackendRegistry` holds which backend URL serves each published
service, read from the database and reloaded periodically, so a service
published through one replica is served by every replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import sqlalchemy as sa

from gcx.errors import BackendAnswerTooLarge, BackendTimeout, BackendUnreachable
from gcx.gateway.services.common import Backend, read_capped
from gcx.httpapi import run_sync
from gcx.store import Database
from gcx.store.schema_services import service_backends

log = logging.getLogger("gcx.gateway.services.calls")

BACKEND_RELOAD_SECONDS = 15.0
# Connections kept to all backends together; calls beyond wait for one.
CONNECTION_LIMIT = 256


@dataclass(frozen=True)
class BackendAnswer:
    """A backend's answer: status, headers (a case-insensitive mapping) and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class BackendClient(Protocol):
    """The port: one HTTP request to a backend, its whole answer read under a size cap."""

    async def start(self) -> None:
        """Open what the client needs (connection pools); called before the first call."""
        ...

    async def close(self) -> None: ...

    async def call(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes,
        timeout_seconds: float,
        limit: int,
        name: str,
    ) -> BackendAnswer:
        """Send one request and read its answer of at most ``limit`` bytes.

        ``name`` (``provider/service``) is for the sentences of the errors raised:
        :class:`~gcx.errors.BackendTimeout` past ``timeout_seconds``,
        :class:`~gcx.errors.BackendAnswerTooLarge` past ``limit``,
        :class:`~gcx.errors.BackendUnreachable` for any other failure. A redirect
        is returned as an answer, never followed.
        """
        ...


class HttpBackendClient:
    """:class:`BackendClient` over one aiohttp session with kept-alive connections."""

    def __init__(self, connection_limit: int = CONNECTION_LIMIT) -> None:
        self._connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connection_limit, ttl_dns_cache=300),
                # One session serves every consumer's calls: a cookie a backend
                # sets for one call must never ride along on another's.
                cookie_jar=aiohttp.DummyCookieJar(),
                # Bodies are carried as the backend sent them, compressed or not.
                auto_decompress=False,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes,
        timeout_seconds: float,
        limit: int,
        name: str,
    ) -> BackendAnswer:
        session = self._session
        if session is None:
            raise BackendUnreachable(f"{name} has no backend configured on this gateway.")
        try:
            async with session.request(
                method,
                url,
                data=body if body else None,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_seconds),
                allow_redirects=False,
            ) as answer:
                data = await read_capped(answer, limit, BackendAnswerTooLarge)
                return BackendAnswer(answer.status, answer.headers, data)
        except TimeoutError as exc:
            raise BackendTimeout(
                f"The backend of {name} did not answer within {timeout_seconds:g} s."
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise BackendUnreachable(
                f"The backend of {name} could not be reached: {type(exc).__name__}."
            ) from exc


class BackendRegistry:
    """Which backend serves each service this gateway provides, as the database says."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.backends: dict[tuple[str, str], Backend] = {}
        self._reloader: asyncio.Task[None] | None = None

    def get(self, provider: str, name: str) -> Backend | None:
        return self.backends.get((provider, name))

    def reload(self) -> None:
        """Read this gateway's backends (another replica may have published)."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(
                    service_backends.c.provider,
                    service_backends.c.name,
                    service_backends.c.backend_url,
                )
            ).all()
        self.backends = {
            (r.provider, r.name): Backend(r.provider, r.name, r.backend_url) for r in rows
        }

    async def start(self) -> None:
        await run_sync(self.reload)
        self._reloader = asyncio.create_task(self._reload_forever())

    async def stop(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader
            self._reloader = None

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(BACKEND_RELOAD_SECONDS)
            try:
                await run_sync(self.reload)
            except Exception:
                log.exception("reloading service backends failed")
