"""Evidence files: built from signed material, verified offline, refused when anything changed.

Everything here is made in-process with gcx.crypto: a network root,
organisation certificates, a signed directory, a sealed envelope and signed
receipts; no gateway and no network.
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import ipaddress
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography import x509  # noqa: TID251

from gcx import crypto
from gcx.cli.evidence import evidence as evidence_cli
from gcx.clock import FixedClock
from gcx.evidence import (
    FORMAT,
    EvidenceInvalid,
    HeldReceipt,
    VerifiedEvidence,
    build_evidence,
    verify_evidence,
)
from gcx.gateway.directory import DirectoryKeeper, archive_directory
from gcx.protocol import directory as dirproto
from gcx.protocol.batch import READ_RECEIPT_TYPE, ReadReceipt
from gcx.protocol.receipt import accepted_receipt, refused_receipt
from gcx.store import Database
from gcx.store.schema import directory_archive

from ._certificates import issue_with_profile

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)
NETWORK = "gcx-test"
SENDER = "E09000030"
DOC = Path(__file__).parents[2] / "docs" / "evidence.md"
SNIPPET_MARKER = "<!-- snippet: check_receipt.py -->"


@dataclass(frozen=True)
class Org:
    code: str
    name: str
    signing: crypto.SigningKey
    encryption: crypto.EncryptionKey
    certificate: crypto.Certificate


@dataclass(frozen=True)
class Network:
    """A network root and its member organisations, all made in-process."""

    name: str
    root_key: crypto.SigningKey
    root: crypto.Certificate
    orgs: dict[str, Org]

    def directory(
        self,
        *,
        version: int = 7,
        issued_at: dt.datetime = NOW - dt.timedelta(minutes=1),
        validity: dt.timedelta = dt.timedelta(minutes=10),
        network: str | None = None,
        signing_keys: dict[str, str] | None = None,
        signer: crypto.SigningKey | None = None,
    ) -> bytes:
        keys = signing_keys or {}
        payload = dirproto.Directory(
            network=network or self.name,
            version=version,
            issued_at=issued_at,
            expires_at=issued_at + validity,
            organisations=tuple(
                dirproto.OrganisationEntry(
                    code=org.code,
                    name=org.name,
                    type="other",
                    gateway=org.code.lower(),
                    signing_key=keys.get(org.code, org.signing.public.b64()),
                    signing_certificate=org.certificate.pem.decode(),
                    encryption_key=org.encryption.public.b64(),
                    encryption_kem="MLKEM768-X25519",
                )
                for org in self.orgs.values()
            ),
        ).to_bytes()
        key = signer or self.root_key
        return crypto.sign_document(dirproto.PAYLOAD_TYPE, payload, key, crypto.key_id(key.public))


def make_network(name: str, at: dt.datetime, *, sender_from: dt.datetime | None = None) -> Network:
    root_key = crypto.SigningKey.generate()
    root = crypto.create_network_root(root_key, name, at - dt.timedelta(days=1), dt.timedelta(3650))
    orgs = {}
    for code, org_name in [
        (SENDER, "London Borough of Tower Hamlets"),
        ("MPS", "Metropolitan Police Service"),
        ("DWP", "Department for Work and Pensions"),
    ]:
        signing = crypto.SigningKey.generate()
        issued = sender_from if sender_from and code == SENDER else at - dt.timedelta(days=1)
        certificate = crypto.issue_organisation_certificate(
            root_key, root, code, org_name, signing.public, issued, dt.timedelta(days=365)
        )
        orgs[code] = Org(code, org_name, signing, crypto.EncryptionKey.generate(), certificate)
    return Network(name, root_key, root, orgs)


def seal(network: Network, at: dt.datetime = NOW) -> crypto.SealedEnvelope:
    return crypto.seal_envelope(
        kind="message",
        sender_org=SENDER,
        sender_user="benefits.officer",
        sender_key=network.orgs[SENDER].signing,
        recipients={code: org.encryption.public for code, org in network.orgs.items()},
        marking="OFFICIAL-SENSITIVE",
        parts=[
            ("message.json", "application/vnd.gcx.message+json", b'{"subject":"Referral"}'),
            ("referral.txt", "text/plain", b"Details of the referral."),
        ],
        now=at,
    )


def delivery(
    network: Network,
    sealed: crypto.SealedEnvelope,
    org: str,
    *,
    at: dt.datetime = NOW + dt.timedelta(seconds=2),
    envelope_id: str | None = None,
    digest: str | None = None,
    recipient: str | None = None,
    signer: str | None = None,
) -> HeldReceipt:
    receipt = accepted_receipt(
        envelope_id=envelope_id or sealed.header.id,
        envelope_digest=digest or sealed.digest,
        recipient=recipient or org,
        gateway=org.lower(),
        now=at,
        unknown_addresses=("nobody@MPS",) if org == "MPS" else (),
    )
    document = crypto.sign_receipt(receipt, network.orgs[signer or org].signing)
    return HeldReceipt("delivery", org, document)


def refusal(network: Network, sealed: crypto.SealedEnvelope, org: str) -> HeldReceipt:
    receipt = refused_receipt(
        envelope_id=sealed.header.id,
        envelope_digest=sealed.digest,
        recipient=org,
        gateway=org.lower(),
        now=NOW + dt.timedelta(seconds=3),
        code="address-unknown",
        message="None of the addresses for DWP is known at its gateway: x@DWP",
    )
    return HeldReceipt("delivery", org, crypto.sign_receipt(receipt, network.orgs[org].signing))


def read_receipt(
    network: Network, sealed: crypto.SealedEnvelope, org: str, *, envelope_id: str | None = None
) -> HeldReceipt:
    payload = ReadReceipt(
        envelope_id or sealed.header.id, org, "safeguarding.officer", NOW + dt.timedelta(hours=1)
    ).to_bytes()
    key = network.orgs[org].signing
    document = crypto.sign_document(READ_RECEIPT_TYPE, payload, key, crypto.key_id(key.public))
    return HeldReceipt("read", org, document)


@pytest.fixture(scope="module")
def network() -> Network:
    return make_network(NETWORK, NOW)


@pytest.fixture(scope="module")
def other_network() -> Network:
    return make_network("another-network", NOW)


@pytest.fixture(scope="module")
def sealed(network: Network) -> crypto.SealedEnvelope:
    return seal(network)


def inputs(network: Network, sealed: crypto.SealedEnvelope, **changes: Any) -> dict[str, Any]:
    """What an exporting gateway would pass to build_evidence, with ``changes`` applied."""
    values: dict[str, Any] = {
        "signed_header": sealed.signed_header,
        "parts": sealed.parts,
        "held_receipts": [
            delivery(network, sealed, "MPS"),
            read_receipt(network, sealed, "MPS"),
            refusal(network, sealed, "DWP"),
        ],
        "anchor_pem": network.root.pem,
        "certificates": {code: org.certificate.pem for code, org in network.orgs.items()},
        "directory_version": 7,
        "directory_document": network.directory(),
    }
    values.update(changes)
    if "certificates" not in changes:
        # As the exporting gateway does: the sender's, and each receipting organisation's.
        needed = {SENDER} | {r.organisation for r in values["held_receipts"]}
        values["certificates"] = {
            code: org.certificate.pem for code, org in network.orgs.items() if code in needed
        }
    return values


def build(network: Network, sealed: crypto.SealedEnvelope, **changes: Any) -> bytes:
    return build_evidence(**inputs(network, sealed, **changes))


@pytest.fixture(scope="module")
def good(network: Network, sealed: crypto.SealedEnvelope) -> bytes:
    return build(network, sealed)


def canonical(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()


def rewrite(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """The file with ``change`` applied to its content, still in the canonical form."""
    value = json.loads(data)
    change(value)
    return canonical(value)


def refused(data: bytes, check: str, network: Network, **anchor: Any) -> EvidenceInvalid:
    """Verify against ``network``'s anchor and expect refusal by ``check``."""
    with pytest.raises(EvidenceInvalid) as info:
        verify_evidence(data, **(anchor or {"anchor": network.root}))
    assert info.value.check == check, info.value.message
    return info.value


