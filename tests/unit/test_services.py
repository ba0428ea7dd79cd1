"""Service access, pure parts: rights matching, paths, token buckets, call documents, NI numbers."""

from __future__ import annotations

import datetime as dt

import pytest

from gcx import crypto
from gcx.errors import (
    CallDigestMismatch,
    CallResponseInvalid,
    InputError,
    PeerRefused,
    PurposeRequired,
    ServiceForbidden,
    ServiceUnknown,
    SignatureInvalid,
    UserRequired,
)
from gcx.evidence import EvidenceInvalid, verify_call_evidence
from gcx.evidence._calls import build_call_evidence, is_call_evidence
from gcx.protocol.services import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    AccessRight,
    CallRequest,
    CallResponse,
    RightsIndex,
    ServiceChange,
    ServiceEntry,
    ServiceGroup,
    TokenBucket,
    check_change,
    check_request_received,
    check_response_matches,
    normalise_path,
    path_within,
    require_caller_facts,
)
from gcx.reference import generate_nino, nino_is_valid, sample_ninos
from gcx.reference._data import fsm_eligible, person, vehicle

NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
SERVICE = ServiceEntry(provider="DWP", name="dwp-cis", version="1")


def _right(grantee: str, methods: tuple[str, ...] = (), paths: tuple[str, ...] = ()) -> AccessRight:
    return AccessRight(
        id=crypto.random_id(16),
        provider="DWP",
        service="dwp-cis",
        grantee=grantee,
        methods=methods,
        paths=paths,
        granted_at=NOW,
    )


def _index(*rights: AccessRight, groups: tuple[ServiceGroup, ...] = ()) -> RightsIndex:
    return RightsIndex.build(7, [SERVICE], rights, groups)


# -- rights ------------------------------------------------------------------------------


def test_deny_by_default() -> None:
    """With no right, every call is refused as service-forbidden."""
    with pytest.raises(ServiceForbidden):
        _index().decide("E09000030", "DWP", "dwp-cis", "GET", "/customers/X")


def test_unknown_service_is_service_unknown() -> None:
    """A service the directory does not list is service-unknown, not forbidden."""
    with pytest.raises(ServiceUnknown):
        _index().decide("E09000030", "DWP", "nothing", "GET", "/")


def test_right_for_whole_service_admits_any_method_and_path() -> None:
    """A right with no methods or paths covers the whole service."""
    decision = _index(_right("org:E09000030")).decide("E09000030", "DWP", "dwp-cis", "POST", "/x")
    assert decision.service == SERVICE


def test_methods_and_path_prefixes_limit_a_right() -> None:
    """A right for GET /customers admits GET below /customers only, on whole segments."""
    index = _index(_right("org:E09000030", ("GET",), ("/customers",)))
    index.decide("E09000030", "DWP", "dwp-cis", "GET", "/customers/AB123456C")
    index.decide("E09000030", "DWP", "dwp-cis", "GET", "/customers")
    for method, path in (("POST", "/customers/1"), ("GET", "/customers-admin"), ("GET", "/")):
        with pytest.raises(ServiceForbidden):
            index.decide("E09000030", "DWP", "dwp-cis", method, path)


def test_right_to_another_organisation_does_not_admit() -> None:
    """A right granted to one organisation admits no other."""
    with pytest.raises(ServiceForbidden):
        _index(_right("org:E09000030")).decide("MPS", "DWP", "dwp-cis", "GET", "/")


def test_group_rights_admit_members_only() -> None:
    """A right to a provider's group admits exactly that group's members."""
    group = ServiceGroup(provider="DWP", name="london-councils", members=("E09000030",))
    index = _index(_right("group:london-councils"), groups=(group,))
    index.decide("E09000030", "DWP", "dwp-cis", "GET", "/")
    with pytest.raises(ServiceForbidden):
        index.decide("E09000001", "DWP", "dwp-cis", "GET", "/")
    assert [s.name for s, _ in index.visible_to("E09000030")] == ["dwp-cis"]
    assert index.visible_to("MPS") == []


