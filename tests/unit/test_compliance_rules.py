"""Pure Code of Connection rules: the statement table, verdict, kappa, extensions, reminders,
standing, catalogue validation, evidence checks, exports and self-check judging."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gcx.compliance import exports
from gcx.compliance.catalogue import (
    CAF_OUTCOMES,
    Result,
    builtin_catalogue,
    builtin_catalogue_text,
    parse_catalogue,
    to_oscal_catalog,
)
from gcx.compliance.evidence import check_evidence
from gcx.compliance.openapi import DESCRIPTIONS
from gcx.compliance.rules import (
    CertificateFacts,
    Outcome,
    PairedResult,
    Standing,
    check_extension_request,
    cohens_kappa,
    compute_verdict,
    consistency_report,
    due_reminder,
    standing,
)
from gcx.compliance.selfcheck_format import (
    judge_certificate,
    judge_cipher_suites,
    judge_clock_skew,
    judge_keys,
    judge_tls_versions,
)
from gcx.compliance.statement import (
    FINAL,
    OPEN,
    TRANSITIONS,
    Role,
    StatementEvent,
    StatementState,
    advance,
    check_separation,
)
from gcx.errors import (
    CatalogueInvalid,
    EvidenceTooLarge,
    EvidenceTypeRefused,
    ExtensionTooLong,
    RoleRequired,
    SeparationOfDuties,
    StateTransitionRefused,
)

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
CATALOGUE = builtin_catalogue()
ALL_COMPLIANT = {c: Result.COMPLIANT for c in CATALOGUE.control_ids}


# -- the catalogue ----------------------------------------------------------------


def test_builtin_catalogue_loads_with_every_area_covered() -> None:
    """The shipped catalogue validates, has 70 controls and covers all 16 areas."""
    assert len(CATALOGUE.controls) == 70
    areas = {c.area for c in CATALOGUE.controls}
    assert areas == {a.id for a in CATALOGUE.areas} and len(areas) == 16
    assert all(c.model_answer and c.assessor_guidance and c.evidence for c in CATALOGUE.controls)


def test_every_control_maps_to_a_scheme() -> None:
    """Each control maps to Cyber Essentials or the CAF with full/partial coverage."""
    for control in CATALOGUE.controls:
        maps = [*control.maps.caf, *control.maps.cyber_essentials]
        assert maps and all(m.coverage in ("full", "partial") for m in maps), control.id
        assert all(m.ref in CAF_OUTCOMES for m in control.maps.caf)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (("id: GOV-02", "id: GOV-01"), "used twice"),
        (("{ref: A1.b, coverage: full}", "{ref: Z9.z, coverage: full}"), "CAF"),
        (("level: MUST", "level: MAYBE"), "level"),
        (("result: partially-compliant", "result: sort-of"), "result"),
        (("format: gcx.coco-catalogue/1", "format: other/1"), "format"),
    ],
)
def test_catalogue_validation_refuses_bad_documents(change: tuple[str, str], fragment: str) -> None:
    """Duplicate ids, unknown CAF outcomes, bad levels or results and wrong formats are refused."""
    text = builtin_catalogue_text().replace(*change, 1)
    with pytest.raises(CatalogueInvalid, match=fragment):
        parse_catalogue(text)


def test_oscal_catalog_has_a_group_per_area() -> None:
    """The catalogue converts to an OSCAL catalog with one group per area."""
    oscal = to_oscal_catalog(CATALOGUE, uuid_namespace="urn:test")["catalog"]
    assert len(oscal["groups"]) == 16
    assert sum(len(g["controls"]) for g in oscal["groups"]) == 70


def test_scripted_choice_computes_a_result() -> None:
    """Answer choices compute the result they are scripted to."""
    choices = CATALOGUE.control("PAT-01").choices  # type: ignore[union-attr]
    assert choices is not None
    assert choices.result_for("le-30-days") is Result.PARTIALLY_COMPLIANT
    assert choices.result_for("nonsense") is None


# -- the statement table -----------------------------------------------------------


def test_every_state_is_reachable_or_initial_and_final_states_have_no_exit() -> None:
    """Every state appears in the table, and final states have no outgoing step."""
    reached = {t.to for t in TRANSITIONS.values()} | {StatementState.DRAFT}
    assert reached == set(StatementState)
    assert not [key for key in TRANSITIONS if key[0] in FINAL]
    assert StatementState.APPROVED not in OPEN


@pytest.mark.parametrize(("key", "transition"), list(TRANSITIONS.items()))
def test_each_step_needs_its_role(
    key: tuple[StatementState, StatementEvent], transition: object
) -> None:
    """Each step is allowed with its role and refused with role-required without it."""
    state, event = key
    role = TRANSITIONS[key].role
    if role is None:
        return
    assert advance(state, event, [role.value]) is TRANSITIONS[key].to
    others = [r.value for r in Role if r is not role]
    with pytest.raises(RoleRequired):
        advance(state, event, others)


def test_steps_not_in_the_table_are_refused() -> None:
    """A step from a state the table does not allow it in is refused."""
    with pytest.raises(StateTransitionRefused):
        advance(StatementState.DRAFT, StatementEvent.APPROVE, ["operator"])
    with pytest.raises(StateTransitionRefused):
        advance(StatementState.APPROVED, StatementEvent.SIGN_OFF, ["sign-off"])


def test_separation_of_duties_refuses_earlier_participants() -> None:
    """Anyone who did an earlier step is refused; others pass."""
    with pytest.raises(SeparationOfDuties):
        check_separation("isabel", ["isabel", None], "sign off")
    check_separation("sam", ["isabel", None], "sign off")


# -- the verdict ------------------------------------------------------------------------


def test_all_compliant_meets() -> None:
    """Every control compliant meets the code under rule 1."""
    verdict = compute_verdict(CATALOGUE, ALL_COMPLIANT, {}, NOW)
    assert verdict.outcome is Outcome.MEETS and verdict.rule == "gcx-verdict/1"


def test_must_partially_compliant_does_not_meet() -> None:
    """A MUST control only partly met fails the verdict."""
    results = {**ALL_COMPLIANT, "GOV-01": Result.PARTIALLY_COMPLIANT}
    verdict = compute_verdict(CATALOGUE, results, {"GOV-01": dt.date(2027, 1, 1)}, NOW)
    assert verdict.outcome is Outcome.DOES_NOT_MEET
    assert verdict.shortfalls[0].control == "GOV-01"


def test_should_needs_an_in_date_plan() -> None:
    """An unmet SHOULD passes with a plan dated today or later, fails without or past it."""
    results = {**ALL_COMPLIANT, "EDU-04": Result.NON_COMPLIANT}
    assert compute_verdict(CATALOGUE, results, {"EDU-04": NOW.date()}, NOW).outcome is Outcome.MEETS
    assert compute_verdict(CATALOGUE, results, {}, NOW).outcome is Outcome.DOES_NOT_MEET
    past = {"EDU-04": NOW.date() - dt.timedelta(days=1)}
    assert compute_verdict(CATALOGUE, results, past, NOW).outcome is Outcome.DOES_NOT_MEET


def test_not_applicable_counts_as_met() -> None:
    """Not applicable is met, for MUST and SHOULD alike."""
    results = {**ALL_COMPLIANT, "GW-04": Result.NOT_APPLICABLE}
    assert compute_verdict(CATALOGUE, results, {}, NOW).outcome is Outcome.MEETS


def test_unknown_verdict_rule_is_refused() -> None:
    """Asking for a rule that does not exist is refused."""
    with pytest.raises(Exception, match="no verdict rule"):
        compute_verdict(CATALOGUE, ALL_COMPLIANT, {}, NOW, rule="gcx-verdict/99")


# -- Cohen's kappa ------------------------------------------------------------------------


def test_kappa_of_perfect_agreement_is_one() -> None:
    assert cohens_kappa([("a", "a"), ("b", "b")]) == 1.0


def test_kappa_matches_a_worked_example() -> None:
    """20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no gives kappa 0.4 (p_o 0.7, p_e 0.5)."""
    pairs = 20 * [("y", "y")] + 5 * [("y", "n")] + 10 * [("n", "y")] + 15 * [("n", "n")]
    assert cohens_kappa(pairs) == pytest.approx(0.4)


def test_kappa_of_nothing_is_none() -> None:
    assert cohens_kappa([]) is None


def test_consistency_report_ranks_disagreement() -> None:
    """Controls assessors split on most come first."""
    pairs = [
        PairedResult("s1", "A-01", "compliant", "compliant"),
        PairedResult("s2", "A-01", "compliant", "non-compliant"),
        PairedResult("s1", "B-01", "compliant", "non-compliant"),
        PairedResult("s2", "B-01", "compliant", "non-compliant"),
    ]
    report = consistency_report(pairs)
    assert [c["control"] for c in report["most_disagreed"]] == ["B-01", "A-01"]
    assert report["overall"]["agreement"] == 0.25


# -- extensions, reminders, standing -----------------------------------------------------


def test_extension_past_the_maximum_is_refused() -> None:
    """The maximum counts from a current certificate's expiry, else from now."""
    expiry = NOW + dt.timedelta(days=10)
    check_extension_request(
        expiry + dt.timedelta(days=90), current_expiry=expiry, now=NOW, max_days=90
    )
    with pytest.raises(ExtensionTooLong):
        check_extension_request(
            expiry + dt.timedelta(days=91), current_expiry=expiry, now=NOW, max_days=90
        )
    with pytest.raises(ExtensionTooLong):
        check_extension_request(
            NOW + dt.timedelta(days=91), current_expiry=None, now=NOW, max_days=90
        )


