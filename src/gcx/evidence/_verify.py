"""Verifying an evidence file offline: from its bytes and, optionally, a trusted anchor.

The checks run in a fixed order, each resting on those before it: the file's
form, the anchor, the directory the anchor signed, each organisation's
certificate (issued by the anchor, for the key the directory lists), the
envelope (signed by the sender's certified key, parts matching its header),
each receipt (signed by its organisation's certified key, for exactly this
envelope), and lastly whether that directory version was in force while the
envelope travelled. The first failure stops verification and names its check.

No network, database or clock is used: times are judged against the times
the signed documents themselves carry, so a file verifies the same way years
later.

This module is over 400 lines because the checks above are one ordered chain,
each resting on the previous; splitting the chain would hide its order.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from gcx import crypto
from gcx.errors import CryptoError, EvidenceInvalid, GcxError, SignatureInvalid
from gcx.evidence._file import (
    FORMAT,
    Check,
    EvidenceFile,
    ReceiptKind,
    ReceiptSection,
    serialise,
)
from gcx.protocol import directory as dirproto
from gcx.protocol import strict_json
from gcx.protocol.batch import READ_RECEIPT_TYPE, ReadReceipt
from gcx.protocol.envelope import MAX_CLOCK_SKEW, EnvelopeHeader
from gcx.protocol.receipt import Receipt

AnchorSource = Literal["given", "fingerprint", "file"]


@dataclass(frozen=True)
class VerifiedReceipt:
    kind: ReceiptKind
    organisation: str
    at: dt.datetime
    outcome: str  # accepted, refused or read
    gateway: str | None = None
    reader: str | None = None
    refusal: str | None = None
    unknown_addresses: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "organisation": self.organisation,
            "at": self.at.isoformat(),
            "outcome": self.outcome,
            "gateway": self.gateway,
            "reader": self.reader,
            "refusal": self.refusal,
            "unknown_addresses": list(self.unknown_addresses),
        }


@dataclass(frozen=True)
class VerifiedEvidence:
    """What a verified evidence file establishes, for a report."""

    header: EnvelopeHeader
    digest: str
    part_sizes: tuple[int, ...]
    anchor: crypto.Certificate
    anchor_source: AnchorSource
    directory: dirproto.Directory
    receipts: tuple[VerifiedReceipt, ...]
    checks: tuple[Check, ...]

    def organisation_name(self, code: str) -> str:
        entry = self.directory.organisation(code)
        return entry.name if entry else code

    def to_dict(self) -> dict[str, Any]:
        header = self.header
        return {
            "ok": True,
            "format": FORMAT,
            "anchor": {
                "fingerprint": self.anchor.fingerprint,
                "network": self.anchor.organisation_name,
                "source": self.anchor_source,
            },
            "envelope": {
                "id": header.id,
                "kind": header.kind,
                "sender": {
                    "organisation": header.sender.organisation,
                    "name": self.organisation_name(header.sender.organisation),
                    "user": header.sender.user,
                },
                "recipients": [
                    {"organisation": code, "name": self.organisation_name(code)}
                    for code in header.recipients
                ],
                "marking": header.marking,
                "created_at": header.created_at.isoformat(),
                "expires_at": header.expires_at.isoformat(),
                "digest": self.digest,
                "part_sizes": list(self.part_sizes),
            },
            "directory": {
                "version": self.directory.version,
                "network": self.directory.network,
                "issued_at": self.directory.issued_at.isoformat(),
                "expires_at": self.directory.expires_at.isoformat(),
            },
            "receipts": [r.to_dict() for r in self.receipts],
            "checks": [c.to_dict() for c in self.checks],
        }


class _Checks:
    """Runs the checks in order; the first to fail raises :class:`EvidenceInvalid`.

    Later checks rest on earlier ones (a receipt means nothing until the
    certificate that checks it is known to come from the anchor), so checking
    stops at the first failure rather than reporting on what no longer holds.
    """

    def __init__(self) -> None:
        self.passed: list[Check] = []

    @contextlib.contextmanager
    def __call__(self, name: str, subject: str, detail: str) -> Iterator[None]:
        try:
            yield
        except EvidenceInvalid:
            raise
        except GcxError as error:
            raise self.fail(name, subject, error.message) from error
        except (ValueError, KeyError, TypeError) as error:
            raise self.fail(name, subject, f"It is malformed ({type(error).__name__}).") from error
        self.passed.append(Check(name, subject, detail))

    def fail(self, name: str, subject: str, message: str) -> EvidenceInvalid:
        return EvidenceInvalid(message, check=name, subject=subject, passed=self.passed)


def _parse(data: bytes) -> EvidenceFile:
    try:
        # Strict: a repeated key or NaN would otherwise vanish in parsing and
        # leave a file that serialises back to its canonical form.
        value = strict_json.loads(data)
    except ValueError as exc:
        raise CryptoError("The file is not JSON.") from exc
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise CryptoError(f"The file is not a {FORMAT} evidence file.")
    if serialise(value) != data:
        raise CryptoError(
            "The file is not in the canonical form gcx writes (sorted keys, two-space indent, "
            "ASCII, one final newline), so it was changed after it was exported."
        )
    try:
        return EvidenceFile.model_validate_json(data)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise CryptoError(f"The file does not match the {FORMAT} layout (at {where}).") from exc


def _certificate(pem: str, what: str) -> crypto.Certificate:
    certificate = crypto.Certificate.from_pem(pem.encode("ascii"))
    if certificate.pem != pem.encode("ascii"):
        raise CryptoError(f"The {what} is not in the canonical PEM form gcx writes.")
    return certificate


def _document(text: str) -> bytes:
    """The exact bytes of a DSSE document carried as text, refused unless canonical.

    DSSE signs the decoded payload only, so white space, escapes or unused
    base64 bits could be changed without touching the signature. The file
    carries each document in exactly the form ``gcx.crypto.sign_document``
    writes, which makes any changed byte visible.
    """
    document = text.encode("ascii")
    try:
        # A DSSE document, or a batch-signed one (a receipt signed with others): each
        # reader accepts only its canonical form.
        crypto.signed_payload(document)
    except CryptoError as exc:
        raise CryptoError("The signed document is not in its canonical form.") from exc
    return document


def _valid_at(certificate: crypto.Certificate, at: dt.datetime, code: str, event: str) -> None:
    if not certificate.not_before <= at <= certificate.not_after:
        raise CryptoError(
            f"The certificate of {code} was not valid at {at.isoformat()}, when {event} "
            f"(valid {certificate.not_before.isoformat()} to {certificate.not_after.isoformat()})."
        )


def _check_anchor(
    evidence: EvidenceFile,
    anchor: crypto.Certificate | None,
    fingerprint: str | None,
) -> crypto.Certificate:
    carried = _certificate(evidence.certificates.anchor, "network anchor")
    if anchor is not None and not secrets.compare_digest(carried.fingerprint, anchor.fingerprint):
        raise CryptoError(
            f"The file's network anchor (fingerprint {carried.fingerprint}) is not the anchor "
            f"given (fingerprint {anchor.fingerprint}): the evidence comes from another network "
            "or was altered."
        )
    if fingerprint is not None:
        wanted = fingerprint.replace(":", "").lower()
        if not secrets.compare_digest(carried.fingerprint, wanted):
            raise CryptoError(
                f"The file's network anchor has fingerprint {carried.fingerprint}, not the "
                f"{wanted} given: the evidence comes from another network or was altered."
            )
    try:
        carried.verify_issued_by(carried)
    except CryptoError as exc:
        raise CryptoError("The network anchor is not a self-signed root certificate.") from exc
    return carried


def _check_directory(evidence: EvidenceFile, anchor: crypto.Certificate) -> dirproto.Directory:
    document = _document(evidence.directory.document)
    root = anchor.public_key()
    try:
        payload = crypto.verify_document(
            document, dirproto.PAYLOAD_TYPE, {crypto.key_id(root): root}
        )
    except CryptoError as exc:
        raise CryptoError("The directory is not signed by the network anchor.") from exc
    directory = dirproto.Directory.from_bytes(payload)
    if directory.version != evidence.directory.version:
        raise CryptoError(
            f"The file says directory version {evidence.directory.version}, but the signed "
            f"directory is version {directory.version}."
        )
    if directory.network != anchor.organisation_name:
        raise CryptoError(
            f"The directory is for network {directory.network!r}, but the anchor is the root of "
            f"{anchor.organisation_name!r}."
        )
    return directory


def _check_certificate(
    code: str, pem: str, anchor: crypto.Certificate, directory: dirproto.Directory
) -> crypto.Certificate:
    certificate = _certificate(pem, f"certificate of {code}")
    try:
        certificate.verify_issued_by(anchor)
    except CryptoError as exc:
        raise CryptoError(
            f"The certificate of {code} was not issued by this network's anchor."
        ) from exc
    certificate.check_organisation_profile(code)
    entry = directory.organisation(code)
    if entry is None or entry.signing_key is None:
        raise CryptoError(f"Directory version {directory.version} lists no signing key for {code}.")
    if entry.signing_key != certificate.public_key().b64():
        raise CryptoError(
            f"Directory version {directory.version} lists a different signing key for {code} "
            "from the one its certificate holds."
        )
    return certificate


def _check_envelope(
    evidence: EvidenceFile, certificates: Mapping[str, crypto.Certificate]
) -> tuple[EnvelopeHeader, list[bytes]]:
    section = evidence.envelope
    signed_header = _document(section.signed_header)
    parts = [base64.b64decode(p, validate=True) for p in section.parts]
    if any(
        base64.b64encode(p).decode() != text for p, text in zip(parts, section.parts, strict=True)
    ):
        raise CryptoError("A part is not in canonical base64.")
    claimed = crypto.unverified_header(signed_header)
    sender = claimed.sender.organisation
    # The certificate set is exact: the sender's, and one for each
    # organisation with a receipt in the file. Anything more is an
    # unsigned addition no check would otherwise look at.
    needed = {sender} | {r.organisation for r in evidence.receipts}
    extra = sorted(set(evidence.certificates.organisations) - needed)
    if extra:
        raise CryptoError(
            f"The file carries certificates no signature in it needs: {', '.join(extra)}."
        )
    certificate = certificates.get(sender)
    if certificate is None:
        raise CryptoError(f"The file holds no certificate for the sender, {sender}.")
    # Expiry is judged at the envelope's own creation time, not today. An
    # envelope's expiry bounds how long it may be delivered, not how long its
    # signature means something: judged now, every evidence file would fail
    # 72 hours after sending, which is when evidence is usually wanted. At
    # created_at, verify_envelope still checks everything else a receiver
    # checks (signature, structure, lifetime bound, each part's size and
    # digest); the receipts then show when it actually arrived, and those
    # times are checked against the envelope's lifetime one by one.
    try:
        header = crypto.verify_envelope(
            signed_header,
            parts,
            certificate.public_key(),
            sender_organisation=sender,
            now=claimed.created_at,
        )
    except SignatureInvalid as exc:
        raise CryptoError(
            f"The envelope header's signature does not verify with the certified key of {sender}."
        ) from exc
    _valid_at(certificate, header.created_at, sender, "the envelope was created")
    if header.id != section.id:
        raise CryptoError(f"The file names envelope {section.id}, but the header is {header.id}.")
    digest = crypto.envelope_digest(signed_header, parts)
    if digest != section.digest:
        raise CryptoError(
            f"The envelope digest recomputed from the header and parts is {digest}, not the "
            f"{section.digest} the file gives."
        )
    return header, parts


def _check_receipt(
    entry: ReceiptSection,
    header: EnvelopeHeader,
    digest: str,
    certificates: Mapping[str, crypto.Certificate],
) -> VerifiedReceipt:
    org = entry.organisation
    document = _document(entry.document)
    if org not in header.recipients:
        raise CryptoError(f"{org} is not a recipient of envelope {header.id}.")
    certificate = certificates.get(org)
    if certificate is None:
        raise CryptoError(f"The file holds no certificate for {org}.")
    key = certificate.public_key()
    if entry.kind == "delivery":
        try:
            receipt: Receipt = crypto.verify_receipt(
                document, key, envelope_id=header.id, envelope_digest=digest, recipient=org
            )
        except SignatureInvalid as exc:
            raise CryptoError(f"The receipt is not signed by the certified key of {org}.") from exc
        _valid_at(certificate, receipt.received_at, org, "it signed the receipt")
        if receipt.accepted and not (
            header.created_at - MAX_CLOCK_SKEW <= receipt.received_at < header.expires_at
        ):
            raise CryptoError(
                f"{org} says it accepted the envelope at {receipt.received_at.isoformat()}, "
                f"outside its lifetime ({header.created_at.isoformat()} to "
                f"{header.expires_at.isoformat()})."
            )
        refusal = receipt.refusal
        return VerifiedReceipt(
            kind="delivery",
            organisation=org,
            at=receipt.received_at,
            outcome=receipt.outcome,
            gateway=receipt.gateway,
            refusal=f"{refusal.code}: {refusal.message}" if refusal else None,
            unknown_addresses=receipt.unknown_addresses,
        )
    try:
        payload = crypto.verify_document(document, READ_RECEIPT_TYPE, {crypto.key_id(key): key})
    except SignatureInvalid as exc:
        raise CryptoError(f"The read receipt is not signed by the certified key of {org}.") from exc
    read = ReadReceipt.from_bytes(payload)
    if read.envelope_id != header.id:
        raise CryptoError(f"The read receipt is for envelope {read.envelope_id}, not {header.id}.")
    if read.organisation != org:
        raise CryptoError(f"The read receipt is from {read.organisation}, not {org}.")
    if read.read_at.tzinfo is None:
        raise CryptoError("The read receipt's time carries no time offset.")
    _valid_at(certificate, read.read_at, org, "it signed the read receipt")
    if read.read_at < header.created_at - MAX_CLOCK_SKEW:
        raise CryptoError(f"The read receipt says {org} read the envelope before it was created.")
    return VerifiedReceipt(
        kind="read", organisation=org, at=read.read_at, outcome="read", reader=read.reader
    )


def _check_in_force(
    directory: dirproto.Directory, header: EnvelopeHeader, verified: Sequence[VerifiedReceipt]
) -> None:
    # A sending gateway uses the directory it holds when it seals; a receiving
    # one the directory it holds when the envelope arrives. Either way the
    # version was issued before the envelope was last handled and had not yet
    # expired when the envelope was made (allowing for clock differences
    # between central and the gateways).
    handled = max([header.created_at, *(r.at for r in verified if r.kind == "delivery")])
    if directory.issued_at > handled + MAX_CLOCK_SKEW:
        raise CryptoError(
            f"Directory version {directory.version} was issued at "
            f"{directory.issued_at.isoformat()}, after the envelope was sent and delivered."
        )
    if directory.expires_at <= header.created_at - MAX_CLOCK_SKEW:
        raise CryptoError(
            f"Directory version {directory.version} had expired at "
            f"{directory.expires_at.isoformat()}, before the envelope was created."
        )


def verify_evidence(
    data: bytes,
    *,
    anchor: crypto.Certificate | None = None,
    anchor_fingerprint: str | None = None,
) -> VerifiedEvidence:
    """Check an evidence file offline; return what it establishes or raise :class:`EvidenceInvalid`.

    ``anchor`` (the network root certificate the verifier trusts) or
    ``anchor_fingerprint`` (its SHA-256, hex) pins the network; with neither,
    the file is checked against the anchor it carries, which proves only that
    it is consistent: the caller must then compare the anchor's fingerprint
    with the one the network publishes.
    """
    checks = _Checks()
    with checks("file", "the file", f"a {FORMAT} file in its canonical form"):
        evidence = _parse(data)
    source: AnchorSource = (
        "given" if anchor is not None else "fingerprint" if anchor_fingerprint else "file"
    )
    with checks(
        "anchor", "the network anchor", f"the root certificate to check against ({source})"
    ):
        root = _check_anchor(evidence, anchor, anchor_fingerprint)
    with checks(
        "directory",
        f"directory version {evidence.directory.version}",
        "signed by the network anchor, for the anchor's network",
    ):
        directory = _check_directory(evidence, root)
    certificates: dict[str, crypto.Certificate] = {}
    for code, pem in sorted(evidence.certificates.organisations.items()):
        with checks(
            "certificate",
            f"certificate of {code}",
            f"issued by the anchor to {code}; the directory lists the same signing key",
        ):
            certificates[code] = _check_certificate(code, pem, root, directory)
    with checks(
        "envelope",
        f"envelope {evidence.envelope.id}",
        "signed by the sender's certified key; every part matches the header; digest recomputed",
    ):
        header, parts = _check_envelope(evidence, certificates)
    digest = evidence.envelope.digest
    verified: list[VerifiedReceipt] = []
    previous: tuple[str, str] | None = None
    for entry in evidence.receipts:
        subject = f"{entry.kind} receipt of {entry.organisation}"
        with checks("receipt", subject, f"signed by {entry.organisation} for this envelope"):
            # One receipt of each kind per organisation, in the order gcx
            # writes them, so that reordering is a change like any other.
            key = (entry.organisation, entry.kind)
            if previous is not None and key <= previous:
                raise CryptoError("The receipts are repeated or not in the order gcx writes.")
            previous = key
            verified.append(_check_receipt(entry, header, digest, certificates))
    with checks(
        "directory-in-force",
        f"directory version {directory.version}",
        "in force while the envelope was sent and delivered",
    ):
        _check_in_force(directory, header, verified)
    return VerifiedEvidence(
        header=header,
        digest=digest,
        part_sizes=tuple(len(p) for p in parts),
        anchor=root,
        anchor_source=source,
        directory=directory,
        receipts=tuple(verified),
        checks=tuple(checks.passed),
    )
