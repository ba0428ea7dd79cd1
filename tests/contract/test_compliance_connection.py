"""Compliance decides connection: the enrolment gate, lapses, withdrawal, extensions, reminders,
catalogue versions, consistency, exports and signed self-check reports."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from gcx import crypto
from gcx.compliance.catalogue import builtin_catalogue_text
from gcx.compliance.selfcheck_format import SELFCHECK_TYPE, SelfCheckReport, judge_keys
from gcx.errors import (
    ComplianceRequired,
    ExtensionTooLong,
    JustificationRequired,
    SelfCheckSignatureInvalid,
)

from .compliance_support import ORG, OTHER, PASSPHRASE, Network, days, network

__all__ = ["network"]


def _admitted(net: Network) -> dict[str, str]:
    """Approve ORG's statement and enrol a gateway for it; return the enrolment."""
    net.approved()
    enrolment = net.enrol("tower-hamlets", [ORG])
    return net.central.approve_enrolment("olivia", enrolment["id"], "CoCo met")


def test_enrolment_without_compliance_is_refused(network: Network) -> None:
    """Approving a gateway whose organisation has no certificate is refused."""
    enrolment = network.enrol("dwp", [OTHER])
    with pytest.raises(ComplianceRequired) as refused:
        network.central.approve_enrolment("olivia", enrolment["id"], "please")
    assert refused.value.code == "compliance-required"
    assert network.central.get_enrolment(enrolment["id"])["state"] == "pending"


def test_override_needs_a_reason_and_is_reported(network: Network) -> None:
    """An operator may override the gate only with a reason; the dashboard counts it."""
    enrolment = network.enrol("dwp", [OTHER])
    with pytest.raises(JustificationRequired):
        network.central.approve_enrolment("olivia", enrolment["id"], "go", override=True)
    approved = network.central.approve_enrolment(
        "olivia", enrolment["id"], "go", override=True, override_reason="Ministerial direction."
    )
    assert approved["state"] == "active"
    dashboard = network.coco.dashboard(network.operator)
    assert dashboard["manual_overrides"] == 1
    assert dashboard["overrides"][0]["reason"] == "Ministerial direction."


def test_compliance_gate_can_be_switched_off(network: Network) -> None:
    """With require_compliance false, enrolment approval works as before."""
    import dataclasses

    network.central.config = dataclasses.replace(network.central.config, require_compliance=False)
    enrolment = network.enrol("dwp", [OTHER])
    assert network.central.approve_enrolment("olivia", enrolment["id"], "ok")["state"] == "active"


def test_approved_organisation_is_admitted_and_listed(network: Network) -> None:
    """With a certificate the gateway is admitted and the directory lists it with keys."""
    _admitted(network)
    directory = network.directory()
    entry = directory.organisation(ORG)
    assert entry is not None and entry.gateway == "tower-hamlets" and entry.signing_key
    assert directory.gateway_named("tower-hamlets") is not None


def test_lapse_beyond_grace_removes_and_reapproval_restores(network: Network) -> None:
    """Past expiry plus grace the organisation leaves the directory; approval brings it back."""
    _admitted(network)
    network.clock.advance(days(365 + 29))  # expired, but inside the 30-day grace period
    assert network.directory().gateway_named("tower-hamlets") is not None
    assert network.coco.standing_of(network.operator, ORG)["standing"] == "grace"
    network.clock.advance(days(2))
    swept = network.coco.sweep()
    assert swept["lapsed"] == [ORG]
    directory = network.directory()
    entry = directory.organisation(ORG)
    assert entry is not None and entry.gateway is None and entry.signing_key is None
    assert directory.gateway_named("tower-hamlets") is None
    assert network.coco.dashboard(network.operator)["lapsed"] == 1
    network.approved()
    assert network.directory().gateway_named("tower-hamlets") is not None
    assert network.coco.sweep()["lapsed"] == []


def test_withdrawal_removes_at_once(network: Network) -> None:
    """Withdrawing an approval republishes a directory without the organisation."""
    _admitted(network)
    network.coco.withdraw(network.operator, ORG, "Failed IT health check findings unresolved.")
    assert network.directory().gateway_named("tower-hamlets") is None
    assert network.coco.standing_of(network.operator, ORG)["standing"] == "withdrawn"


