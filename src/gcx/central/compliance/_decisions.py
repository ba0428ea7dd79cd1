"""Decisions on an organisation's standing: approval, rejection, withdrawal, extensions.

Approval, withdrawal and a granted extension can bring an organisation into or out of
the directory, so they publish a new directory version in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.central.compliance._principal import (
    Principal,
    _require_central,
    _require_member,
    _require_reader,
    require_officer,
    require_role,
)
from gcx.central.compliance._records import (
    organisation_people,
    reason_text,
    require_organisation,
    set_state,
    statement_row,
)
from gcx.central.compliance._settings import ComplianceSettings
from gcx.central.compliance._standing import _latest_certificates, standings
from gcx.central.compliance._steps import StatementSteps
from gcx.central.compliance._views import _certificate_view, _extension_view
from gcx.central.ports import DirectoryPublisher
from gcx.clock import Clock
from gcx.compliance.catalogue import Catalogue
from gcx.compliance.rules import Outcome, check_extension_request
from gcx.compliance.statement import (
    Role,
    StatementEvent,
    StatementState,
    advance,
    check_separation,
    system_advance,
)
from gcx.errors import InputError, NotFound, StateTransitionRefused, VerdictNotMet
from gcx.store import Database, iso, parse_iso
from gcx.store.schema_compliance import (
    compliance_assessments,
    compliance_certificates,
    compliance_extensions,
    compliance_overrides,
    compliance_statements,
)


class Decisions:
    """Certificates of compliance, extensions, and the register of exemptions."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        steps: StatementSteps,
        publisher: DirectoryPublisher,
        settings: Callable[[], ComplianceSettings],
    ) -> None:
        self.db = database
        self.clock = clock
        self.steps = steps
        self.publisher = publisher
        self.settings = settings

    def approve(
        self,
        by: Principal,
        statement_id: str,
        reason: str,
        *,
        valid_for_days: float | None = None,
    ) -> dict[str, Any]:
        """Approve an assessed statement: issue the certificate of compliance."""
        reason = reason_text(reason)
        settings = self.settings()
        validity = settings.certificate_validity_days
        if valid_for_days is not None:
            if not 0 < valid_for_days <= validity:
                raise InputError(
                    f"A certificate may be valid for at most {validity:g} days on this network."
                )
            validity = valid_for_days
        now = self.clock.now()
        certificate_id = crypto.random_id(12)

        def check(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
            assessments = conn.execute(
                sa.select(compliance_assessments).where(
                    compliance_assessments.c.statement_id == statement_id,
                    compliance_assessments.c.state == "completed",
                )
            ).all()
            primary = next((a for a in assessments if a.ordinal == 1), None)
            assessors = sorted({a.assessor for a in assessments})
            check_separation(by.name, [*organisation_people(row), *assessors], "approve")
            if primary is None or primary.outcome != Outcome.MEETS.value:
                shortfalls = primary.shortfalls if primary is not None else []
                raise VerdictNotMet(
                    "The assessment found the statement does not meet the Code of Connection "
                    f"({len(shortfalls or [])} shortfall(s)), and no assessor justified an "
                    "override; it cannot be approved.",
                    shortfalls=(shortfalls or [])[:50],
                )
            for old in conn.execute(
                sa.select(compliance_statements).where(
                    compliance_statements.c.organisation == row.organisation,
                    compliance_statements.c.state == StatementState.APPROVED.value,
                )
            ):
                superseded = system_advance(StatementState(old.state), StatementEvent.SUPERSEDE)
                conn.execute(
                    compliance_statements.update()
                    .where(compliance_statements.c.id == old.id)
                    .values(state=superseded.value, updated_at=iso(now))
                )
            expires = now + dt.timedelta(days=validity)
            conn.execute(
                compliance_certificates.insert().values(
                    id=certificate_id,
                    organisation=row.organisation,
                    statement_id=statement_id,
                    catalogue_version=row.catalogue_version,
                    decided_at=iso(now),
                    decided_by=by.name,
                    assessors=assessors,
                    expires_at=iso(expires),
                )
            )
            return {"decided_at": iso(now), "decided_by": by.name, "decision_reason": reason}

        self.steps.take(
            by,
            statement_id,
            StatementEvent.APPROVE,
            check,
            details={"reason": reason, "certificate": certificate_id},
            publish=True,
        )
        return self.certificate(by, certificate_id)

    def reject(self, by: Principal, statement_id: str, reason: str) -> dict[str, Any]:
        reason = reason_text(reason)
        now = self.clock.now()

        def check(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
            assessors = [
                a.assessor
                for a in conn.execute(
                    sa.select(compliance_assessments.c.assessor).where(
                        compliance_assessments.c.statement_id == statement_id
                    )
                )
            ]
            check_separation(by.name, [*organisation_people(row), *assessors], "reject")
            return {"decided_at": iso(now), "decided_by": by.name, "decision_reason": reason}

        return self.steps.take(
            by, statement_id, StatementEvent.REJECT, check, details={"reason": reason}
        )

    def withdraw(self, by: Principal, organisation: str, reason: str) -> dict[str, Any]:
        """Withdraw an organisation's approval now: it leaves the next directory."""
        require_role(by, Role.OPERATOR)
        reason = reason_text(reason)
        now = self.clock.now()
        with self.db.transaction() as conn:
            certificate = _latest_certificates(conn).get(organisation)
            if certificate is None or certificate.withdrawn_at is not None:
                raise NotFound(f"{organisation[:16]} has no certificate of compliance to withdraw.")
            statement = statement_row(conn, certificate.statement_id, lock=True)
            new_state = advance(StatementState(statement.state), StatementEvent.WITHDRAW, by.roles)
            conn.execute(
                compliance_certificates.update()
                .where(compliance_certificates.c.id == certificate.id)
                .values(withdrawn_at=iso(now), withdrawn_by=by.name, withdrawal_reason=reason)
            )
            set_state(conn, statement, new_state, by, now, "withdraw")
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.approval.withdrawn",
                subject=organisation,
                now=now,
                details={"certificate": certificate.id, "reason": reason},
            )
            self.publisher.publish_in(conn, now, reason=f"approval of {organisation} withdrawn")
        return self.certificate(by, certificate.id)

    def certificate(self, by: Principal, certificate_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(compliance_certificates).where(
                    compliance_certificates.c.id == certificate_id
                )
            ).first()
            if row is None:
                raise NotFound(f"There is no certificate {certificate_id[:40]!r}.")
            _require_reader(by, row.organisation)
            return _certificate_view(row)

    def standing_of(self, by: Principal, organisation: str) -> dict[str, Any]:
        _require_reader(by, organisation)
        with self.db.transaction() as conn:
            require_organisation(conn, organisation)
            report = standings(conn, self.clock.now(), self.settings())[organisation]
            certificate = _latest_certificates(conn).get(organisation)
        return {
            "organisation": organisation,
            **report.to_dict(),
            "certificate": _certificate_view(certificate) if certificate else None,
        }

    # -- extensions ----------------------------------------------------------------

    def request_extension(
        self, by: Principal, organisation: str, until: dt.datetime, reason: str
    ) -> dict[str, Any]:
        require_officer(by)
        _require_member(by, organisation)
        reason = reason_text(reason)
        now = self.clock.now()
        extension_id = crypto.random_id(12)
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            certificate = _latest_certificates(conn).get(organisation)
            current_expiry = (
                parse_iso(certificate.expires_at)
                if certificate is not None and certificate.withdrawn_at is None
                else None
            )
            try:
                check_extension_request(
                    until,
                    current_expiry=current_expiry,
                    now=now,
                    max_days=self.settings().max_extension_days,
                )
            except InputError as error:
                raise audit.AuditedRefusal(
                    error,
                    actor=by.actor,
                    action="compliance.extension.refused",
                    subject=organisation,
                    details={"requested_until": iso(until)},
                ) from None
            conn.execute(
                compliance_extensions.insert().values(
                    id=extension_id,
                    organisation=organisation,
                    state="requested",
                    reason=reason,
                    requested_until=iso(until),
                    requested_at=iso(now),
                    requested_by=by.name,
                )
            )
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.extension.requested",
                subject=organisation,
                now=now,
                details={"extension": extension_id, "until": iso(until), "reason": reason},
            )
        return self.extension(by, extension_id)

    def decide_extension(
        self,
        by: Principal,
        extension_id: str,
        *,
        grant: bool,
        reason: str,
        until: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Grant (possibly for less time than asked) or refuse an extension."""
        require_role(by, Role.OPERATOR)
        reason = reason_text(reason)
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(compliance_extensions)
                .where(compliance_extensions.c.id == extension_id)
                .with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"There is no extension request {extension_id[:40]!r}.")
            if row.state != "requested":
                raise StateTransitionRefused(f"This extension request is already {row.state}.")
            check_separation(by.name, [row.requested_by], "decide on")
            requested = parse_iso(row.requested_until)
            granted_until = None
            if grant:
                granted_until = until or requested
                if granted_until > requested or granted_until <= now:
                    raise InputError(
                        "An extension may be granted to a future date no later than the one asked."
                    )
            conn.execute(
                compliance_extensions.update()
                .where(compliance_extensions.c.id == extension_id)
                .values(
                    state="granted" if grant else "refused",
                    decided_at=iso(now),
                    decided_by=by.name,
                    decision_reason=reason,
                    granted_until=iso(granted_until) if granted_until else None,
                )
            )
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.extension.granted" if grant else "compliance.extension.refused",
                subject=row.organisation,
                now=now,
                details={
                    "extension": extension_id,
                    "reason": reason,
                    "until": iso(granted_until) if granted_until else None,
                },
            )
            if grant:
                self.publisher.publish_in(conn, now, reason=f"extension for {row.organisation}")
        return self.extension(by, extension_id)

    def extension(self, by: Principal, extension_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(compliance_extensions).where(compliance_extensions.c.id == extension_id)
            ).first()
        if row is None:
            raise NotFound(f"There is no extension request {extension_id[:40]!r}.")
        _require_reader(by, row.organisation)
        return _extension_view(row)

    def register(self, by: Principal) -> dict[str, Any]:
        """The register of extensions and exemptions: extensions, enrolment overrides, and
        assessment verdicts overridden with a justification."""
        _require_central(by)
        with self.db.transaction() as conn:
            extensions = [
                _extension_view(r)
                for r in conn.execute(
                    sa.select(compliance_extensions).order_by(compliance_extensions.c.requested_at)
                )
            ]
            overrides = [
                {
                    "organisation": r.organisation,
                    "enrolment": r.enrolment_id,
                    "operator": r.operator,
                    "reason": r.reason,
                    "at": r.created_at,
                }
                for r in conn.execute(
                    sa.select(compliance_overrides).order_by(compliance_overrides.c.id)
                )
            ]
            verdicts = [
                {
                    "statement": r.statement_id,
                    "organisation": r.organisation,
                    "assessor": r.assessor,
                    "computed": r.computed_outcome,
                    "outcome": r.outcome,
                    "justification": r.override_justification,
                    "at": r.completed_at,
                }
                for r in conn.execute(
                    sa.select(compliance_assessments, compliance_statements.c.organisation)
                    .join(
                        compliance_statements,
                        compliance_statements.c.id == compliance_assessments.c.statement_id,
                    )
                    .where(compliance_assessments.c.override_justification.is_not(None))
                )
            ]
        return {
            "extensions": extensions,
            "enrolment_overrides": overrides,
            "verdict_overrides": verdicts,
        }