# -- what a good file establishes ---------------------------------------------------


def test_exported_file_verifies_against_the_network_anchor(network: Network, good: bytes) -> None:
    """A file built from genuine signed material verifies, every check in order."""
    result = verify_evidence(good, anchor=network.root)
    assert result.anchor_source == "given"
    assert [c.name for c in result.checks] == [
        "file",
        "anchor",
        "directory",
        *["certificate"] * 3,
        "envelope",
        *["receipt"] * 3,
        "directory-in-force",
    ]


def test_report_says_who_sent_what_to_whom_and_who_signed(
    network: Network, sealed: crypto.SealedEnvelope, good: bytes
) -> None:
    """The verified result names sender, user, marking, recipients and each receipt's outcome."""
    result = verify_evidence(good, anchor=network.root)
    body = result.to_dict()
    assert body["envelope"]["sender"] == {
        "organisation": SENDER,
        "name": "London Borough of Tower Hamlets",
        "user": "benefits.officer",
    }
    assert body["envelope"]["marking"] == "OFFICIAL-SENSITIVE"
    assert body["envelope"]["digest"] == sealed.digest
    assert {r["organisation"] for r in body["envelope"]["recipients"]} == {SENDER, "MPS", "DWP"}
    outcomes = [(r.organisation, r.kind, r.outcome) for r in result.receipts]
    assert outcomes == [
        ("DWP", "delivery", "refused"),
        ("MPS", "delivery", "accepted"),
        ("MPS", "read", "read"),
    ]
    mps = result.receipts[1]
    assert mps.gateway == "mps" and mps.unknown_addresses == ("nobody@MPS",)
    assert result.receipts[0].refusal is not None
    assert result.receipts[0].refusal.startswith("address-unknown:")
    assert result.receipts[2].reader == "safeguarding.officer"


def test_file_is_canonical_and_deterministic(
    network: Network, sealed: crypto.SealedEnvelope, good: bytes
) -> None:
    """Building twice from the same material gives the same bytes, in the canonical form."""
    again = build_evidence(
        **inputs(
            network,
            sealed,
            held_receipts=[
                refusal(network, sealed, "DWP"),
                read_receipt(network, sealed, "MPS"),
                delivery(network, sealed, "MPS"),
            ],
        )
    )
    assert json.loads(again)["format"] == FORMAT
    assert canonical(json.loads(good)) == good
    assert [r["organisation"] + r["kind"] for r in json.loads(again)["receipts"]] == [
        "DWPdelivery",
        "MPSdelivery",
        "MPSread",
    ]


