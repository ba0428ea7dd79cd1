"""Central's use cases on every database: operators, registry, enrolment, revocation, directory."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import itertools
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gcx import audit, crypto
from gcx.central.home import init_central, load_keys
from gcx.central.service import CentralService
from gcx.clock import FixedClock
from gcx.config import CentralConfig
from gcx.errors import (
    Conflict,
    CsrInvalid,
    DuplicateEnrolment,
    InputError,
    NotFound,
    OrganisationCodeInvalid,
    SignatureInvalid,
    StateTransitionRefused,
    TokenInvalid,
    UnknownOrganisation,
)
from gcx.gateway.home import create_gateway_home
from gcx.protocol.directory import PAYLOAD_TYPE, Directory
from gcx.store import Database
from gcx.store.schema import directory_publications, enrolments, operators

PASSPHRASE = "a-long-test-passphrase-for-central"
_homes = itertools.count()


@dataclass
class Central:
    service: CentralService
    config: CentralConfig
    database: Database
    clock: FixedClock
    tmp: Path

    @property
    def anchor_path(self) -> Path:
        return self.config.home / "anchor.pem"

    @property
    def anchor(self) -> crypto.Certificate:
        return crypto.Certificate.from_pem(self.anchor_path.read_bytes())

    def gateway_request(
        self, name: str, organisations: list[str], port: int = 9443
    ) -> dict[str, Any]:
        """A real enrolment request, made the way `gcx gateway init` makes one."""
        _, request = create_gateway_home(
            self.tmp / f"gateway-{next(_homes)}-{name}",
            name=name,
            organisations=organisations,
            central_url=self.config.url,
            anchor=self.anchor_path,
            peer_port=port,
        )
        return request

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.service.submit_enrolment(
            request["csr"].encode(), request["peer_address"], request["organisation_keys"]
        )

    def register(self, *codes: str) -> None:
        for code in codes:
            self.service.add_organisation(
                "alice",
                code,
                f"Organisation {code}",
                "local-authority",
                [{"email": "it@example.org"}],
            )

    def actions(self, action: str | None = None) -> list[audit.AuditEntry]:
        with self.database.transaction() as conn:
            return list(audit.entries(conn, action=action))

    def versions(self) -> list[int]:
        with self.database.transaction() as conn:
            return [
                r.version
                for r in conn.execute(
                    sa.select(directory_publications.c.version).order_by(
                        directory_publications.c.version
                    )
                )
            ]

    def directory(self) -> Directory:
        """The latest published directory, verified against the anchor as a gateway would."""
        root = self.anchor.public_key()
        payload = crypto.verify_document(
            self.service.latest_directory(), PAYLOAD_TYPE, {crypto.key_id(root): root}
        )
        return Directory.from_bytes(payload)


@pytest.fixture
def central(
    database: Database, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Central:
    monkeypatch.setenv("GCX_KEY_PASSPHRASE", PASSPHRASE)
    config = init_central(
        tmp_path / "central", "test-net", now=clock.now(), database_url=database.url
    )
    # These tests are about enrolment itself; the Code of Connection gate on
    # approval has its own tests (test_compliance_connection.py).
    config = dataclasses.replace(config, require_compliance=False)
    service = CentralService(config, database, load_keys(config), clock)
    return Central(service, config, database, clock, tmp_path)


# -- operators -----------------------------------------------------------------


def test_operator_token_is_shown_once_and_only_its_hash_stored(central: Central) -> None:
    """add_operator returns the token; the database holds its SHA-256 hash and never the token."""
    token = central.service.add_operator("alice")
    assert token.startswith("gcxo_")
    with central.database.transaction() as conn:
        rows = conn.execute(sa.select(operators)).all()
    assert len(rows) == 1
    assert rows[0].token_hash == crypto.hash_token(token)
    assert all(token not in str(value) for value in rows[0])
    assert all(token not in e.details and token not in e.subject for e in central.actions())


def test_operator_token_authenticates(central: Central) -> None:
    """A valid operator token yields the operator's name and its use is audited."""
    token = central.service.add_operator("alice")
    assert central.service.authenticate_operator(token, request="GET /x") == "alice"
    used = central.actions("token.used")
    assert [e.actor for e in used] == ["operator:alice"]


