"""A gateway's web pages, for its organisations' staff and administrators.

Each page module adds its routes and navigation; this module wires them to
the gateway's running parts (the same objects the local API uses, so a page
and an API call follow the same rules and write the same audit entries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gcx import crypto
from gcx.config import check_web_public_url
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.web.accounts import WebAccounts, WebUser
from gcx.web.oidc import OidcClient, OidcSettings
from gcx.web.oidc import add_routes as add_oidc_routes
from gcx.web.site import ServiceDesk, Site, user_of
from gcx.web.site_app import build_site_app

GATEWAY_WEB_ROLES = ("staff", "admin", "security-officer", "sign-off")


@dataclass
class GatewayParts:
    """The running parts pages use: the same ones the local API is given."""

    gateway: Gateway
    messaging: Any  # gcx.gateway.messages.messaging.Messaging
    exchange: Any  # gcx.gateway.exchange.worker.ExchangeWorker
    peers: Any  # gcx.gateway.exchange.peer_client.PeerClient
    services: Any  # gcx.gateway.services.calls.ServiceProxy


PARTS = web.AppKey("gcx_gateway_parts", GatewayParts)


def parts_of(request: web.Request) -> GatewayParts:
    return request.app[PARTS]


def caller_of(request: web.Request) -> Caller:
    """The signed-in person as the gateway's use cases know callers."""
    return caller_for(user_of(request))


def caller_for(user: WebUser) -> Caller:
    return Caller(
        organisation=user.organisation or "",
        account=user.username,
        kind="user",
        roles=tuple(sorted(user.roles)),
    )


def gateway_accounts(gateway: Gateway) -> WebAccounts:
    key = crypto.secret_sealing_key(gateway.config.passphrase(), "web second factor")
    return WebAccounts(
        gateway.db, gateway.clock, key, f"gcx {gateway.config.name}", GATEWAY_WEB_ROLES
    )


def build_gateway_web(parts: GatewayParts) -> web.Application:
    from gcx.web.gateway import (
        activity,
        address_book,
        admin,
        alerts,
        evidence_pages,
        files,
        files_received,
        files_send,
        files_status,
        lookups,
        mail,
        mail_check,
        mail_drafts,
        mail_lists,
        mail_reply,
        own_tokens,
    )

    config = parts.gateway.config
    site = Site(
        kind="gateway",
        service_name=f"gcx {config.name} gateway",
        accounts=gateway_accounts(parts.gateway),
        homes=[("staff", "/inbox"), ("admin", "/admin"), ("security-officer", "/account")],
        public_origin=check_web_public_url(config.web_public_url),
        sign_in_failures_per_address=config.web_sign_in_failures_per_address,
        service_desk=ServiceDesk.from_config(config),
    )
    modules = (
        mail_lists,
        mail,
        mail_drafts,
        mail_check,
        mail_reply,
        address_book,
        files,
        files_received,
        files_send,
        files_status,
        evidence_pages,
        lookups,
        activity,
        admin,
        own_tokens,
        alerts,
    )
    for module in modules:
        module.navigation(site)
    oidc = OidcSettings.from_config(config)
    if oidc is not None:
        site.federated_sign_in = oidc.provider_name
    app = build_site_app(site, [module.add_routes for module in modules])
    if oidc is not None:
        key = crypto.secret_sealing_key(config.passphrase(), "web oidc state")
        add_oidc_routes(app, OidcClient(oidc, parts.gateway.clock, key))
    app[PARTS] = parts
    return app
