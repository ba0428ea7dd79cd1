"""Signed payloads are read one way only, and every field gcx writes is in the docs.

An independent verifier, written from docs/protocol.md and docs/evidence.md
alone, found that gcx read a repeated key as its last value, a boolean as an
integer and times in several spellings. Each payload type is checked here
against those tampered forms, and the documents gcx really writes are walked
key by key against the field tables of the docs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509  # noqa: TID251

from gcx import crypto
from gcx.errors import CryptoError, GcxError, ReceiptInvalid
from gcx.evidence._calls import build_call_evidence
from gcx.protocol import directory as dirproto
from gcx.protocol.addresses import AddressListing, ListingEntry
from gcx.protocol.batch import ReadReceipt, Recall, RecallResult
from gcx.protocol.checkpoint import Checkpoint
from gcx.protocol.documents import key_paths, parse_time
from gcx.protocol.envelope import EnvelopeHeader
from gcx.protocol.ping import Ping, Pong
from gcx.protocol.receipt import Receipt, accepted_receipt, refused_receipt
from gcx.protocol.services import (
    AccessRight,
    CallRequest,
    CallResponse,
    ServiceChange,
    ServiceEntry,
    ServiceGroup,
)
from gcx.protocol.transfer import ReceiptFile, TransferFile, TransferManifest, TransferReceipt

from ._certificates import issue_with_profile
from .test_evidence import NOW, build, make_network, seal

DOCS = Path(__file__).parents[2] / "docs"
ID = "0123456789abcdef0123456789abcdef"
HEX = "ab" * 32


def _receipt() -> Receipt:
    return accepted_receipt(
        envelope_id=ID, envelope_digest="sha256:" + HEX, recipient="DWP", gateway="dwp", now=NOW
    )


def _directory() -> dirproto.Directory:
    return dirproto.Directory(
        network="gcx-test",
        version=3,
        issued_at=NOW,
        expires_at=NOW + dt.timedelta(minutes=10),
        organisations=(
            dirproto.OrganisationEntry(
                code="DWP",
                name="Department for Work and Pensions",
                type="central-government",
                gateway="dwp",
                signing_key="a2V5",
                signing_certificate="PEM",
                encryption_key="a2V5",
                encryption_kem="MLKEM768-X25519",
            ),
        ),
        gateways=(
            dirproto.GatewayEntry(
                name="dwp",
                peer_address="dwp.example:8443",
                certificate_fingerprint=HEX,
                certificate_serial="1f",
                certificate_not_after=NOW,
                organisations=("DWP",),
            ),
        ),
        revocations=(
            dirproto.Revocation(
                gateway="old",
                certificate_serial="2a",
                certificate_fingerprint=HEX,
                reason="key lost",
                revoked_at=NOW,
            ),
        ),
        services=(ServiceEntry(provider="DWP", name="dwp-cis", version="1", updated_at=NOW),),
        service_rights=(
            AccessRight(
                id=ID,
                provider="DWP",
                service="dwp-cis",
                grantee="org:E09000030",
                methods=("GET",),
                paths=("/customers",),
                rate_per_second=5.0,
                burst=10,
                granted_at=NOW,
            ),
        ),
        service_groups=(ServiceGroup(provider="DWP", name="councils", members=("E09000030",)),),
    )


def _call_request() -> CallRequest:
    return CallRequest(
        id=ID,
        consumer="E09000030",
        consumer_gateway="tower-hamlets",
        user="benefits.officer",
        purpose="housing benefit review",
        provider="DWP",
        service="dwp-cis",
        method="GET",
        path="/customers/AB123456C",
        headers={"accept": "application/json"},
        body_sha256=HEX,
        body_size=0,
        created_at=NOW,
        directory_version=3,
    )


def _call_response() -> CallResponse:
    return CallResponse(
        call_id=ID,
        request_sha256=HEX,
        provider="DWP",
        provider_gateway="dwp",
        service="dwp-cis",
        status=200,
        headers={"content-type": "application/json"},
        body_sha256=HEX,
        body_size=12,
        created_at=NOW,
        directory_version=3,
    )


def _manifest() -> TransferManifest:
    sealed = seal(make_network("gcx-test", NOW))
    return TransferManifest(
        id=ID,
        sender=sealed.header.sender,
        recipients=sealed.header.recipients,
        marking="OFFICIAL",
        created_at=NOW,
        expires_at=NOW + dt.timedelta(days=7),
        segment_size=65536,
        keys=sealed.header.keys,
        metadata="bWV0YQ==",
        files=(TransferFile(index=0, size=10, nonce_prefix="0" * 14, first_chunk=0, chunks=1),),
        chunks=(HEX,),
    )


def _transfer_receipt() -> TransferReceipt:
    return TransferReceipt(
        transfer_id=ID,
        manifest_digest="sha256:" + HEX,
        recipient="DWP",
        gateway="dwp",
        received_at=NOW,
        files=(ReceiptFile(index=0, name="claims.csv", size=10, sha256=HEX),),
    )


def _listing() -> AddressListing:
    return AddressListing(
        organisation="DWP",
        gateway="dwp",
        issued_at=NOW,
        expires_at=NOW + dt.timedelta(hours=1),
        people_listed=True,
        entries=(ListingEntry("Claire Processor", "claims.processor", "person"),),
    )


def _service_change() -> ServiceChange:
    return ServiceChange(
        id=ID,
        provider="DWP",
        issued_at=NOW,
        action="publish",
        service=ServiceEntry(provider="DWP", name="dwp-cis", version="1", updated_at=NOW),
    )


# -- the parsers refuse what a second parser could read differently ------------------------

# (format, writer of a genuine payload, reader that must refuse a tampered one)
_READERS: dict[str, tuple[Callable[[], bytes], Callable[[bytes], Any]]] = {
    "gcx.receipt/1": (lambda: _receipt().to_bytes(), Receipt.from_bytes),
    "gcx.directory/1": (lambda: _directory().to_bytes(), dirproto.Directory.from_bytes),
    "gcx.envelope/1": (
        lambda: seal(make_network("gcx-test", NOW)).header.to_bytes(),
        EnvelopeHeader.from_bytes,
    ),
    "gcx.checkpoint/1": (
        lambda: Checkpoint("dwp", 3, HEX, NOW, 1, (HEX,)).to_bytes(),
        Checkpoint.from_bytes,
    ),
    "ping": (lambda: Ping("DWP", "MPS", HEX, NOW).to_bytes(), Ping.from_bytes),
    "pong": (lambda: Pong("MPS", "mps", HEX, 3).to_bytes(), Pong.from_bytes),
    "gcx.recall/1": (lambda: Recall(ID, "DWP", "a.person", NOW).to_bytes(), Recall.from_bytes),
    "gcx.recall-result/1": (
        lambda: RecallResult(ID, "MPS", "recalled", None, None, NOW).to_bytes(),
        RecallResult.from_bytes,
    ),
    "gcx.read-receipt/1": (
        lambda: ReadReceipt(ID, "MPS", "a.person", NOW).to_bytes(),
        ReadReceipt.from_bytes,
    ),
    "gcx.transfer/1": (lambda: _manifest().to_bytes(), TransferManifest.from_bytes),
    "gcx.address-listing/1": (lambda: _listing().to_bytes(), AddressListing.from_bytes),
    "gcx.transfer-receipt/1": (
        lambda: _transfer_receipt().to_bytes(),
        TransferReceipt.from_bytes,
    ),
    "gcx.service-change/1": (lambda: _service_change().to_bytes(), ServiceChange.from_bytes),
    "gcx.call-request/1": (lambda: _call_request().to_bytes(), CallRequest.from_bytes),
    "gcx.call-response/1": (lambda: _call_response().to_bytes(), CallResponse.from_bytes),
}


def _repeat_first_key(payload: bytes) -> bytes:
    value = json.loads(payload)
    key = next(iter(value))
    return b"{" + json.dumps(key).encode() + b':"other",' + payload[1:]


def _respell_times(payload: bytes) -> bytes:
    # 2026-11-21T09:00:00Z (or +00:00) -> 2026-11-21 09:00:00Z: a space for the T.
    return re.sub(rb'"(\d{4}-\d{2}-\d{2})T', rb'"\1 ', payload, count=1)


def _integer_to_bool(payload: bytes) -> bytes:
    return re.sub(rb'":(\d+)([,}])', rb'":true\2', payload, count=1)


def _drop_a_field(payload: bytes) -> bytes:
    value = json.loads(payload)
    value.pop(sorted(value)[0])  # a required field in every format here
    return json.dumps(value, separators=(",", ":")).encode()


def _nan(payload: bytes) -> bytes:
    return re.sub(rb'":(\d+)([,}])', rb'":NaN\2', payload, count=1)


_TAMPERING: dict[str, Callable[[bytes], bytes]] = {
    "repeated key": _repeat_first_key,
    "time spelt with a space": _respell_times,
    "boolean for an integer": _integer_to_bool,
    "NaN for a number": _nan,
    "field left out": _drop_a_field,
}

_HAS_INTEGER = {
    "gcx.directory/1",
    "gcx.envelope/1",
    "gcx.checkpoint/1",
    "pong",
    "gcx.transfer/1",
    "gcx.transfer-receipt/1",
    "gcx.service-change/1",
    "gcx.call-request/1",
    "gcx.call-response/1",
}
_HAS_TIME = set(_READERS) - {"pong"}


@pytest.mark.parametrize("name", sorted(_READERS))
def test_genuine_payload_reads_back(name: str) -> None:
    """What gcx writes, gcx reads: the strict rules refuse nothing genuine."""
    write, read = _READERS[name]
    read(write())


def _applies(name: str, tampering: str) -> bool:
    if tampering in ("boolean for an integer", "NaN for a number"):
        return name in _HAS_INTEGER
    return tampering != "time spelt with a space" or name in _HAS_TIME


@pytest.mark.parametrize(
    ("name", "tampering"),
    [(n, t) for n in sorted(_READERS) for t in sorted(_TAMPERING) if _applies(n, t)],
)
def test_tampered_payload_refused(name: str, tampering: str) -> None:
    """A repeated key, a bool or NaN for a number, another time spelling or a lost field."""
    write, read = _READERS[name]
    genuine = write()
    tampered = _TAMPERING[tampering](genuine)
    assert tampered != genuine
    with pytest.raises((GcxError, ValueError)):
        read(tampered)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21T09:00:00Z",
        "2026-11-21T09:00:00.5Z",
        "2026-11-21T09:00:00.123456+00:00",
        "2026-11-21T10:00:00+01:00",
    ],
)
def test_documented_time_forms_read(text: str) -> None:
    """The documented form, with or without a fraction, Z or an offset, is read."""
    assert parse_time(text).tzinfo is not None


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21 09:00:00Z",
        "2026-11-21T09:00:00",
        "2026-11-21T09:00Z",
        "2026-11-21t09:00:00z",
        "2026-11-21T09:00:00.1234567Z",
        "20261121T090000Z",
        "2026-W47-6T09:00:00Z",
        "1763715600",
        "2026-13-21T09:00:00Z",
    ],
)
def test_other_time_spellings_refused(text: str) -> None:
    """Any other spelling of a time is refused, however well Python could read it."""
    with pytest.raises(ValueError):
        parse_time(text)


def test_refusal_receipt_with_repeated_outcome_refused() -> None:
    """A refusal receipt signed with "outcome" twice is refused, not read as its last value."""
    payload = refused_receipt(
        envelope_id=ID,
        envelope_digest="sha256:" + HEX,
        recipient="DWP",
        gateway="dwp",
        now=NOW,
        code="address-unknown",
        message="None known.",
    ).to_bytes()
    doubled = payload.replace(b'"outcome":', b'"outcome":"accepted","outcome":', 1)
    with pytest.raises(ReceiptInvalid):
        Receipt.from_bytes(doubled)


# -- organisation certificates: the profile ------------------------------------------------


@pytest.fixture(scope="module")
def network() -> Any:
    return make_network("gcx-test", NOW)


def test_issued_organisation_certificate_is_in_profile(network: Any) -> None:
    """What central issues passes the profile check for its own code, and no other."""
    certificate = network.orgs["MPS"].certificate
    certificate.check_organisation_profile("MPS")
    with pytest.raises(CryptoError):
        certificate.check_organisation_profile("DWP")


@pytest.mark.parametrize(
    "profile",
    [
        {"extra_names": [x509.DNSName("mps.example")]},
        {"extra_names": [x509.IPAddress(ipaddress.ip_address("192.0.2.1"))]},
        {"extra_names": [x509.UniformResourceIdentifier("urn:gcx:gateway:mps")]},
        {"ca": True},
        {"key_cert_sign": True},
    ],
    ids=["dns name", "ip address", "gateway uri", "ca true", "cert sign"],
)
def test_off_profile_organisation_certificate_refused(
    network: Any, profile: dict[str, Any]
) -> None:
    """A certificate naming more than its organisation, or able to issue, is refused."""
    certificate = issue_with_profile(network.root_key, network.root, network.orgs["MPS"], **profile)
    certificate.verify_issued_by(network.root)
    with pytest.raises(CryptoError):
        certificate.check_organisation_profile("MPS")


def test_gateway_certificate_is_not_an_organisation_certificate(network: Any) -> None:
    """A gateway's TLS certificate, though it names its organisations, fails the profile."""
    tls_key = crypto.SigningKey.generate()
    request = crypto.parse_enrolment_request(
        crypto.build_enrolment_request(tls_key, "mps", ["MPS"])
    )
    certificate = crypto.issue_gateway_certificate(
        network.root_key, network.root, request, ["mps.example"], NOW, dt.timedelta(days=30)
    )
    with pytest.raises(CryptoError):
        certificate.check_organisation_profile("MPS")