@pytest.mark.parametrize(
    ("days_left", "already", "send", "skip"),
    [
        (61, [], None, ()),
        (60, [], 60, ()),
        (29, [60], 30, ()),
        (29, [], 30, (60,)),
        (0.5, [60, 30], 1, (7,)),
        (0.5, [60, 30, 7, 1], None, ()),
        (-1, [], None, ()),
    ],
)
def test_reminder_schedule(
    days_left: float, already: list[int], send: int | None, skip: tuple[int, ...]
) -> None:
    """Reminders fall due at 60, 30, 7 and 1 days; only the most urgent is sent."""
    expires = NOW + dt.timedelta(days=days_left)
    decision = due_reminder(expires, NOW, already)
    assert (decision.send, decision.skip) == (send, skip)


def test_standing_over_time() -> None:
    """Approved until expiry, then grace, then lapsed; withdrawal is immediate."""
    facts = CertificateFacts(NOW, NOW + dt.timedelta(days=365))
    grace = dt.timedelta(days=30)
    at = lambda d: NOW + dt.timedelta(days=d)  # noqa: E731
    assert standing(facts, [], at(1), grace).standing is Standing.APPROVED
    assert standing(facts, [], at(370), grace).standing is Standing.GRACE
    assert standing(facts, [], at(396), grace).standing is Standing.LAPSED
    assert standing(facts, [at(400)], at(396), grace).standing is Standing.EXTENDED
    assert standing(None, [], at(1), grace).standing is Standing.NONE
    withdrawn = CertificateFacts(NOW, at(365), withdrawn_at=at(2))
    assert standing(withdrawn, [at(100)], at(3), grace).standing is Standing.WITHDRAWN