def test_envelope_without_receipts_still_verifies(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """Evidence of what was sent, before any receipt came back, verifies with no receipts."""
    data = build(network, sealed, held_receipts=[])
    assert verify_evidence(data, anchor=network.root).receipts == ()


def test_verification_reads_no_clock() -> None:
    """An envelope and certificates long expired still verify: times are judged as they were."""
    then = dt.datetime(2019, 3, 1, 9, 0, tzinfo=dt.UTC)
    old = make_network(NETWORK, then)
    sealed = seal(old, then)
    data = build(
        old,
        sealed,
        held_receipts=[delivery(old, sealed, "MPS", at=then + dt.timedelta(seconds=1))],
        directory_document=old.directory(issued_at=then - dt.timedelta(minutes=1)),
    )
    assert old.orgs[SENDER].certificate.not_after < NOW
    result = verify_evidence(data, anchor=old.root)
    assert result.header.expires_at < NOW


# -- the anchor ----------------------------------------------------------------------


def test_without_an_anchor_the_carried_one_is_used_and_said_so(good: bytes) -> None:
    """With no anchor given the file is checked against its own, and the result says so."""
    assert verify_evidence(good).anchor_source == "file"


def test_anchor_fingerprint_pins_the_network(network: Network, good: bytes) -> None:
    """The right fingerprint (any case, with colons) verifies; another one is refused."""
    spaced = ":".join(re.findall("..", network.root.fingerprint.upper()))
    assert verify_evidence(good, anchor_fingerprint=spaced).anchor_source == "fingerprint"
    refused(good, "anchor", network, anchor_fingerprint="00" * 32)


def test_wrong_anchor_refused(network: Network, other_network: Network, good: bytes) -> None:
    """A file checked against another network's anchor is refused at the anchor check."""
    error = refused(good, "anchor", network, anchor=other_network.root)
    assert other_network.root.fingerprint in error.message
    assert [c.name for c in error.passed] == ["file"]


def test_file_from_another_network_refused(network: Network, other_network: Network) -> None:
    """A file made entirely on another network does not verify against ours."""
    theirs = build(other_network, seal(other_network))
    verify_evidence(theirs, anchor=other_network.root)
    refused(theirs, "anchor", network)


# -- any change ------------------------------------------------------------------------


def test_every_changed_byte_refused(network: Network, good: bytes) -> None:
    """A byte changed anywhere in the file (sampled through all of it) is refused."""
    # Every position was checked once (about 15,000 of them, all refused);
    # a prime stride keeps the test quick while still reaching every section.
    positions = [*range(0, len(good), 13), len(good) - 1]
    for position in positions:
        changed = bytearray(good)
        changed[position] ^= 0x01
        with pytest.raises(EvidenceInvalid):
            verify_evidence(bytes(changed), anchor=network.root)


def test_reserialised_file_refused(network: Network, good: bytes) -> None:
    """The same content written in another JSON form is refused as changed."""
    compact = json.dumps(json.loads(good), sort_keys=True).encode()
    refused(compact, "file", network)
    refused(good.rstrip(b"\n"), "file", network)


def test_unknown_field_refused(network: Network, good: bytes) -> None:
    """A field the format does not define is refused, so nothing unsigned can ride along."""
    data = rewrite(good, lambda v: v.update(exported_by="somebody"))
    refused(data, "file", network)


def test_not_an_evidence_file_refused(network: Network) -> None:
    """Something that is not an evidence file is refused at the first check."""
    refused(b"not json", "file", network)
    refused(canonical({"format": "gcx.other/1"}), "file", network)


# -- receipts --------------------------------------------------------------------------


def test_receipt_from_another_envelope_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A genuine receipt for a different envelope is refused."""
    other = seal(network)
    data = build(network, sealed, held_receipts=[delivery(network, other, "MPS")])
    error = refused(data, "receipt", network)
    assert other.header.id in error.message


def test_receipt_over_other_bytes_refused(network: Network, sealed: crypto.SealedEnvelope) -> None:
    """A receipt naming this envelope id but another digest is refused."""
    receipt = delivery(network, sealed, "MPS", digest="sha256:" + "0" * 64)
    refused(build(network, sealed, held_receipts=[receipt]), "receipt", network)


def test_receipt_signed_by_another_organisation_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A receipt claiming to be from MPS but signed with DWP's key is refused."""
    receipt = delivery(network, sealed, "MPS", signer="DWP")
    error = refused(build(network, sealed, held_receipts=[receipt]), "receipt", network)
    assert "MPS" in error.message


def test_receipt_filed_under_another_organisation_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """MPS's genuine receipt filed as DWP's is refused."""
    genuine = delivery(network, sealed, "MPS")
    misfiled = HeldReceipt("delivery", "DWP", genuine.document)
    refused(build(network, sealed, held_receipts=[misfiled]), "receipt", network)


def test_receipt_from_a_non_recipient_refused(network: Network) -> None:
    """A receipt from an organisation the envelope was not addressed to is refused."""
    only_mps = crypto.seal_envelope(
        kind="message",
        sender_org=SENDER,
        sender_user="benefits.officer",
        sender_key=network.orgs[SENDER].signing,
        recipients={"MPS": network.orgs["MPS"].encryption.public},
        marking="OFFICIAL",
        parts=[("message.json", "application/json", b"{}")],
        now=NOW,
    )
    data = build(network, only_mps, held_receipts=[delivery(network, only_mps, "DWP")])
    error = refused(data, "receipt", network)
    assert "not a recipient" in error.message


def test_receipt_kind_must_match_its_document(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A read receipt filed as a delivery receipt is refused."""
    read = read_receipt(network, sealed, "MPS")
    relabelled = HeldReceipt("delivery", "MPS", read.document)
    refused(build(network, sealed, held_receipts=[relabelled]), "receipt", network)


def test_receipts_reordered_or_repeated_refused(network: Network, good: bytes) -> None:
    """Receipts out of the written order, or one repeated, are refused."""
    swapped = rewrite(good, lambda v: v["receipts"].reverse())
    refused(swapped, "receipt", network)
    repeated = rewrite(good, lambda v: v["receipts"].append(v["receipts"][-1]))
    refused(repeated, "receipt", network)


def test_acceptance_outside_the_envelope_lifetime_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A receipt saying it accepted the envelope after it expired is refused."""
    late = delivery(network, sealed, "MPS", at=sealed.header.expires_at + dt.timedelta(seconds=1))
    error = refused(build(network, sealed, held_receipts=[late]), "receipt", network)
    assert "outside its lifetime" in error.message


def test_read_receipt_for_another_envelope_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A read receipt naming another envelope is refused."""
    other = read_receipt(network, sealed, "MPS", envelope_id="f" * 32)
    refused(build(network, sealed, held_receipts=[other]), "receipt", network)


def test_receipt_without_a_certificate_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A receipt whose organisation's certificate is not in the file is refused."""
    certificates = {SENDER: network.orgs[SENDER].certificate.pem}
    data = build(network, sealed, certificates=certificates)
    refused(data, "receipt", network)


# -- certificates and directory -----------------------------------------------------------


def test_certificate_from_another_network_refused(
    network: Network, other_network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """MPS's key certified by another network's root is refused, though the key is right."""
    foreign = crypto.issue_organisation_certificate(
        other_network.root_key,
        other_network.root,
        "MPS",
        "Metropolitan Police Service",
        network.orgs["MPS"].signing.public,
        NOW - dt.timedelta(days=1),
        dt.timedelta(days=365),
    )
    certificates = {code: org.certificate.pem for code, org in network.orgs.items()}
    certificates["MPS"] = foreign.pem
    error = refused(build(network, sealed, certificates=certificates), "certificate", network)
    assert error.subject == "certificate of MPS"


def test_certificate_filed_under_another_code_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """DWP's certificate filed as MPS's is refused: its subject names DWP."""
    certificates = {code: org.certificate.pem for code, org in network.orgs.items()}
    certificates["MPS"] = network.orgs["DWP"].certificate.pem
    error = refused(build(network, sealed, certificates=certificates), "certificate", network)
    assert "urn:gcx:org:DWP" in error.message


def test_directory_listing_another_key_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A directory that listed a different key for the sender than its certificate holds."""
    stranger = crypto.SigningKey.generate().public.b64()
    document = network.directory(signing_keys={SENDER: stranger})
    error = refused(build(network, sealed, directory_document=document), "certificate", network)
    assert "different signing key" in error.message


def test_directory_not_signed_by_the_anchor_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A directory signed by any key but the anchor's is refused."""
    document = network.directory(signer=crypto.SigningKey.generate())
    refused(build(network, sealed, directory_document=document), "directory", network)


def test_directory_version_must_match(network: Network, sealed: crypto.SealedEnvelope) -> None:
    """The version the file states must be the version the signed directory holds."""
    refused(build(network, sealed, directory_version=8), "directory", network)


def test_directory_of_another_network_name_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A directory naming a network other than the anchor's is refused."""
    document = network.directory(network="elsewhere")
    refused(build(network, sealed, directory_document=document), "directory", network)


def test_directory_not_in_force_refused(network: Network, sealed: crypto.SealedEnvelope) -> None:
    """A directory issued after delivery, or expired before sending, is refused."""
    later = network.directory(issued_at=NOW + dt.timedelta(hours=2))
    refused(build(network, sealed, directory_document=later), "directory-in-force", network)
    earlier = network.directory(issued_at=NOW - dt.timedelta(hours=2))
    refused(build(network, sealed, directory_document=earlier), "directory-in-force", network)


# -- the envelope ---------------------------------------------------------------------------


def test_envelope_signed_by_another_key_refused(network: Network) -> None:
    """A header signed with a key other than the sender's certified one is refused."""
    impostor = Network(
        NETWORK,
        network.root_key,
        network.root,
        {
            **network.orgs,
            SENDER: Org(
                SENDER,
                "impostor",
                crypto.SigningKey.generate(),
                network.orgs[SENDER].encryption,
                network.orgs[SENDER].certificate,
            ),
        },
    )
    forged = seal(impostor)
    error = refused(build(network, forged, held_receipts=[]), "envelope", network)
    assert SENDER in error.message


def test_parts_of_another_envelope_refused(network: Network, sealed: crypto.SealedEnvelope) -> None:
    """Parts swapped for another envelope's are refused against the signed header."""
    other = seal(network)
    refused(build(network, sealed, parts=other.parts, held_receipts=[]), "envelope", network)


def test_stated_digest_must_be_the_recomputed_one(network: Network, good: bytes) -> None:
    """A digest field that is not the digest of the header and parts is refused."""
    data = rewrite(good, lambda v: v["envelope"].update(digest="sha256:" + "1" * 64))
    refused(data, "envelope", network)


def test_envelope_id_must_be_the_header_id(network: Network, good: bytes) -> None:
    """An envelope id field that is not the signed header's id is refused."""
    data = rewrite(good, lambda v: v["envelope"].update(id="e" * 32))
    refused(data, "envelope", network)


def test_missing_sender_certificate_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """Without the sender's certificate the header cannot be checked, and is refused."""
    certificates = {"MPS": network.orgs["MPS"].certificate.pem}
    data = build(network, sealed, certificates=certificates, held_receipts=[])
    refused(data, "envelope", network)


def test_sender_certificate_not_yet_valid_refused() -> None:
    """A header signed before the sender's certificate was valid is refused."""
    early = make_network(NETWORK, NOW, sender_from=NOW + dt.timedelta(days=1))
    sealed = seal(early)
    data = build(early, sealed, held_receipts=[], directory_document=early.directory())
    error = refused(data, "envelope", early)
    assert "was not valid" in error.message


# -- the command ------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path, network: Network, other_network: Network, good: bytes) -> Path:
    (tmp_path / "evidence.json").write_bytes(good)
    (tmp_path / "anchor.pem").write_bytes(network.root.pem)
    (tmp_path / "other.pem").write_bytes(other_network.root.pem)
    return tmp_path


def _verify(*args: str) -> Any:
    return CliRunner().invoke(evidence_cli, ["verify", *args])


def test_cli_verify_prints_a_report_and_exits_0(files: Path) -> None:
    """verify with --anchor reports sender, marking and receipts, and exits 0."""
    result = _verify(str(files / "evidence.json"), "--anchor", str(files / "anchor.pem"))
    assert result.exit_code == 0, result.output
    assert "benefits.officer at E09000030 (London Borough of Tower Hamlets)" in result.output
    assert "OFFICIAL-SENSITIVE" in result.output
    assert "accepted at" in result.output and "refused at" in result.output
    assert "read by safeguarding.officer" in result.output
    assert "VERIFIED: every check passed." in result.output
    assert "WARNING" not in result.output


def test_cli_verify_no_anchor_warns_with_the_fingerprint(files: Path, network: Network) -> None:
    """With --no-anchor, verify prints the carried anchor's fingerprint and a warning."""
    result = _verify(str(files / "evidence.json"), "--no-anchor")
    assert result.exit_code == 0, result.output
    assert f"SHA-256 fingerprint: {network.root.fingerprint}" in result.output
    assert "WARNING: --no-anchor" in result.output
    assert "VERIFIED" not in result.output


def test_cli_verify_without_any_anchor_option_refuses(files: Path) -> None:
    """Neither an anchor nor --no-anchor is a usage error (exit 2), never a pass."""
    result = _verify(str(files / "evidence.json"))
    assert result.exit_code == 2
    assert "VERIFIED" not in result.output


def test_cli_verify_refuses_a_forgery_under_its_own_root(
    files: Path, network: Network, other_network: Network
) -> None:
    """A complete forgery, consistent with the root it carries, does not pass without --anchor."""
    forged = build(
        other_network,
        seal(other_network),
        held_receipts=[],
        directory_document=other_network.directory(),
    )
    assert verify_evidence(forged).anchor_source == "file"
    (files / "forged.json").write_bytes(forged)
    assert _verify(str(files / "forged.json")).exit_code == 2
    pinned = _verify(str(files / "forged.json"), "--anchor", str(files / "anchor.pem"))
    assert pinned.exit_code == 1
    assert "FAILED  anchor" in pinned.output


def test_cli_verify_refuses_anchor_and_no_anchor_together(files: Path) -> None:
    """--no-anchor with an anchor is contradictory and a usage error."""
    result = _verify(
        str(files / "evidence.json"), "--anchor", str(files / "anchor.pem"), "--no-anchor"
    )
    assert result.exit_code == 2


def test_cli_verify_wrong_anchor_exits_1_naming_the_check(files: Path) -> None:
    """A wrong anchor makes verify exit 1 and name the anchor check."""
    result = _verify(str(files / "evidence.json"), "--anchor", str(files / "other.pem"))
    assert result.exit_code == 1
    assert "FAILED  anchor" in result.output
    assert "NOT VERIFIED: the anchor check failed" in result.output


def test_cli_verify_changed_file_exits_1(files: Path, good: bytes) -> None:
    """A changed byte makes verify exit 1."""
    changed = bytearray(good)
    changed[len(good) // 2] ^= 0x01
    (files / "changed.json").write_bytes(bytes(changed))
    result = _verify(str(files / "changed.json"), "--anchor", str(files / "anchor.pem"))
    assert result.exit_code == 1
    assert "NOT VERIFIED" in result.output


def test_cli_verify_json(files: Path, network: Network) -> None:
    """--json prints ok and the checks, and on failure which check failed."""
    result = _verify(
        str(files / "evidence.json"), "--anchor-fingerprint", network.root.fingerprint, "--json"
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["ok"] is True and body["anchor"]["source"] == "fingerprint"
    failed = _verify(str(files / "evidence.json"), "--anchor-fingerprint", "ab" * 32, "--json")
    assert failed.exit_code == 1
    assert json.loads(failed.output)["failed"]["check"] == "anchor"


def test_cli_verify_refuses_a_malformed_fingerprint(files: Path) -> None:
    """A fingerprint that is not 64 hex digits is a usage error, not a verdict."""
    result = _verify(str(files / "evidence.json"), "--anchor-fingerprint", "abc")
    assert result.exit_code == 2


# -- the standalone example in docs/evidence.md ---------------------------------------------


def _snippet() -> str:
    text = DOC.read_text()
    after = text.split(SNIPPET_MARKER, 1)[1]
    match = re.match(r"\s*```python\n(.*?)\n```", after, re.DOTALL)
    assert match, "the snippet block follows its marker"
    return match.group(1) + "\n"


def test_doc_snippet_uses_only_cryptography_and_the_standard_library() -> None:
    """The third-party example imports nothing of gcx, only pyca/cryptography and stdlib."""
    modules = set()
    for node in ast.walk(ast.parse(_snippet())):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    assert modules == {"base64", "hashlib", "json", "struct", "sys", "cryptography"}


def _run_snippet(tmp_path: Path, data: bytes, anchor: bytes, org: str) -> Any:
    script = tmp_path / "check_receipt.py"
    script.write_text(_snippet())
    (tmp_path / "e.json").write_bytes(data)
    (tmp_path / "a.pem").write_bytes(anchor)
    return subprocess.run(
        [sys.executable, "-I", str(script), str(tmp_path / "e.json"), str(tmp_path / "a.pem"), org],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_doc_snippet_verifies_a_receipt(
    tmp_path: Path, network: Network, sealed: crypto.SealedEnvelope, good: bytes
) -> None:
    """The example in docs/evidence.md, run as written, accepts a genuine receipt."""
    result = _run_snippet(tmp_path, good, network.root.pem, "MPS")
    assert result.returncode == 0, result.stderr
    assert f"MPS accepted envelope {sealed.header.id}" in result.stdout
    assert sealed.digest in result.stdout


def test_doc_snippet_refuses_tampered_receipts(
    tmp_path: Path, network: Network, other_network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """The example refuses another envelope's receipt, a wrong signer and a foreign anchor."""
    other = seal(network)
    cases = [
        (build(network, sealed, held_receipts=[delivery(network, other, "MPS")]), "another"),
        (
            build(network, sealed, held_receipts=[delivery(network, sealed, "MPS", signer="DWP")]),
            "no signature",
        ),
    ]
    for data, message in cases:
        result = _run_snippet(tmp_path, data, network.root.pem, "MPS")
        assert result.returncode != 0 and message in result.stderr, result.stderr
    foreign = _run_snippet(tmp_path, build(network, sealed), other_network.root.pem, "MPS")
    assert foreign.returncode != 0 and "not issued by this anchor" in foreign.stderr


# -- keeping the directory for evidence ----------------------------------------------------------


def test_archive_keeps_each_version_once(database: Database) -> None:
    """Archiving a version twice keeps the first document and raises nothing."""
    with database.transaction() as conn:
        archive_directory(conn, 5, b"first", now=NOW)
    with database.transaction() as conn:
        archive_directory(conn, 5, b"second", now=NOW)
        archive_directory(conn, 6, b"sixth", now=NOW)
    with database.transaction() as conn:
        rows = conn.execute(sa.select(directory_archive).order_by(directory_archive.c.version))
        assert [(r.version, bytes(r.document)) for r in rows] == [(5, b"first"), (6, b"sixth")]


def test_keeper_archives_the_signed_document_of_a_version_it_held(
    database: Database, network: Network
) -> None:
    """The keeper remembers recent signed documents and archives the exact bytes."""
    clock = FixedClock(NOW)
    keeper = DirectoryKeeper(database, network.root, NETWORK, clock)
    seventh, eighth = network.directory(version=7), network.directory(version=8)
    keeper.offer(seventh)
    keeper.offer(eighth)
    assert keeper.signed_document(7) == seventh
    assert keeper.signed_document(8) == eighth
    assert keeper.signed_document(6) is None
    with database.transaction() as conn:
        keeper.archive(conn, 7, now=NOW)
        keeper.archive(conn, 6, now=NOW)  # unknown: logged, nothing written
    with database.transaction() as conn:
        rows = conn.execute(sa.select(directory_archive)).all()
    assert [(r.version, bytes(r.document)) for r in rows] == [(7, seventh)]
    reloaded = DirectoryKeeper(database, network.root, NETWORK, clock)
    assert reloaded.signed_document(8) == eighth


def test_keeper_looks_no_further_once_a_version_is_archived(
    database: Database, network: Network
) -> None:
    """A version seen committed in the archive is not looked up or written again."""
    keeper = DirectoryKeeper(database, network.root, NETWORK, FixedClock(NOW))
    keeper.offer(network.directory(version=7))
    with database.transaction() as conn:
        keeper.archive(conn, 7, now=NOW)  # written
    with database.transaction() as conn:
        keeper.archive(conn, 7, now=NOW)  # seen committed, remembered
        conn.execute(directory_archive.delete())
    with database.transaction() as conn:
        keeper.archive(conn, 7, now=NOW)
        assert conn.execute(sa.select(directory_archive)).all() == []


def test_verified_evidence_is_plain_data(network: Network, good: bytes) -> None:
    """The verification result serialises to JSON for --json and for other programs."""
    result: VerifiedEvidence = verify_evidence(good, anchor=network.root)
    assert json.loads(json.dumps(result.to_dict()))["ok"] is True


# -- tampered copies an independent verifier tried (issue 14) -----------------------------


def _signed_raw(network: Network, org: str, payload_type: str, payload: bytes) -> bytes:
    key = network.orgs[org].signing
    return crypto.sign_document(payload_type, payload, key, crypto.key_id(key.public))


def _receipt_with(network: Network, sealed: crypto.SealedEnvelope, change: bytes) -> bytes:
    """MPS's genuine receipt payload with ``change`` spliced in after its "{", signed by MPS."""
    payload = accepted_receipt(
        envelope_id=sealed.header.id,
        envelope_digest=sealed.digest,
        recipient="MPS",
        gateway="mps",
        now=NOW + dt.timedelta(seconds=2),
    ).to_bytes()
    return _signed_raw(
        network, "MPS", "application/vnd.gcx.receipt+json", b"{" + change + payload[1:]
    )


def _wrapper(document: bytes, change: Callable[[dict[str, Any]], Any]) -> bytes:
    envelope = json.loads(document)
    envelope = change(envelope) or envelope
    return json.dumps(envelope, separators=(",", ":")).encode()


def _extra_signature(network: Network, document: bytes) -> bytes:
    def add(envelope: dict[str, Any]) -> None:
        key = network.orgs["DWP"].signing
        payload = base64.b64decode(envelope["payload"])
        sig = key.sign(crypto.pae(envelope["payloadType"], payload))
        envelope["signatures"].append(
            {"keyid": crypto.key_id(key.public), "sig": base64.b64encode(sig).decode()}
        )

    return _wrapper(document, add)


_RECEIPT_TAMPERING: dict[str, Callable[[Network, crypto.SealedEnvelope, bytes], bytes]] = {
    "duplicate outcome in the signed payload": lambda n, s, d: _receipt_with(
        n, s, b'"outcome":"refused",'
    ),
    "unknown field in the signed payload": lambda n, s, d: _receipt_with(n, s, b'"note":"x",'),
    "reordered wrapper keys": lambda n, s, d: _wrapper(
        d, lambda e: {k: e[k] for k in ("signatures", "payload", "payloadType")}
    ),
    "extra field in the wrapper": lambda n, s, d: _wrapper(d, lambda e: e.update(x=1)),
    "extra field in the signature entry": lambda n, s, d: _wrapper(
        d, lambda e: e["signatures"][0].update(x=1)
    ),
    "extra signature entry with an unknown key id": lambda n, s, d: _wrapper(
        d, lambda e: e["signatures"].append({"keyid": "ab" * 32, "sig": e["signatures"][0]["sig"]})
    ),
    "extra signature by another organisation": lambda n, s, d: _extra_signature(n, d),
}


@pytest.mark.parametrize("tampering", sorted(_RECEIPT_TAMPERING))
def test_tampered_receipt_refused_by_verifier_and_command(
    tampering: str, network: Network, sealed: crypto.SealedEnvelope, files: Path
) -> None:
    """A receipt whose signed payload or DSSE wrapper was tampered with fails verification."""
    genuine = delivery(network, sealed, "MPS").document
    document = _RECEIPT_TAMPERING[tampering](network, sealed, genuine)
    data = build(network, sealed, held_receipts=[HeldReceipt("delivery", "MPS", document)])
    refused(data, "receipt", network)
    (files / "tampered.json").write_bytes(data)
    result = _verify(str(files / "tampered.json"), "--anchor", str(files / "anchor.pem"))
    assert result.exit_code == 1, result.output
    assert "FAILED  receipt" in result.output


def test_directory_wrapper_with_an_extra_field_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """The directory's DSSE wrapper with an unsigned extra field is refused."""
    document = _wrapper(network.directory(), lambda e: e.update(note="unsigned"))
    refused(build(network, sealed, directory_document=document), "directory", network)


def test_header_with_a_repeated_marking_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A header signed with "marking" twice (a parser differential) fails the envelope check."""
    payload = crypto.unverified_payload(sealed.signed_header)
    doubled = payload.replace(b'"marking":', b'"marking":"OFFICIAL","marking":', 1)
    signed = _signed_raw(network, SENDER, "application/vnd.gcx.envelope+json", doubled)

    def swap(value: dict[str, Any]) -> None:
        value["envelope"]["signed_header"] = signed.decode()
        value["envelope"]["digest"] = crypto.envelope_digest(signed, sealed.parts)

    data = rewrite(build(network, sealed, held_receipts=[]), swap)
    refused(data, "envelope", network)


def test_extra_certificate_refused(network: Network, sealed: crypto.SealedEnvelope) -> None:
    """A certificate for an organisation no signature in the file needs is refused."""
    certificates = {code: org.certificate.pem for code, org in network.orgs.items()}
    data = build(
        network, sealed, held_receipts=[delivery(network, sealed, "MPS")], certificates=certificates
    )
    error = refused(data, "envelope", network)
    assert "DWP" in error.message


def _org_certificate(network: Network, code: str, **profile: Any) -> crypto.Certificate:
    """``code``'s certificate for its own key, re-issued by the root with ``profile`` changes."""
    return issue_with_profile(network.root_key, network.root, network.orgs[code], **profile)


@pytest.mark.parametrize(
    "profile",
    [
        {"extra_names": [x509.DNSName("mps.example")]},
        {"extra_names": [x509.IPAddress(ipaddress.ip_address("192.0.2.1"))]},
        {"extra_names": [x509.UniformResourceIdentifier("urn:gcx:gateway:mps")]},
        {"extra_names": [x509.UniformResourceIdentifier("urn:gcx:org:DWP")]},
        {"ca": True},
        {"key_cert_sign": True},
    ],
    ids=["dns name", "ip address", "gateway uri", "second organisation", "ca true", "cert sign"],
)
def test_certificate_outside_the_organisation_profile_refused(
    profile: dict[str, Any], network: Network, sealed: crypto.SealedEnvelope, files: Path
) -> None:
    """An organisation certificate naming more than its code, or able to issue, is refused."""
    certificate = _org_certificate(network, "MPS", **profile)
    data = build(
        network,
        sealed,
        held_receipts=[delivery(network, sealed, "MPS")],
        certificates={SENDER: network.orgs[SENDER].certificate.pem, "MPS": certificate.pem},
    )
    refused(data, "certificate", network)
    (files / "profile.json").write_bytes(data)
    result = _verify(str(files / "profile.json"), "--anchor", str(files / "anchor.pem"))
    assert result.exit_code == 1 and "FAILED  certificate" in result.output


def test_certificate_in_the_profile_is_accepted(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """The same re-issue with no change passes: the profile test helper is faithful."""
    certificate = _org_certificate(network, "MPS")
    data = build(
        network,
        sealed,
        held_receipts=[delivery(network, sealed, "MPS")],
        certificates={SENDER: network.orgs[SENDER].certificate.pem, "MPS": certificate.pem},
    )
    verify_evidence(data, anchor=network.root)


# -- time bounds ---------------------------------------------------------------------------


def test_acceptance_at_exactly_expires_at_refused_and_just_before_accepted(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """expires_at is exclusive: a receipt at that instant is refused, 1 µs before it is not."""
    expires = sealed.header.expires_at
    at_bound = delivery(network, sealed, "MPS", at=expires)
    refused(build(network, sealed, held_receipts=[at_bound]), "receipt", network)
    before = delivery(network, sealed, "MPS", at=expires - dt.timedelta(microseconds=1))
    verify_evidence(build(network, sealed, held_receipts=[before]), anchor=network.root)


def _read_at(network: Network, sealed: crypto.SealedEnvelope, at: dt.datetime) -> HeldReceipt:
    payload = ReadReceipt(sealed.header.id, "MPS", "safeguarding.officer", at).to_bytes()
    return HeldReceipt("read", "MPS", _signed_raw(network, "MPS", READ_RECEIPT_TYPE, payload))


def test_read_receipt_bound_is_creation_less_five_minutes_inclusive(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A read receipt may be dated down to created_at - 5 minutes (clock allowance), not earlier."""
    bound = sealed.header.created_at - dt.timedelta(minutes=5)
    held = [delivery(network, sealed, "MPS"), _read_at(network, sealed, bound)]
    verify_evidence(build(network, sealed, held_receipts=held), anchor=network.root)
    early = [delivery(network, sealed, "MPS"), _read_at(network, sealed, bound - SECOND)]
    refused(build(network, sealed, held_receipts=early), "receipt", network)


def test_read_receipt_time_in_another_form_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A read receipt whose time is not in the documented form is refused."""
    payload = ReadReceipt(sealed.header.id, "MPS", "safeguarding.officer", NOW).to_bytes()
    respelled = payload.replace(b"T09:00:00+00:00", b" 09:00:00+00:00")
    assert respelled != payload
    document = _signed_raw(network, "MPS", READ_RECEIPT_TYPE, respelled)
    held = [delivery(network, sealed, "MPS"), HeldReceipt("read", "MPS", document)]
    refused(build(network, sealed, held_receipts=held), "receipt", network)


def test_directory_with_a_boolean_version_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A directory signed with "version": true (a bool where an integer belongs) is refused."""
    genuine = crypto.unverified_payload(network.directory())
    changed = genuine.replace(b'"version":7,', b'"version":true,', 1)
    assert changed != genuine
    key = network.root_key
    document = crypto.sign_document(dirproto.PAYLOAD_TYPE, changed, key, crypto.key_id(key.public))
    refused(build(network, sealed, directory_document=document), "directory", network)


# -- batch-signed delivery receipts ------------------------------------------------------


def _batch_signed_delivery(network: Network, sealed: crypto.SealedEnvelope) -> HeldReceipt:
    """MPS's receipt signed together with receipts for two other envelopes, as a receiving
    gateway signs a batch for a sender that asked for gcx.batch-signed/1."""
    others = [seal(network), seal(network)]
    receipts = [
        accepted_receipt(
            envelope_id=envelope.header.id,
            envelope_digest=envelope.digest,
            recipient="MPS",
            gateway="mps",
            now=NOW + dt.timedelta(seconds=2),
            unknown_addresses=(),
        )
        for envelope in (others[0], sealed, others[1])
    ]
    documents = crypto.sign_receipts(receipts, network.orgs["MPS"].signing)
    assert crypto.is_batch_signed(documents[1])
    return HeldReceipt("delivery", "MPS", documents[1])


def test_a_batch_signed_receipt_verifies_in_an_evidence_file(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """A receipt carrying its path to a root MPS signed for a batch is checked offline like a
    plain one, and reported as MPS's acceptance."""
    data = build(network, sealed, held_receipts=[_batch_signed_delivery(network, sealed)])
    result = verify_evidence(data, anchor=network.root)
    assert [(r.organisation, r.kind, r.outcome) for r in result.receipts] == [
        ("MPS", "delivery", "accepted")
    ]


def test_a_batch_signed_receipt_tampered_in_the_file_is_refused(
    network: Network, sealed: crypto.SealedEnvelope
) -> None:
    """Its path, its leaf index or its root changed (each still in canonical form), or the
    receipt signed by another organisation's key: the receipt check refuses the file."""
    held = _batch_signed_delivery(network, sealed)
    data = build(network, sealed, held_receipts=[held])
    value = json.loads(held.document)

    def with_document(changed: dict[str, Any]) -> bytes:
        text = json.dumps(changed, separators=(",", ":"))
        return rewrite(data, lambda v: v["receipts"][0].update(document=text))

    flipped = bytearray(base64.b64decode(value["path"][0]))
    flipped[-1] ^= 0x80
    other_root = json.loads(_batch_signed_delivery(network, seal(network)).document)["root"]
    for changed in (
        {**value, "path": [base64.b64encode(bytes(flipped)).decode(), *value["path"][1:]]},
        {**value, "leaf": 0},
        {**value, "root": other_root},
    ):
        refused(with_document(changed), "receipt", network)
    forged = crypto.sign_receipts(
        [
            accepted_receipt(
                envelope_id=sealed.header.id,
                envelope_digest=sealed.digest,
                recipient="MPS",
                gateway="mps",
                now=NOW + dt.timedelta(seconds=2),
                unknown_addresses=(),
            )
        ],
        network.orgs["DWP"].signing,
    )[0]
    refused(with_document(json.loads(forged)), "receipt", network)
