"""Pages: the sign-off officer's review and the assessor's assessment of a statement.

The sign-off officer reads every answer, read-only, and signs the statement
off or declines with a reason. The use case refuses anyone who took part in
drafting it (separation of duties); the page shows that refusal in the error
summary, like any other.

An assessor works one area at a time: each control's answer and evidence
beside the model answer and the assessor's guidance, with a result and a
note to record. The verdict is computed by the versioned rule when the
assessor completes the assessment; an operator then approves or rejects.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from markupsafe import Markup

from gcx.compliance.catalogue import Control, Result
from gcx.errors import GcxError, JustificationRequired, NotFound
from gcx.httpapi import run_sync
from gcx.web.central import principal_of
from gcx.web.central.statements_common import (
    MARKING,
    RESULT_LABELS,
    Loaded,
    choice_label,
    load_statement,
    service,
    state_tag,
)
from gcx.web.central.statements_overview import overview_page
from gcx.web.site import FormErrors, field_text, form_of, needs, redirect, render
from gcx.web.words import day, size_text

# -- reading the answers, and signing off -------------------------------------------------


def _answered_areas(loaded: Loaded) -> list[dict[str, Any]]:
    """Every control with its answer and evidence, grouped by area, for reading."""
    areas = []
    for area, controls in loaded.areas():
        rows = []
        for control in controls:
            answer = loaded.answers.get(control.id)
            evidence = [
                {**e, "size_text": size_text(e["size"])} for e in loaded.evidence_for(control.id)
            ]
            rows.append(
                {
                    "control": control,
                    "answer": answer,
                    "summary": _summary_rows(control, answer, evidence),
                    # For the sign-off officer of a renewal: what is new since last year.
                    "changed": loaded.changed_since_last_year(control.id),
                }
            )
        areas.append({"area": area, "rows": rows})
    return areas


def _summary_rows(
    control: Control, answer: dict[str, Any] | None, evidence: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What the organisation wrote for one control, as Design System summary-list rows."""
    rows: list[dict[str, Any]] = []
    if control.choices is not None:
        chosen = choice_label(control, answer["choice"]) if answer else None
        rows.append(_row(control.choices.question, text=chosen or "Not chosen"))
    if answer is None:
        rows.append(_row("Answer", text="Not answered"))
    else:
        text = Markup('<p class="govuk-body gcx-pre">{}</p>').format(answer["answer"])
        rows.append(_row("Answer", html=text))
        if answer["needs_reconfirmation"]:
            rows.append(_row("Note", text="Copied from last year and not yet re-confirmed"))
        if answer["plan"]:
            rows.append(_row("Plan", text=f"{answer['plan']} (by {day(answer['plan_target'])})"))
    links = [
        Markup('<a class="govuk-link" href="/evidence/{}">{}</a> ({})').format(
            e["id"], e["filename"], e["size_text"]
        )
        for e in evidence
    ]
    rows.append(
        _row("Evidence", html=Markup("<br>").join(links))
        if links
        else _row("Evidence", text="None")
    )
    return rows


def _row(key: str, *, text: str | None = None, html: Markup | None = None) -> dict[str, Any]:
    value = {"html": html} if html is not None else {"text": text}
    return {"key": {"text": key}, "value": value}


def answers_page(
    request: web.Request,
    loaded: Loaded,
    *,
    errors: FormErrors | None = None,
    status: int = 200,
    reason: str = "",
) -> web.Response:
    by = principal_of(request)
    areas = _answered_areas(loaded)
    return render(
        request,
        "central/statements_sign_off.html",
        title=f"Review the {loaded.name}",
        name=loaded.name,
        marking=MARKING,
        errors=errors,
        status=status,
        s=loaded.view,
        state=state_tag(loaded.state),
        areas=areas,
        changed_count=sum(1 for a in areas for r in a["rows"] if r["changed"]),
        can_sign=loaded.state == "awaiting-sign-off" and "sign-off" in by.roles,
        reason=reason,
    )


@needs("security-officer", "sign-off", "assessor", "operator")
async def show_answers(request: web.Request) -> web.StreamResponse:
    return answers_page(request, await load_statement(request, request.match_info["id"]))


