"""Pages: the Code of Connection statements list and each statement's overview.

Who sees what follows the roles of :mod:`gcx.compliance.statement`: an
organisation's security officer drafts (:mod:`.statements_drafting`), its
sign-off officer signs off, an assessor assesses (:mod:`.statements_review`)
and an operator approves or rejects. The overview page of a statement offers
each person only the steps their roles allow in its present state; the use
cases still decide, so a step offered by mistake is refused with the API's
own error.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gcx.errors import GcxError, StateTransitionRefused
from gcx.httpapi import run_sync
from gcx.web.central import principal_of, statements_drafting, statements_review
from gcx.web.central.statements_common import (
    MARKING,
    Loaded,
    load_statement,
    organisation_names,
    service,
    state_tag,
    statement_name,
)
from gcx.web.central.statements_overview import overview_page
from gcx.web.site import FormErrors, Site, field_text, form_of, needs, redirect, render
from gcx.web.words import moment

ROLES = ("security-officer", "sign-off", "assessor", "operator")
# States an assessor is asked to act on, or has acted on.
ASSESSOR_STATES = ("submitted", "under-assessment", "assessed")
ORGANISATION_ONLY = ("draft", "awaiting-sign-off", "abandoned")


def navigation(site: Site) -> None:
    # Operators approve assessed statements, so they see the list too.
    site.nav(text="Statements", href="/statements", roles=ROLES)


# -- the list -------------------------------------------------------------------------


async def _list_page(
    request: web.Request, *, errors: FormErrors | None = None, status: int = 200
) -> web.Response:
    by = principal_of(request)
    statements = await run_sync(service(request).list_statements, by)
    statements.sort(key=lambda s: str(s["updated_at"]), reverse=True)
    central = by.organisation is None
    if central:
        # A statement is the organisation's own until its sign-off officer submits it.
        statements = [s for s in statements if s["state"] not in ORGANISATION_ONLY]
    waiting = [s for s in statements if s["state"] in ASSESSOR_STATES] if central else []
    # A sign-off officer's home page starts with what waits for them.
    to_sign = (
        [s for s in statements if s["state"] == "awaiting-sign-off"]
        if "sign-off" in by.roles and not central
        else []
    )
    others = [s for s in statements if s not in waiting and s not in to_sign]
    names = await run_sync(organisation_names, request)
    return render(
        request,
        "central/statements_list.html",
        title="Statements of compliance",
        marking=MARKING,
        errors=errors,
        status=status,
        central=central,
        waiting=[_row(s, names) for s in waiting],
        others=[_row(s, names) for s in others],
        to_sign=[_row(s, names) for s in to_sign],
        is_signer="sign-off" in by.roles,
        can_start="security-officer" in by.roles and by.organisation is not None,
        organisation=by.organisation,
        organisation_name=names.get(by.organisation or "", by.organisation or ""),
    )


def _row(summary: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": summary["id"],
        "name": statement_name(summary, names),
        "organisation": names.get(summary["organisation"], summary["organisation"]),
        "code": summary["organisation"],
        "state": state_tag(summary["state"]),
        "updated": moment(summary["updated_at"]),
    }


@needs(*ROLES)
async def statements_list(request: web.Request) -> web.StreamResponse:
    return await _list_page(request)


@needs("security-officer")
async def start_statement(request: web.Request) -> web.StreamResponse:
    by = principal_of(request)
    try:
        view = await run_sync(service(request).create_statement, by, by.organisation or "")
    except GcxError as exc:
        return await _list_page(request, errors=FormErrors.of(exc, "start"), status=exc.status)
    note = " Last year's answers were copied in: re-confirm each." if view["renewal_of"] else ""
    raise redirect(request, f"/statements/{view['id']}", flash=f"Statement started.{note}")


# -- one statement ----------------------------------------------------------------------


@needs(*ROLES)
async def statement_page(request: web.Request) -> web.StreamResponse:
    return await overview_page(request, await load_statement(request, request.match_info["id"]))


async def _step(
    request: web.Request,
    call: Any,
    *args: Any,
    field: str,
    done: str,
    then: str | None = None,
    values: dict[str, str] | None = None,
) -> web.StreamResponse:
    """Take one step of the statement's life; a refusal re-renders the overview."""
    statement_id = request.match_info["id"]
    try:
        await run_sync(call, principal_of(request), statement_id, *args)
    except GcxError as exc:
        loaded = await load_statement(request, statement_id)
        return await overview_page(
            request, loaded, errors=FormErrors.of(exc, field), status=exc.status, values=values
        )
    raise redirect(request, then or f"/statements/{statement_id}", flash=done)