@pytest.mark.parametrize("token", ["gcxo_unknown", "", None])
def test_unknown_operator_token_is_refused_and_audited(central: Central, token: str | None) -> None:
    """An unknown or missing token raises TokenInvalid and leaves a 'token.refused' audit entry."""
    central.service.add_operator("alice")
    with pytest.raises(TokenInvalid):
        central.service.authenticate_operator(token, request="POST /v1/enrolments")
    refused = central.actions("token.refused")
    assert len(refused) == 1
    assert refused[0].details_dict == {"code": "token-invalid", "request": "POST /v1/enrolments"}


def test_revoked_operator_token_is_refused(central: Central) -> None:
    """Once an operator is revoked, its token no longer authenticates."""
    token = central.service.add_operator("alice")
    central.service.revoke_operator("alice")
    with pytest.raises(TokenInvalid):
        central.service.authenticate_operator(token, request="GET /x")
    assert [e.subject for e in central.actions("operator.revoked")] == ["alice"]


def test_revoking_unknown_operator_is_not_found(central: Central) -> None:
    """Revoking an operator that does not exist (or is already revoked) raises NotFound."""
    central.service.add_operator("alice")
    central.service.revoke_operator("alice")
    for name in ("alice", "bob"):
        with pytest.raises(NotFound):
            central.service.revoke_operator(name)


def test_duplicate_operator_name_is_a_conflict(central: Central) -> None:
    """A second operator with the same name is refused as a Conflict."""
    central.service.add_operator("alice")
    with pytest.raises(Conflict):
        central.service.add_operator("alice")


# -- member registry -------------------------------------------------------------


def test_add_organisation_registers_and_publishes(central: Central) -> None:
    """A registered organisation appears in the registry and in a new directory version."""
    central.service.add_organisation(
        "alice",
        "E09000030",
        " Tower Hamlets ",
        "local-authority",
        [{"email": "it@towerhamlets.example"}],
    )
    assert central.service.list_organisations() == [
        {
            "code": "E09000030",
            "name": "Tower Hamlets",
            "type": "local-authority",
            "contacts": [{"email": "it@towerhamlets.example"}],
        }
    ]
    directory = central.directory()
    entry = directory.organisation("E09000030")
    assert entry is not None
    assert entry.gateway is None
    assert entry.name == "Tower Hamlets"
    assert central.versions() == [1]
    added = central.actions("organisation.added")
    assert [(e.actor, e.subject) for e in added] == [("operator:alice", "E09000030")]


@pytest.mark.parametrize("code", ["dwp", "E0900003x", "../x", ""])
def test_bad_organisation_code_is_refused(central: Central, code: str) -> None:
    """An invalid organisation code raises OrganisationCodeInvalid and registers nothing."""
    with pytest.raises(OrganisationCodeInvalid):
        central.service.add_organisation("alice", code, "Name", "local-authority", [])
    assert central.service.list_organisations() == []


def test_bad_organisation_type_is_refused(central: Central) -> None:
    """An unknown organisation type raises InputError."""
    with pytest.raises(InputError):
        central.service.add_organisation("alice", "DWP", "DWP", "ministry", [])
    assert central.service.list_organisations() == []


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_bad_organisation_name_is_refused(central: Central, name: str) -> None:
    """An empty or over-long organisation name raises InputError."""
    with pytest.raises(InputError):
        central.service.add_organisation("alice", "DWP", name, "central-government", [])


def test_duplicate_organisation_is_refused(central: Central) -> None:
    """Registering the same code twice is a DuplicateEnrolment conflict; the first stands."""
    central.register("DWP")
    with pytest.raises(DuplicateEnrolment) as caught:
        central.service.add_organisation("alice", "DWP", "Other", "central-government", [])
    assert isinstance(caught.value, Conflict)
    assert [o["name"] for o in central.service.list_organisations()] == ["Organisation DWP"]
    assert central.versions() == [1]