@pytest.mark.parametrize("path", ["/a/../b", "/a//b", "/a/./b", "/a\\b", "/..", "/a/.."])
def test_ambiguous_paths_are_refused(path: str) -> None:
    """Dot segments, empty segments and backslashes are refused, never resolved."""
    with pytest.raises(InputError):
        normalise_path(path)


def test_path_within_works_on_segments() -> None:
    """Prefixes match whole segments; an empty prefix matches everything."""
    assert path_within("/customers/1", "/customers")
    assert path_within("/customers", "/customers/")
    assert not path_within("/customersX", "/customers")
    assert path_within("/anything", "/")


def test_user_and_purpose_requirements() -> None:
    """A service requiring a user and a purpose refuses calls without them."""
    with pytest.raises(UserRequired):
        require_caller_facts(SERVICE, None, "p")
    with pytest.raises(PurposeRequired):
        require_caller_facts(SERVICE, "u", None)
    relaxed = SERVICE.model_copy(update={"requires_user": False, "requires_purpose": False})
    require_caller_facts(relaxed, None, None)


def test_a_change_may_only_touch_its_own_provider() -> None:
    """A signed change for DWP cannot publish a service of another provider."""
    other = SERVICE.model_copy(update={"provider": "HMRC"})
    change = ServiceChange(
        id=crypto.random_id(16), provider="DWP", issued_at=NOW, action="publish", service=other
    )
    with pytest.raises(InputError):
        check_change(change, now=NOW)
    stale = change.model_copy(update={"service": SERVICE, "issued_at": NOW - dt.timedelta(hours=1)})
    with pytest.raises(InputError):
        check_change(stale, now=NOW)
    check_change(change.model_copy(update={"service": SERVICE}), now=NOW)


# -- the token bucket ---------------------------------------------------------------------


def test_token_bucket_allows_burst_then_refills_at_rate() -> None:
    """A bucket of 2 at 1/s gives two at once, then one a second, with the wait to the next."""
    bucket = TokenBucket(rate=1.0, burst=2)
    assert bucket.take(100.0) is None
    assert bucket.take(100.0) is None
    wait = bucket.take(100.0)
    assert wait == pytest.approx(1.0)
    assert bucket.take(100.5) == pytest.approx(0.5)
    assert bucket.take(101.0) is None
    assert bucket.take(200.0) is None and bucket.take(200.0) is None  # capped at burst
    assert bucket.take(200.0) is not None


# -- call documents ----------------------------------------------------------------------


def _request(body: bytes = b"") -> CallRequest:
    return CallRequest(
        id=crypto.random_id(16),
        consumer="E09000030",
        consumer_gateway="tower-hamlets",
        user="benefits.officer",
        purpose="review",
        provider="DWP",
        service="dwp-cis",
        method="GET",
        path="/customers/AB123456C",
        body_sha256=crypto.sha256_hex(body),
        body_size=len(body),
        created_at=NOW,
        directory_version=7,
    )


def _response(request: CallRequest, signed_request: bytes, body: bytes) -> CallResponse:
    return CallResponse(
        call_id=request.id,
        request_sha256=crypto.sha256_hex(signed_request),
        provider="DWP",
        provider_gateway="dwp",
        service="dwp-cis",
        status=200,
        body_sha256=crypto.sha256_hex(body),
        body_size=len(body),
        created_at=NOW,
        directory_version=7,
    )


def test_request_signing_round_trip_and_digest_check() -> None:
    """A signed request verifies with the consumer's key only, and its body digest is checked."""
    key = crypto.SigningKey.generate()
    request = _request(b"body")
    signed = crypto.sign_document(REQUEST_TYPE, request.to_bytes(), key, "k")
    payload = crypto.verify_document(signed, REQUEST_TYPE, {"k": key.public})
    assert CallRequest.from_bytes(payload) == request
    with pytest.raises(SignatureInvalid):
        crypto.verify_document(signed, REQUEST_TYPE, {"k": crypto.SigningKey.generate().public})
    with pytest.raises(SignatureInvalid):
        crypto.verify_document(signed, RESPONSE_TYPE, {"k": key.public})
    facts = {"peer_organisations": ["E09000030"], "hosted": ["DWP"], "now": NOW}
    check_request_received(request, body_sha256=crypto.sha256_hex(b"body"), body_size=4, **facts)
    with pytest.raises(CallDigestMismatch):
        check_request_received(
            request, body_sha256=crypto.sha256_hex(b"bodY"), body_size=4, **facts
        )
    with pytest.raises(PeerRefused):
        check_request_received(
            request,
            body_sha256=request.body_sha256,
            body_size=4,
            peer_organisations=["MPS"],
            hosted=["DWP"],
            now=NOW,
        )


