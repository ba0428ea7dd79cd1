"""Pages: gateway enrolments (approve, reject) and revoking a gateway.

The decisions go through :class:`~gcx.central.service.CentralService` exactly as
the API's do, with the signed-in operator's user name as the operator, so the
state table, the audit entry and the compliance gate are the API's own. When the
gate refuses an approval (an organisation with no current certificate of
compliance or granted extension), the page shows the refusal and offers the
override the API offers: an explicit choice with its own reason, recorded for the
dashboard and the register.

Revoking a gateway cannot be undone (the gateway must enrol again with new keys),
so it is asked for on a page of its own that says so, before anything is done.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from gcx.central.compliance import ComplianceService, Principal
from gcx.central.service import CentralService
from gcx.errors import (
    ComplianceRequired,
    GcxError,
    InputError,
    JustificationRequired,
    NotFound,
)
from gcx.httpapi import run_sync
from gcx.web.central import CENTRAL, COMPLIANCE, principal_of
from gcx.web.central.network_shared import page, reason_of
from gcx.web.site import FormErrors, form_of, needs, redirect


def add_routes(app: web.Application) -> None:
    app.router.add_get("/network/enrolments", enrolments)
    app.router.add_get("/network/enrolments/{id}", enrolment)
    app.router.add_post("/network/enrolments/{id}", decide)
    app.router.add_get("/network/gateways/{name}/revoke", revoke_confirmation)
    app.router.add_post("/network/gateways/{name}/revoke", revoke)


# -- the list -------------------------------------------------------------------------


@needs("operator")
async def enrolments(request: web.Request) -> web.Response:
    view = await run_sync(
        _enrolments, request.app[CENTRAL], request.app[COMPLIANCE], principal_of(request)
    )
    return page(request, "central/network_enrolments.html", title="Enrolments", **view)


def _enrolments(
    central: CentralService, compliance: ComplianceService, by: Principal
) -> dict[str, Any]:
    every = central.list_enrolments()
    return {
        "members": _members(compliance, by),
        "pending": [e for e in every if e["state"] == "pending"],
        "active": [e for e in every if e["state"] == "active"],
        "decided": [e for e in reversed(every) if e["state"] in ("rejected", "revoked")],
    }


def _members(compliance: ComplianceService, by: Principal) -> dict[str, dict[str, Any]]:
    """Each organisation's name and Code of Connection standing, by code."""
    return {row["organisation"]: row for row in compliance.network_report(by)}


# -- one enrolment: approve or reject -----------------------------------------------------


@needs("operator")
async def enrolment(request: web.Request) -> web.Response:
    return await _decision_page(request)


async def _decision_page(
    request: web.Request,
    *,
    form: MultiDictProxy[Any] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
    show_override: bool = False,
) -> web.Response:
    central, compliance = request.app[CENTRAL], request.app[COMPLIANCE]
    found = await run_sync(central.get_enrolment, request.match_info["id"])
    members = await run_sync(_members, compliance, principal_of(request))
    typed = {
        "reason": reason_of(form) if form else "",
        "override": bool(form and form.get("override") == "yes"),
        "override_reason": reason_of(form, "override_reason") if form else "",
    }
    return page(
        request,
        "central/network_enrolment.html",
        status=status,
        errors=errors,
        title=f"Enrolment of gateway {found['gateway']}",
        enrolment=found,
        members=members,
        typed=typed,
        show_override=show_override or typed["override"],
    )


@needs("operator")
async def decide(request: web.Request) -> web.Response:
    central = request.app[CENTRAL]
    by = principal_of(request)
    enrolment_id = request.match_info["id"]
    form = await form_of(request)
    decision = form.get("decision")
    override = form.get("override") == "yes"
    try:
        if decision == "approve":
            result = await run_sync(
                central.approve_enrolment,
                by.name,
                enrolment_id,
                reason_of(form),
                override=override,
                override_reason=reason_of(form, "override_reason") or None,
            )
        elif decision == "reject":
            result = await run_sync(
                central.reject_enrolment, by.name, enrolment_id, reason_of(form)
            )
        else:
            raise InputError("Choose whether to approve or reject the enrolment.")
    except NotFound:
        raise
    except GcxError as exc:
        gate = isinstance(exc, ComplianceRequired | JustificationRequired)
        return await _decision_page(
            request,
            form=form,
            errors=FormErrors.of(exc, _field_for(exc)),
            status=exc.status,
            show_override=gate,
        )
    gateway = result["gateway"]
    if decision == "reject":
        message = f"The enrolment of gateway {gateway} was rejected."
    elif override:
        message = (
            f"Gateway {gateway} was approved and added to the directory. Your override of the "
            "Code of Connection, with its reason, is recorded in the audit log and the register."
        )
    else:
        message = f"Gateway {gateway} was approved and added to the directory."
    raise redirect(request, "/network/enrolments", flash=message)


def _field_for(exc: GcxError) -> str:
    """The field an approval's refusal is about, for the error summary's link."""
    if isinstance(exc, ComplianceRequired):
        return "override"
    if isinstance(exc, JustificationRequired):
        return "override-reason"
    return "reason"


# -- revoking a gateway --------------------------------------------------------------


@needs("operator")
async def revoke_confirmation(request: web.Request) -> web.Response:
    return await _revoke_page(request)


async def _revoke_page(
    request: web.Request,
    *,
    reason: str = "",
    errors: FormErrors | None = None,
    status: int = 200,
) -> web.Response:
    name = request.match_info["name"]
    active = await run_sync(request.app[CENTRAL].list_enrolments, "active")
    found = next((e for e in active if e["gateway"] == name), None)
    if found is None:
        raise NotFound(f"There is no active gateway named {name[:63]!r}.")
    return page(
        request,
        "central/network_revoke.html",
        status=status,
        errors=errors,
        title=f"Are you sure you want to revoke gateway {name}?",
        gateway=found,
        reason=reason,
    )


@needs("operator")
async def revoke(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    form = await form_of(request)
    reason = reason_of(form)
    try:
        await run_sync(
            request.app[CENTRAL].revoke_gateway, principal_of(request).name, name, reason
        )
    except NotFound:
        raise
    except GcxError as exc:
        return await _revoke_page(
            request, reason=reason, errors=FormErrors.of(exc, "reason"), status=exc.status
        )
    raise redirect(
        request,
        "/network",
        flash=(
            f"Gateway {name} was revoked. Its certificate is listed as revoked in the new "
            "directory, and its peers refuse it from their next directory update."
        ),
    )