@needs("sign-off")
async def sign_off(request: web.Request) -> web.StreamResponse:
    statement_id = request.match_info["id"]
    try:
        await run_sync(service(request).sign_off, principal_of(request), statement_id)
    except GcxError as exc:
        loaded = await load_statement(request, statement_id)
        return answers_page(
            request, loaded, errors=FormErrors.of(exc, "sign-off"), status=exc.status
        )
    raise redirect(
        request,
        f"/statements/{statement_id}",
        flash="Signed off. The statement is submitted to the network for assessment.",
    )


@needs("sign-off")
async def decline_sign_off(request: web.Request) -> web.StreamResponse:
    statement_id = request.match_info["id"]
    reason = field_text(await form_of(request), "decline-reason", 20_000)
    try:
        await run_sync(
            service(request).decline_sign_off, principal_of(request), statement_id, reason
        )
    except GcxError as exc:
        loaded = await load_statement(request, statement_id)
        return answers_page(
            request,
            loaded,
            errors=FormErrors.of(exc, "decline-reason"),
            status=exc.status,
            reason=reason,
        )
    raise redirect(
        request,
        f"/statements/{statement_id}",
        flash="Sign-off declined. The statement is back with the security officer as a draft.",
    )


# -- assessing ------------------------------------------------------------------------------


def assessment_page(
    request: web.Request,
    loaded: Loaded,
    area_id: str,
    *,
    errors: FormErrors | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
) -> web.Response:
    primary = loaded.primary_assessment()
    if primary is None:
        raise NotFound("This statement has no open assessment; start one from its page.")
    areas = _answered_areas(loaded)
    current = next((a for a in areas if a["area"].id == area_id), None)
    if current is None:
        raise NotFound(f"{area_id[:20]} is not an area of this statement's catalogue.")
    results: dict[str, dict[str, Any]] = primary["results"]
    if values is None:
        values = {}
        for row in current["rows"]:
            recorded = results.get(row["control"].id)
            if recorded:
                values[f"result-{row['control'].id}"] = recorded["result"]
                values[f"reason-{row['control'].id}"] = recorded["reason"]
    index = [a["area"].id for a in areas].index(area_id)
    return render(
        request,
        "central/statements_assessment.html",
        title=f"Assess {current['area'].title}: {loaded.name}",
        name=loaded.name,
        marking=MARKING,
        errors=errors,
        status=status,
        s=loaded.view,
        area=current["area"],
        rows=current["rows"],
        values=values,
        open=primary["state"] == "open",
        result_items=[{"value": r.value, "text": RESULT_LABELS[r.value]} for r in Result],
        area_links=[
            {
                "id": a["area"].id,
                "title": a["area"].title,
                "current": a["area"].id == area_id,
                "recorded": sum(1 for r in a["rows"] if r["control"].id in results),
                "of": len(a["rows"]),
            }
            for a in areas
        ],
        next_area=areas[index + 1]["area"].id if index + 1 < len(areas) else None,
    )


@needs("assessor")
async def start_assessment(request: web.Request) -> web.StreamResponse:
    statement_id = request.match_info["id"]
    try:
        await run_sync(service(request).start_assessment, principal_of(request), statement_id)
    except GcxError as exc:
        loaded = await load_statement(request, statement_id)
        return await overview_page(
            request, loaded, errors=FormErrors.of(exc, "start-assessment"), status=exc.status
        )
    loaded = await load_statement(request, statement_id)
    first = loaded.catalogue.areas[0].id
    raise redirect(
        request,
        f"/statements/{statement_id}/assessment/{first}",
        flash="Assessment started. Record a result and a note for each control.",
    )


@needs("assessor")
async def show_assessment(request: web.Request) -> web.StreamResponse:
    loaded = await load_statement(request, request.match_info["id"])
    return assessment_page(request, loaded, request.match_info["area"])


