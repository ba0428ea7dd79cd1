"""Pages: the network operator's dashboard, and the routes of the other network pages.

The dashboard gathers what an operator looks at first: the members, each with its
gateway and its Code of Connection standing; what is waiting for them (enrolments,
extension requests); what is coming up in the next 60 days (certificates of
compliance, extensions and gateway certificates that end); lapses; overrides of the
compliance gate; and the directory gateways hold now.

Assessors may read it too, because the compliance API lets them read the network
report and dashboard; the list of enrolments is for operators only (the API keeps
it behind the operator's token), so assessors see no enrolment counts or actions.
The enrolment and extension pages live in :mod:`.network_enrolments` and
:mod:`.network_extensions`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from gcx import crypto
from gcx.central.checkpoints import CheckpointWitness
from gcx.central.compliance import ComplianceService, Principal
from gcx.central.service import CentralService
from gcx.httpapi import run_sync
from gcx.protocol import directory as dirproto
from gcx.store import parse_iso
from gcx.web.central import (
    CENTRAL,
    COMPLIANCE,
    network_enrolments,
    network_extensions,
    principal_of,
)
from gcx.web.central.network_shared import page
from gcx.web.site import Site, needs

UPCOMING_DAYS = 60
# The standings in which a statement is on its way to a decision.
AWAITING_DECISION = ("under-assessment", "assessed")


def navigation(site: Site) -> None:
    site.nav(text="Network", href="/network", roles=("operator", "assessor"))
    site.nav(text="Enrolments", href="/network/enrolments", roles=("operator",))
    site.nav(text="Extensions", href="/network/extensions", roles=("operator",))
    site.nav(
        text="Request an extension",
        href="/network/extension-request",
        roles=("security-officer", "sign-off"),
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/network", dashboard)
    network_enrolments.add_routes(app)
    network_extensions.add_routes(app)


@needs("operator", "assessor")
async def dashboard(request: web.Request) -> web.Response:
    by = principal_of(request)
    operator = "operator" in by.roles
    view = await run_sync(_dashboard, request.app[CENTRAL], request.app[COMPLIANCE], by, operator)
    return page(
        request, "central/network_dashboard.html", title="Network", operator=operator, **view
    )


def _dashboard(
    central: CentralService, compliance: ComplianceService, by: Principal, operator: bool
) -> dict[str, Any]:
    now = central.clock.now()
    report = compliance.network_report(by)
    counts = compliance.dashboard(by)
    extensions = compliance.register(by)["extensions"]
    lapses = [n for n in compliance.notifications(by) if n["kind"] == "lapsed"]
    enrolments = central.list_enrolments()
    audit_standing = CheckpointWitness(central.db, central.clock).standing()
    gateways = [
        {**_gateway(e), "audit": audit_standing.get(e["gateway"])}
        for e in enrolments
        if e["state"] in ("active", "revoked")
    ]
    hosts = _gateway_of_each_organisation(enrolments)
    members = [{**row, "gateway": hosts.get(row["organisation"])} for row in report]
    return {
        "members": members,
        "gateways": gateways,
        "counts": counts,
        "waiting": sum(1 for e in enrolments if e["state"] == "pending") if operator else None,
        "awaiting_decision": sum(
            1 for r in report if r["open_statement_state"] in AWAITING_DECISION
        ),
        "extensions_requested": sum(1 for e in extensions if e["state"] == "requested"),
        "extensions_granted": sum(1 for e in extensions if e["state"] == "granted"),
        "upcoming": _upcoming(report, gateways, now),
        "upcoming_days": UPCOMING_DAYS,
        "lapses": lapses,
        "directory": _directory(central),
    }


def _gateway(enrolment: dict[str, Any]) -> dict[str, Any]:
    pem = enrolment.get("certificate_pem")
    not_after = crypto.Certificate.from_pem(pem.encode()).not_after if pem else None
    return {**enrolment, "certificate_not_after": not_after}


def _gateway_of_each_organisation(
    enrolments: list[dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Each organisation's gateway: the active one, or else the latest that named it."""
    hosts: dict[str, dict[str, Any]] = {}
    for enrolment in enrolments:  # oldest first, so later ones replace earlier ones
        for code in enrolment["organisations"]:
            held = hosts.get(code)
            if held is None or held["state"] != "active" or enrolment["state"] == "active":
                hosts[code] = enrolment
    return hosts


def _upcoming(
    report: list[dict[str, Any]], gateways: list[dict[str, Any]], now: dt.datetime
) -> list[dict[str, Any]]:
    """What ends within the next ``UPCOMING_DAYS`` days, soonest first."""
    horizon = now + dt.timedelta(days=UPCOMING_DAYS)
    events: list[tuple[dt.datetime, str]] = []

    def add(when: dt.datetime | None, what: str) -> None:
        if when is not None and now <= when <= horizon:
            events.append((when, what))

    for row in report:
        code = row["organisation"]
        if row["standing"] == "approved" and row["certificate_expires_at"]:
            add(
                parse_iso(row["certificate_expires_at"]),
                f"The certificate of compliance of {code} ({row['name']}) expires",
            )
        if row["standing"] == "extended" and row["extension_until"]:
            add(parse_iso(row["extension_until"]), f"The extension granted to {code} ends")
        if row["standing"] == "grace" and row["standing_until"]:
            add(parse_iso(row["standing_until"]), f"The grace period of {code} ends")
    for gateway in gateways:
        if gateway["state"] == "active":
            add(
                gateway["certificate_not_after"],
                f"The certificate of gateway {gateway['gateway']} expires",
            )
    return [{"when": when, "what": what} for when, what in sorted(events)]


def _directory(central: CentralService) -> dict[str, Any]:
    """The version gateways hold now, read back from the signed document itself."""
    document = central.latest_directory()
    keys = central.keys
    payload = crypto.verify_document(
        document, dirproto.PAYLOAD_TYPE, {keys.root_key_id: keys.root_key.public}
    )
    directory = dirproto.Directory.from_bytes(payload)
    return {
        "version": directory.version,
        "issued_at": directory.issued_at,
        "expires_at": directory.expires_at,
        "gateways": len(directory.gateways),
        "revocations": len(directory.revocations),
    }