# -- enrolment -----------------------------------------------------------------------


def test_submitted_enrolment_is_pending(central: Central) -> None:
    """A valid enrolment request for registered organisations is recorded as pending."""
    central.register("E09000030", "DWP")
    result = central.submit(central.gateway_request("alpha", ["E09000030", "DWP"]))
    assert result["state"] == "pending"
    assert result["gateway"] == "alpha"
    assert result["organisations"] == ["E09000030", "DWP"]
    stored = central.service.get_enrolment(result["id"])
    assert stored["state"] == "pending"
    assert stored["peer_address"] == "127.0.0.1:9443"
    assert "certificate_pem" not in stored
    assert [e["id"] for e in central.service.list_enrolments("pending")] == [result["id"]]
    assert central.service.list_enrolments("active") == []
    assert [e.subject for e in central.actions("enrolment.requested")] == [result["id"]]


def test_malformed_csr_is_refused(central: Central) -> None:
    """A request whose CSR is not a PKCS#10 request raises CsrInvalid."""
    central.register("DWP")
    request = central.gateway_request("alpha", ["DWP"])
    request["csr"] = (
        "-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n-----END CERTIFICATE REQUEST-----\n"
    )
    with pytest.raises(CsrInvalid):
        central.submit(request)
    assert central.service.list_enrolments() == []


def test_unregistered_organisation_is_refused_and_audited(central: Central) -> None:
    """A request naming an organisation not in the registry raises UnknownOrganisation, audited."""
    central.register("DWP")
    with pytest.raises(UnknownOrganisation):
        central.submit(central.gateway_request("alpha", ["DWP", "HMRC"]))
    assert central.service.list_enrolments() == []
    refused = central.actions("enrolment.refused")
    assert len(refused) == 1
    assert refused[0].details_dict["code"] == "organisation-unknown"
    assert refused[0].details_dict["organisations"] == ["HMRC"]


def test_same_gateway_name_again_is_a_duplicate(central: Central) -> None:
    """A second request for a gateway name already pending is refused as DuplicateEnrolment."""
    central.register("DWP", "HMRC")
    first = central.submit(central.gateway_request("alpha", ["DWP"]))
    with pytest.raises(DuplicateEnrolment) as caught:
        central.submit(central.gateway_request("alpha", ["HMRC"]))
    assert caught.value.details == {"existing": first["id"]}
    assert len(central.service.list_enrolments()) == 1


def test_second_gateway_for_the_same_organisation_is_a_duplicate(central: Central) -> None:
    """Another gateway claiming an organisation already held by an enrolment is refused."""
    central.register("DWP", "HMRC")
    central.submit(central.gateway_request("alpha", ["DWP"]))
    with pytest.raises(DuplicateEnrolment, match="DWP"):
        central.submit(central.gateway_request("beta", ["HMRC", "DWP"]))
    assert len(central.service.list_enrolments()) == 1


def test_resubmitting_the_same_request_is_a_duplicate(central: Central) -> None:
    """The very same request sent twice creates one enrolment, not two."""
    central.register("DWP")
    request = central.gateway_request("alpha", ["DWP"])
    central.submit(request)
    with pytest.raises(DuplicateEnrolment):
        central.submit(request)
    assert len(central.service.list_enrolments()) == 1


def test_a_revoked_gateways_key_cannot_enrol_again(central: Central) -> None:
    """After revocation the gateway name and organisation are free again, but not its key."""
    central.register("DWP")
    request = central.gateway_request("alpha", ["DWP"])
    enrolment = central.submit(request)
    central.service.approve_enrolment("alice", enrolment["id"], "admitted")
    central.service.revoke_gateway("alice", "alpha", "approval withdrawn")
    with pytest.raises(DuplicateEnrolment, match="new keys"):
        central.submit(request)
    fresh = central.submit(central.gateway_request("alpha", ["DWP"]))
    assert fresh["state"] == "pending"


