"""The base of :class:`ComplianceService`: stores, catalogue lookups, and statement steps.

Every step a statement takes goes through :meth:`ComplianceCore._step`: the role, the
state table, the step's own checks, the new state and its audit entry, in one
transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit
from gcx.central.compliance._principal import Principal, _require_member
from gcx.central.compliance._settings import MAX_TEXT, ComplianceSettings
from gcx.central.compliance._views import _assessment_view, _statement_summary
from gcx.compliance.catalogue import (
    Catalogue,
    builtin_catalogue_text,
    catalogue_digest,
    parse_catalogue,
)
from gcx.compliance.statement import EDITABLE, StatementEvent, StatementState, advance
from gcx.errors import (
    Forbidden,
    GcxError,
    InputError,
    JustificationRequired,
    NotFound,
    StateTransitionRefused,
)
from gcx.protocol.identifiers import check_organisation_code
from gcx.store import iso
from gcx.store.blobs import BlobStore, FileBlobStore
from gcx.store.schema import organisations
from gcx.store.schema_compliance import (
    compliance_answers,
    compliance_assessments,
    compliance_catalogues,
    compliance_evidence,
    compliance_evidence_links,
    compliance_results,
    compliance_statements,
)

if TYPE_CHECKING:
    from gcx.central.service import CentralService


class ComplianceCore:
    """What every group of use cases shares: the stores, the catalogues, and the statement table.

    :class:`~gcx.central.compliance.ComplianceService` combines this with one mixin per
    group of use cases; each mixin builds only on what is here.
    """

    def __init__(
        self,
        central: CentralService,
        blobs: BlobStore | None = None,
        settings: ComplianceSettings | None = None,
    ) -> None:
        self.central = central
        self.db = central.db
        self.clock = central.clock
        self.blobs = blobs or FileBlobStore(central.config.home / "evidence")
        self._settings = settings
        self._catalogues: dict[tuple[str, str], Catalogue] = {}

    @property
    def settings(self) -> ComplianceSettings:
        return self._settings or ComplianceSettings.load(self.central.config.home)

    # -- catalogues ---------------------------------------------------------------

    def _ensure_builtin(self, conn: Connection, now: dt.datetime) -> None:
        if conn.execute(sa.select(compliance_catalogues.c.version).limit(1)).first():
            return
        text = builtin_catalogue_text()
        catalogue = parse_catalogue(text)
        conn.execute(
            compliance_catalogues.insert().values(
                version=catalogue.version,
                sha256=catalogue_digest(text),
                document=text,
                published_at=iso(now),
                published_by="central",
                current=True,
            )
        )
        audit.append(
            conn,
            actor="central",
            action="compliance.catalogue.published",
            subject=catalogue.version,
            now=now,
            details={"sha256": catalogue_digest(text), "source": "shipped with gcx"},
        )

    def _catalogue(self, conn: Connection, version: str | None = None) -> Catalogue:
        query = sa.select(compliance_catalogues)
        query = (
            query.where(compliance_catalogues.c.version == version)
            if version
            else query.where(compliance_catalogues.c.current.is_(True))
        )
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"There is no catalogue version {str(version)[:40]!r}.")
        key = (row.version, row.sha256)
        if key not in self._catalogues:
            self._catalogues[key] = parse_catalogue(row.document)
        return self._catalogues[key]

    # -- the statement table -------------------------------------------------------

    def _step(
        self,
        by: Principal,
        statement_id: str,
        event: StatementEvent,
        check: Any,
        *,
        details: dict[str, Any] | None = None,
        publish: bool = False,
    ) -> dict[str, Any]:
        """Take one step of the table: role, state, the step's own checks, audit, in one go."""
        now = self.clock.now()
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            row = self._statement_row(conn, statement_id, lock=True)
            try:
                if by.organisation is not None:
                    _require_member(by, row.organisation)
                new_state = advance(StatementState(row.state), event, by.roles)
                catalogue = self._catalogue(conn, row.catalogue_version)
                extra = check(conn, row, catalogue)
            except GcxError as error:
                # Refused steps (wrong role, wrong state, one's own work, a verdict
                # that does not allow approval) are audited; nothing else is kept.
                raise audit.AuditedRefusal(
                    error,
                    actor=by.actor,
                    action="compliance.step.refused",
                    subject=statement_id,
                    details={"step": event.value},
                ) from None
            self._set_state(conn, row, new_state, by, now, event.value, extra)
            audit.append(
                conn,
                actor=by.actor,
                action=f"compliance.statement.{event.value}",
                subject=statement_id,
                now=now,
                details={
                    "organisation": row.organisation,
                    "from": row.state,
                    "to": new_state.value,
                    **(details or {}),
                },
            )
            if publish:
                self.central._publish(
                    conn, now, reason=f"Code of Connection {event.value} for {row.organisation}"
                )
            return self._statement_view(conn, self._statement_row(conn, statement_id))

    def _set_state(
        self,
        conn: Connection,
        row: Any,
        state: StatementState,
        by: Principal,
        now: dt.datetime,
        step: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        history = [*row.history, _history(now, by, step, state)]
        conn.execute(
            compliance_statements.update()
            .where(compliance_statements.c.id == row.id)
            .values(state=state.value, updated_at=iso(now), history=history, **(extra or {}))
        )

    def _touch(self, conn: Connection, row: Any, by: Principal, now: dt.datetime) -> None:
        contributors = sorted({*row.contributors, by.name})
        conn.execute(
            compliance_statements.update()
            .where(compliance_statements.c.id == row.id)
            .values(updated_at=iso(now), contributors=contributors)
        )

    def _require_editable(self, row: Any) -> None:
        if StatementState(row.state) not in EDITABLE:
            raise StateTransitionRefused(
                f"The statement is {row.state}; answers and evidence can change only while it "
                "is a draft or has changes requested."
            )

    def _require_own_open_assessment(self, row: Any, by: Principal) -> None:
        if row.assessor != by.name:
            raise Forbidden("Only the assessor who opened this assessment may record it.")
        if row.state != "open":
            raise StateTransitionRefused(f"This assessment is {row.state}, not open.")

    def _require_organisation(self, conn: Connection, code: str) -> None:
        check_organisation_code(code)
        if not conn.execute(
            sa.select(organisations.c.code).where(organisations.c.code == code)
        ).first():
            raise NotFound(f"{code} is not in the member registry.")

    def _statement_row(self, conn: Connection, statement_id: str, *, lock: bool = False) -> Any:
        query = sa.select(compliance_statements).where(compliance_statements.c.id == statement_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"There is no statement {statement_id[:40]!r}.")
        return row

    def _assessment_row(self, conn: Connection, assessment_id: str, *, lock: bool = False) -> Any:
        query = sa.select(compliance_assessments).where(
            compliance_assessments.c.id == assessment_id
        )
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"There is no assessment {assessment_id[:40]!r}.")
        return row

    def _primary(self, conn: Connection, statement_id: str) -> Any:
        return conn.execute(
            sa.select(compliance_assessments).where(
                compliance_assessments.c.statement_id == statement_id,
                compliance_assessments.c.ordinal == 1,
                compliance_assessments.c.state != "returned",
            )
        ).first()

    def _answers(self, conn: Connection, statement_id: str) -> dict[str, dict[str, Any]]:
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
                sa.select(compliance_answers).where(
                    compliance_answers.c.statement_id == statement_id
                )
            )
        }

    def _results(self, conn: Connection, assessment_id: str) -> dict[str, dict[str, Any]]:
        return {
            r.control_id: {"result": r.result, "reason": r.reason, "recorded_at": r.recorded_at}
            for r in conn.execute(
                sa.select(compliance_results).where(
                    compliance_results.c.assessment_id == assessment_id
                )
            )
        }

    def _statement_view(self, conn: Connection, row: Any) -> dict[str, Any]:
        catalogue = self._catalogue(conn, row.catalogue_version)
        answers = self._answers(conn, row.id)
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
            _assessment_view(a, self._results(conn, a.id))
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
                "answered": len(answers),
                "to_reconfirm": sum(1 for a in answers.values() if a["needs_reconfirmation"]),
            },
        }


# -- small helpers ------------------------------------------------------------------


def _organisation_people(row: Any) -> list[str | None]:
    return [*row.contributors, row.created_by, row.sign_off_requested_by, row.signed_off_by]


def _reason(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise JustificationRequired("A written reason is required; it is kept in the audit log.")
    if len(text) > MAX_TEXT:
        raise InputError(f"The text must be at most {MAX_TEXT:,} characters.")
    return text


def _parse_date(text: str, field_name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{field_name} must be a date as YYYY-MM-DD.") from exc


def _history(now: dt.datetime, by: Principal, step: str, state: StatementState) -> dict[str, str]:
    return {"at": iso(now), "by": by.actor, "step": step, "state": state.value}
