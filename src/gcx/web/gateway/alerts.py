"""Page: each person's email alerts, on "Your account".

A person chooses whether to be told by email, at an address of their own,
when a message arrives for them (:mod:`gcx.gateway.notifications`). The
page says plainly what such an email contains (the marking and the sending
organisation, never the message) and, where the gateway has no mail relay,
that alerts are not available rather than offering a choice that does
nothing.
"""

from __future__ import annotations

from aiohttp import web

from gcx.errors import AlertAddressInvalid, Forbidden
from gcx.gateway.notifications.settings import AlertSetting, alert_setting, set_alert
from gcx.httpapi import run_sync
from gcx.web.gateway import parts_of
from gcx.web.gateway.mail_common import MAIL_ROLES
from gcx.web.site import FormErrors, Site, field_text, form_of, needs, redirect, render, user_of

PATH = "/account/alerts"


def navigation(site: Site) -> None:
    """No entry of its own: reached from "Your account"."""


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, alerts_page)
    app.router.add_post(PATH, save_alerts)


def _own(request: web.Request) -> tuple[str, str]:
    user = user_of(request)
    if not user.organisation:
        raise Forbidden("Your account is not an organisation's; email alerts need one.")
    return user.organisation, user.username


def _page(
    request: web.Request,
    setting: AlertSetting | None,
    *,
    chosen: str | None = None,
    typed: str | None = None,
    errors: FormErrors | None = None,
) -> web.Response:
    gateway = parts_of(request).gateway
    on = setting is not None and setting.enabled
    return render(
        request,
        "gateway/account_alerts.html",
        status=400 if errors else 200,
        errors=errors,
        title="Email alerts",
        marking=None,
        available=bool(gateway.config.smtp_host),
        chosen=chosen or ("yes" if on else "no"),
        address=typed if typed is not None else (setting.address if setting else ""),
    )


@needs(*MAIL_ROLES)
async def alerts_page(request: web.Request) -> web.StreamResponse:
    organisation, account = _own(request)
    gateway = parts_of(request).gateway
    return _page(request, await run_sync(alert_setting, gateway.db, organisation, account))


@needs(*MAIL_ROLES)
async def save_alerts(request: web.Request) -> web.StreamResponse:
    organisation, account = _own(request)
    gateway = parts_of(request).gateway
    form = await form_of(request)
    chosen = field_text(form, "alerts", 8)
    typed = field_text(form, "address", 400)
    if chosen not in ("yes", "no"):
        errors = FormErrors([("alerts", "Choose whether you want email alerts.", "input-invalid")])
        setting = await run_sync(alert_setting, gateway.db, organisation, account)
        return _page(request, setting, chosen="", typed=typed, errors=errors)
    try:
        await run_sync(
            lambda: set_alert(
                gateway.db,
                gateway.clock,
                organisation=organisation,
                account=account,
                enabled=chosen == "yes",
                address=typed,
                actor=user_of(request).actor,
            )
        )
    except AlertAddressInvalid as exc:
        setting = await run_sync(alert_setting, gateway.db, organisation, account)
        return _page(
            request, setting, chosen=chosen, typed=typed, errors=FormErrors.of(exc, "address")
        )
    raise redirect(
        request,
        "/account",
        flash="You will get an email when a message arrives for you."
        if chosen == "yes"
        else "You will not get email alerts.",
    )
