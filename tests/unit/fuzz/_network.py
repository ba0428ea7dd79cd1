"""Valid documents made by gcx's own writers with real keys, for the properties to mutate.

Everything is made once per test run (keys and certificates are slow to make
compared with a parse) and in-process through ``gcx.crypto``: a network root,
three organisation certificates, a signed directory, a sealed envelope, its
receipts, an evidence file, a service call and its evidence, a transfer.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from gcx import crypto
from gcx.evidence import HeldReceipt, build_evidence
from gcx.evidence._calls import build_call_evidence
from gcx.protocol import directory as dirproto
from gcx.protocol.batch import READ_RECEIPT_TYPE, ReadReceipt
from gcx.protocol.receipt import Receipt, accepted_receipt, refused_receipt
from gcx.protocol.services import REQUEST_TYPE, RESPONSE_TYPE, CallRequest, CallResponse

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
NETWORK = "gcx-fuzz"
SENDER = "E09000030"
RECIPIENTS = ("MPS", "DWP")


@dataclass(frozen=True)
class Org:
    code: str
    signing: crypto.SigningKey
    encryption: crypto.EncryptionKey
    certificate: crypto.Certificate


@dataclass(frozen=True)
class Network:
    root_key: crypto.SigningKey
    root: crypto.Certificate
    orgs: dict[str, Org]

    def sign(self, payload_type: str, payload: bytes, code: str) -> bytes:
        key = self.orgs[code].signing
        return crypto.sign_document(payload_type, payload, key, crypto.key_id(key.public))


@functools.cache
def network() -> Network:
    root_key = crypto.SigningKey.generate()
    root = crypto.create_network_root(
        root_key, NETWORK, NOW - dt.timedelta(days=1), dt.timedelta(days=3650)
    )
    orgs = {}
    for code in (SENDER, *RECIPIENTS):
        signing = crypto.SigningKey.generate()
        certificate = crypto.issue_organisation_certificate(
            root_key,
            root,
            code,
            f"Organisation {code}",
            signing.public,
            NOW - dt.timedelta(days=1),
            dt.timedelta(days=365),
        )
        orgs[code] = Org(code, signing, crypto.EncryptionKey.generate(), certificate)
    return Network(root_key, root, orgs)


@functools.cache
def directory() -> dirproto.Directory:
    net = network()
    return dirproto.Directory(
        network=NETWORK,
        version=7,
        issued_at=NOW - dt.timedelta(minutes=1),
        expires_at=NOW + dt.timedelta(hours=1),
        organisations=tuple(
            dirproto.OrganisationEntry(
                code=org.code,
                name=f"Organisation {org.code}",
                type="other",
                gateway=org.code.lower(),
                signing_key=org.signing.public.b64(),
                signing_certificate=org.certificate.pem.decode(),
                encryption_key=org.encryption.public.b64(),
                encryption_kem="MLKEM768-X25519",
            )
            for org in net.orgs.values()
        ),
        gateways=(
            dirproto.GatewayEntry(
                name="mps",
                peer_address="mps.example:8443",
                certificate_fingerprint="ab" * 32,
                certificate_serial="01",
                certificate_not_after=NOW + dt.timedelta(days=30),
                organisations=("MPS",),
            ),
        ),
    )


@functools.cache
def signed_directory() -> bytes:
    net = network()
    key = net.root_key
    return crypto.sign_document(
        dirproto.PAYLOAD_TYPE, directory().to_bytes(), key, crypto.key_id(key.public)
    )


@functools.cache
def sealed() -> crypto.SealedEnvelope:
    net = network()
    return crypto.seal_envelope(
        kind="message",
        sender_org=SENDER,
        sender_user="benefits.officer",
        sender_key=net.orgs[SENDER].signing,
        recipients={code: net.orgs[code].encryption.public for code in RECIPIENTS},
        marking="OFFICIAL-SENSITIVE",
        parts=[
            ("message.json", "application/vnd.gcx.message+json", b'{"subject":"Referral"}'),
            ("referral.txt", "text/plain", b"Details of the referral."),
        ],
        now=NOW,
    )


@functools.cache
def receipt() -> Receipt:
    envelope = sealed()
    return accepted_receipt(
        envelope_id=envelope.header.id,
        envelope_digest=envelope.digest,
        recipient="MPS",
        gateway="mps",
        now=NOW + dt.timedelta(seconds=2),
        unknown_addresses=("nobody@MPS",),
    )


@functools.cache
def signed_receipt() -> bytes:
    return crypto.sign_receipt(receipt(), network().orgs["MPS"].signing)


@functools.cache
def read_receipt() -> ReadReceipt:
    return ReadReceipt(
        sealed().header.id, "MPS", "safeguarding.officer", NOW + dt.timedelta(hours=1)
    )


@functools.cache
def evidence_file() -> bytes:
    net, envelope = network(), sealed()
    refusal = refused_receipt(
        envelope_id=envelope.header.id,
        envelope_digest=envelope.digest,
        recipient="DWP",
        gateway="dwp",
        now=NOW + dt.timedelta(seconds=3),
        code="address-unknown",
        message="None of the addresses for DWP is known at its gateway.",
    )
    return build_evidence(
        signed_header=envelope.signed_header,
        parts=envelope.parts,
        held_receipts=[
            HeldReceipt("delivery", "MPS", signed_receipt()),
            HeldReceipt(
                "read", "MPS", net.sign(READ_RECEIPT_TYPE, read_receipt().to_bytes(), "MPS")
            ),
            HeldReceipt("delivery", "DWP", crypto.sign_receipt(refusal, net.orgs["DWP"].signing)),
        ],
        anchor_pem=net.root.pem,
        certificates={code: org.certificate.pem for code, org in net.orgs.items()},
        directory_version=7,
        directory_document=signed_directory(),
    )


@functools.cache
def call_request() -> CallRequest:
    return CallRequest(
        id="c" * 32,
        consumer=SENDER,
        consumer_gateway="tower-hamlets",
        user="benefits.officer",
        purpose="review",
        provider="DWP",
        service="dwp-cis",
        method="GET",
        path="/customers/AB123456C",
        headers={"accept": "application/json"},
        body_sha256=crypto.sha256_hex(b""),
        body_size=0,
        created_at=NOW,
        directory_version=7,
    )


@functools.cache
def signed_call() -> tuple[bytes, bytes]:
    """The signed request document and the signed answer to it."""
    net = network()
    request_document = net.sign(REQUEST_TYPE, call_request().to_bytes(), SENDER)
    response = CallResponse(
        call_id=call_request().id,
        request_sha256=crypto.sha256_hex(request_document),
        provider="DWP",
        provider_gateway="dwp",
        service="dwp-cis",
        status=200,
        headers={"content-type": "application/json"},
        body_sha256=crypto.sha256_hex(b"{}"),
        body_size=2,
        created_at=NOW + dt.timedelta(seconds=1),
        directory_version=7,
    )
    return request_document, net.sign(RESPONSE_TYPE, response.to_bytes(), "DWP")


@functools.cache
def call_evidence_file() -> bytes:
    net = network()
    request_document, response_document = signed_call()
    return build_call_evidence(
        call_id=call_request().id,
        side="consumer",
        request_document=request_document,
        response_document=response_document,
        anchor_pem=net.root.pem,
        certificates={code: net.orgs[code].certificate.pem for code in (SENDER, "DWP")},
        directory_version=7,
        directory_document=signed_directory(),
    )
