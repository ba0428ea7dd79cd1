"""What central's route modules share: the app's keys and who the operator is.

:mod:`gcx.central.app` builds the app and adds the routes of
:mod:`gcx.central.compliance_api` and :mod:`gcx.central.services_api`; those
modules find the services through the keys here, never by importing the app.
"""

from __future__ import annotations

from aiohttp import web

from gcx.central.compliance import ComplianceService
from gcx.central.service import CentralService
from gcx.httpapi import bearer_token, run_sync

SERVICE = web.AppKey("service", CentralService)
COMPLIANCE = web.AppKey("compliance", ComplianceService)


def central_of(request: web.Request) -> CentralService:
    return request.app[SERVICE]


async def operator_of(request: web.Request) -> str:
    """The operator the request's bearer token names; ``TokenInvalid`` otherwise."""
    return await run_sync(
        central_of(request).authenticate_operator,
        bearer_token(request),
        request=f"{request.method} {request.path}",
    )
