"""A statement's overview page: its state, its task list, and the steps offered to the reader.

Both the statements pages (:mod:`.statements`) and the assessors' pages
(:mod:`.statements_review`) answer with it after a step, so it lives apart from
both.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from gcx.compliance.catalogue import Result
from gcx.compliance.rules import Outcome, compute_verdict
from gcx.httpapi import run_sync
from gcx.web.central import CENTRAL, principal_of
from gcx.web.central.statements_common import (
    MARKING,
    RESULT_LABELS,
    Loaded,
    history_rows,
    service,
    state_tag,
)
from gcx.web.site import FormErrors, render, user_of


async def overview_page(
    request: web.Request,
    loaded: Loaded,
    *,
    errors: FormErrors | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
) -> web.Response:
    by = principal_of(request)
    user = user_of(request)
    member = by.organisation == loaded.view["organisation"]
    primary = loaded.primary_assessment()
    certificate = None
    if loaded.state == "approved":
        standing = await run_sync(service(request).standing_of, by, loaded.view["organisation"])
        if standing["certificate"] and standing["certificate"]["statement"] == loaded.id:
            certificate = standing["certificate"]
    name = loaded.name
    mine = primary is not None and primary["assessor"] == user.username
    preview = (
        verdict_preview(loaded, primary, request.app[CENTRAL].clock.now())
        if mine and primary is not None and primary["state"] == "open"
        else None
    )
    return render(
        request,
        "central/statements_statement.html",
        title=name,
        name=name,
        history=history_rows(loaded.view),
        marking=MARKING,
        errors=errors,
        status=status,
        s=loaded.view,
        state=state_tag(loaded.state),
        task_areas=_task_areas(loaded) if member else [],
        change_requests=loaded.change_requests(),
        is_officer=member and "security-officer" in by.roles and loaded.editable,
        is_signer=member and "sign-off" in by.roles,
        is_member=member,
        is_assessor="assessor" in by.roles,
        is_operator="operator" in by.roles,
        my_assessment=mine,
        preview=preview,
        primary=primary,
        results_recorded=len(primary["results"]) if primary else 0,
        control_ids=list(loaded.catalogue.control_ids),
        first_area=loaded.catalogue.areas[0].id,
        change_items=[
            {"value": "", "text": "The statement as a whole"},
            *({"value": c, "text": c} for c in loaded.catalogue.control_ids),
        ],
        result_labels=RESULT_LABELS,
        certificate=certificate,
        values=values or {},
    )


def verdict_preview(loaded: Loaded, assessment: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The verdict the network's rule would give the results recorded so far, and why.

    The same pure rule the use case applies on completion (gcx.compliance.rules),
    so what the assessor sees before completing is what completing records.
    """
    results = {c: Result(r["result"]) for c, r in assessment["results"].items()}
    targets = {
        c: dt.date.fromisoformat(a["plan_target"]) if a.get("plan_target") else None
        for c, a in loaded.answers.items()
    }
    verdict = compute_verdict(loaded.catalogue, results, targets, now)
    missing = [s for s in verdict.shortfalls if s.result == "none"]
    deciding = [
        {
            "control": s.control,
            "title": _title(loaded, s.control),
            "level": "Must" if s.level == "MUST" else "Should",
            "result": RESULT_LABELS.get(s.result, s.result),
            "why": s.why,
        }
        for s in verdict.shortfalls
        if s.result != "none"
    ]
    return {
        "meets": verdict.outcome is Outcome.MEETS,
        "rule": verdict.rule,
        "missing": len(missing),
        "deciding": deciding,
    }


def _title(loaded: Loaded, control_id: str) -> str:
    control = loaded.catalogue.control(control_id)
    return control.title if control is not None else ""


def _task_areas(loaded: Loaded) -> list[dict[str, Any]]:
    """The task list: one list per area, one task per control."""
    changes = {c["control"] for c in loaded.change_requests() if c["control"]}
    areas = []
    for area, controls in loaded.areas():
        items = []
        for control in controls:
            answer = loaded.answers.get(control.id)
            if control.id in changes and loaded.state == "changes-requested":
                status: dict[str, Any] = {
                    "tag": {"text": "Change requested", "classes": "govuk-tag--red"}
                }
            elif answer is None:
                status = {"tag": {"text": "Not yet started", "classes": "govuk-tag--blue"}}
            elif control.unchosen(answer):
                # Text without the structured question's choice is not an answer yet.
                status = {"tag": {"text": "Choose an answer", "classes": "govuk-tag--orange"}}
            elif answer["needs_reconfirmation"]:
                status = {"tag": {"text": "Re-confirm", "classes": "govuk-tag--yellow"}}
            else:
                status = {"text": "Completed"}
            item: dict[str, Any] = {
                "title": {"text": f"{control.id} {control.title}"},
                "hint": {"text": f"{control.level.value} control"},
                "status": status,
            }
            if loaded.editable:
                item["href"] = f"/statements/{loaded.id}/controls/{control.id}"
            items.append(item)
        done = sum(1 for c in controls if loaded.control_done(c.id))
        areas.append(
            {"id": area.id, "title": area.title, "items": items, "done": done, "of": len(controls)}
        )
    return areas
