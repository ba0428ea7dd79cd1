"""Assessment: assessors' results per control and the verdict by the versioned rule."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.central.compliance._catalogues import Catalogues
from gcx.central.compliance._principal import Principal, _require_reader, require_role
from gcx.central.compliance._records import (
    answers_of,
    assessment_row,
    organisation_people,
    primary_assessment,
    reason_text,
    require_own_open_assessment,
    results_of,
    set_state,
    statement_row,
)
from gcx.central.compliance._settings import MAX_TEXT
from gcx.central.compliance._steps import StatementSteps
from gcx.central.compliance._views import _assessment_view
from gcx.clock import Clock
from gcx.compliance.catalogue import Catalogue, Result
from gcx.compliance.rules import VERDICT_RULE, Outcome, compute_verdict, missing_results
from gcx.compliance.statement import (
    SECOND_ASSESSABLE,
    Role,
    StatementEvent,
    StatementState,
    advance,
    check_separation,
)
from gcx.errors import (
    AssessmentIncomplete,
    Conflict,
    ControlNotInCatalogue,
    Forbidden,
    InputError,
    JustificationRequired,
    StateTransitionRefused,
)
from gcx.store import Database, iso
from gcx.store.schema_compliance import compliance_assessments, compliance_results


class Assessments:
    """The assessment of record, second assessments, results and verdicts."""

    def __init__(
        self, database: Database, clock: Clock, catalogues: Catalogues, steps: StatementSteps
    ) -> None:
        self.db = database
        self.clock = clock
        self.catalogues = catalogues
        self.steps = steps

    def start_assessment(self, by: Principal, statement_id: str) -> dict[str, Any]:
        """Open the assessment of record (the first assessor to take the statement)."""
        now = self.clock.now()
        assessment_id = crypto.random_id(12)

        def check(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
            check_separation(by.name, organisation_people(row), "assess")
            conn.execute(
                compliance_assessments.insert().values(
                    id=assessment_id,
                    statement_id=statement_id,
                    ordinal=1,
                    assessor=by.name,
                    state="open",
                    started_at=iso(now),
                    change_requests=[],
                )
            )
            return {}

        self.steps.take(
            by,
            statement_id,
            StatementEvent.START_ASSESSMENT,
            check,
            details={"assessment": assessment_id},
        )
        return self.assessment(by, assessment_id)

    def start_second_assessment(self, by: Principal, statement_id: str) -> dict[str, Any]:
        """A second, independent assessment of the same answers, for the consistency report."""
        require_role(by, Role.ASSESSOR)
        now = self.clock.now()
        assessment_id = crypto.random_id(12)
        with self.db.transaction() as conn:
            row = statement_row(conn, statement_id, lock=True)
            if StatementState(row.state) not in SECOND_ASSESSABLE:
                raise StateTransitionRefused(
                    f"A second assessment needs a statement under assessment or assessed; this "
                    f"one is {row.state}."
                )
            others = conn.execute(
                sa.select(compliance_assessments).where(
                    compliance_assessments.c.statement_id == statement_id,
                    compliance_assessments.c.state != "returned",
                )
            ).all()
            if any(a.ordinal == 2 for a in others):
                raise Conflict("This statement already has a second assessment.")
            check_separation(
                by.name, [*organisation_people(row), *(a.assessor for a in others)], "assess"
            )
            conn.execute(
                compliance_assessments.insert().values(
                    id=assessment_id,
                    statement_id=statement_id,
                    ordinal=2,
                    assessor=by.name,
                    state="open",
                    started_at=iso(now),
                    change_requests=[],
                )
            )
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.assessment.second-started",
                subject=statement_id,
                now=now,
                details={"assessment": assessment_id},
            )
        return self.assessment(by, assessment_id)

    def assessment(self, by: Principal, assessment_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = assessment_row(conn, assessment_id)
            statement = statement_row(conn, row.statement_id)
            _require_reader(by, statement.organisation)
            return _assessment_view(row, results_of(conn, assessment_id))

    def record_result(
        self, by: Principal, assessment_id: str, control_id: str, result: str, reason: str
    ) -> dict[str, Any]:
        """The assessor's finding on one control, with the reason for it."""
        require_role(by, Role.ASSESSOR)
        try:
            finding = Result(result)
        except ValueError as exc:
            raise InputError(
                "The result must be compliant, partially-compliant, non-compliant or "
                "not-applicable."
            ) from exc
        reason = reason_text(reason)
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = assessment_row(conn, assessment_id, lock=True)
            require_own_open_assessment(row, by)
            statement = statement_row(conn, row.statement_id)
            catalogue = self.catalogues.load(conn, statement.catalogue_version)
            if catalogue.control(control_id) is None:
                raise ControlNotInCatalogue(
                    f"{control_id[:40]} is not a control of catalogue version "
                    f"{statement.catalogue_version}.",
                    control=control_id[:40],
                )
            conn.execute(
                compliance_results.delete().where(
                    compliance_results.c.assessment_id == assessment_id,
                    compliance_results.c.control_id == control_id,
                )
            )
            conn.execute(
                compliance_results.insert().values(
                    assessment_id=assessment_id,
                    control_id=control_id,
                    result=finding.value,
                    reason=reason,
                    recorded_at=iso(now),
                )
            )
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.result.recorded",
                subject=assessment_id,
                now=now,
                details={"control": control_id, "result": finding.value},
            )
            return _assessment_view(row, results_of(conn, assessment_id))

    def return_for_changes(
        self, by: Principal, statement_id: str, change_requests: list[dict[str, str]]
    ) -> dict[str, Any]:
        """Send the statement back to the organisation with what to change."""
        if not change_requests:
            raise InputError("Say what must change: give at least one change request.")
        requests = [
            {
                "control": str(r.get("control", ""))[:20],
                "request": reason_text(str(r.get("request", ""))),
            }
            for r in change_requests
        ]
        now = self.clock.now()

        def check(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
            for item in requests:
                if item["control"] and catalogue.control(item["control"]) is None:
                    raise ControlNotInCatalogue(
                        f"{item['control']} is not a control of catalogue version "
                        f"{row.catalogue_version}."
                    )
            if by.has(Role.ASSESSOR) and not by.has(Role.OPERATOR):
                primary = primary_assessment(conn, statement_id)
                if primary is None or primary.assessor != by.name:
                    raise Forbidden("Only the statement's assessor may send it back.")
            conn.execute(
                compliance_assessments.update()
                .where(
                    compliance_assessments.c.statement_id == statement_id,
                    compliance_assessments.c.state.in_(["open", "completed"]),
                )
                .values(state="returned", completed_at=iso(now), change_requests=requests)
            )
            return {"signed_off_by": None, "signed_off_at": None, "sign_off_requested_by": None}

        return self.steps.take(
            by, statement_id, StatementEvent.RETURN, check, details={"change_requests": requests}
        )

    def complete_assessment(
        self,
        by: Principal,
        assessment_id: str,
        *,
        override_outcome: str | None = None,
        justification: str | None = None,
    ) -> dict[str, Any]:
        """Compute the verdict by the versioned rule; an override needs a written justification."""
        require_role(by, Role.ASSESSOR)
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = assessment_row(conn, assessment_id, lock=True)
            require_own_open_assessment(row, by)
            statement = statement_row(conn, row.statement_id, lock=True)
            catalogue = self.catalogues.load(conn, statement.catalogue_version)
            results = {c: Result(r["result"]) for c, r in results_of(conn, assessment_id).items()}
            missing = missing_results(catalogue, results)
            if missing:
                raise AssessmentIncomplete(
                    f"{len(missing)} control(s) have no result yet, starting with {missing[0]}.",
                    missing=missing[:100],
                )
            answers = answers_of(conn, row.statement_id)
            targets = {
                c: dt.date.fromisoformat(a["plan_target"]) if a["plan_target"] else None
                for c, a in answers.items()
            }
            verdict = compute_verdict(catalogue, results, targets, now, rule=VERDICT_RULE)
            outcome = verdict.outcome
            text = (justification or "").strip()
            if override_outcome is not None:
                try:
                    wanted = Outcome(override_outcome)
                except ValueError as exc:
                    raise InputError("The outcome must be 'meets' or 'does-not-meet'.") from exc
                if wanted is not outcome:
                    if not text:
                        raise JustificationRequired(
                            "Overriding the computed verdict needs a written justification."
                        )
                    outcome = wanted
            conn.execute(
                compliance_assessments.update()
                .where(compliance_assessments.c.id == assessment_id)
                .values(
                    state="completed",
                    completed_at=iso(now),
                    rule=verdict.rule,
                    computed_outcome=verdict.outcome.value,
                    outcome=outcome.value,
                    shortfalls=[s.to_dict() for s in verdict.shortfalls],
                    override_justification=text[:MAX_TEXT]
                    if outcome is not verdict.outcome
                    else None,
                )
            )
            details = {
                "assessment": assessment_id,
                "rule": verdict.rule,
                "computed": verdict.outcome.value,
                "outcome": outcome.value,
                "shortfalls": len(verdict.shortfalls),
            }
            if outcome is not verdict.outcome:
                details["override_justification"] = text[:1000]
                audit.append(
                    conn,
                    actor=by.actor,
                    action="compliance.verdict.overridden",
                    subject=row.statement_id,
                    now=now,
                    details=details,
                )
            if row.ordinal == 1:
                new_state = advance(
                    StatementState(statement.state), StatementEvent.COMPLETE_ASSESSMENT, by.roles
                )
                set_state(conn, statement, new_state, by, now, "complete-assessment")
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.assessment.completed",
                subject=row.statement_id,
                now=now,
                details=details,
            )
            return _assessment_view(
                assessment_row(conn, assessment_id), results_of(conn, assessment_id)
            )