def test_duplicate_refusal_is_audited(central: Central) -> None:
    """A refused duplicate enrolment leaves an 'enrolment.refused' entry naming the code."""
    central.register("DWP")
    first = central.submit(central.gateway_request("alpha", ["DWP"]))
    with pytest.raises(DuplicateEnrolment):
        central.submit(central.gateway_request("beta", ["DWP"]))
    refused = central.actions("enrolment.refused")
    assert [e.details_dict for e in refused] == [
        {"code": "enrolment-duplicate", "existing": first["id"]}
    ]


def test_keys_must_cover_exactly_the_requested_organisations(central: Central) -> None:
    """Organisation keys for a different set of organisations than the CSR names are refused."""
    central.register("DWP", "HMRC")
    request = central.gateway_request("alpha", ["DWP"])
    other = central.gateway_request("beta", ["HMRC"])
    request["organisation_keys"] = {**request["organisation_keys"], **other["organisation_keys"]}
    with pytest.raises(InputError):
        central.submit(request)


def test_swapped_encryption_key_is_refused(central: Central) -> None:
    """An organisation key not bound by the organisation's proof signature is refused."""
    central.register("DWP")
    request = central.gateway_request("alpha", ["DWP"])
    request["organisation_keys"]["DWP"]["encryption_key"] = (
        crypto.EncryptionKey.generate().public.b64()
    )
    with pytest.raises(InputError, match="DWP"):
        central.submit(request)


def test_proof_for_another_request_is_refused(central: Central) -> None:
    """Key proofs are bound to their CSR, so they cannot be replayed with another request."""
    central.register("DWP")
    request = central.gateway_request("alpha", ["DWP"])
    other = central.gateway_request("alpha", ["DWP"])
    request["csr"] = other["csr"]
    with pytest.raises(InputError):
        central.submit(request)


def test_malformed_proof_is_refused(central: Central) -> None:
    """A proof that is not base64 of a signature is an InputError, not a crash."""
    central.register("DWP")
    request = central.gateway_request("alpha", ["DWP"])
    request["organisation_keys"]["DWP"]["proof"] = base64.b64encode(b"nope").decode() + "!"
    with pytest.raises(InputError):
        central.submit(request)


@pytest.mark.parametrize("address", ["nohost", "host:", ":9443", "host:0", "host:65536", "h:x"])
def test_bad_peer_address_is_refused(central: Central, address: str) -> None:
    """A peer address that is not host:port raises InputError."""
    central.register("DWP")
    request = central.gateway_request("alpha", ["DWP"])
    request["peer_address"] = address
    with pytest.raises(InputError):
        central.submit(request)


# -- approval, rejection, revocation ----------------------------------------------


def test_approval_activates_the_gateway_and_publishes_it(central: Central) -> None:
    """Approval issues certificates chaining to the root and publishes the gateway and its keys."""
    central.register("E09000030", "DWP")
    request = central.gateway_request("alpha", ["E09000030", "DWP"], port=9555)
    enrolment = central.submit(request)
    before = central.versions()[-1]
    approved = central.service.approve_enrolment("alice", enrolment["id"], "CoCo approved")
    assert approved["state"] == "active"
    assert approved["decided_by"] == "alice"
    assert approved["decision_reason"] == "CoCo approved"

    certificate = crypto.Certificate.from_pem(approved["certificate_pem"].encode())
    certificate.verify_issued_by(central.anchor)
    assert certificate.gateway_name == "alpha"
    assert certificate.organisation_codes == ["E09000030", "DWP"]
    assert certificate.fingerprint == approved["certificate_fingerprint"]
    tls_public = crypto.parse_enrolment_request(request["csr"].encode()).public_key
    assert certificate.public_key().raw() == tls_public.raw()
    for code, pem in approved["organisation_certificates"].items():
        org_cert = crypto.Certificate.from_pem(pem.encode())
        org_cert.verify_issued_by(central.anchor)
        assert org_cert.organisation_codes == [code]
        assert org_cert.public_key().b64() == request["organisation_keys"][code]["signing_key"]

    assert central.versions()[-1] == before + 1
    directory = central.directory()
    assert directory.version == before + 1
    assert directory.network == "test-net"
    gateway = directory.gateway_by_fingerprint(certificate.fingerprint)
    assert gateway is not None
    assert gateway.name == "alpha"
    assert gateway.peer_address == "127.0.0.1:9555"
    assert gateway.organisations == ("E09000030", "DWP")
    assert gateway.certificate_serial == certificate.serial
    for code in ("E09000030", "DWP"):
        entry = directory.organisation(code)
        assert entry is not None
        assert entry.gateway == "alpha"
        assert entry.signing_key == request["organisation_keys"][code]["signing_key"]
        assert entry.encryption_key == request["organisation_keys"][code]["encryption_key"]
        assert entry.encryption_kem == "MLKEM768-X25519"
        assert entry.signing_certificate == approved["organisation_certificates"][code]
    assert [e.subject for e in central.actions("enrolment.approved")] == [enrolment["id"]]


