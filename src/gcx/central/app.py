"""Central's HTTPS API.

Public (no token): the directory, enrolment submission and its status.
Operator (``Authorization: Bearer gcxo_…``): registry, enrolment decisions,
revocation, audit verification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from pydantic import Field

from gcx import listeners
from gcx.audit.checkpoint import AuditTree
from gcx.central.api_keys import SERVICE, central_of, operator_of
from gcx.central.checkpoints import CheckpointWitness, sign_central_head
from gcx.central.compliance_api import add_compliance_routes
from gcx.central.openapi import OPENAPI
from gcx.central.service import CentralService
from gcx.central.services_api import add_service_routes
from gcx.errors import InputError
from gcx.heap import freeze_startup_objects
from gcx.httpapi import error_middleware, json_body, read_body, run_sync
from gcx.protocol.validation import StrictModel, validated

log = logging.getLogger("gcx.central")
WITNESS = web.AppKey("witness", CheckpointWitness)
AUDIT_TREE = web.AppKey("audit_tree", AuditTree)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "network": central_of(request).config.network})


async def openapi(_: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


async def get_directory(request: web.Request) -> web.Response:
    document = await run_sync(central_of(request).latest_directory)
    return web.Response(body=document, content_type="application/json")


class OrganisationKeys(StrictModel):
    signing_key: str = Field(max_length=200)
    encryption_key: str = Field(max_length=4000)
    proof: str = Field(max_length=200)


class EnrolmentRequest(StrictModel):
    """``POST /api/v1/enrolments``, as ``gcx gateway init`` makes it."""

    csr: str = Field(min_length=1, max_length=10_000)
    peer_address: str = Field(min_length=1, max_length=300)
    organisation_keys: dict[str, OrganisationKeys] = Field(max_length=64)


class DecisionRequest(StrictModel):
    """Approving or rejecting an enrolment, or revoking a gateway: always with a reason."""

    reason: str = Field(min_length=1, max_length=1000)
    override: bool = False
    override_reason: str | None = Field(default=None, max_length=1000)


class ReasonRequest(StrictModel):
    """Revoking a gateway."""

    reason: str = Field(min_length=1, max_length=1000)


class OrganisationRequest(StrictModel):
    """``POST /api/v1/organisations``."""

    code: str = Field(min_length=1, max_length=16)
    name: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=32)
    contacts: list[dict[str, str]] = Field(default_factory=list, max_length=50)


async def post_enrolment(request: web.Request) -> web.Response:
    asked = validated(EnrolmentRequest, await json_body(request))
    keys = {code: dict(value) for code, value in asked.organisation_keys.items()}
    result = await run_sync(
        central_of(request).submit_enrolment,
        asked.csr.encode(),
        asked.peer_address,
        keys,
    )
    return web.json_response(result, status=202)


async def get_enrolment(request: web.Request) -> web.Response:
    return web.json_response(
        await run_sync(central_of(request).get_enrolment, request.match_info["id"])
    )


async def list_enrolments(request: web.Request) -> web.Response:
    await operator_of(request)
    state = request.query.get("state")
    return web.json_response(await run_sync(central_of(request).list_enrolments, state))


async def _decide(request: web.Request, decision: str) -> web.Response:
    operator = await operator_of(request)
    asked = validated(DecisionRequest, await json_body(request))
    reason = asked.reason
    service = central_of(request)
    if decision == "approve":
        # An explicit override of the Code of Connection gate, with its own reason.
        return web.json_response(
            await run_sync(
                service.approve_enrolment,
                operator,
                request.match_info["id"],
                reason,
                override=asked.override,
                override_reason=asked.override_reason,
            )
        )
    action = service.reject_enrolment
    return web.json_response(await run_sync(action, operator, request.match_info["id"], reason))


async def approve(request: web.Request) -> web.Response:
    return await _decide(request, "approve")


async def reject(request: web.Request) -> web.Response:
    return await _decide(request, "reject")


async def revoke_gateway(request: web.Request) -> web.Response:
    operator = await operator_of(request)
    reason = validated(ReasonRequest, await json_body(request)).reason
    result = await run_sync(
        central_of(request).revoke_gateway, operator, request.match_info["name"], reason
    )
    return web.json_response(result)


async def add_organisation(request: web.Request) -> web.Response:
    operator = await operator_of(request)
    asked = validated(OrganisationRequest, await json_body(request))
    result = await run_sync(
        central_of(request).add_organisation,
        operator,
        asked.code,
        asked.name,
        asked.type,
        [dict(contact) for contact in asked.contacts],
    )
    return web.json_response(result, status=201)


async def list_organisations(request: web.Request) -> web.Response:
    await operator_of(request)
    return web.json_response(await run_sync(central_of(request).list_organisations))


async def audit_verify(request: web.Request) -> web.Response:
    await operator_of(request)
    report = await run_sync(central_of(request).verify_audit)
    return web.json_response(report.to_dict())


async def latest_checkpoint(request: web.Request) -> web.Response:
    witness = request.app[WITNESS]
    return web.json_response(await run_sync(witness.latest, request.match_info["gateway"]))


async def lodge_checkpoint(request: web.Request) -> web.Response:
    document = await read_body(request, 1 << 20)
    return web.json_response(await run_sync(request.app[WITNESS].lodge, document), status=201)


async def central_checkpoint(request: web.Request) -> web.Response:
    """Central's own signed audit head, with a proof from the size the caller holds."""
    since_text = request.query.get("since", "0")
    if not since_text.isdigit() or len(since_text) > 12:
        raise InputError("since must be a whole number of entries, 0 or more.")
    service = central_of(request)
    document = await run_sync(
        sign_central_head,
        request.app[AUDIT_TREE],
        service.keys.root_key,
        service.clock,
        int(since_text),
    )
    return web.Response(body=document, content_type="application/json")


