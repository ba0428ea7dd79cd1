"""Gateway self-check reports: verified against the organisation's key, kept as evidence."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.central.compliance._catalogues import Catalogues
from gcx.clock import Clock
from gcx.compliance.catalogue import Catalogue
from gcx.compliance.evidence import SELFCHECK_MEDIA_TYPE
from gcx.compliance.selfcheck_format import SELFCHECK_TYPE, parse_report
from gcx.compliance.statement import EDITABLE
from gcx.errors import CryptoError, SelfCheckSignatureInvalid
from gcx.protocol import strict_json
from gcx.protocol.enrolment import EnrolmentState
from gcx.store import Database, iso
from gcx.store.blobs import BlobStore
from gcx.store.schema import enrolments
from gcx.store.schema_compliance import (
    compliance_evidence,
    compliance_evidence_links,
    compliance_selfchecks,
    compliance_statements,
)


class SelfChecks:
    """Receiving signed self-check reports from gateways."""

    def __init__(
        self, database: Database, clock: Clock, catalogues: Catalogues, blobs: BlobStore
    ) -> None:
        self.db = database
        self.clock = clock
        self.catalogues = catalogues
        self.blobs = blobs

    def submit_selfcheck(self, document: bytes) -> dict[str, Any]:
        """Verify a gateway's signed self-check report and attach it as evidence.

        The signature must verify against the signing key central holds for
        the organisation named in the report (the key its active enrolment
        registered, which is the key the directory lists). A report that does
        not verify is refused and the refusal audited; nothing is stored.
        """
        now = self.clock.now()
        claimed = _claimed_organisation(document)
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            self.catalogues.ensure_builtin(conn, now)
            key = self._organisation_key(conn, claimed)
            try:
                if key is None:
                    raise SelfCheckSignatureInvalid()
                payload = crypto.verify_document(
                    document, SELFCHECK_TYPE, {crypto.key_id(key): key}
                )
            except CryptoError:
                raise audit.AuditedRefusal(
                    SelfCheckSignatureInvalid(),
                    actor=f"organisation:{claimed[:16]}",
                    action="compliance.selfcheck.refused",
                    subject=claimed[:16] or "unknown",
                ) from None
            report = parse_report(payload)
            if report.organisation != claimed:
                raise SelfCheckSignatureInvalid()
            digest = crypto.sha256_hex(document)
            self.blobs.put(f"evidence/{digest}", document)
            evidence_id = crypto.random_id(12)
            report_id = crypto.random_id(12)
            conn.execute(
                compliance_evidence.insert().values(
                    id=evidence_id,
                    organisation=report.organisation,
                    kind="selfcheck",
                    filename=f"selfcheck-{report.gateway}-{report.generated_at:%Y%m%dT%H%M%SZ}.json",
                    media_type=SELFCHECK_MEDIA_TYPE,
                    size=len(document),
                    sha256=digest,
                    expires_at=iso(now + dt.timedelta(days=31)),
                    uploaded_at=iso(now),
                    uploaded_by=f"gateway:{report.gateway}",
                )
            )
            summary = report.summary()
            conn.execute(
                compliance_selfchecks.insert().values(
                    id=report_id,
                    organisation=report.organisation,
                    gateway=report.gateway,
                    generated_at=iso(report.generated_at),
                    received_at=iso(now),
                    summary=summary,
                    evidence_id=evidence_id,
                )
            )
            attached: dict[str, list[str]] = {}
            open_row = conn.execute(
                sa.select(compliance_statements).where(
                    compliance_statements.c.organisation == report.organisation,
                    compliance_statements.c.state.in_([s.value for s in EDITABLE]),
                )
            ).first()
            if open_row is not None:
                catalogue = self.catalogues.load(conn, open_row.catalogue_version)
                attached[open_row.id] = self._link_selfcheck(
                    conn, open_row.id, evidence_id, catalogue, report.check_ids()
                )
            audit.append(
                conn,
                actor=f"gateway:{report.gateway}",
                action="compliance.selfcheck.received",
                subject=report.organisation,
                now=now,
                details={
                    "report": report_id,
                    "sha256": digest,
                    "failed": summary["failed"],
                    "attached": attached,
                },
            )
        return {
            "id": report_id,
            "evidence": evidence_id,
            "organisation": report.organisation,
            "summary": summary,
            "attached": attached,
        }

    def _organisation_key(self, conn: Connection, code: str) -> crypto.VerifyKey | None:
        for row in conn.execute(
            sa.select(enrolments.c.organisations, enrolments.c.organisation_keys).where(
                enrolments.c.state == EnrolmentState.ACTIVE.value
            )
        ):
            if code in row.organisations:
                try:
                    return crypto.VerifyKey.from_b64(row.organisation_keys[code]["signing_key"])
                except (KeyError, TypeError, CryptoError):
                    return None
        return None

    def _link_selfcheck(
        self,
        conn: Connection,
        statement_id: str,
        evidence_id: str,
        catalogue: Catalogue,
        checks: Iterable[str],
    ) -> list[str]:
        controls = sorted({c for check in checks for c in catalogue.controls_for_self_check(check)})
        for control_id in controls:
            conn.execute(
                compliance_evidence_links.insert().values(
                    statement_id=statement_id, control_id=control_id, evidence_id=evidence_id
                )
            )
        return controls


def _claimed_organisation(document: bytes) -> str:
    """The organisation a self-check report names (unverified; only to pick the key)."""
    import base64

    # A wrapper that is not JSON is refused as what it is (json-invalid); a
    # payload that does not read is a report nobody signed, refused as such,
    # since its bytes are only what the signature would cover.
    envelope = strict_json.loads(document)
    try:
        body = strict_json.loads(base64.b64decode(envelope["payload"], validate=True))
        return str(body["organisation"])[:16]
    except (ValueError, KeyError, TypeError) as exc:
        raise SelfCheckSignatureInvalid("The self-check report is not a signed report.") from exc