def test_approving_twice_is_refused(central: Central) -> None:
    """An active enrolment cannot be approved again."""
    central.register("DWP")
    enrolment = central.submit(central.gateway_request("alpha", ["DWP"]))
    central.service.approve_enrolment("alice", enrolment["id"], "approved")
    versions = central.versions()
    with pytest.raises(StateTransitionRefused):
        central.service.approve_enrolment("alice", enrolment["id"], "again")
    assert central.versions() == versions


@pytest.mark.parametrize("reason", ["", "   ", "x" * 1001])
def test_approval_needs_a_reason(central: Central, reason: str) -> None:
    """Approving without a reason (or with an over-long one) raises InputError; nothing changes."""
    central.register("DWP")
    enrolment = central.submit(central.gateway_request("alpha", ["DWP"]))
    with pytest.raises(InputError):
        central.service.approve_enrolment("alice", enrolment["id"], reason)
    assert central.service.get_enrolment(enrolment["id"])["state"] == "pending"


def test_unknown_enrolment_is_not_found(central: Central) -> None:
    """Approving, rejecting or reading an enrolment that does not exist raises NotFound."""
    with pytest.raises(NotFound):
        central.service.approve_enrolment("alice", "nope", "reason")
    with pytest.raises(NotFound):
        central.service.reject_enrolment("alice", "nope", "reason")
    with pytest.raises(NotFound):
        central.service.get_enrolment("nope")


def test_rejected_enrolment_is_final_and_frees_the_name(central: Central) -> None:
    """A rejected enrolment cannot be approved, and the gateway may enrol again with new keys."""
    central.register("DWP")
    enrolment = central.submit(central.gateway_request("alpha", ["DWP"]))
    rejected = central.service.reject_enrolment("alice", enrolment["id"], "statement incomplete")
    assert rejected["state"] == "rejected"
    with pytest.raises(StateTransitionRefused):
        central.service.approve_enrolment("alice", enrolment["id"], "changed my mind")
    again = central.submit(central.gateway_request("alpha", ["DWP"]))
    assert again["state"] == "pending"
    assert again["id"] != enrolment["id"]


def test_revocation_lists_the_certificate_and_removes_the_gateway(central: Central) -> None:
    """Revoking puts the certificate's fingerprint in the revocations and drops the gateway."""
    central.register("DWP")
    enrolment = central.submit(central.gateway_request("alpha", ["DWP"]))
    approved = central.service.approve_enrolment("alice", enrolment["id"], "approved")
    fingerprint = approved["certificate_fingerprint"]
    before = central.versions()[-1]
    central.clock.advance(dt.timedelta(minutes=1))
    revoked = central.service.revoke_gateway("bob", "alpha", "approval withdrawn")
    assert revoked["state"] == "revoked"
    assert revoked["revoked_by"] == "bob"
    directory = central.directory()
    assert directory.version == before + 1
    assert directory.gateway_named("alpha") is None
    assert directory.gateway_by_fingerprint(fingerprint) is None
    assert directory.is_revoked(fingerprint)
    (revocation,) = directory.revocations
    assert revocation.gateway == "alpha"
    assert revocation.reason == "approval withdrawn"
    assert revocation.revoked_at == central.clock.now()
    entry = directory.organisation("DWP")
    assert entry is not None
    assert entry.gateway is None
    assert entry.signing_key is None
    assert entry.encryption_key is None


