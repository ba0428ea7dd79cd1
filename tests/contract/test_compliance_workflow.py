"""The Code of Connection workflow over the database: statements, assessment, approval, refusals."""

from __future__ import annotations

import pytest

from gcx import audit
from gcx.errors import (
    AssessmentIncomplete,
    ControlNotInCatalogue,
    EvidenceTooLarge,
    EvidenceTypeRefused,
    JustificationRequired,
    RoleRequired,
    SeparationOfDuties,
    StateTransitionRefused,
    VerdictNotMet,
)

from .compliance_support import ORG, Network, days, network

__all__ = ["network"]

PDF = b"%PDF-1.7\n% a small policy document\n"


def _actions(net: Network) -> list[str]:
    with net.central.db.transaction() as conn:
        return [e.action for e in audit.entries(conn)]


def test_statement_goes_from_draft_to_certificate(network: Network) -> None:
    """Draft, sign-off, assessment and approval create a certificate that expires in a year."""
    certificate = network.approved()
    assert certificate["organisation"] == ORG
    assert certificate["assessors"] == ["alex"]
    assert certificate["catalogue_version"] == "2026.1"
    assert certificate["expires_at"].startswith("2027-11-21")
    standing = network.coco.standing_of(network.operator, ORG)
    assert standing["standing"] == "approved"
    statement = network.coco.statement(network.operator, certificate["statement"])
    assert [h["state"] for h in statement["history"]] == [
        "draft",
        "awaiting-sign-off",
        "submitted",
        "under-assessment",
        "assessed",
        "approved",
    ]
    actions = _actions(network)
    for step in ("request-sign-off", "sign-off", "start-assessment", "approve"):
        assert f"compliance.statement.{step}" in actions
    assert "compliance.assessment.completed" in actions


def test_answer_for_control_not_in_the_catalogue_is_refused_and_audited(network: Network) -> None:
    """An answer naming a control the statement's catalogue version lacks is refused."""
    statement = network.coco.create_statement(network.officer, ORG)
    with pytest.raises(ControlNotInCatalogue) as refused:
        network.coco.answer(network.officer, statement["id"], "XYZ-99", answer="yes")
    assert refused.value.code == "control-not-in-catalogue"
    assert "compliance.answer.refused" in _actions(network)


def test_evidence_over_the_size_limit_is_refused(network: Network) -> None:
    """Evidence larger than the configured limit is refused with evidence-too-large."""
    statement = network.coco.create_statement(network.officer, ORG)
    limit = network.coco.settings.evidence_max_bytes
    with pytest.raises(EvidenceTooLarge) as refused:
        network.coco.add_evidence(
            network.officer,
            statement["id"],
            filename="big.pdf",
            media_type="application/pdf",
            data=PDF + b"x" * limit,
            controls=["GOV-02"],
        )
    assert refused.value.status == 413
    assert "compliance.evidence.refused" in _actions(network)


@pytest.mark.parametrize(
    ("media_type", "data"),
    [("application/x-msdownload", b"MZ\x90\x00"), ("application/pdf", b"MZ\x90\x00 not a pdf")],
)
def test_evidence_of_a_type_not_allowed_is_refused(
    network: Network, media_type: str, data: bytes
) -> None:
    """A disallowed type, or content that is not the type declared, is refused."""
    statement = network.coco.create_statement(network.officer, ORG)
    with pytest.raises(EvidenceTypeRefused) as refused:
        network.coco.add_evidence(
            network.officer,
            statement["id"],
            filename="policy.pdf",
            media_type=media_type,
            data=data,
            controls=["GOV-02"],
        )
    assert refused.value.code == "evidence-type-refused"


def test_evidence_is_stored_by_sha256_and_read_back(network: Network) -> None:
    """Accepted evidence keeps its SHA-256 and expiry and reads back byte for byte."""
    statement = network.coco.create_statement(network.officer, ORG)
    stored = network.coco.add_evidence(
        network.officer,
        statement["id"],
        filename="policy.pdf",
        media_type="application/pdf",
        data=PDF,
        controls=["GOV-02", "GOV-01"],
    )
    meta, data = network.coco.evidence_content(network.assessor, stored["id"])
    assert data == PDF
    assert meta["sha256"] == stored["sha256"]
    view = network.coco.statement(network.officer, statement["id"])
    assert view["evidence"][0]["controls"] == ["GOV-01", "GOV-02"]
    assert view["evidence"][0]["expires_at"].startswith("2027-11-21")


