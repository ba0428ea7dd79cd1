"""The service proxy: consumer and provider sides of a signed, access-controlled call.

This module holds the proxy's lifecycle and the consumer side; the provider
side and what both share are in :mod:`gcx.gateway.services.provider` and
:mod:`gcx.gateway.services.common`.

Per-call path, kept lean on purpose (the benchmark target is a quarter of
direct throughput):

* no database read: the caller's token is cached for :data:`CALLER_CACHE_SECONDS`,
  rights are indexed once per directory version, keys are parsed once per
  directory version, backends are held in memory (reloaded periodically so
  replicas converge);
* one database write per gateway: the call log row and its audit entry go
  in one transaction, and concurrent calls share transactions (group commit,
  :class:`gcx.gateway.services.call_log.CallLog`); a call is answered only once its row
  is committed;
* kept-alive connections: pinned mutual-TLS sessions to peers (the one
  peer client, :func:`call_peers`, with a larger pool) and one client session
  to backends.

Rate limits are token buckets held per gateway process (see
``docs/services.md``: with N replicas a consumer may get up to N times the
rate; the provider sets rates with that in mind).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from gcx import crypto
from gcx.errors import (
    BackendAnswerTooLarge,
    BackendTimeout,
    CallResponseInvalid,
    CryptoError,
    GcxError,
    HeaderInvalid,
    InputError,
    PeerAnswerTooLarge,
    PeerTimeout,
    PeerUnreachable,
    UserMismatch,
)
from gcx.gateway.app import caller_of
from gcx.gateway.exchange.peer_client import (
    PeerAnswer,
    PeerClient,
    Timeouts,
    refusal_code,
    refusal_of,
)
from gcx.gateway.runtime import Gateway
from gcx.gateway.services.call_log import CallLog, new_row
from gcx.gateway.services.common import (
    CALL_ID_HEADER,
    PURPOSE_HEADER,
    REQUEST_HEADER,
    RESPONSE_HEADER,
    USER_HEADER,
    Backend,
)
from gcx.gateway.services.provider import ServiceProviding
from gcx.gateway.tokens import Caller
from gcx.httpapi import bearer_token, read_body, run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol.services import (
    FORWARDED_REQUEST_HEADERS,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    CallRequest,
    CallResponse,
    RateLimiter,
    RightsIndex,
    ServiceEntry,
    check_response_matches,
    normalise_path,
    require_caller_facts,
)
from gcx.store import iso
from gcx.store.schema_services import service_backends

log = logging.getLogger("gcx.gateway.services.calls")

CALLER_CACHE_SECONDS = 10.0
CALLER_CACHE_SIZE = 10_000
BACKEND_RELOAD_SECONDS = 15.0
PEER_POOL = 64


def call_peers(gateway: Gateway) -> PeerClient:
    """The peer client for synchronous calls: one request each, so more on the wire at once."""
    return PeerClient.for_gateway(gateway, pool_size=PEER_POOL)


class ServiceProxy(ServiceProviding):
    """Both sides of service calls for one gateway process."""

    def __init__(self, gateway: Gateway, peers: PeerClient) -> None:
        self.gateway = gateway
        self.peers = peers
        self.log = CallLog(gateway)
        self.limiter = RateLimiter()
        self.backends: dict[tuple[str, str], Backend] = {}
        self._index: RightsIndex | None = None
        self._keys: tuple[int, dict[str, tuple[str, crypto.VerifyKey]]] = (0, {})
        self._callers: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._client: aiohttp.ClientSession | None = None
        self._reloader: asyncio.Task[None] | None = None
        self._signing = {
            code: (keys.signing, crypto.key_id(keys.signing.public))
            for code, keys in gateway.keys.organisations.items()
        }

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=300),
            auto_decompress=False,
        )
        await run_sync(self.reload_backends)
        self.log.start()
        self._reloader = asyncio.create_task(self._reload_forever())

    async def stop(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
        await self.log.stop()
        if self._client is not None:
            await self._client.close()

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(BACKEND_RELOAD_SECONDS)
            try:
                await run_sync(self.reload_backends)
            except Exception:
                log.exception("reloading service backends failed")

    def reload_backends(self) -> None:
        """Read this gateway's backends (another replica may have published)."""
        with self.gateway.db.read() as conn:
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

    async def caller(self, request: web.Request) -> Caller:
        """The local API caller, from a short-lived cache of checked tokens."""
        token = bearer_token(request)
        key = crypto.hash_token(token) if token else ""
        now = time.monotonic()
        cached = self._callers.get(key) if key else None
        if cached is not None and cached[1] > now:
            return cached[0]
        caller = await caller_of(request, record_use=False)
        self._callers[key] = (caller, now + CALLER_CACHE_SECONDS)
        if len(self._callers) > CALLER_CACHE_SIZE:
            self._callers.popitem(last=False)
        return caller

    # -- the consumer side ------------------------------------------------------------

    async def consume(
        self, request: web.Request, caller: Caller, provider: str, name: str, raw_path: str
    ) -> web.StreamResponse:
        return await self.call(
            caller,
            provider,
            name,
            raw_path,
            method=request.method,
            headers=request.headers,
            query=request.query_string,
            body_reader=lambda limit: read_body(request, limit),
        )

    async def call(
        self,
        caller: Caller,
        provider: str,
        name: str,
        raw_path: str,
        *,
        method: str,
        headers: Mapping[str, str],
        query: str,
        body_reader: Callable[[int], Awaitable[bytes]],
    ) -> web.Response:
        """One call on the consumer side, from a local API request or a web page.

        ``headers`` is a case-insensitive mapping (a request's, or a CIMultiDict);
        the body is read, within the service's limit, only once the call is admitted.
        """
        started = time.perf_counter()
        gateway = self.gateway
        method = method.upper()
        stated = _header_text(headers, USER_HEADER)
        purpose = _header_text(headers, PURPOSE_HEADER)
        # A person calls as themselves, whatever the header says; only a system
        # states an end user, and then both are signed and logged on both sides.
        user, system = (caller.account, None) if caller.is_person else (stated, caller.account)
        row = new_row(
            at=iso(gateway.clock.now()),
            side="consumer",
            consumer=caller.organisation,
            user=user,
            system=system,
            purpose=purpose,
            provider=provider,
            service=name,
            method=method,
            path=raw_path[:2000],
            query=query,
        )
        try:
            directory = gateway.directory.current()
            row["directory_version"] = directory.version
            path = normalise_path(raw_path)
            row["path"] = path
            if caller.is_person and stated is not None and stated != caller.account:
                raise UserMismatch(
                    f"Your token calls services as {caller.account} only; leave {USER_HEADER} "
                    "out or give your own account name."
                )
            _check_lengths(user, purpose, query)
            decision = self.index(directory).decide(
                caller.organisation, provider, name, method, path
            )
            service = decision.service
            require_caller_facts(service, user, purpose)
            body = await body_reader(service.max_body_bytes)
            peer = directory.gateway_for_organisation(provider)
            if peer is None:
                raise PeerUnreachable(f"{provider} has no active gateway in the directory.")
            forwarded = {h: headers[h] for h in FORWARDED_REQUEST_HEADERS if h in headers}
            call = CallRequest(
                id=crypto.random_id(16),
                consumer=caller.organisation,
                consumer_gateway=gateway.config.name,
                user=user,
                system=system,
                purpose=purpose,
                provider=provider,
                service=name,
                method=method,
                path=path,
                query=query,
                headers=forwarded,
                body_sha256=crypto.sha256_hex(body),
                body_size=len(body),
                created_at=gateway.clock.now(),
                directory_version=directory.version,
            )
            row.update(id=call.id, request_size=len(body), request_sha256=call.body_sha256)
            key, key_id = self._signing[caller.organisation]
            signed = crypto.sign_document(REQUEST_TYPE, call.to_bytes(), key, key_id)
            row["request_document"] = signed
            answer = await self._forward(peer, signed, body, service)
            if answer.status != 200 or RESPONSE_HEADER not in answer.headers:
                return await self._passed_on_refusal(row, started, answer)
            response_document = answer.headers[RESPONSE_HEADER].encode()
            response = self._verified_response(
                directory, call, signed, response_document, answer.body
            )
            row.update(
                status=response.status,
                outcome="answered",
                response_size=len(answer.body),
                response_sha256=response.body_sha256,
                response_document=response_document,
            )
            if service.logging == "full":
                row["sealed_bodies"] = self._seal(
                    caller.organisation, call.id, forwarded, body, response.headers, answer.body
                )
        except GcxError as error:
            return await self._refused(row, started, error)
        row["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        await self.log.write(row)
        out_headers = {CALL_ID_HEADER: call.id, **_title_case(response.headers)}
        return web.Response(status=response.status, body=answer.body, headers=out_headers)

    async def _forward(
        self, peer: dirproto.GatewayEntry, signed: bytes, body: bytes, service: ServiceEntry
    ) -> PeerAnswer:
        """Carry the signed call to the provider's gateway, within the service's limits.

        The consumer's API has always named a provider gateway that is too slow
        or answers too much by the backend codes (504 ``backend-timeout``, 502
        ``backend-answer-too-large``), since to the caller the service failed.
        """
        try:
            return await self.peers.request(
                "POST",
                peer,
                "/peer/v1/calls",
                body,
                content_type="application/octet-stream",
                headers={REQUEST_HEADER: signed.decode()},
                timeouts=Timeouts(total=service.timeout_seconds + 5, connect=5),
                limit=service.max_body_bytes + 64 * 1024,
            )
        except PeerTimeout as error:
            raise BackendTimeout("The provider's gateway did not answer in time.") from error
        except PeerAnswerTooLarge as error:
            raise BackendAnswerTooLarge(error.message) from error

    def _verified_response(
        self,
        directory: dirproto.Directory,
        call: CallRequest,
        signed_request: bytes,
        document: bytes,
        body: bytes,
    ) -> CallResponse:
        key_id, key = self.org_key(directory, call.provider)
        try:
            payload = crypto.verify_document(document, RESPONSE_TYPE, {key_id: key})
            response = CallResponse.from_bytes(payload)
        except (CryptoError, InputError) as exc:
            raise CallResponseInvalid(
                f"The answer is not signed by {call.provider}'s key in the directory."
            ) from exc
        check_response_matches(
            response,
            call,
            request_sha256=crypto.sha256_hex(signed_request),
            body_sha256=crypto.sha256_hex(body),
            body_size=len(body),
        )
        return response

    async def _passed_on_refusal(
        self, row: dict[str, Any], started: float, answer: PeerAnswer
    ) -> web.Response:
        """The provider gateway refused: pass its code on, marked as a gateway refusal."""
        refusal = refusal_of(answer, "The provider's gateway")
        code, message, status = refusal_code(refusal), refusal.message, answer.status
        row.update(status=status, outcome=code)
        row["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        await self.log.write(row)
        out = {"X-Gcx-Error": code}
        if "Retry-After" in answer.headers:
            out["Retry-After"] = answer.headers["Retry-After"]
        if status < 400:
            status = 502
        return web.json_response(
            {"code": code, "message": message, "details": {"from": "provider-gateway"}},
            status=status,
            headers=out,
        )


def _header_text(headers: Mapping[str, str], name: str) -> str | None:
    """A caller-fact header as text, or None if absent or empty.

    Header bytes that are not UTF-8 reach us as lone surrogates; they could be
    neither signed nor logged, so they are refused here, before anything is.
    """
    value = headers.get(name) or None
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise HeaderInvalid(f"The {name} header is not valid UTF-8 text.") from exc
    return value


def _check_lengths(user: str | None, purpose: str | None, query: str) -> None:
    if user is not None and len(user) > 200:
        raise InputError(f"{USER_HEADER} may be at most 200 characters.")
    if purpose is not None and len(purpose) > 500:
        raise InputError(f"{PURPOSE_HEADER} may be at most 500 characters.")
    if len(query) > 4000:
        raise InputError("The query string may be at most 4,000 characters.")


def _title_case(headers: Mapping[str, str]) -> dict[str, str]:
    return {"-".join(p.capitalize() for p in k.split("-")): v for k, v in headers.items()}