def test_revoking_twice_or_unknown_gateway_is_not_found(central: Central) -> None:
    """Only an active gateway can be revoked."""
    central.register("DWP")
    enrolment = central.submit(central.gateway_request("alpha", ["DWP"]))
    with pytest.raises(NotFound):
        central.service.revoke_gateway("alice", "alpha", "still pending")
    central.service.approve_enrolment("alice", enrolment["id"], "approved")
    central.service.revoke_gateway("alice", "alpha", "withdrawn")
    with pytest.raises(NotFound):
        central.service.revoke_gateway("alice", "alpha", "again")
    with pytest.raises(NotFound):
        central.service.revoke_gateway("alice", "ghost", "who")


def test_revoked_gateway_may_enrol_again(central: Central) -> None:
    """After revocation the organisation can be enrolled afresh, with new keys."""
    central.register("DWP")
    first = central.submit(central.gateway_request("alpha", ["DWP"]))
    central.service.approve_enrolment("alice", first["id"], "approved")
    central.service.revoke_gateway("alice", "alpha", "keys lost")
    second = central.submit(central.gateway_request("alpha", ["DWP"]))
    approved = central.service.approve_enrolment("alice", second["id"], "new keys")
    directory = central.directory()
    gateway = directory.gateway_named("alpha")
    assert gateway is not None
    assert gateway.certificate_fingerprint == approved["certificate_fingerprint"]
    assert len(directory.revocations) == 1
    assert directory.revocations[0].certificate_fingerprint != gateway.certificate_fingerprint


# -- the directory -------------------------------------------------------------------


def test_latest_directory_is_published_on_first_request(central: Central) -> None:
    """With nothing published yet, asking for the directory publishes version 1."""
    assert central.versions() == []
    directory = central.directory()
    assert directory.version == 1
    assert directory.issued_at == central.clock.now()
    assert directory.expires_at == central.clock.now() + dt.timedelta(
        seconds=central.config.directory_validity_seconds
    )
    assert central.service.latest_directory_expiry() == directory.expires_at


def test_published_directories_verify_and_versions_strictly_increase(central: Central) -> None:
    """Every stored publication verifies against the anchor and versions go up by one."""
    central.register("DWP", "HMRC")
    enrolment = central.submit(central.gateway_request("alpha", ["DWP"]))
    central.service.approve_enrolment("alice", enrolment["id"], "approved")
    central.service.publish_directory("scheduled")
    central.service.revoke_gateway("alice", "alpha", "withdrawn")
    root = central.anchor.public_key()
    with central.database.transaction() as conn:
        rows = conn.execute(
            sa.select(directory_publications).order_by(directory_publications.c.version)
        ).all()
    versions = [row.version for row in rows]
    assert versions == list(range(1, len(rows) + 1))
    assert len(rows) == 5
    for row in rows:
        payload = crypto.verify_document(
            bytes(row.document), PAYLOAD_TYPE, {crypto.key_id(root): root}
        )
        assert Directory.from_bytes(payload).version == row.version
        assert row.content_hash == crypto.sha256_hex(payload)


