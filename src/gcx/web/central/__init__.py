"""Central's web pages: the Code of Connection for officers and assessors, and the
network operator's dashboard.

Pages act through the same use cases as central's API, with the signed-in
person as the :class:`Principal`, so the roles, separation of duties and
audit entries are the API's own.
"""

from __future__ import annotations

from aiohttp import web

from gcx import crypto
from gcx.central.compliance import ComplianceService, Principal
from gcx.central.service import CentralService
from gcx.config import check_web_public_url
from gcx.web.accounts import WebAccounts, WebUser
from gcx.web.site import ServiceDesk, Site, user_of
from gcx.web.site_app import build_site_app

CENTRAL_WEB_ROLES = ("operator", "assessor", "security-officer", "sign-off")

CENTRAL = web.AppKey("gcx_central_service", CentralService)
COMPLIANCE = web.AppKey("gcx_central_compliance", ComplianceService)


def principal_for(user: WebUser) -> Principal:
    kind = "operator" if "operator" in user.roles else "account"
    return Principal(user.username, kind, user.roles, user.organisation)


def principal_of(request: web.Request) -> Principal:
    return principal_for(user_of(request))


def principal_actor(user: WebUser) -> str:
    return principal_for(user).actor


def central_accounts(service: CentralService) -> WebAccounts:
    key = crypto.secret_sealing_key(service.config.passphrase(), "web second factor")
    return WebAccounts(
        service.db, service.clock, key, f"gcx {service.config.network}", CENTRAL_WEB_ROLES
    )


def build_central_web(service: CentralService) -> web.Application:
    from gcx.web.central import activity, network, people, statements

    site = Site(
        kind="central",
        service_name=f"{service.config.network} central",
        accounts=central_accounts(service),
        homes=[
            ("operator", "/network"),
            ("assessor", "/statements"),
            ("security-officer", "/statements"),
            ("sign-off", "/statements"),
        ],
        public_origin=check_web_public_url(service.config.web_public_url),
        sign_in_failures_per_address=service.config.web_sign_in_failures_per_address,
        service_desk=ServiceDesk.from_config(service.config),
    )
    modules = (statements, network, people, activity)
    for module in modules:
        module.navigation(site)
    app = build_site_app(site, [module.add_routes for module in modules])
    app[CENTRAL] = service
    app[COMPLIANCE] = ComplianceService(service)
    return app