def test_response_must_name_the_request_and_match_the_body() -> None:
    """The consumer refuses an answer for another request or with a changed body."""
    key = crypto.SigningKey.generate()
    request = _request()
    signed = crypto.sign_document(REQUEST_TYPE, request.to_bytes(), key, "k")
    response = _response(request, signed, b"answer")
    digest = crypto.sha256_hex(signed)
    check_response_matches(
        response,
        request,
        request_sha256=digest,
        body_sha256=crypto.sha256_hex(b"answer"),
        body_size=6,
    )
    with pytest.raises(CallResponseInvalid):
        check_response_matches(
            response,
            request,
            request_sha256=digest,
            body_sha256=crypto.sha256_hex(b"answeR"),
            body_size=6,
        )
    with pytest.raises(CallResponseInvalid):
        check_response_matches(
            response,
            request,
            request_sha256=crypto.sha256_hex(b"another request"),
            body_sha256=crypto.sha256_hex(b"answer"),
            body_size=6,
        )


def test_call_evidence_rejects_a_non_canonical_or_foreign_file() -> None:
    """Only a canonical gcx.call-evidence/1 file is accepted; anything else fails on form."""
    assert not is_call_evidence(b'{"format": "gcx.evidence/1"}')
    with pytest.raises(EvidenceInvalid) as caught:
        verify_call_evidence(b"{}")
    assert caught.value.check == "form"
    data = build_call_evidence(
        call_id="0" * 32,
        side="consumer",
        request_document=b"{}",
        response_document=b"{}",
        anchor_pem=b"x",
        certificates={},
        directory_version=1,
        directory_document=b"{}",
    )
    assert is_call_evidence(data)
    with pytest.raises(EvidenceInvalid) as caught:
        verify_call_evidence(data.replace(b"\n", b" \n", 1))
    assert caught.value.check == "form"


# -- synthetic data -----------------------------------------------------------------------


def test_generated_ni_numbers_are_valid_and_deterministic() -> None:
    """Every generated number has the valid format and avoids the excluded letters/prefixes."""
    numbers = sample_ninos(5000)
    assert numbers == sample_ninos(5000) and len(set(numbers)) > 4990
    for nino in numbers:
        assert nino_is_valid(nino), nino
        assert nino[0] not in "DFIQUV" and nino[1] not in "DFIOQUV"
        assert nino[:2] not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
        assert nino[-1] in "ABCD" and nino[2:8].isdigit()


@pytest.mark.parametrize(
    "nino", ["DA123456A", "AD123456A", "GB123456A", "ZZ123456A", "AB123456E", "AB12345A"]
)
def test_invalid_ni_numbers_are_recognised(nino: str) -> None:
    """Numbers with excluded letters, prefixes or suffixes are not valid."""
    assert not nino_is_valid(nino)


def test_reference_records_are_deterministic() -> None:
    """The same key always gives the same synthetic record; the first samples all exist."""
    assert generate_nino(3) == generate_nino(3)
    for nino in sample_ninos(16):
        assert person(nino) == person(nino) is not None
    assert fsm_eligible(sample_ninos(1)[0]) in (True, False)
    assert vehicle("AB12 CDE") == vehicle("AB12CDE") is not None


def test_openapi_documents_the_service_routes() -> None:
    """The local API's OpenAPI names the call route, discovery and the admin routes."""
    from openapi_spec_validator import validate

    from gcx.gateway.app import OPENAPI

    validate(OPENAPI)
    for path in (
        "/services/{provider}/{service}/{path}",
        "/api/v1/services",
        "/api/v1/services/published",
        "/api/v1/services/grants/{id}/revoke",
    ):
        assert path in OPENAPI["paths"]