def test_directories_expired_beyond_the_keeping_period_are_pruned(central: Central) -> None:
    """Old publications go, the newest always stays, versions keep rising, and it is audited."""
    assert central.service.prune_directories() == 0, "nothing published, nothing to prune"
    for _ in range(3):
        central.service.publish_directory("scheduled")
        central.clock.advance(dt.timedelta(minutes=1))
    keep = dt.timedelta(days=central.config.directory_keep_days)
    central.clock.advance(keep)
    assert central.service.prune_directories() == 0, "expired, but not yet for long enough"
    central.clock.advance(dt.timedelta(minutes=15))
    central.service.publish_directory("scheduled")

    assert central.service.prune_directories() == 3
    assert central.versions() == [4]
    assert central.service.prune_directories() == 0, "nothing left to prune"
    central.clock.advance(keep + dt.timedelta(days=1))
    assert central.service.prune_directories() == 0, "the newest stays, however old"
    assert central.versions() == [4]
    central.service.publish_directory("scheduled")
    assert central.versions() == [4, 5], "versions carry on from the newest"
    with central.database.read() as conn:
        pruned = [e for e in audit.entries(conn) if e.action == "directory.pruned"]
        assert audit.verify(conn).ok
    assert len(pruned) == 1
    assert json.loads(pruned[0].details) == {
        "count": 3,
        "through_version": 3,
        "keep_days": central.config.directory_keep_days,
    }


def test_directory_does_not_verify_under_another_root(central: Central) -> None:
    """A published directory is refused by a gateway pinned to another network's anchor."""
    other = crypto.SigningKey.generate().public
    with pytest.raises(SignatureInvalid):
        crypto.verify_document(
            central.service.latest_directory(), PAYLOAD_TYPE, {crypto.key_id(other): other}
        )


def test_audit_chain_verifies_after_a_full_workflow(central: Central) -> None:
    """After operators, registry, enrolment, refusal, approval and revocation the log verifies."""
    token = central.service.add_operator("alice")
    central.service.authenticate_operator(token, request="GET /")
    central.register("DWP", "HMRC")
    enrolment = central.submit(central.gateway_request("alpha", ["DWP"]))
    with pytest.raises(DuplicateEnrolment):
        central.submit(central.gateway_request("alpha", ["HMRC"]))
    central.service.approve_enrolment("alice", enrolment["id"], "approved")
    central.service.revoke_gateway("alice", "alpha", "withdrawn")
    report = central.service.verify_audit()
    assert report.ok, report.problem
    actions = [e.action for e in central.actions()]
    for expected in (
        "operator.added",
        "token.used",
        "organisation.added",
        "enrolment.requested",
        "enrolment.approved",
        "gateway.revoked",
        "directory.published",
    ):
        assert expected in actions
    with central.database.transaction() as conn:
        states = {r.state for r in conn.execute(sa.select(enrolments.c.state))}
    assert states == {"revoked"}


def test_a_publisher_racing_an_approval_waits_for_it_instead_of_deadlocking(
    central: Central,
) -> None:
    """A transaction that appended to the audit log and then publishes (an approval), and a
    scheduled publication begun meanwhile, both commit, as consecutive versions."""
    database = central.database
    if database.is_sqlite:
        pytest.skip(
            "SQLite takes its write lock at BEGIN IMMEDIATE, so publishers cannot interleave"
        )
    publishing = central.service.directory
    before = publishing.publish_directory("first")
    outcome: list[object] = []
    with (
        database.engine.connect() as approving,
        database.engine.connect() as scheduled,
        database.engine.connect() as observer,
    ):
        scheduled_pid = scheduled.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        scheduled.rollback()
        approval = approving.begin()
        audit.append(
            approving,
            actor="operator:alice",
            action="test.approved",
            subject="x",
            now=central.clock.now(),
        )

        def publish_on_schedule() -> None:
            try:
                with scheduled.begin():
                    outcome.append(
                        publishing.publish_in(scheduled, central.clock.now(), reason="scheduled")
                    )
            except Exception as exc:  # recorded so the assertion below shows it
                outcome.append(exc)

        thread = threading.Thread(target=publish_on_schedule)
        thread.start()
        # The approval publishes only once the scheduled publisher waits for a lock: where
        # it waits decides whether the two can deadlock.
        waiting = sa.text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted")
        while thread.is_alive() and not observer.execute(waiting, {"pid": scheduled_pid}).scalar():
            observer.rollback()
        version = publishing.publish_in(approving, central.clock.now(), reason="approval")
        approval.commit()
        thread.join()
    assert version == before + 1
    assert outcome == [before + 2]
