"""Evidence files for service calls (``gcx.call-evidence/1``): a request and its answer, offline.

The file holds the consumer's signed request document, the provider's
signed response document (which names the SHA-256 of that exact request
document), both organisations' certificates, the network anchor and the
signed directory in force on the exporting side. Verification shows, with no
network and no trust in the exporting gateway:

* the anchor (optionally compared with a trusted one or its fingerprint)
  signed the directory, and issued both organisations' certificates, whose
  keys are the ones that directory lists;
* the consumer organisation signed the request (who, which user, what
  purpose, method, path, query, the body's SHA-256 and size, when);
* the provider organisation signed the answer to exactly that request
  (status, the body's SHA-256 and size, when);
* both certificates were valid when their documents were signed.

Either document may be signed alone (DSSE) or as one of a batch
(``gcx.batch-signed/1``: the document's path to a Merkle root its
organisation signed); a batch-signed document is checked through its path to
that root and the root's signature (see ``docs/protocol.md``).

The bodies are not in the file: their digests are, so whoever holds a body
(the calling system, or the gateway's sealed copy under a "full" logging
policy) can show it is the one signed. The file is one canonical JSON form;
any other serialisation is refused.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gcx import crypto
from gcx.errors import CryptoError, EvidenceInvalid, GcxError, InputError
from gcx.evidence._file import Check
from gcx.protocol import directory as dirproto
from gcx.protocol import strict_json
from gcx.protocol.services import REQUEST_TYPE, RESPONSE_TYPE, CallRequest, CallResponse

FORMAT = "gcx.call-evidence/1"
MEDIA_TYPE = "application/vnd.gcx.evidence+json"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class CallSection(_Model):
    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    side: str = Field(pattern=r"^(consumer|provider)$")
    request: str = Field(min_length=1, description="The signed request document (DSSE).")
    response: str = Field(min_length=1, description="The signed response document (DSSE).")


class CertificatesSection(_Model):
    anchor: str = Field(min_length=1)
    organisations: dict[str, str]


class DirectorySection(_Model):
    version: int = Field(ge=1)
    document: str = Field(min_length=1)


class CallEvidenceFile(_Model):
    format: str = Field(pattern=r"^gcx\.call-evidence/1$")
    call: CallSection
    certificates: CertificatesSection
    directory: DirectorySection


def serialise(evidence: CallEvidenceFile) -> bytes:
    return (
        json.dumps(evidence.model_dump(mode="json"), sort_keys=True, indent=2, ensure_ascii=True)
        + "\n"
    ).encode()


def build_call_evidence(
    *,
    call_id: str,
    side: str,
    request_document: bytes,
    response_document: bytes,
    anchor_pem: bytes,
    certificates: dict[str, bytes],
    directory_version: int,
    directory_document: bytes,
) -> bytes:
    return serialise(
        CallEvidenceFile(
            format=FORMAT,
            call=CallSection(
                id=call_id,
                side=side,
                request=request_document.decode(),
                response=response_document.decode(),
            ),
            certificates=CertificatesSection(
                anchor=anchor_pem.decode(),
                organisations={k: v.decode() for k, v in sorted(certificates.items())},
            ),
            directory=DirectorySection(
                version=directory_version, document=directory_document.decode()
            ),
        )
    )


@dataclass(frozen=True)
class VerifiedCall:
    request: CallRequest
    response: CallResponse
    directory_version: int
    anchor_fingerprint: str
    anchor_source: str
    checks: tuple[Check, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "kind": "service-call",
            "format": FORMAT,
            "anchor": {"fingerprint": self.anchor_fingerprint, "source": self.anchor_source},
            "request": self.request.model_dump(mode="json"),
            "response": self.response.model_dump(mode="json"),
            "directory_version": self.directory_version,
            "checks": [c.to_dict() for c in self.checks],
        }


def is_call_evidence(data: bytes) -> bool:
    try:
        return bool(strict_json.loads(data).get("format") == FORMAT)
    except (ValueError, AttributeError):
        return False


def verify_call_evidence(
    data: bytes,
    *,
    anchor: crypto.Certificate | None = None,
    anchor_fingerprint: str | None = None,
) -> VerifiedCall:
    """Check a call evidence file; raise :class:`EvidenceInvalid` naming the failed check."""
    passed: list[Check] = []

    def fail(check: str, subject: str, message: str) -> EvidenceInvalid:
        return EvidenceInvalid(message, check=check, subject=subject, passed=passed)

    try:
        strict_json.loads(data)
        evidence = CallEvidenceFile.model_validate_json(data, strict=True)
    except (ValidationError, ValueError) as exc:
        raise fail("form", "file", "The file is not a gcx.call-evidence/1 file.") from exc
    if serialise(evidence) != data:
        raise fail("form", "file", "The file is not in its one canonical form; it was altered.")
    passed.append(Check("form", "file", "gcx.call-evidence/1, canonical"))
    try:
        carried = crypto.Certificate.from_pem(evidence.certificates.anchor.encode())
        carried.verify_issued_by(carried)
    except (CryptoError, ValueError) as exc:
        raise fail("anchor", "network anchor", "The anchor is not a self-signed root.") from exc
    source = "file"
    if anchor is not None:
        if not secrets.compare_digest(carried.fingerprint, anchor.fingerprint):
            raise fail("anchor", "network anchor", "The file's anchor is not the anchor given.")
        source = "given"
    if anchor_fingerprint is not None:
        wanted = anchor_fingerprint.replace(":", "").lower()
        if not secrets.compare_digest(carried.fingerprint, wanted):
            raise fail("anchor", "network anchor", "The file's anchor has another fingerprint.")
        source = "fingerprint"
    passed.append(Check("anchor", "network anchor", carried.fingerprint))
    root = carried.public_key()
    try:
        directory = dirproto.Directory.from_bytes(
            crypto.verify_document(
                evidence.directory.document.encode(),
                dirproto.PAYLOAD_TYPE,
                {crypto.key_id(root): root},
            )
        )
    except GcxError as exc:
        raise fail("directory", "directory", "The directory is not signed by the anchor.") from exc
    if directory.version != evidence.directory.version:
        raise fail("directory", "directory", "The signed directory has another version.")
    passed.append(Check("directory", f"version {directory.version}", "signed by the anchor"))
    request_document = evidence.call.request.encode()
    response_document = evidence.call.response.encode()
    try:
        request = CallRequest.from_bytes(_payload(request_document))
        response = CallResponse.from_bytes(_payload(response_document))
    except (InputError, ValueError) as exc:
        raise fail("documents", "call", "A signed document is malformed.") from exc
    if request.id != evidence.call.id:
        raise fail("documents", "call", "The request is for another call id.")
    keys: dict[str, crypto.VerifyKey] = {}
    for role, code, at in (
        ("consumer", request.consumer, request.created_at),
        ("provider", request.provider, response.created_at),
    ):
        subject = f"certificate of {code}"
        try:
            pem = evidence.certificates.organisations[code]
            certificate = crypto.Certificate.from_pem(pem.encode())
            certificate.verify_issued_by(carried)
            entry = directory.organisation(code)
            certificate.check_organisation_profile(code)
            if entry is None:
                raise CryptoError("The directory does not list the organisation.")
            if entry.signing_key != certificate.public_key().b64():
                raise CryptoError("The directory lists another key.")
            if not certificate.not_before <= at <= certificate.not_after:
                raise CryptoError("The certificate was not valid when the document was signed.")
        except (KeyError, ValueError, CryptoError) as exc:
            raise fail("certificate", subject, f"The {role}'s certificate does not check.") from exc
        keys[role] = certificate.public_key()
        passed.append(Check("certificate", subject, "issued by the anchor, key as in directory"))
    if set(evidence.certificates.organisations) != {request.consumer, request.provider}:
        # Exact, as in a message's evidence: nothing unsigned rides along.
        raise fail(
            "certificate", "certificates", "The file carries certificates no signature needs."
        )
    try:
        crypto.verify_signed(
            request_document, REQUEST_TYPE, {crypto.key_id(keys["consumer"]): keys["consumer"]}
        )
    except CryptoError as exc:
        raise fail("request", request.id, "The request is not signed by the consumer.") from exc
    passed.append(
        Check(
            "request",
            request.id,
            f"signed by {request.consumer} ({request.user or 'no user'}"
            f"{f' through system {request.system}' if request.system else ''}, purpose "
            f"{request.purpose or 'none given'}): {request.method} {request.path}"
            f"{_how_signed(request_document)}",
        )
    )
    try:
        crypto.verify_signed(
            response_document, RESPONSE_TYPE, {crypto.key_id(keys["provider"]): keys["provider"]}
        )
    except CryptoError as exc:
        raise fail("response", request.id, "The answer is not signed by the provider.") from exc
    if response.call_id != request.id or response.request_sha256 != crypto.sha256_hex(
        request_document
    ):
        raise fail("response", request.id, "The answer does not name this exact request.")
    passed.append(
        Check(
            "response",
            request.id,
            f"signed by {response.provider}: status {response.status}"
            f"{_how_signed(response_document)}",
        )
    )
    return VerifiedCall(
        request, response, directory.version, carried.fingerprint, source, tuple(passed)
    )


def _how_signed(document: bytes) -> str:
    if crypto.is_batch_signed(document):
        return " (in a batch: its path leads to the Merkle root the organisation signed)"
    return ""


def _payload(document: bytes) -> bytes:
    try:
        return crypto.signed_payload(document)
    except CryptoError as exc:
        raise InputError("The signed document is not DSSE.") from exc
