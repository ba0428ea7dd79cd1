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

Peer API: ``POST /peer/v1/calls`` behind the mutual-TLS and directory check.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from pydantic import Field, ValidationError

from gcx import crypto
from gcx.errors import Forbidden, InputError, NotFound, PeerUnreachable, RemoteRefusal
from gcx.gateway.app import caller_of
from gcx.gateway.home import client_ssl_for_central
from gcx.gateway.peer import GATEWAY
from gcx.gateway.runtime import Gateway
from gcx.gateway.services.calls import ServiceProxy
from gcx.gateway.tokens import Caller
from gcx.httpapi import json_body, run_sync
from gcx.protocol import strict_json
from gcx.protocol.services import (
    CHANGE_TYPE,
    AccessRight,
    ServiceChange,
    ServiceEntry,
    ServiceGroup,
    normalise_methods,
    normalise_path,
)
from gcx.protocol.validation import StrictModel, refusal, validated
from gcx.store import iso
from gcx.store.schema_services import service_backends, service_calls

SERVICES = web.AppKey("services", ServiceProxy)
ADMIN_ROLES = frozenset({"admin"})
LOG_ROLES = frozenset({"admin", "security-officer"})


def _require(caller: Caller, roles: frozenset[str], what: str) -> None:
    if not roles & set(caller.roles):
        raise Forbidden(f"Only {' or '.join(sorted(roles))} accounts may {what}.")


# -- calling and discovery ----------------------------------------------------------


async def call_service(request: web.Request) -> web.StreamResponse:
    proxy = request.app[SERVICES]
    caller = await proxy.caller(request)
    info = request.match_info
    return await proxy.consume(
        request, caller, info["provider"], info["service"], "/" + info.get("path", "")
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


def _calls(gateway: Gateway, organisation: str, limit: int) -> list[dict[str, Any]]:
    query = (
        sa.select(
            service_calls.c.id,
            service_calls.c.side,
            service_calls.c.at,
            service_calls.c.consumer,
            service_calls.c.consumer_user,
            service_calls.c.consumer_system,
            service_calls.c.purpose,
            service_calls.c.provider,
            service_calls.c.service,
            service_calls.c.method,
            service_calls.c.path,
            service_calls.c.status,
            service_calls.c.outcome,
            service_calls.c.request_size,
            service_calls.c.response_size,
            service_calls.c.request_sha256,
            service_calls.c.response_sha256,
            service_calls.c.duration_ms,
        )
        .where(
            sa.or_(
                sa.and_(
                    service_calls.c.side == "consumer", service_calls.c.consumer == organisation
                ),
                sa.and_(
                    service_calls.c.side == "provider", service_calls.c.provider == organisation
                ),
            )
        )
        .order_by(service_calls.c.at.desc())
        .limit(limit)
    )
    with gateway.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


async def list_calls(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    _require(caller, LOG_ROLES, "read the call log")
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError as exc:
        raise InputError("'limit' must be a number.") from exc
    rows = await run_sync(_calls, request.app[GATEWAY], caller.organisation, limit)
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


async def submit_change(gateway: Gateway, change: ServiceChange) -> dict[str, Any]:
    """Sign a change as its provider organisation and hand it to central."""
    keys = gateway.keys.organisations[change.provider]
    document = crypto.sign_document(
        CHANGE_TYPE, change.to_bytes(), keys.signing, crypto.key_id(keys.signing.public)
    )
    url = gateway.config.central_url.rstrip("/") + "/api/v1/services/changes"
    try:
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=client_ssl_for_central(gateway.config)),
                timeout=aiohttp.ClientTimeout(total=30, connect=10),
            ) as session,
            session.post(
                url, data=document, headers={"Content-Type": "application/json"}
            ) as answer,
        ):
            status, data = answer.status, strict_json.loads_object(await answer.read())
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        raise PeerUnreachable(f"Central could not be reached: {type(exc).__name__}.") from exc
    if status == 404:
        # The administrator named a service or right that does not exist: their
        # mistake, not a failure of central's, so it is a 404 here too.
        raise NotFound(str(data.get("message") or NotFound.default_message))
    if status >= 400:
        raise RemoteRefusal(status, str(data.get("code")), str(data.get("message")))
    return data


def _change(gateway: Gateway, provider: str, action: str, **fields: Any) -> ServiceChange:
    return ServiceChange(
        id=crypto.random_id(16),
        provider=provider,
        issued_at=gateway.clock.now(),
        action=action,  # type: ignore[arg-type]
        **fields,
    )


def _store_backend(gateway: Gateway, entry: ServiceEntry, backend_url: str) -> None:
    now = iso(gateway.clock.now())
    key = (service_backends.c.provider == entry.provider) & (service_backends.c.name == entry.name)
    values = {"backend_url": backend_url, "entry": entry.model_dump(mode="json"), "updated_at": now}
    with gateway.db.transaction() as conn:
        if conn.execute(sa.select(service_backends.c.name).where(key)).first():
            conn.execute(service_backends.update().where(key).values(**values))
        else:
            conn.execute(
                service_backends.insert().values(provider=entry.provider, name=entry.name, **values)
            )
    gateway.record(
        actor=f"organisation:{entry.provider}",
        action="service.backend.set",
        subject=f"{entry.provider}/{entry.name}",
        details={"version": entry.version, "logging": entry.logging},
    )


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
    await run_sync(_store_backend, gateway, entry, backend_url)
    await run_sync(proxy.reload_backends)
    result = await submit_change(
        gateway, _change(gateway, caller.organisation, "publish", service=entry)
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
        gateway, _change(gateway, caller.organisation, "grant", right=right)
    )
    return web.json_response({**result, "right": right.model_dump(mode="json")}, status=201)


async def revoke(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    caller = await caller_of(request)
    _require(caller, ADMIN_ROLES, "revoke access rights")
    change = _change(gateway, caller.organisation, "revoke", right_id=request.match_info["id"])
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
        gateway, _change(gateway, caller.organisation, "group", group=group)
    )
    return web.json_response(result, status=201)


async def withdraw(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    caller = await caller_of(request)
    _require(caller, ADMIN_ROLES, "withdraw services")
    change = _change(
        gateway, caller.organisation, "withdraw", service_name=request.match_info["service"]
    )
    return web.json_response(await submit_change(gateway, change))


def add_service_routes(app: web.Application, proxy: ServiceProxy) -> None:
    """Register the local API routes; the proxy is started and stopped with the app."""
    app[SERVICES] = proxy

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


def add_peer_service_routes(app: web.Application, proxy: ServiceProxy) -> None:
    app[SERVICES] = proxy

    async def handle_call(request: web.Request) -> web.StreamResponse:
        return await request.app[SERVICES].provide(request)

    app.router.add_post("/peer/v1/calls", handle_call)
