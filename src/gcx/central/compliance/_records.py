"""Reading and writing the Code of Connection tables inside a caller's transaction.

Every function here takes the open connection of the use case that calls it,
so the rows it reads and the changes it makes belong to that use case's one
transaction and its audit entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx.central.compliance._principal import Principal
from gcx.central.compliance._settings import MAX_TEXT
from gcx.central.compliance._views import _assessment_view, _statement_summary
from gcx.compliance.catalogue import Catalogue
from gcx.compliance.statement import EDITABLE, StatementState
from gcx.errors import (
    Forbidden,
    InputError,
    JustificationRequired,
    NotFound,
    StateTransitionRefused,
)
from gcx.protocol.identifiers import check_organisation_code
from gcx.store import iso
from gcx.store.schema import organisations
from gcx.store.schema_compliance import (
    compliance_answers,
    compliance_assessments,
    compliance_evidence,
    compliance_evidence_links,
    compliance_results,
    compliance_statements,
)

# -- rows ---------------------------------------------------------------------------


def statement_row(conn: Connection, statement_id: str, *, lock: bool = False) -> Any:
    query = sa.select(compliance_statements).where(compliance_statements.c.id == statement_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"There is no statement {statement_id[:40]!r}.")
    return row


def assessment_row(conn: Connection, assessment_id: str, *, lock: bool = False) -> Any:
    query = sa.select(compliance_assessments).where(compliance_assessments.c.id == assessment_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"There is no assessment {assessment_id[:40]!r}.")
    return row


def primary_assessment(conn: Connection, statement_id: str) -> Any:
    """The assessment of record (the first), unless it was returned."""
    return conn.execute(
        sa.select(compliance_assessments).where(
            compliance_assessments.c.statement_id == statement_id,
            compliance_assessments.c.ordinal == 1,
            compliance_assessments.c.state != "returned",
        )
    ).first()


def answers_of(conn: Connection, statement_id: str) -> dict[str, dict[str, Any]]:
    return {
        r.control_id: {
            "choice": r.choice,
            "answer": r.answer,
            "plan": r.plan,
            "plan_target": r.plan_target,
            "needs_reconfirmation": bool(r.needs_reconfirmation),
            "updated_at": r.updated_at,
            "updated_by": r.updated_by,
        }
        for r in conn.execute(
            sa.select(compliance_answers).where(compliance_answers.c.statement_id == statement_id)
        )
    }


def results_of(conn: Connection, assessment_id: str) -> dict[str, dict[str, Any]]:
    return {
        r.control_id: {"result": r.result, "reason": r.reason, "recorded_at": r.recorded_at}
        for r in conn.execute(
            sa.select(compliance_results).where(compliance_results.c.assessment_id == assessment_id)
        )
    }


def statement_view(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
    """A statement with everything a page needs: controls, answers, evidence, assessments."""
    answers = answers_of(conn, row.id)
    links: dict[str, list[str]] = {}
    for link in conn.execute(
        sa.select(compliance_evidence_links).where(
            compliance_evidence_links.c.statement_id == row.id
        )
    ):
        links.setdefault(link.evidence_id, []).append(link.control_id)
    evidence = [
        {
            "id": e.id,
            "kind": e.kind,
            "filename": e.filename,
            "media_type": e.media_type,
            "size": e.size,
            "sha256": e.sha256,
            "expires_at": e.expires_at,
            "uploaded_at": e.uploaded_at,
            "uploaded_by": e.uploaded_by,
            "controls": sorted(links[e.id]),
        }
        for e in conn.execute(
            sa.select(compliance_evidence)
            .where(compliance_evidence.c.id.in_(list(links)))
            .order_by(compliance_evidence.c.uploaded_at)
        )
    ]
    assessments = [
        _assessment_view(a, results_of(conn, a.id))
        for a in conn.execute(
            sa.select(compliance_assessments)
            .where(compliance_assessments.c.statement_id == row.id)
            .order_by(compliance_assessments.c.started_at, compliance_assessments.c.ordinal)
        )
    ]
    controls = []
    for control in catalogue.controls:
        entry = control.to_dict()
        answer = answers.get(control.id)
        if answer and answer["choice"] and control.choices:
            result = control.choices.result_for(answer["choice"])
            entry["scripted_result"] = result.value if result else None
        controls.append(entry)
    return {
        **_statement_summary(row),
        "contributors": list(row.contributors),
        "history": list(row.history),
        "controls": controls,
        "answers": answers,
        "evidence": evidence,
        "assessments": assessments,
        "progress": {
            "controls": len(catalogue.controls),
            # Structured questions left unchosen are not answers (Control.answered_by).
            "answered": sum(1 for c in catalogue.controls if c.answered_by(answers.get(c.id))),
            "unchosen": [c.id for c in catalogue.controls if c.unchosen(answers.get(c.id))],
            "to_reconfirm": sum(1 for a in answers.values() if a["needs_reconfirmation"]),
        },
    }


# -- changes ------------------------------------------------------------------------


def set_state(
    conn: Connection,
    row: Any,
    state: StatementState,
    by: Principal,
    now: dt.datetime,
    step: str,
    extra: dict[str, Any] | None = None,
) -> None:
    history = [*row.history, history_entry(now, by, step, state)]
    conn.execute(
        compliance_statements.update()
        .where(compliance_statements.c.id == row.id)
        .values(state=state.value, updated_at=iso(now), history=history, **(extra or {}))
    )


def touch(conn: Connection, row: Any, by: Principal, now: dt.datetime) -> None:
    """Record that ``by`` worked on the statement (for separation of duties)."""
    contributors = sorted({*row.contributors, by.name})
    conn.execute(
        compliance_statements.update()
        .where(compliance_statements.c.id == row.id)
        .values(updated_at=iso(now), contributors=contributors)
    )


# -- checks -------------------------------------------------------------------------


def require_editable(row: Any) -> None:
    if StatementState(row.state) not in EDITABLE:
        raise StateTransitionRefused(
            f"The statement is {row.state}; answers and evidence can change only while it "
            "is a draft or has changes requested."
        )


def require_own_open_assessment(row: Any, by: Principal) -> None:
    if row.assessor != by.name:
        raise Forbidden("Only the assessor who opened this assessment may record it.")
    if row.state != "open":
        raise StateTransitionRefused(f"This assessment is {row.state}, not open.")


def require_organisation(conn: Connection, code: str) -> None:
    check_organisation_code(code)
    if not conn.execute(
        sa.select(organisations.c.code).where(organisations.c.code == code)
    ).first():
        raise NotFound(f"{code} is not in the member registry.")


# -- small helpers ------------------------------------------------------------------


def organisation_people(row: Any) -> list[str | None]:
    return [*row.contributors, row.created_by, row.sign_off_requested_by, row.signed_off_by]


def reason_text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise JustificationRequired("A written reason is required; it is kept in the audit log.")
    if len(text) > MAX_TEXT:
        raise InputError(f"The text must be at most {MAX_TEXT:,} characters.")
    return text


def parse_date(text: str, field_name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{field_name} must be a date as YYYY-MM-DD.") from exc


def history_entry(
    now: dt.datetime, by: Principal, step: str, state: StatementState
) -> dict[str, str]:
    return {"at": iso(now), "by": by.actor, "step": step, "state": state.value}
