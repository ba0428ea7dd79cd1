"""Hooks central's enrolment and directory code call: standings, exclusions, the gate.

An organisation's standing (certificate, extensions, grace period, withdrawal) is
computed from ``now`` whenever it is needed, so a lapse needs no job to take effect.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx.central.compliance._settings import ComplianceSettings
from gcx.compliance.rules import (
    CONNECTED,
    EXCLUDED,
    CertificateFacts,
    Standing,
    StandingReport,
    standing,
)
from gcx.errors import ComplianceRequired, JustificationRequired
from gcx.store import iso, parse_iso
from gcx.store.schema import organisations
from gcx.store.schema_compliance import (
    compliance_certificates,
    compliance_extensions,
    compliance_overrides,
)


def _latest_certificates(conn: Connection) -> dict[str, Any]:
    rows = conn.execute(
        sa.select(compliance_certificates).order_by(compliance_certificates.c.decided_at)
    ).all()
    return {row.organisation: row for row in rows}  # later rows win


def _granted_extensions(conn: Connection) -> dict[str, list[dt.datetime]]:
    granted: dict[str, list[dt.datetime]] = {}
    for row in conn.execute(
        sa.select(
            compliance_extensions.c.organisation, compliance_extensions.c.granted_until
        ).where(compliance_extensions.c.state == "granted")
    ):
        granted.setdefault(row.organisation, []).append(parse_iso(row.granted_until))
    return granted


def standings(
    conn: Connection, now: dt.datetime, settings: ComplianceSettings
) -> dict[str, StandingReport]:
    """The standing of every registered organisation at ``now``."""
    latest = _latest_certificates(conn)
    granted = _granted_extensions(conn)
    result = {}
    for (code,) in conn.execute(sa.select(organisations.c.code)):
        row = latest.get(code)
        facts = (
            CertificateFacts(
                parse_iso(row.decided_at),
                parse_iso(row.expires_at),
                parse_iso(row.withdrawn_at) if row.withdrawn_at else None,
            )
            if row is not None
            else None
        )
        result[code] = standing(facts, granted.get(code, []), now, settings.grace)
    return result


def excluded_organisations(conn: Connection, now: dt.datetime, home: Path) -> set[str]:
    """Organisations whose approval has lapsed beyond grace or been withdrawn: not in the directory.

    Organisations that were never certified are not excluded here: whether
    they may join was decided when their gateway's enrolment was approved
    (with a certificate, an extension, an override, or with the gate off).
    """
    settings = ComplianceSettings.load(home)
    return {code for code, s in standings(conn, now, settings).items() if s.standing in EXCLUDED}


def require_compliance(
    conn: Connection,
    *,
    enrolment_id: str,
    codes: Iterable[str],
    operator: str,
    now: dt.datetime,
    home: Path,
    override: bool,
    override_reason: str | None,
) -> dict[str, Any]:
    """The Code of Connection gate on enrolment approval.

    Every organisation must be connected by standing (certificate, extension
    or grace), unless the operator overrides with a reason; an override is
    recorded for the dashboard. Returns what to add to the audit entry.
    """
    settings = ComplianceSettings.load(home)
    current = standings(conn, now, settings)
    missing = sorted(
        c
        for c in codes
        if current.get(c, StandingReport(Standing.NONE, None)).standing not in CONNECTED
    )
    if not missing:
        return {"compliance": "met"}
    if not override:
        raise ComplianceRequired(
            f"{', '.join(missing)} has no current certificate of compliance or granted extension; "
            "approve its statement first, or approve with an override and a reason.",
            organisations=missing,
        )
    reason = (override_reason or "").strip()
    if not reason:
        raise JustificationRequired(
            "An override of the Code of Connection needs a reason; it is recorded and shown on "
            "the network dashboard."
        )
    for code in missing:
        conn.execute(
            compliance_overrides.insert().values(
                enrolment_id=enrolment_id,
                organisation=code,
                operator=operator,
                reason=reason[:1000],
                created_at=iso(now),
            )
        )
    return {"compliance": "overridden", "override_reason": reason[:1000], "overridden": missing}