def test_shared_gateway_keeps_its_other_organisations(network: Network) -> None:
    """A gateway hosting two organisations stays, listing only the one still approved."""
    network.approved(ORG)
    dwp_officer = network.account("dana", ["security-officer"], OTHER)
    network.officer = dwp_officer
    network.signer = network.account("sid", ["sign-off"], OTHER)
    network.approved(OTHER)
    enrolment = network.enrol("shared", [ORG, OTHER])
    network.central.approve_enrolment("olivia", enrolment["id"], "both met")
    network.coco.withdraw(network.operator, OTHER, "withdrawn")
    gateway = network.directory().gateway_named("shared")
    assert gateway is not None and gateway.organisations == (ORG,)


def test_extension_past_the_maximum_is_refused(network: Network) -> None:
    """An extension beyond the network's maximum is refused with extension-too-long."""
    until = network.clock.now() + days(91)
    with pytest.raises(ExtensionTooLong) as refused:
        network.coco.request_extension(network.officer, ORG, until, "Waiting for a supplier.")
    assert refused.value.code == "extension-too-long"


def test_granted_extension_admits_and_expires(network: Network) -> None:
    """A granted extension lets the gateway in until its own end date."""
    asked = network.coco.request_extension(
        network.signer, ORG, network.clock.now() + days(60), "ITHC booked for next month."
    )
    granted = network.coco.decide_extension(
        network.operator, asked["id"], grant=True, reason="Plan is credible."
    )
    assert granted["state"] == "granted"
    enrolment = network.enrol("tower-hamlets", [ORG])
    network.central.approve_enrolment("olivia", enrolment["id"], "extension granted")
    assert network.coco.dashboard(network.operator)["extended"] == 1
    assert network.coco.register(network.operator)["extensions"][0]["state"] == "granted"
    network.clock.advance(days(61))
    assert network.coco.standing_of(network.operator, ORG)["standing"] == "none"


def test_reminders_at_60_30_7_and_1_days(network: Network) -> None:
    """Sweeps send each reminder once, as expiry approaches, and none twice."""
    network.approved()
    sent = []
    for step in (300, 10, 1, 25, 22, 6, 0.5):
        network.clock.advance(days(step))
        sent += [r["days"] for r in network.coco.sweep()["reminders"]]
        network.coco.sweep()
    assert sent == [60, 30, 7, 1]
    messages = network.coco.notifications(network.officer)
    assert [n["days"] for n in messages] == [60, 30, 7, 1]


def test_late_sweep_sends_only_the_most_urgent_reminder(network: Network) -> None:
    """A sweep that finds several reminders due sends only the most urgent one."""
    network.approved()
    network.clock.advance(days(360))
    assert [r["days"] for r in network.coco.sweep()["reminders"]] == [7]
    network.clock.advance(days(4.5))
    assert [r["days"] for r in network.coco.sweep()["reminders"]] == [1]


def test_new_catalogue_version_leaves_open_statements_on_theirs(network: Network) -> None:
    """Publishing a new version changes new statements, not open ones."""
    statement = network.coco.create_statement(network.officer, ORG)
    text = builtin_catalogue_text().replace('version: "2026.1"', 'version: "2027.1"')
    text = text.replace("  - id: GW-07\n", "  - id: GW-08\n", 1).replace(
        "    title: The gateway runs its self-checks regularly",
        "    title: The gateway runs its self-checks weekly",
    )
    assert network.coco.publish_catalogue(network.operator, text)["version"] == "2027.1"
    assert network.coco.statement(network.officer, statement["id"])["catalogue_version"] == (
        "2026.1"
    )
    from gcx.errors import ControlNotInCatalogue

    with pytest.raises(ControlNotInCatalogue):
        network.coco.answer(network.officer, statement["id"], "GW-08", answer="weekly")
    other = network.account("dana", ["security-officer"], OTHER)
    assert network.coco.create_statement(other, OTHER)["catalogue_version"] == "2027.1"


