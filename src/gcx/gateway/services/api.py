"""HTTP routes of service access on a gateway, local and peer.

Local API (``Authorization: Bearer gcxt_…``):

* ``/services/{provider}/{service}/{path}``: call a service (any method);
  ``X-Gcx-User`` and ``X-Gcx-Purpose`` carry the end user and the purpose;
* ``GET /api/v1/services``: what this organisation may call; ``GET
  /api/v1/services/{provider}/{service}/openapi.json``: its description;
* ``GET /api/v1/services/calls``: this organisation's call log (admin or
  security officer), ``GET /api/v1/services/calls/{id}/evidence``;
* admin only: ``POST /api/v1/services/published`` (publish),
  ``POST /api/v1/services/published/{service}/grants`` (grant),
  ``POST /api/v1/services/grants/{id}/revoke``, ``POST /api/v1/services/groups``.

The peer API's route (``POST /peer/v1/calls``) is in
:mod:`gcx.gateway.services.peer_api`. Both only translate between HTTP and the
use cases (:mod:`gcx.gateway.services.consumer`, :mod:`gcx.gateway.services.provider`,
:mod:`gcx.gateway.services.publishing`), which take and return plain values.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import Field, ValidationError

from gcx import crypto
from gcx.errors import Forbidden, GcxError, InputError
from gcx.gateway.app import caller_of
from gcx.gateway.peer import GATEWAY
from gcx.gateway.services.call_log import recent_calls
from gcx.gateway.services.calls import ServiceProxy
from gcx.gateway.services.model import BodyReader, ServiceCallRequest
from gcx.gateway.services.peer_api import add_peer_service_routes, call_refusal
from gcx.gateway.services.publishing import new_change, store_backend, submit_change
from gcx.gateway.tokens import Caller
from gcx.httpapi import bearer_token, json_body, read_body, run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol.services import (
    AccessRight,
    RightsIndex,
    ServiceEntry,
    ServiceGroup,
    normalise_methods,
    normalise_path,
)
from gcx.protocol.validation import StrictModel, refusal, validated

__all__ = ["LocalCalls", "add_peer_service_routes", "add_service_routes"]

CALLER_CACHE_SECONDS = 10.0
CALLER_CACHE_SIZE = 10_000
ADMIN_ROLES = frozenset({"admin"})
LOG_ROLES = frozenset({"admin", "security-officer"})


def _require(caller: Caller, roles: frozenset[str], what: str) -> None:
    if not roles & set(caller.roles):
        raise Forbidden(f"Only {' or '.join(sorted(roles))} accounts may {what}.")


# -- calling and discovery ----------------------------------------------------------


class LocalCalls:
    """Service calls by this gateway's own people and systems, as HTTP.

    The local API's call route and the web pages' lookups both call through
    here: it makes the :class:`~gcx.gateway.services.model.ServiceCallRequest`,
    runs the consumer use case and gives its answer, or its refusal, as a response.
    """

    def __init__(self, proxy: ServiceProxy) -> None:
        self.proxy = proxy
        self.gateway = proxy.gateway
        self._callers: OrderedDict[str, tuple[Caller, float]] = OrderedDict()

    def index(self, directory: dirproto.Directory) -> RightsIndex:
        return self.proxy.index(directory)

    async def caller(self, request: web.Request) -> Caller:
        """The local API caller, from a short-lived cache of checked tokens.

        A token is checked against the database once per few seconds, not once
        per call; a revoked token stops working within :data:`CALLER_CACHE_SECONDS`.
        """
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
        body_reader: BodyReader,
    ) -> web.Response:
        """One call, answered as a response (``headers`` is a case-insensitive mapping)."""
        call = ServiceCallRequest.from_headers(
            caller,
            provider,
            name,
            raw_path,
            method=method,
            query=query,
            headers=headers,
            read_body=body_reader,
        )
        try:
            answer = await self.proxy.consumer.call(call)
        except GcxError as error:
            return call_refusal(error)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


LOCAL_CALLS = web.AppKey("local-calls", LocalCalls)
SERVICES = web.AppKey("services", ServiceProxy)


async def call_service(request: web.Request) -> web.StreamResponse:
    calls = request.app[LOCAL_CALLS]
    caller = await calls.caller(request)
    info = request.match_info
    return await calls.call(
        caller,
        info["provider"],
        info["service"],
        "/" + info.get("path", ""),
        method=request.method,
        headers=request.headers,
        query=request.query_string,
        body_reader=lambda limit: read_body(request, limit),
    )


async def list_services(request: web.Request) -> web.Response:
    proxy = request.app[SERVICES]
    caller = await caller_of(request)
    directory = proxy.gateway.directory.current()
    entries = []
    for service, rights in proxy.index(directory).visible_to(caller.organisation):
        entries.append(
            {
                "provider": service.provider,
                "name": service.name,
                "version": service.version,
                "title": service.title,
                "requires_user": service.requires_user,
                "requires_purpose": service.requires_purpose,
                "timeout_seconds": service.timeout_seconds,
                "max_body_bytes": service.max_body_bytes,
                "call_url": f"/services/{service.provider}/{service.name}/",
                "openapi_url": f"/api/v1/services/{service.provider}/{service.name}/openapi.json",
                "rights": [
                    {
                        "id": r.id,
                        "methods": list(r.methods) or ["*"],
                        "paths": list(r.paths) or ["/"],
                        "rate_per_second": r.rate_per_second or service.rate_per_second,
                    }
                    for r in rights
                ],
            }
        )
    return web.json_response(
        {
            "organisation": caller.organisation,
            "directory_version": directory.version,
            "services": entries,
        }
    )


async def service_openapi(request: web.Request) -> web.Response:
    proxy = request.app[SERVICES]
    caller = await caller_of(request)
    directory = proxy.gateway.directory.current()
    index = proxy.index(directory)
    provider, name = request.match_info["provider"], request.match_info["service"]
    service = index.service(provider, name)
    mine = {s.name for s, _ in index.visible_to(caller.organisation) if s.provider == provider}
    if name not in mine and caller.organisation != provider:
        from gcx.errors import ServiceForbidden

        raise ServiceForbidden(f"{caller.organisation} holds no access right to {provider}/{name}.")
    return web.json_response(service.openapi)


# -- the call log -----------------------------------------------------------------------


async def list_calls(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    _require(caller, LOG_ROLES, "read the call log")
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError as exc:
        raise InputError("'limit' must be a number.") from exc
    rows = await run_sync(recent_calls, request.app[GATEWAY], caller.organisation, limit)
    return web.json_response({"calls": rows})


async def call_evidence(request: web.Request) -> web.Response:
    from gcx.evidence import MEDIA_TYPE
    from gcx.gateway.messages.evidence_export import export_call_evidence

    caller = await caller_of(request)
    _require(caller, LOG_ROLES, "export call evidence")
    data = await run_sync(
        export_call_evidence,
        request.app[GATEWAY],
        request.match_info["id"],
        actor=caller.actor,
        organisation=caller.organisation,
    )
    return web.Response(body=data, content_type=MEDIA_TYPE)


# -- publishing and granting (admin) -----------------------------------------------------


async def publish(request: web.Request) -> web.Response:
    proxy = request.app[SERVICES]
    gateway = proxy.gateway
    caller = await caller_of(request)
    _require(caller, ADMIN_ROLES, "publish services")
    body = await json_body(request, 1 << 20)
    backend_url = body.pop("backend_url", None)
    if not isinstance(backend_url, str) or not backend_url.startswith(("http://", "https://")):
        raise InputError("'backend_url' must be an http:// or https:// URL.")
    if "provider" in body:
        raise InputError("The field 'provider' is not one this request accepts.", field="provider")
    # Strict: "requires_user": "false" is refused, not read as true.
    entry = validated(ServiceEntry, {**body, "provider": caller.organisation})
    # The backend is stored first: once the directory lists the service, calls may arrive.
    await run_sync(store_backend, gateway, entry, backend_url)
    await run_sync(proxy.reload_backends)
    result = await submit_change(
        gateway, new_change(gateway, caller.organisation, "publish", service=entry)
    )
    return web.json_response({**result, "service": entry.model_dump(mode="json")}, status=201)


class GrantRequest(StrictModel):
    """``POST /api/v1/services/published/{service}/grants``."""

    to: str
    methods: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
    rate_per_second: float | None = None
    burst: int | None = None


class GroupRequest(StrictModel):
    """``POST /api/v1/services/groups``."""

    name: str
    members: list[str] = Field(default_factory=list)


async def grant(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    caller = await caller_of(request)
    _require(caller, ADMIN_ROLES, "grant access rights")
    asked = validated(GrantRequest, await json_body(request))
    if not asked.to:
        raise InputError("'to' must name an organisation code or group:NAME.", field="to")
    grantee = asked.to if asked.to.startswith("group:") else f"org:{asked.to}"
    try:
        right = AccessRight(
            id=crypto.random_id(16),
            provider=caller.organisation,
            service=request.match_info["service"],
            grantee=grantee,
            methods=normalise_methods(asked.methods),
            paths=tuple(normalise_path(p) for p in asked.paths),
            rate_per_second=asked.rate_per_second,
            burst=asked.burst,
            granted_at=gateway.clock.now(),
        )
    except ValidationError as exc:
        raise refusal(exc) from exc
    result = await submit_change(
        gateway, new_change(gateway, caller.organisation, "grant", right=right)
    )
    return web.json_response({**result, "right": right.model_dump(mode="json")}, status=201)


async def revoke(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    caller = await caller_of(request)
    _require(caller, ADMIN_ROLES, "revoke access rights")
    change = new_change(gateway, caller.organisation, "revoke", right_id=request.match_info["id"])
    return web.json_response(await submit_change(gateway, change))


async def set_group(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    caller = await caller_of(request)
    _require(caller, ADMIN_ROLES, "define groups")
    asked = validated(GroupRequest, await json_body(request))
    try:
        group = ServiceGroup(
            provider=caller.organisation,
            name=asked.name,
            members=tuple(sorted(set(asked.members))),
        )
    except ValidationError as exc:
        raise refusal(exc) from exc
    result = await submit_change(
        gateway, new_change(gateway, caller.organisation, "group", group=group)
    )
    return web.json_response(result, status=201)


async def withdraw(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    caller = await caller_of(request)
    _require(caller, ADMIN_ROLES, "withdraw services")
    change = new_change(
        gateway, caller.organisation, "withdraw", service_name=request.match_info["service"]
    )
    return web.json_response(await submit_change(gateway, change))


def add_service_routes(app: web.Application, proxy: ServiceProxy) -> None:
    """Register the local API routes; the proxy is started and stopped with the app."""
    app[SERVICES] = proxy
    app[LOCAL_CALLS] = LocalCalls(proxy)

    async def lifecycle(_: web.Application) -> Any:
        await proxy.start()
        yield
        await proxy.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/api/v1/services", list_services)
    app.router.add_get("/api/v1/services/calls", list_calls)
    app.router.add_get("/api/v1/services/calls/{id}/evidence", call_evidence)
    app.router.add_post("/api/v1/services/published", publish)
    app.router.add_post("/api/v1/services/published/{service}/grants", grant)
    app.router.add_post("/api/v1/services/published/{service}/withdraw", withdraw)
    app.router.add_post("/api/v1/services/grants/{id}/revoke", revoke)
    app.router.add_post("/api/v1/services/groups", set_group)
    app.router.add_get("/api/v1/services/{provider}/{service}/openapi.json", service_openapi)
    app.router.add_route("*", "/services/{provider}/{service}", call_service)
    app.router.add_route("*", "/services/{provider}/{service}/{path:.*}", call_service)