async def gateway_flags(request: web.Request) -> web.Response:
    await operator_of(request)
    return web.json_response(await run_sync(request.app[WITNESS].flags))


PRUNE_EVERY_SECONDS = 3600.0


async def _republish_forever(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE]
    interval = service.config.republish_interval_seconds

    async def loop() -> None:
        pruned_at = -math.inf
        while True:
            try:
                await run_sync(service.publish_directory, "scheduled refresh")
            except Exception:
                # A failed refresh is retried on the next tick; the current
                # directory stays valid for several intervals.
                log.exception("directory refresh failed")
            if time.monotonic() - pruned_at >= PRUNE_EVERY_SECONDS:
                # Hourly, so the audit log gets one entry an hour, not one a minute.
                pruned_at = time.monotonic()
                try:
                    await run_sync(service.prune_directories)
                except Exception:
                    log.exception("pruning old directories failed")
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def build_app(service: CentralService, *, republish: bool = True) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=1 << 20)
    app[SERVICE] = service
    app[WITNESS] = CheckpointWitness(service.db, service.clock)
    app[AUDIT_TREE] = AuditTree(service.db)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/api/v1/health", health)
    app.router.add_get("/api/v1/directory", get_directory)
    app.router.add_post("/api/v1/enrolments", post_enrolment)
    app.router.add_get("/api/v1/enrolments", list_enrolments)
    app.router.add_get("/api/v1/enrolments/{id}", get_enrolment)
    app.router.add_post("/api/v1/enrolments/{id}/approve", approve)
    app.router.add_post("/api/v1/enrolments/{id}/reject", reject)
    app.router.add_post("/api/v1/gateways/{name}/revoke", revoke_gateway)
    app.router.add_post("/api/v1/organisations", add_organisation)
    app.router.add_get("/api/v1/organisations", list_organisations)
    app.router.add_get("/api/v1/audit/verify", audit_verify)
    app.router.add_get("/api/v1/audit/checkpoint", central_checkpoint)
    add_compliance_routes(app, sweep_seconds=300.0 if republish else None)
    add_service_routes(app)
    app.router.add_get("/api/v1/checkpoints/{gateway}", latest_checkpoint)
    app.router.add_post("/api/v1/checkpoints", lodge_checkpoint)
    app.router.add_get("/api/v1/flags", gateway_flags)
    if republish:
        app.cleanup_ctx.append(_republish_forever)
    return app


def run(service: CentralService, ssl_context: Any) -> None:
    asyncio.run(_serve(service, ssl_context))


async def _serve(service: CentralService, ssl_context: Any) -> None:
    """Central's API over HTTPS and, when configured, its web pages, until a signal."""
    config = service.config
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runners = [web.AppRunner(build_app(service), access_log=None)]
    await runners[0].setup()
    api = listeners.site(
        runners[0], "api", config.listen_host, config.listen_port, ssl_context=ssl_context
    )
    sites = [api]
    if config.web_port:
        from gcx.config import check_web_listener
        from gcx.web.central import build_central_web

        check_web_listener(config.web_host)
        runners.append(web.AppRunner(build_central_web(service), access_log=None))
        await runners[1].setup()
        sites.append(listeners.site(runners[1], "web", config.web_host, config.web_port))
        log.info("central: web pages http://%s:%d", config.web_host, config.web_port)
    for site in sites:
        await site.start()
    freeze_startup_objects()  # kept for central's life: see gcx.heap
    await stop.wait()
    for runner in reversed(runners):
        await runner.cleanup()