# -- every field gcx writes is documented ----------------------------------------------------

_TABLE_MARKER = re.compile(r"<!-- fields: (\S+)(?: (\S+))? -->\n((?:\|.*\n)+)")
_FIELD_CELL = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)


def _documented() -> dict[str, set[str]]:
    """Format -> every key path its field tables list, from all the docs."""
    fields: dict[str, set[str]] = {}
    for path in DOCS.glob("*.md"):
        for match in _TABLE_MARKER.finditer(path.read_text()):
            name, prefix, table = match.groups()
            for cell in _FIELD_CELL.findall(table):
                fields.setdefault(name, set()).add(f"{prefix}.{cell}" if prefix else cell)
    return fields


def _payload(document: bytes) -> Any:
    return json.loads(crypto.unverified_payload(document))


def _batch_signed() -> bytes:
    key = crypto.SigningKey.generate()
    documents = [("application/vnd.gcx.call-request+json", _call_request().to_bytes())] * 3
    return crypto.sign_batch(documents, key, crypto.key_id(key.public))[1]


def _evidence_file() -> Any:
    network = make_network("gcx-test", NOW)
    sealed = seal(network)
    return json.loads(build(network, sealed))


def _call_evidence() -> Any:
    network = make_network("gcx-test", NOW)
    key = network.orgs["E09000030"].signing
    request = crypto.sign_document(
        "application/vnd.gcx.call-request+json",
        _call_request().to_bytes(),
        key,
        crypto.key_id(key.public),
    )
    return json.loads(
        build_call_evidence(
            call_id=ID,
            side="consumer",
            request_document=request,
            response_document=request,
            anchor_pem=network.root.pem,
            certificates={"E09000030": network.orgs["E09000030"].certificate.pem},
            directory_version=7,
            directory_document=network.directory(),
        )
    )