@needs("assessor")
async def save_results(request: web.Request) -> web.StreamResponse:
    """Record every result given on the area's page; refusals are shown together."""
    statement_id, area_id = request.match_info["id"], request.match_info["area"]
    form = await form_of(request)
    loaded = await load_statement(request, statement_id)
    primary = loaded.primary_assessment()
    if primary is None:
        raise NotFound("This statement has no open assessment; start one from its page.")
    by = principal_of(request)
    values: dict[str, str] = {}
    problems: list[tuple[str, str, str]] = []
    status = 200
    for control in (c for c in loaded.catalogue.controls if c.area == area_id):
        result = field_text(form, f"result-{control.id}", 40)
        note = field_text(form, f"reason-{control.id}", 20_000)
        values[f"result-{control.id}"], values[f"reason-{control.id}"] = result, note
        recorded = primary["results"].get(control.id)
        if not result and not note:
            continue
        if recorded and (recorded["result"], recorded["reason"]) == (result, note):
            continue  # unchanged: no new audit entry for the same finding
        try:
            await run_sync(
                service(request).record_result, by, primary["id"], control.id, result, note
            )
        except GcxError as exc:
            where = "reason" if isinstance(exc, JustificationRequired) else "result"
            problems.append((f"{where}-{control.id}", f"{control.id}: {exc.message}", exc.code))
            status = max(status, exc.status)
    if problems:
        loaded = await load_statement(request, statement_id)
        return assessment_page(
            request, loaded, area_id, errors=FormErrors(problems), status=status, values=values
        )
    ids = [a.id for a in loaded.catalogue.areas]
    following = ids[ids.index(area_id) + 1] if area_id in ids[:-1] else None
    where = (
        f"/statements/{statement_id}/assessment/{following}"
        if following and form.get("then") != "overview"
        else f"/statements/{statement_id}"
    )
    raise redirect(request, where, flash=f"Results for {area_id} saved.")


@needs("assessor")
async def complete_assessment(request: web.Request) -> web.StreamResponse:
    statement_id = request.match_info["id"]
    form = await form_of(request)
    override = field_text(form, "override", 24)
    justification = field_text(form, "justification", 20_000)
    loaded = await load_statement(request, statement_id)
    primary = loaded.primary_assessment()
    try:
        if primary is None:
            raise NotFound("This statement has no open assessment to complete.")
        await run_sync(
            service(request).complete_assessment,
            principal_of(request),
            primary["id"],
            override_outcome=override or None,
            justification=justification or None,
        )
    except GcxError as exc:
        field = "justification" if isinstance(exc, JustificationRequired) else "complete"
        return await overview_page(
            request,
            loaded,
            errors=FormErrors.of(exc, field),
            status=exc.status,
            values={"override": override, "justification": justification},
        )
    raise redirect(
        request,
        f"/statements/{statement_id}",
        flash="Assessment complete. An operator now approves or rejects the statement.",
    )


@needs("assessor", "operator")
async def return_for_changes(request: web.Request) -> web.StreamResponse:
    statement_id = request.match_info["id"]
    form = await form_of(request)
    control = field_text(form, "change-control", 20)
    text = field_text(form, "change-request", 20_000)
    try:
        await run_sync(
            service(request).return_for_changes,
            principal_of(request),
            statement_id,
            [{"control": control, "request": text}],
        )
    except GcxError as exc:
        loaded = await load_statement(request, statement_id)
        return await overview_page(
            request,
            loaded,
            errors=FormErrors.of(exc, "change-request"),
            status=exc.status,
            values={"change-control": control, "change-request": text},
        )
    raise redirect(
        request,
        f"/statements/{statement_id}",
        flash="Sent back to the organisation with your request for changes.",
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/statements/{id}/answers", show_answers)
    app.router.add_post("/statements/{id}/sign-off", sign_off)
    app.router.add_post("/statements/{id}/decline-sign-off", decline_sign_off)
    app.router.add_post("/statements/{id}/assessment", start_assessment)
    app.router.add_get("/statements/{id}/assessment/{area}", show_assessment)
    app.router.add_post("/statements/{id}/assessment/{area}", save_results)
    app.router.add_post("/statements/{id}/complete", complete_assessment)
    app.router.add_post("/statements/{id}/return", return_for_changes)