# -- evidence ---------------------------------------------------------------------------


def test_evidence_checks() -> None:
    """Size, declared type and content are all checked."""
    check_evidence("a.pdf", "application/pdf", b"%PDF-1.7", max_bytes=100)
    check_evidence("a.txt", "text/plain; charset=utf-8", b"hello", max_bytes=100)
    with pytest.raises(EvidenceTooLarge):
        check_evidence("a.pdf", "application/pdf", b"%PDF-" + b"x" * 100, max_bytes=100)
    with pytest.raises(EvidenceTypeRefused):
        check_evidence("a.exe", "application/octet-stream", b"MZ", max_bytes=100)
    with pytest.raises(EvidenceTypeRefused):
        check_evidence("a.txt", "text/plain", b"\x00\x01", max_bytes=100)


# -- exports ---------------------------------------------------------------------------------


def _view() -> dict[str, object]:
    control = CATALOGUE.control("FW-01")
    assert control is not None
    return {
        "id": "s1",
        "organisation": "E09000030",
        "catalogue_version": "2026.1",
        "controls": [control.to_dict()],
        "answers": {"FW-01": {"answer": '=HYPERLINK("x")', "choice": None}},
        "evidence": [],
        "assessments": [
            {
                "id": "a1",
                "ordinal": 1,
                "assessor": "alex",
                "state": "completed",
                "started_at": "2026-11-21T09:00:00.000000Z",
                "completed_at": "2026-11-21T10:00:00.000000Z",
                "outcome": "meets",
                "rule": "gcx-verdict/1",
                "override_justification": None,
                "results": {"FW-01": {"result": "compliant", "reason": "Rules seen."}},
            }
        ],
    }