# Maps whose keys are data (organisation codes, header names, an OpenAPI
# document), not fields: the docs describe the map, not its keys.
_MAPS = (
    "certificates.organisations",
    "headers",
    "services[].openapi",
    "service.openapi",
)

_WRITTEN: dict[str, Callable[[], Any]] = {
    "gcx.directory/1": lambda: json.loads(_directory().to_bytes()),
    "gcx.envelope/1": lambda: json.loads(seal(make_network("gcx-test", NOW)).header.to_bytes()),
    "gcx.receipt/1": lambda: json.loads(
        refused_receipt(
            envelope_id=ID,
            envelope_digest="sha256:" + HEX,
            recipient="DWP",
            gateway="dwp",
            now=NOW,
            code="address-unknown",
            message="None known.",
        ).to_bytes()
    ),
    "gcx.checkpoint/1": lambda: json.loads(Checkpoint("dwp", 3, HEX, NOW, 1, (HEX,)).to_bytes()),
    "ping": lambda: json.loads(Ping("DWP", "MPS", HEX, NOW).to_bytes()),
    "pong": lambda: json.loads(Pong("MPS", "mps", HEX, 3).to_bytes()),
    "gcx.recall/1": lambda: json.loads(Recall(ID, "DWP", "a.person", NOW).to_bytes()),
    "gcx.recall-result/1": lambda: json.loads(
        RecallResult(ID, "MPS", "refused", "recall-too-late", "Read.", NOW).to_bytes()
    ),
    "gcx.read-receipt/1": lambda: json.loads(ReadReceipt(ID, "MPS", "a.person", NOW).to_bytes()),
    "gcx.transfer/1": lambda: json.loads(_manifest().to_bytes()),
    "gcx.address-listing/1": lambda: json.loads(_listing().to_bytes()),
    "gcx.transfer-receipt/1": lambda: json.loads(_transfer_receipt().to_bytes()),
    "gcx.service-change/1": lambda: json.loads(_service_change().to_bytes()),
    "gcx.call-request/1": lambda: json.loads(_call_request().to_bytes()),
    "gcx.call-response/1": lambda: json.loads(_call_response().to_bytes()),
    "gcx.batch-signed/1": lambda: json.loads(_batch_signed()),
    "gcx.batch-root/1": lambda: json.loads(
        crypto.unverified_payload(json.loads(_batch_signed())["root"].encode())
    ),
    "gcx.evidence/1": _evidence_file,
    "gcx.call-evidence/1": _call_evidence,
}


