"""Statements of compliance: starting (or renewing) one, reading it, and its sign-off steps."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.central.compliance._catalogues import Catalogues
from gcx.central.compliance._principal import (
    Principal,
    _require_member,
    _require_reader,
    require_role,
)
from gcx.central.compliance._records import (
    answers_of,
    history_entry,
    reason_text,
    require_organisation,
    statement_row,
    statement_view,
)
from gcx.central.compliance._steps import StatementSteps
from gcx.central.compliance._views import _statement_summary
from gcx.clock import Clock
from gcx.compliance import exports
from gcx.compliance.catalogue import Catalogue
from gcx.compliance.statement import OPEN, Role, StatementEvent, StatementState, check_separation
from gcx.errors import Conflict, Forbidden, InputError, StateTransitionRefused
from gcx.store import Database, iso, parse_iso
from gcx.store.schema_compliance import (
    compliance_answers,
    compliance_evidence,
    compliance_evidence_links,
    compliance_selfchecks,
    compliance_statements,
)


class Statements:
    """A statement's life on the organisation's side, up to submission."""

    def __init__(
        self, database: Database, clock: Clock, catalogues: Catalogues, steps: StatementSteps
    ) -> None:
        self.db = database
        self.clock = clock
        self.catalogues = catalogues
        self.steps = steps

    def create_statement(self, by: Principal, organisation: str) -> dict[str, Any]:
        """Start a statement on the current catalogue; a renewal copies the last approved one."""
        require_role(by, Role.SECURITY_OFFICER)
        _require_member(by, organisation)
        now = self.clock.now()
        statement_id = crypto.random_id(12)
        with self.db.transaction() as conn:
            self.catalogues.ensure_builtin(conn, now)
            require_organisation(conn, organisation)
            open_states = [s.value for s in OPEN]
            existing = conn.execute(
                sa.select(compliance_statements.c.id).where(
                    compliance_statements.c.organisation == organisation,
                    compliance_statements.c.state.in_(open_states),
                )
            ).first()
            if existing:
                raise Conflict(
                    f"{organisation} already has an open statement ({existing.id}); finish or "
                    "abandon it first.",
                    statement=existing.id,
                )
            catalogue = self.catalogues.load(conn)
            previous = conn.execute(
                sa.select(compliance_statements)
                .where(
                    compliance_statements.c.organisation == organisation,
                    compliance_statements.c.state == StatementState.APPROVED.value,
                )
                .order_by(compliance_statements.c.decided_at.desc())
                .limit(1)
            ).first()
            conn.execute(
                compliance_statements.insert().values(
                    id=statement_id,
                    organisation=organisation,
                    catalogue_version=catalogue.version,
                    state=StatementState.DRAFT.value,
                    renewal_of=previous.id if previous else None,
                    created_at=iso(now),
                    created_by=by.name,
                    updated_at=iso(now),
                    contributors=[],
                    history=[history_entry(now, by, "create", StatementState.DRAFT)],
                )
            )
            copied = 0
            if previous is not None:
                copied = self._copy_for_renewal(conn, previous.id, statement_id, catalogue, now)
            self._link_latest_selfcheck(conn, organisation, statement_id, catalogue, now)
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.statement.created",
                subject=statement_id,
                now=now,
                details={
                    "organisation": organisation,
                    "catalogue_version": catalogue.version,
                    "renewal_of": previous.id if previous else None,
                    "answers_to_reconfirm": copied,
                },
            )
        return self.statement(by, statement_id)

    def _copy_for_renewal(
        self,
        conn: Connection,
        source: str,
        target: str,
        catalogue: Catalogue,
        now: dt.datetime,
    ) -> int:
        """Copy last year's answers, each marked for re-confirmation, and in-date evidence."""
        copied = 0
        for row in conn.execute(
            sa.select(compliance_answers).where(compliance_answers.c.statement_id == source)
        ):
            if catalogue.control(row.control_id) is None:
                continue  # the control left the catalogue; nothing to carry over
            conn.execute(
                compliance_answers.insert().values(
                    statement_id=target,
                    control_id=row.control_id,
                    choice=row.choice,
                    answer=row.answer,
                    plan=row.plan,
                    plan_target=row.plan_target,
                    needs_reconfirmation=True,
                    updated_at=row.updated_at,
                    updated_by=row.updated_by,
                )
            )
            copied += 1
        for link in conn.execute(
            sa.select(compliance_evidence_links, compliance_evidence.c.expires_at)
            .join(
                compliance_evidence,
                compliance_evidence.c.id == compliance_evidence_links.c.evidence_id,
            )
            .where(compliance_evidence_links.c.statement_id == source)
        ):
            if parse_iso(link.expires_at) > now and catalogue.control(link.control_id):
                conn.execute(
                    compliance_evidence_links.insert().values(
                        statement_id=target,
                        control_id=link.control_id,
                        evidence_id=link.evidence_id,
                    )
                )
        return copied

    def _link_latest_selfcheck(
        self,
        conn: Connection,
        organisation: str,
        statement_id: str,
        catalogue: Catalogue,
        now: dt.datetime,
    ) -> None:
        row = conn.execute(
            sa.select(compliance_selfchecks, compliance_evidence.c.expires_at)
            .join(
                compliance_evidence, compliance_evidence.c.id == compliance_selfchecks.c.evidence_id
            )
            .where(compliance_selfchecks.c.organisation == organisation)
            .order_by(compliance_selfchecks.c.received_at.desc())
            .limit(1)
        ).first()
        if row is None or parse_iso(row.expires_at) <= now:
            return
        already = {
            (r.control_id)
            for r in conn.execute(
                sa.select(compliance_evidence_links.c.control_id).where(
                    compliance_evidence_links.c.statement_id == statement_id,
                    compliance_evidence_links.c.evidence_id == row.evidence_id,
                )
            )
        }
        checks = [c["id"] for c in row.summary.get("checks", [])]
        controls = {c for check in checks for c in catalogue.controls_for_self_check(check)}
        for control_id in sorted(controls - already):
            conn.execute(
                compliance_evidence_links.insert().values(
                    statement_id=statement_id, control_id=control_id, evidence_id=row.evidence_id
                )
            )

    def statement(self, by: Principal, statement_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = statement_row(conn, statement_id)
            _require_reader(by, row.organisation)
            return statement_view(conn, row, self.catalogues.load(conn, row.catalogue_version))

    def list_statements(
        self, by: Principal, *, organisation: str | None = None, state: str | None = None
    ) -> list[dict[str, Any]]:
        if by.organisation is not None:
            if organisation not in (None, by.organisation):
                raise Forbidden("You may only see your own organisation's statements.")
            organisation = by.organisation
        query = sa.select(compliance_statements).order_by(compliance_statements.c.created_at)
        if organisation:
            query = query.where(compliance_statements.c.organisation == organisation)
        if state:
            query = query.where(compliance_statements.c.state == state)
        with self.db.transaction() as conn:
            return [_statement_summary(r) for r in conn.execute(query)]

    def export_statement(self, by: Principal, statement_id: str, fmt: str) -> tuple[str, bytes]:
        view = self.statement(by, statement_id)
        if fmt == "csv":
            return "text/csv", exports.statement_csv(view)
        if fmt == "json":
            return "application/json", exports.statement_json(view)
        if fmt == "oscal":
            if not any(a["state"] == "completed" for a in view["assessments"]):
                raise StateTransitionRefused(
                    "OSCAL assessment results need at least one completed assessment."
                )
            document = exports.statement_oscal(view, now=iso(self.clock.now()))
            return "application/json", exports.statement_json(document)
        raise InputError("The export format must be csv, json or oscal.")

    def request_sign_off(self, by: Principal, statement_id: str) -> dict[str, Any]:
        def check(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
            answers = answers_of(conn, statement_id)
            # A structured question with text but no choice is not answered.
            unanswered = [c.id for c in catalogue.controls if not c.answered_by(answers.get(c.id))]
            stale = sorted(c for c, a in answers.items() if a["needs_reconfirmation"])
            if unanswered or stale:
                raise StateTransitionRefused(
                    f"The statement is not ready for sign-off: {len(unanswered)} control(s) "
                    f"unanswered and {len(stale)} answer(s) from last year not yet re-confirmed.",
                    unanswered=unanswered[:100],
                    to_reconfirm=stale[:100],
                )
            return {"sign_off_requested_by": by.name}

        return self.steps.take(by, statement_id, StatementEvent.REQUEST_SIGN_OFF, check)

    def decline_sign_off(self, by: Principal, statement_id: str, reason: str) -> dict[str, Any]:
        reason = reason_text(reason)
        return self.steps.take(
            by,
            statement_id,
            StatementEvent.DECLINE_SIGN_OFF,
            lambda conn, row, cat: {"decision_reason": reason},
            details={"reason": reason},
        )

    def sign_off(self, by: Principal, statement_id: str) -> dict[str, Any]:
        now = self.clock.now()

        def check(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
            check_separation(
                by.name, [*row.contributors, row.sign_off_requested_by, row.created_by], "sign off"
            )
            return {"signed_off_by": by.name, "signed_off_at": iso(now), "submitted_at": iso(now)}

        return self.steps.take(by, statement_id, StatementEvent.SIGN_OFF, check)

    def abandon(self, by: Principal, statement_id: str, reason: str) -> dict[str, Any]:
        reason = reason_text(reason)
        return self.steps.take(
            by,
            statement_id,
            StatementEvent.ABANDON,
            lambda conn, row, cat: {"decision_reason": reason},
            details={"reason": reason},
        )
