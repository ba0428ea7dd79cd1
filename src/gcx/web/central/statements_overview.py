"""A statement's overview page: its state, its task list, and the steps offered to the reader.

Both the statements pages (:mod:`.statements`) and the assessors' pages
(:mod:`.statements_review`) answer with it after a step, so it lives apart from
both.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gcx.httpapi import run_sync
from gcx.web.central import principal_of
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
        my_assessment=primary is not None and primary["assessor"] == user.username,
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