def test_consistency_report_compares_two_assessors(network: Network) -> None:
    """A second assessment feeds agreement and Cohen's kappa per control and overall."""
    statement_id = network.assessed(results={"MON-03": "partially-compliant"})
    second = network.coco.start_second_assessment(network.assessor2, statement_id)
    for control in network.coco.current_catalogue().controls:
        result = "non-compliant" if control.id in ("MON-03", "FW-01") else "compliant"
        network.coco.record_result(network.assessor2, second["id"], control.id, result, "seen")
    network.coco.complete_assessment(network.assessor2, second["id"])
    report = network.coco.consistency(network.operator)
    assert report["statements"] == 1
    assert report["paired_results"] == 70
    assert report["overall"]["agreement"] == round(68 / 70, 4)
    assert {c["control"] for c in report["most_disagreed"]} == {"MON-03", "FW-01"}


def test_same_assessor_cannot_give_the_second_assessment(network: Network) -> None:
    """The second assessment must come from a different assessor."""
    from gcx.errors import SeparationOfDuties

    statement_id = network.assessed()
    with pytest.raises(SeparationOfDuties):
        network.coco.start_second_assessment(network.assessor, statement_id)


def test_exports_csv_json_and_oscal(network: Network) -> None:
    """A statement exports as CSV, JSON and OSCAL assessment results; the network as CSV."""
    certificate = network.approved()
    statement_id = certificate["statement"]
    kind, data = network.coco.export_statement(network.operator, statement_id, "csv")
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert kind == "text/csv" and len(rows) == 70 and rows[0]["result"] == "compliant"
    _, data = network.coco.export_statement(network.operator, statement_id, "json")
    assert json.loads(data)["state"] == "approved"
    _, data = network.coco.export_statement(network.operator, statement_id, "oscal")
    oscal = json.loads(data)["assessment-results"]
    assert oscal["metadata"]["oscal-version"] == "1.1.2"
    assert len(oscal["results"][0]["findings"]) == 70
    _, data = network.coco.export_network(network.operator, "csv")
    report = list(csv.DictReader(io.StringIO(data.decode())))
    assert {r["organisation"]: r["standing"] for r in report} == {ORG: "approved", OTHER: "none"}


def _signed_report(
    net: Network, home: Path, code: str, *, key: crypto.SigningKey | None = None
) -> bytes:
    report = SelfCheckReport(
        code,
        "tower-hamlets",
        net.clock.now(),
        "0.1.0",
        (judge_keys({"tls.key": True}),),
    )
    signer = key or crypto.load_signing_key(
        home / "orgs" / code / "signing.key", PASSPHRASE.encode()
    )
    return crypto.sign_document(
        SELFCHECK_TYPE, report.to_bytes(), signer, crypto.key_id(signer.public)
    )


def test_signed_selfcheck_is_attached_as_evidence(network: Network) -> None:
    """A report signed by the organisation's registered key attaches to its controls."""
    network.approved()
    enrolment = network.enrol("tower-hamlets", [ORG])
    network.central.approve_enrolment("olivia", enrolment["id"], "ok")
    statement = network.coco.create_statement(network.officer, ORG)
    result = network.coco.submit_selfcheck(
        _signed_report(network, network.tmp / "tower-hamlets", ORG)
    )
    assert result["attached"] == {statement["id"]: ["CFG-03", "GW-07"]}
    view = network.coco.statement(network.assessor, statement["id"])
    assert any(e["kind"] == "selfcheck" for e in view["evidence"])
    assert network.coco.network_report(network.operator)[1]["last_selfcheck_at"] is not None


def test_selfcheck_with_bad_signature_is_refused(network: Network) -> None:
    """A report signed by any other key is refused with selfcheck-signature-invalid."""
    network.approved()
    enrolment = network.enrol("tower-hamlets", [ORG])
    network.central.approve_enrolment("olivia", enrolment["id"], "ok")
    forged = _signed_report(network, network.tmp, ORG, key=crypto.SigningKey.generate())
    with pytest.raises(SelfCheckSignatureInvalid) as refused:
        network.coco.submit_selfcheck(forged)
    assert refused.value.code == "selfcheck-signature-invalid"
    tampered = json.loads(_signed_report(network, network.tmp / "tower-hamlets", ORG))
    tampered["payload"] = tampered["payload"][:-4] + "AAA="
    with pytest.raises(SelfCheckSignatureInvalid):
        network.coco.submit_selfcheck(json.dumps(tampered).encode())