def _fields(value: Any) -> set[str]:
    paths = key_paths(value)
    return {
        p
        for p in paths
        if not any(p.startswith(m + ".") or p.startswith(m + "[]") for m in _MAPS)
        and not any(p.split(".", 1)[-1].startswith(m + ".") for m in _MAPS)
    }


# A service change carries the directory's entries, documented there once.
_BORROWED = {
    "gcx.service-change/1": {
        "service": "services[]",
        "right": "service_rights[]",
        "group": "service_groups[]",
    }
}


def _documented_for(name: str) -> set[str]:
    tables = _documented()
    documented = set(tables.get(name, set()))
    for here, there in _BORROWED.get(name, {}).items():
        documented |= {
            here + p[len(there) :] for p in tables["gcx.directory/1"] if p.startswith(there + ".")
        }
    return documented


@pytest.mark.parametrize("name", sorted(_WRITTEN))
def test_every_field_gcx_writes_is_documented(name: str) -> None:
    """Each key path in a document gcx really writes appears in that format's docs table."""
    documented = _documented_for(name)
    missing = _fields(_WRITTEN[name]()) - documented
    assert not missing, f"{name}: fields written but not in the docs: {sorted(missing)}"


def test_every_signed_payload_type_has_a_field_table() -> None:
    """No format gcx writes is left without a table: the walk above covers them all."""
    assert set(_WRITTEN) <= set(_documented())