@needs("security-officer")
async def request_sign_off(request: web.Request) -> web.StreamResponse:
    statement_id = request.match_info["id"]
    try:
        await run_sync(service(request).request_sign_off, principal_of(request), statement_id)
    except StateTransitionRefused as exc:
        loaded = await load_statement(request, statement_id)
        errors = not_ready_errors(loaded, exc)
        return await overview_page(request, loaded, errors=errors, status=exc.status)
    raise redirect(
        request,
        f"/statements/{statement_id}",
        flash="Sent for sign-off. A sign-off officer of your organisation (not you) must now "
        "review and sign it.",
    )


# The error summary names this many controls still to answer, then says how many more.
NAMED_IN_SUMMARY = 15


def not_ready_errors(loaded: Loaded, exc: GcxError) -> FormErrors:
    """Why a statement cannot go for sign-off: the refusal, then each control to see to.

    Each control links to its own page, so the summary is the list of work left.
    """
    items = [("submit-for-sign-off", exc.message, exc.code)]
    named = []
    for control_id in exc.details.get("unanswered", []):
        control = loaded.catalogue.control(control_id)
        if control is None:
            continue
        unchosen = control.unchosen(loaded.answers.get(control_id))
        todo = "choose an answer" if unchosen else "answer it"
        named.append((control, todo))
    for control_id in exc.details.get("to_reconfirm", []):
        control = loaded.catalogue.control(control_id)
        if control is not None:
            named.append((control, "re-confirm last year's answer"))
    for control, todo in named[:NAMED_IN_SUMMARY]:
        items.append(
            (
                f"/statements/{loaded.id}/controls/{control.id}",
                f"{control.id} {control.title}: {todo}",
                exc.code,
            )
        )
    if len(named) > NAMED_IN_SUMMARY:
        items.append(
            ("task-list", f"And {len(named) - NAMED_IN_SUMMARY} more in the list below", exc.code)
        )
    return FormErrors(items)


@needs("security-officer")
async def reconfirm_unchanged(request: web.Request) -> web.StreamResponse:
    """A renewal's unchanged answers, all re-confirmed in one step."""
    statement_id = request.match_info["id"]
    try:
        done = await run_sync(
            service(request).reconfirm_unchanged, principal_of(request), statement_id
        )
    except GcxError as exc:
        loaded = await load_statement(request, statement_id)
        return await overview_page(
            request, loaded, errors=FormErrors.of(exc, "reconfirm"), status=exc.status
        )
    words = "1 answer" if done == 1 else f"{done} answers"
    raise redirect(
        request,
        f"/statements/{statement_id}",
        flash=f"{words} from last year re-confirmed. The sign-off officer will see which "
        "answers changed.",
    )


@needs("operator")
async def approve(request: web.Request) -> web.StreamResponse:
    reason = field_text(await form_of(request), "approve-reason", 20_000)
    return await _step(
        request,
        service(request).approve,
        reason,
        field="approve-reason",
        done="Approved: the certificate of compliance is issued.",
        values={"approve-reason": reason},
    )


@needs("operator")
async def reject(request: web.Request) -> web.StreamResponse:
    reason = field_text(await form_of(request), "reject-reason", 20_000)
    return await _step(
        request,
        service(request).reject,
        reason,
        field="reject-reason",
        done="Rejected. The organisation has been told why.",
        values={"reject-reason": reason},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/statements", statements_list)
    app.router.add_post("/statements", start_statement)
    app.router.add_get("/statements/{id}", statement_page)
    app.router.add_post("/statements/{id}/request-sign-off", request_sign_off)
    app.router.add_post("/statements/{id}/reconfirm", reconfirm_unchanged)
    app.router.add_post("/statements/{id}/approve", approve)
    app.router.add_post("/statements/{id}/reject", reject)
    statements_drafting.add_routes(app)
    statements_review.add_routes(app)
