"""Pages: extensions of an organisation's Code of Connection approval.

An organisation's security officer or sign-off officer asks for an extension (to an
end date no further than the network allows past its current certificate); the
network operator grants it (to that date or an earlier one) or refuses it, with a
reason. Both go through :class:`~gcx.central.compliance.ComplianceService` as the
API does, so the limits, separation of duties and audit entries are the same, and
a refusal such as an extension that is too long shows the use case's own message.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from gcx.central.compliance import ComplianceService, Principal
from gcx.errors import ExtensionTooLong, GcxError, InputError, JustificationRequired, NotFound
from gcx.httpapi import run_sync
from gcx.web.central import COMPLIANCE, principal_of
from gcx.web.central.network_shared import (
    date_fields,
    date_fields_of,
    end_of_day,
    page,
    reason_of,
)
from gcx.web.site import FormErrors, form_of, needs, redirect
from gcx.web.words import day

OFFICERS = ("security-officer", "sign-off")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/network/extensions", extensions)
    app.router.add_get("/network/extensions/{id}", extension)
    app.router.add_post("/network/extensions/{id}", decide)
    app.router.add_get("/network/extension-request", request_form)
    app.router.add_post("/network/extension-request", request_extension)


# -- the operator's list and decisions -------------------------------------------------


@needs("operator")
async def extensions(request: web.Request) -> web.Response:
    register = await run_sync(request.app[COMPLIANCE].register, principal_of(request))
    every = register["extensions"]
    return page(
        request,
        "central/network_extensions.html",
        title="Extensions",
        requested=[e for e in every if e["state"] == "requested"],
        decided=[e for e in reversed(every) if e["state"] != "requested"],
        max_days=request.app[COMPLIANCE].settings.max_extension_days,
    )


@needs("operator")
async def extension(request: web.Request) -> web.Response:
    return await _decision_page(request)


async def _decision_page(
    request: web.Request,
    *,
    form: MultiDictProxy[Any] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> web.Response:
    found, standing = await run_sync(
        _extension_and_standing,
        request.app[COMPLIANCE],
        principal_of(request),
        request.match_info["id"],
    )
    return page(
        request,
        "central/network_extension.html",
        status=status,
        errors=errors,
        title=f"Extension requested by {found['organisation']}",
        extension=found,
        standing=standing,
        until=date_fields(form, "until") if form else date_fields_of(found["requested_until"]),
        reason=reason_of(form) if form else "",
    )


def _extension_and_standing(
    compliance: ComplianceService, by: Principal, extension_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    found = compliance.extension(by, extension_id)
    return found, compliance.standing_of(by, found["organisation"])


@needs("operator")
async def decide(request: web.Request) -> web.Response:
    compliance = request.app[COMPLIANCE]
    form = await form_of(request)
    decision = form.get("decision")
    try:
        if decision not in ("grant", "refuse"):
            raise InputError("Choose whether to grant or refuse the extension.")
        grant = decision == "grant"
        result = await run_sync(
            lambda: compliance.decide_extension(
                principal_of(request),
                request.match_info["id"],
                grant=grant,
                reason=reason_of(form),
                until=end_of_day(date_fields(form, "until")) if grant else None,
            )
        )
    except NotFound:
        raise
    except GcxError as exc:
        return await _decision_page(
            request,
            form=form,
            errors=FormErrors.of(exc, _field_for(exc, decision == "grant")),
            status=exc.status,
        )
    organisation = result["organisation"]
    message = (
        f"The extension for {organisation} was granted."
        if result["state"] == "granted"
        else f"The extension for {organisation} was refused."
    )
    raise redirect(request, "/network/extensions", flash=message)


def _field_for(exc: GcxError, grant: bool) -> str:
    """The field a refusal is about: the reason, or (when a date was given) the end date.

    The use cases' refusals of a date all speak of the date (past, too late, not
    a real date); the others are about the reason (missing or too long) or the
    request as a whole, which the reason field stands for.
    """
    if isinstance(exc, JustificationRequired):
        return "reason"
    if grant and isinstance(exc, InputError) and "date" in exc.message:
        return "until-day"
    return "reason"


# -- an organisation's officer asks -------------------------------------------------------


@needs(*OFFICERS)
async def request_form(request: web.Request) -> web.Response:
    return await _request_page(request)


async def _request_page(
    request: web.Request,
    *,
    form: MultiDictProxy[Any] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> web.Response:
    by = principal_of(request)
    compliance = request.app[COMPLIANCE]
    standing = await run_sync(compliance.standing_of, by, by.organisation or "")
    return page(
        request,
        "central/network_extension_request.html",
        status=status,
        errors=errors,
        title="Request an extension",
        organisation=by.organisation,
        standing=standing,
        max_days=compliance.settings.max_extension_days,
        until=date_fields(form, "until"),
        reason=reason_of(form) if form else "",
    )


@needs(*OFFICERS)
async def request_extension(request: web.Request) -> web.Response:
    by = principal_of(request)
    compliance = request.app[COMPLIANCE]
    form = await form_of(request)
    try:
        until = end_of_day(date_fields(form, "until"))
        if until is None:
            raise InputError("Enter the date the extension should end.")
        result = await run_sync(
            compliance.request_extension, by, by.organisation or "", until, reason_of(form)
        )
    except InputError as exc:
        # Refusals of what was typed are shown on the form; being the wrong person
        # (no role, another organisation) is the frame's error page, as for any page.
        field = "until-day" if isinstance(exc, ExtensionTooLong) else _field_for(exc, True)
        return await _request_page(
            request, form=form, errors=FormErrors.of(exc, field), status=exc.status
        )
    raise redirect(
        request,
        "/network/extension-request",
        flash=(
            f"Your request for an extension to {day(result['requested_until'])} was sent "
            f"(reference {result['id']}). The network operator will grant or refuse it."
        ),
    )
