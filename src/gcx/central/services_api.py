"""Central's HTTP routes for service access.

``POST /api/v1/services/changes`` takes a provider's signed change (no token:
the signature by the provider organisation's certified key is the
authority). ``GET /api/v1/services`` shows the operator everything published
and granted, revoked rights included.
"""

from __future__ import annotations

from aiohttp import web

from gcx.central.api_keys import SERVICE, operator_of
from gcx.central.services import apply_change, operator_view
from gcx.httpapi import read_body, run_sync

MAX_CHANGE_BYTES = 512 * 1024


def add_service_routes(app: web.Application) -> None:
    async def post_change(request: web.Request) -> web.Response:
        document = await read_body(request, MAX_CHANGE_BYTES)
        result = await run_sync(apply_change, request.app[SERVICE], document)
        return web.json_response(result, status=201)

    async def list_services(request: web.Request) -> web.Response:
        await operator_of(request)
        return web.json_response(await run_sync(operator_view, request.app[SERVICE]))

    app.router.add_post("/api/v1/services/changes", post_change)
    app.router.add_get("/api/v1/services", list_services)