def test_author_cannot_sign_off_own_statement(network: Network) -> None:
    """Someone who wrote answers and holds the sign-off role still may not sign off."""
    both = network.account("pat", ["security-officer", "sign-off"], ORG)
    statement = network.draft(officer=both)
    network.coco.request_sign_off(both, statement["id"])
    with pytest.raises(SeparationOfDuties):
        network.coco.sign_off(both, statement["id"])
    assert "compliance.step.refused" in _actions(network)


def test_sign_off_needs_the_sign_off_role(network: Network) -> None:
    """A security officer without the sign-off role cannot sign off."""
    other = network.account("quinn", ["security-officer"], ORG)
    statement = network.draft()
    network.coco.request_sign_off(network.officer, statement["id"])
    with pytest.raises(RoleRequired):
        network.coco.sign_off(other, statement["id"])


def test_assessment_needs_the_assessor_role(network: Network) -> None:
    """An organisation officer cannot open an assessment."""
    statement_id = network.submitted()
    with pytest.raises(RoleRequired):
        network.coco.start_assessment(network.signer, statement_id)


def test_approval_needs_the_operator_role(network: Network) -> None:
    """An assessor cannot approve a statement."""
    statement_id = network.assessed()
    with pytest.raises(RoleRequired):
        network.coco.approve(network.assessor, statement_id, "looks fine")


def test_operator_cannot_approve_what_they_assessed(network: Network) -> None:
    """An operator who also assessed the statement (same name) may not approve it."""
    same_person = network.account("olivia", ["assessor"], None)
    statement_id = network.submitted()
    assessment = network.coco.start_assessment(same_person, statement_id)
    for control in network.coco.current_catalogue().controls:
        network.coco.record_result(same_person, assessment["id"], control.id, "compliant", "ok")
    network.coco.complete_assessment(same_person, assessment["id"])
    with pytest.raises(SeparationOfDuties):
        network.coco.approve(network.operator, statement_id, "approved")


def test_incomplete_assessment_cannot_be_completed(network: Network) -> None:
    """Completing an assessment with controls still unassessed is refused."""
    statement_id = network.submitted()
    assessment = network.coco.start_assessment(network.assessor, statement_id)
    with pytest.raises(AssessmentIncomplete):
        network.coco.complete_assessment(network.assessor, assessment["id"])


def test_must_non_compliant_without_justification_cannot_be_approved(network: Network) -> None:
    """A MUST control found non-compliant makes the verdict fail, and approval is refused."""
    statement_id = network.assessed(results={"FW-01": "non-compliant"})
    view = network.coco.statement(network.operator, statement_id)
    assert view["assessments"][0]["outcome"] == "does-not-meet"
    with pytest.raises(VerdictNotMet) as refused:
        network.coco.approve(network.operator, statement_id, "approve anyway")
    assert refused.value.code == "verdict-not-met"


def test_verdict_override_needs_a_justification(network: Network) -> None:
    """Overriding the computed verdict without a written justification is refused."""
    with pytest.raises(JustificationRequired):
        network.assessed(results={"FW-01": "non-compliant"}, override_outcome="meets")


def test_justified_override_allows_approval_and_is_registered(network: Network) -> None:
    """With a justification the override stands, is audited, and appears in the register."""
    statement_id = network.assessed(
        results={"FW-01": "non-compliant"},
        override_outcome="meets",
        justification="A compensating firewall at the shared data centre covers this boundary.",
    )
    certificate = network.coco.approve(network.operator, statement_id, "override accepted")
    assert certificate["organisation"] == ORG
    register = network.coco.register(network.operator)
    assert register["verdict_overrides"][0]["computed"] == "does-not-meet"
    assert "compliance.verdict.overridden" in _actions(network)


def test_should_control_with_in_date_plan_meets_and_past_plan_does_not(network: Network) -> None:
    """A partially met SHOULD control passes with a plan dated in the future, not a past one."""
    statement = network.draft()
    network.coco.answer(
        network.officer,
        statement["id"],
        "EDU-04",
        answer="Working towards it.",
        plan="First exercise in spring.",
        plan_target="2027-03-01",
    )
    network.coco.request_sign_off(network.officer, statement["id"])
    network.coco.sign_off(network.signer, statement["id"])
    assessment = network.coco.start_assessment(network.assessor, statement["id"])
    for control in network.coco.current_catalogue().controls:
        result = "partially-compliant" if control.id == "EDU-04" else "compliant"
        network.coco.record_result(network.assessor, assessment["id"], control.id, result, "ok")
    network.clock.advance(days(200))  # the plan's date has passed before completion
    done = network.coco.complete_assessment(network.assessor, assessment["id"])
    assert done["outcome"] == "does-not-meet"
    assert done["shortfalls"][0]["control"] == "EDU-04"


