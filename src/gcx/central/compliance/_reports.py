"""Reminders, lapses and reports: the sweep, notifications, the network report and dashboard."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit
from gcx.central.compliance._principal import Principal, _require_central
from gcx.central.compliance._records import results_of
from gcx.central.compliance._settings import ComplianceSettings
from gcx.central.compliance._standing import _granted_extensions, _latest_certificates, standings
from gcx.central.ports import DirectoryPublisher
from gcx.clock import Clock
from gcx.compliance import exports
from gcx.compliance.rules import PairedResult, Standing, consistency_report, due_reminder
from gcx.compliance.statement import OPEN
from gcx.errors import InputError
from gcx.store import Database, iso, parse_iso
from gcx.store.schema import organisations
from gcx.store.schema_compliance import (
    compliance_assessments,
    compliance_notifications,
    compliance_overrides,
    compliance_selfchecks,
    compliance_statements,
)


class Reports:
    """What the sweep records and what operators and assessors read."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        publisher: DirectoryPublisher,
        settings: Callable[[], ComplianceSettings],
    ) -> None:
        self.db = database
        self.clock = clock
        self.publisher = publisher
        self.settings = settings

    def sweep(self) -> dict[str, Any]:
        """Record due reminders and lapses; republish the directory if anyone lapsed.

        Idempotent: each reminder and each lapse is recorded once (a unique
        key), so running it twice, or on two replicas, changes nothing more.
        """
        now = self.clock.now()
        settings = self.settings()
        reminders: list[dict[str, Any]] = []
        lapsed: list[str] = []
        with self.db.transaction() as conn:
            current = standings(conn, now, settings)
            latest = _latest_certificates(conn)
            for code, certificate in sorted(latest.items()):
                if certificate.withdrawn_at is not None:
                    continue
                expires = parse_iso(certificate.expires_at)
                sent = {
                    r.days
                    for r in conn.execute(
                        sa.select(compliance_notifications.c.days).where(
                            compliance_notifications.c.subject == certificate.id,
                            compliance_notifications.c.kind == "expiry-reminder",
                        )
                    )
                }
                decision = due_reminder(expires, now, sent)
                for days in decision.skip:
                    self._notify(
                        conn, code, "expiry-reminder", certificate.id, days, now, "", False
                    )
                if decision.send is not None:
                    message = (
                        f"The certificate of compliance of {code} expires on "
                        f"{expires.date().isoformat()} (in under {decision.send} day"
                        f"{'s' if decision.send != 1 else ''}); start the renewal statement now."
                    )
                    self._notify(
                        conn, code, "expiry-reminder", certificate.id, decision.send, now, message
                    )
                    reminders.append({"organisation": code, "days": decision.send})
                if (
                    current[code].standing is Standing.LAPSED
                    and not conn.execute(
                        sa.select(compliance_notifications.c.id).where(
                            compliance_notifications.c.subject == certificate.id,
                            compliance_notifications.c.kind == "lapsed",
                        )
                    ).first()
                ):
                    message = (
                        f"The approval of {code} lapsed (expired {expires.date().isoformat()}, "
                        "grace period over); it has left the directory until approved again."
                    )
                    self._notify(conn, code, "lapsed", certificate.id, 0, now, message)
                    lapsed.append(code)
            if lapsed:
                self.publisher.publish_in(conn, now, reason=f"approval lapsed: {', '.join(lapsed)}")
        return {"reminders": reminders, "lapsed": lapsed}

    def _notify(
        self,
        conn: Connection,
        organisation: str,
        kind: str,
        subject: str,
        days: int,
        now: dt.datetime,
        message: str,
        sent: bool = True,
    ) -> None:
        conn.execute(
            compliance_notifications.insert().values(
                organisation=organisation,
                kind=kind,
                subject=subject,
                days=days,
                created_at=iso(now),
                sent=sent,
                message=message,
            )
        )
        if sent:
            audit.append(
                conn,
                actor="central",
                action=f"compliance.{kind}",
                subject=organisation,
                now=now,
                details={"certificate": subject, "days": days, "message": message},
            )

    def notifications(self, by: Principal, organisation: str | None = None) -> list[dict[str, Any]]:
        if by.organisation is not None:
            organisation = by.organisation
        query = (
            sa.select(compliance_notifications)
            .where(compliance_notifications.c.sent.is_(True))
            .order_by(compliance_notifications.c.id)
        )
        if organisation:
            query = query.where(compliance_notifications.c.organisation == organisation)
        with self.db.transaction() as conn:
            return [
                {
                    "organisation": r.organisation,
                    "kind": r.kind,
                    "days": r.days,
                    "at": r.created_at,
                    "message": r.message,
                }
                for r in conn.execute(query)
            ]

    def network_report(self, by: Principal) -> list[dict[str, Any]]:
        """One row per organisation: standing, certificate, extension, open statement, overrides."""
        _require_central(by)
        now = self.clock.now()
        with self.db.transaction() as conn:
            current = standings(conn, now, self.settings())
            latest = _latest_certificates(conn)
            granted = _granted_extensions(conn)
            open_rows = {
                r.organisation: r
                for r in conn.execute(
                    sa.select(compliance_statements)
                    .where(compliance_statements.c.state.in_([s.value for s in OPEN]))
                    .order_by(compliance_statements.c.created_at)
                )
            }
            override_counts: dict[str, int] = {}
            for r in conn.execute(sa.select(compliance_overrides.c.organisation)):
                override_counts[r.organisation] = override_counts.get(r.organisation, 0) + 1
            selfchecks = {
                r.organisation: r.received_at
                for r in conn.execute(
                    sa.select(compliance_selfchecks).order_by(compliance_selfchecks.c.received_at)
                )
            }
            rows = []
            for org in conn.execute(sa.select(organisations).order_by(organisations.c.code)):
                report = current[org.code]
                certificate = latest.get(org.code)
                statement = open_rows.get(org.code)
                extension = max(granted.get(org.code, []), default=None)
                rows.append(
                    {
                        "organisation": org.code,
                        "name": org.name,
                        "type": org.type,
                        "standing": report.standing.value,
                        "standing_until": iso(report.until) if report.until else None,
                        "certificate_expires_at": certificate.expires_at if certificate else None,
                        "extension_until": iso(extension) if extension else None,
                        "open_statement": statement.id if statement else None,
                        "open_statement_state": statement.state if statement else None,
                        "overrides": override_counts.get(org.code, 0),
                        "last_selfcheck_at": selfchecks.get(org.code),
                    }
                )
        return rows

    def dashboard(self, by: Principal) -> dict[str, Any]:
        """Counts across the network, for the operator's dashboard."""
        rows = self.network_report(by)
        by_standing = {s.value: 0 for s in Standing}
        for row in rows:
            by_standing[row["standing"]] += 1
        pending_states = {"draft", "awaiting-sign-off", "changes-requested", "submitted"}
        with self.db.transaction() as conn:
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
        return {
            "organisations": len(rows),
            "approved": by_standing[Standing.APPROVED.value],
            "extended": by_standing[Standing.EXTENDED.value],
            "in_grace": by_standing[Standing.GRACE.value],
            "lapsed": by_standing[Standing.LAPSED.value],
            "withdrawn": by_standing[Standing.WITHDRAWN.value],
            "never_approved": by_standing[Standing.NONE.value],
            "pending": sum(1 for r in rows if r["open_statement_state"] in pending_states),
            "under_assessment": sum(
                1 for r in rows if r["open_statement_state"] in ("under-assessment", "assessed")
            ),
            "manual_overrides": len(overrides),
            "overrides": overrides,
        }

    def consistency(self, by: Principal) -> dict[str, Any]:
        """Agreement between first and second assessors of the same statements."""
        _require_central(by)
        with self.db.transaction() as conn:
            completed = conn.execute(
                sa.select(compliance_assessments).where(
                    compliance_assessments.c.state == "completed"
                )
            ).all()
            by_statement: dict[str, dict[int, str]] = {}
            for a in completed:
                by_statement.setdefault(a.statement_id, {})[a.ordinal] = a.id
            pairs = []
            for statement_id, ids in sorted(by_statement.items()):
                if 1 not in ids or 2 not in ids:
                    continue
                first = results_of(conn, ids[1])
                second = results_of(conn, ids[2])
                pairs += [
                    PairedResult(statement_id, c, first[c]["result"], second[c]["result"])
                    for c in sorted(set(first) & set(second))
                ]
        return consistency_report(pairs)

    def export_network(self, by: Principal, fmt: str) -> tuple[str, bytes]:
        rows = self.network_report(by)
        if fmt == "csv":
            return "text/csv", exports.network_csv(rows)
        if fmt == "json":
            return "application/json", exports.network_json(rows)
        raise InputError("The export format must be csv or json.")
