"""What an organisation writes into its statement: answers to controls and evidence files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from gcx import audit, crypto
from gcx.central.compliance._catalogues import Catalogues
from gcx.central.compliance._principal import (
    Principal,
    _require_member,
    _require_reader,
    require_role,
)
from gcx.central.compliance._records import (
    parse_date,
    require_editable,
    statement_row,
    statement_view,
    touch,
)
from gcx.central.compliance._settings import MAX_TEXT, ComplianceSettings
from gcx.clock import Clock
from gcx.compliance.catalogue import Level
from gcx.compliance.evidence import check_evidence, normalise_media_type
from gcx.compliance.statement import Role
from gcx.errors import ControlNotInCatalogue, CryptoError, InputError, NotFound
from gcx.store import Database, iso
from gcx.store.blobs import BlobStore
from gcx.store.schema_compliance import (
    compliance_answers,
    compliance_evidence,
    compliance_evidence_links,
)


class Answers:
    """Answers and evidence, while a statement is editable."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        catalogues: Catalogues,
        blobs: BlobStore,
        settings: Callable[[], ComplianceSettings],
    ) -> None:
        self.db = database
        self.clock = clock
        self.catalogues = catalogues
        self.blobs = blobs
        self.settings = settings

    def answer(
        self,
        by: Principal,
        statement_id: str,
        control_id: str,
        *,
        answer: str,
        choice: str | None = None,
        plan: str | None = None,
        plan_target: str | None = None,
    ) -> dict[str, Any]:
        """Write (or re-confirm) the organisation's answer to one control."""
        require_role(by, Role.SECURITY_OFFICER)
        answer = (answer or "").strip()
        if not answer or len(answer) > MAX_TEXT:
            raise InputError(f"An answer must be 1 to {MAX_TEXT:,} characters.")
        target_date = parse_date(plan_target, "plan_target") if plan_target else None
        now = self.clock.now()
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            row = statement_row(conn, statement_id, lock=True)
            _require_member(by, row.organisation)
            require_editable(row)
            catalogue = self.catalogues.load(conn, row.catalogue_version)
            control = catalogue.control(control_id)
            if control is None:
                raise audit.AuditedRefusal(
                    ControlNotInCatalogue(
                        f"{control_id[:40]} is not a control of catalogue version "
                        f"{row.catalogue_version}, which this statement uses.",
                        control=control_id[:40],
                        catalogue_version=row.catalogue_version,
                    ),
                    actor=by.actor,
                    action="compliance.answer.refused",
                    subject=statement_id,
                    details={"control": control_id[:40]},
                )
            if choice is not None:
                if control.choices is None:
                    raise InputError(f"{control_id} has no scripted answer choices.")
                if control.choices.result_for(choice) is None:
                    raise InputError(
                        f"{choice[:40]!r} is not one of {control_id}'s answer choices.",
                        choices=[o.value for o in control.choices.options],
                    )
            if target_date is not None and control.level is Level.MUST:
                raise InputError(
                    f"{control_id} is a MUST control: it must be met, so a plan with a target "
                    "date cannot stand in for it."
                )
            if (plan is None) != (target_date is None):
                raise InputError("A plan needs both its text and a target date (YYYY-MM-DD).")
            values = {
                "choice": choice,
                "answer": answer,
                "plan": (plan or "").strip()[:MAX_TEXT] or None,
                "plan_target": target_date.isoformat() if target_date else None,
                "needs_reconfirmation": False,
                "updated_at": iso(now),
                "updated_by": by.name,
            }
            exists = conn.execute(
                sa.select(compliance_answers.c.control_id).where(
                    compliance_answers.c.statement_id == statement_id,
                    compliance_answers.c.control_id == control_id,
                )
            ).first()
            if exists:
                conn.execute(
                    compliance_answers.update()
                    .where(
                        compliance_answers.c.statement_id == statement_id,
                        compliance_answers.c.control_id == control_id,
                    )
                    .values(**values)
                )
            else:
                conn.execute(
                    compliance_answers.insert().values(
                        statement_id=statement_id, control_id=control_id, **values
                    )
                )
            touch(conn, row, by, now)
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.answer.written",
                subject=statement_id,
                now=now,
                details={
                    "control": control_id,
                    "choice": choice,
                    "plan_target": values["plan_target"],
                },
            )
            return statement_view(conn, statement_row(conn, statement_id), catalogue)

    def reconfirm_unchanged(self, by: Principal, statement_id: str) -> int:
        """Re-confirm, in one step, every answer copied from last year and not yet changed.

        A renewal starts with last year's answers, each needing re-confirmation.
        An officer who has checked them all confirms the rest at once rather than
        saving seventy pages; answers they changed were re-confirmed by saving.
        Returns how many were confirmed. The audit entry names them all.
        """
        require_role(by, Role.SECURITY_OFFICER)
        now = self.clock.now()
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            row = statement_row(conn, statement_id, lock=True)
            _require_member(by, row.organisation)
            require_editable(row)
            stale = [
                r.control_id
                for r in conn.execute(
                    sa.select(compliance_answers.c.control_id).where(
                        compliance_answers.c.statement_id == statement_id,
                        compliance_answers.c.needs_reconfirmation.is_(True),
                    )
                )
            ]
            if not stale:
                return 0
            conn.execute(
                compliance_answers.update()
                .where(
                    compliance_answers.c.statement_id == statement_id,
                    compliance_answers.c.control_id.in_(stale),
                )
                .values(needs_reconfirmation=False, updated_at=iso(now), updated_by=by.name)
            )
            touch(conn, row, by, now)
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.answers.reconfirmed",
                subject=statement_id,
                now=now,
                details={"controls": sorted(stale)},
            )
            return len(stale)

    def add_evidence(
        self,
        by: Principal,
        statement_id: str,
        *,
        filename: str,
        media_type: str,
        data: bytes,
        controls: list[str],
        expires_at: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Store an evidence file (by SHA-256, with an expiry) and attach it to controls."""
        require_role(by, Role.SECURITY_OFFICER)
        settings = self.settings()
        now = self.clock.now()
        if expires_at is not None and expires_at <= now:
            raise InputError("The evidence's expiry date must be in the future.")
        if not controls:
            raise InputError("Name at least one control the evidence supports.")
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            row = statement_row(conn, statement_id, lock=True)
            _require_member(by, row.organisation)
            require_editable(row)
            catalogue = self.catalogues.load(conn, row.catalogue_version)
            unknown = [c for c in controls if catalogue.control(c) is None]
            try:
                if unknown:
                    raise ControlNotInCatalogue(
                        f"{', '.join(c[:20] for c in unknown[:5])} is not a control of catalogue "
                        f"version {row.catalogue_version}.",
                        controls=[c[:20] for c in unknown[:20]],
                    )
                check_evidence(filename, media_type, data, max_bytes=settings.evidence_max_bytes)
            except InputError as error:
                raise audit.AuditedRefusal(
                    error,
                    actor=by.actor,
                    action="compliance.evidence.refused",
                    subject=statement_id,
                    details={"size": len(data), "media_type": media_type[:80]},
                ) from None
            digest = crypto.sha256_hex(data)
            self.blobs.put(f"evidence/{digest}", data)
            evidence_id = crypto.random_id(12)
            expiry = expires_at or now + dt.timedelta(days=settings.evidence_validity_days)
            conn.execute(
                compliance_evidence.insert().values(
                    id=evidence_id,
                    organisation=row.organisation,
                    kind="file",
                    filename=filename.strip(),
                    media_type=normalise_media_type(media_type),
                    size=len(data),
                    sha256=digest,
                    expires_at=iso(expiry),
                    uploaded_at=iso(now),
                    uploaded_by=by.name,
                )
            )
            for control_id in sorted(set(controls)):
                conn.execute(
                    compliance_evidence_links.insert().values(
                        statement_id=statement_id, control_id=control_id, evidence_id=evidence_id
                    )
                )
            touch(conn, row, by, now)
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.evidence.added",
                subject=statement_id,
                now=now,
                details={
                    "evidence": evidence_id,
                    "sha256": digest,
                    "size": len(data),
                    "controls": sorted(set(controls)),
                    "expires_at": iso(expiry),
                },
            )
        return {"id": evidence_id, "sha256": digest, "size": len(data), "expires_at": iso(expiry)}

    def evidence_content(self, by: Principal, evidence_id: str) -> tuple[dict[str, Any], bytes]:
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(compliance_evidence).where(compliance_evidence.c.id == evidence_id)
            ).first()
            if row is None:
                raise NotFound(f"There is no evidence {evidence_id[:40]!r}.")
            _require_reader(by, row.organisation)
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.evidence.read",
                subject=evidence_id,
                now=self.clock.now(),
            )
        data = self.blobs.get(f"evidence/{row.sha256}")
        if crypto.sha256_hex(data) != row.sha256:
            raise CryptoError("The stored evidence does not match its recorded SHA-256.")
        return {"filename": row.filename, "media_type": row.media_type, "sha256": row.sha256}, data