def test_plan_is_refused_for_a_must_control(network: Network) -> None:
    """A MUST control cannot be answered with a plan instead of being met."""
    statement = network.coco.create_statement(network.officer, ORG)
    with pytest.raises(Exception, match="MUST control"):
        network.coco.answer(
            network.officer,
            statement["id"],
            "FW-01",
            answer="Not yet.",
            plan="Buy a firewall.",
            plan_target="2027-01-01",
        )


def test_answers_cannot_change_after_submission(network: Network) -> None:
    """A submitted statement is not editable until it is sent back."""
    statement_id = network.submitted()
    with pytest.raises(StateTransitionRefused):
        network.coco.answer(network.officer, statement_id, "FW-01", answer="changed")


def test_return_for_changes_reopens_for_the_organisation(network: Network) -> None:
    """An assessor's change requests send the statement back; it can be resubmitted."""
    statement_id = network.submitted()
    network.coco.start_assessment(network.assessor, statement_id)
    back = network.coco.return_for_changes(
        network.assessor, statement_id, [{"control": "FW-03", "request": "Attach the review."}]
    )
    assert back["state"] == "changes-requested"
    assert back["assessments"][0]["state"] == "returned"
    network.coco.answer(network.officer, statement_id, "FW-03", answer="Review attached.")
    network.coco.request_sign_off(network.officer, statement_id)
    assert network.coco.sign_off(network.signer, statement_id)["state"] == "submitted"


def test_renewal_copies_answers_for_reconfirmation(network: Network) -> None:
    """Next year's statement starts as last year's answers, each marked for re-confirmation."""
    network.approved()
    network.clock.advance(days(330))
    renewal = network.coco.create_statement(network.officer, ORG)
    assert renewal["renewal_of"] is not None
    assert renewal["progress"]["to_reconfirm"] == len(network.coco.current_catalogue().controls)
    with pytest.raises(StateTransitionRefused):
        network.coco.request_sign_off(network.officer, renewal["id"])
    for control in network.coco.current_catalogue().controls:
        choice = control.choices.options[0].value if control.choices else None
        network.coco.answer(
            network.officer, renewal["id"], control.id, answer="Still true.", choice=choice
        )
    assert network.coco.request_sign_off(network.officer, renewal["id"])["state"] == (
        "awaiting-sign-off"
    )


def test_unchanged_answers_are_reconfirmed_in_one_step(network: Network) -> None:
    """A renewal's copied answers are confirmed at once; the step is audited with each control."""
    network.approved()
    network.clock.advance(days(330))
    renewal = network.coco.create_statement(network.officer, ORG)
    first = network.coco.current_catalogue().controls[0]
    network.coco.answer(network.officer, renewal["id"], first.id, answer="Changed this year.")
    confirmed = network.coco.reconfirm_unchanged(network.officer, renewal["id"])
    assert confirmed == len(network.coco.current_catalogue().controls) - 1
    assert network.coco.statement(network.officer, renewal["id"])["progress"]["to_reconfirm"] == 0
    assert network.coco.reconfirm_unchanged(network.officer, renewal["id"]) == 0
    assert network.coco.request_sign_off(network.officer, renewal["id"])["state"] == (
        "awaiting-sign-off"
    )
    with pytest.raises(StateTransitionRefused):
        network.coco.reconfirm_unchanged(network.officer, renewal["id"])


def test_a_structured_question_left_unchosen_is_not_answered(network: Network) -> None:
    """Text without the choice does not count, and sign-off is refused naming the control."""
    catalogue = network.coco.current_catalogue()
    structured = next(c for c in catalogue.controls if c.choices)
    statement = network.draft()
    network.coco.answer(network.officer, statement["id"], structured.id, answer="Plenty of text.")
    view = network.coco.statement(network.officer, statement["id"])
    assert view["progress"]["answered"] == len(catalogue.controls) - 1
    assert view["progress"]["unchosen"] == [structured.id]
    with pytest.raises(StateTransitionRefused) as refused:
        network.coco.request_sign_off(network.officer, statement["id"])
    assert refused.value.details["unanswered"] == [structured.id]


def test_officer_of_another_organisation_cannot_read_a_statement(network: Network) -> None:
    """Organisation officers see only their own organisation's statements."""
    statement = network.coco.create_statement(network.officer, ORG)
    stranger = network.account("dee", ["security-officer"], "DWP")
    with pytest.raises(Exception, match="only see"):
        network.coco.statement(stranger, statement["id"])