def test_csv_export_neutralises_formulas() -> None:
    """A cell that a spreadsheet would run as a formula is prefixed with a quote."""
    text = exports.statement_csv(_view()).decode()
    assert "'=HYPERLINK" in text


def test_oscal_export_is_deterministic_assessment_results() -> None:
    """The OSCAL export has one finding per control and stable UUIDs."""
    first = exports.statement_oscal(_view(), now="2026-11-21T10:00:00Z")
    second = exports.statement_oscal(_view(), now="2026-11-21T10:00:00Z")
    assert json.dumps(first) == json.dumps(second)
    result = first["assessment-results"]["results"][0]
    assert result["findings"][0]["target"]["status"]["state"] == "satisfied"


# -- self-check judging ---------------------------------------------------------------------


def test_selfcheck_judgements() -> None:
    """Thresholds: TLS 1.3 only, AEAD suites, 30 days, 30 seconds, keys encrypted."""
    assert judge_tls_versions({"TLSv1.2": "refused", "TLSv1.3": "accepted"}).status == "pass"
    assert judge_tls_versions({"TLSv1.2": "accepted", "TLSv1.3": "accepted"}).status == "fail"
    assert judge_cipher_suites("TLS_AES_128_GCM_SHA256", ["AES128-SHA"]).status == "fail"
    assert judge_certificate(NOW + dt.timedelta(days=10), NOW).status == "warn"
    assert judge_clock_skew(45.0).status == "fail"
    assert judge_clock_skew(None).status == "unknown"
    assert judge_keys({"tls.key": False}).status == "fail"


def test_openapi_describes_every_route() -> None:
    """Every compliance route has a description, and nothing is described that is not routed."""
    from gcx.central.compliance_api import ROUTES

    assert {(m, p) for m, p, _ in ROUTES} == set(DESCRIPTIONS)


_RULE_MODULES = ("statement", "rules", "evidence", "exports", "selfcheck_format", "openapi")
_BANNED = ("sqlalchemy", "aiohttp", "asyncio", "socket", "ssl", "gcx.store", "gcx.clock", "time")


@pytest.mark.parametrize("name", _RULE_MODULES)
def test_compliance_rule_modules_do_no_io(name: str) -> None:
    """The rule modules import nothing that does I/O or reads the clock."""
    import ast
    from pathlib import Path

    import gcx.compliance

    source = (Path(gcx.compliance.__file__).parent / f"{name}.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not [m for m in imported if m.split(".")[0] in _BANNED or m in _BANNED], imported


def test_the_second_factor_check_fails_for_any_administrator_without_one() -> None:
    from gcx.compliance.selfcheck_format import FAIL, PASS, admin_second_factor_check

    assert admin_second_factor_check(3, 0).status == PASS
    failing = admin_second_factor_check(3, 1)
    assert failing.status == FAIL
    assert "1 of 3" in failing.detail
