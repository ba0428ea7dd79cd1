"""The evidence file itself: its layout, its one canonical form, and building it.

Building is pure: it takes the stored bytes (signed header, ciphertext parts,
signed receipts, certificates, signed directory) and lays them out; it checks
nothing, and :func:`gcx.evidence.verify_evidence` checks everything.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gcx import crypto
from gcx.errors import EvidenceUnavailable

FORMAT = "gcx.evidence/1"
MEDIA_TYPE = "application/vnd.gcx.evidence+json"

ReceiptKind = Literal["delivery", "read"]


@dataclass(frozen=True)
class Check:
    """One check that passed: a stable name, what it was about, and what it established."""

    name: str
    subject: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.name, "subject": self.subject, "detail": self.detail}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class EnvelopeSection(_Model):
    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    signed_header: str = Field(min_length=1, description="The DSSE document, as ASCII text.")
    parts: tuple[str, ...] = Field(min_length=1, description="Ciphertext parts, base64.")


class ReceiptSection(_Model):
    kind: ReceiptKind
    organisation: str = Field(min_length=1, max_length=16)
    document: str = Field(min_length=1, description="The DSSE document, as ASCII text.")


class CertificatesSection(_Model):
    anchor: str = Field(min_length=1, description="The network root certificate, PEM.")
    organisations: dict[str, str] = Field(description="Organisation code -> signing cert, PEM.")


class DirectorySection(_Model):
    version: int = Field(ge=1)
    document: str = Field(min_length=1, description="The DSSE document, as ASCII text.")


class EvidenceFile(_Model):
    format: Literal["gcx.evidence/1"]
    envelope: EnvelopeSection
    receipts: tuple[ReceiptSection, ...]
    certificates: CertificatesSection
    directory: DirectorySection


def serialise(value: object) -> bytes:
    # The canonical form: sorted keys, two-space indent, ASCII only, one
    # final newline. Deterministic from the content, and still readable.
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def _ascii(document: bytes, what: str) -> str:
    try:
        return document.decode("ascii")
    except UnicodeDecodeError as exc:
        raise EvidenceUnavailable(
            f"The stored {what} is not ASCII, as a DSSE document is."
        ) from exc


@dataclass(frozen=True)
class HeldReceipt:
    """A signed receipt held for an envelope: a delivery (or refusal) receipt or a read receipt."""

    kind: ReceiptKind
    organisation: str
    document: bytes


def build_evidence(
    *,
    signed_header: bytes,
    parts: Sequence[bytes],
    held_receipts: Sequence[HeldReceipt],
    anchor_pem: bytes,
    certificates: Mapping[str, bytes],
    directory_version: int,
    directory_document: bytes,
) -> bytes:
    """The evidence file for one envelope, in its canonical form. Checks nothing; see verify."""
    header = crypto.unverified_header(signed_header)
    ordered = sorted(held_receipts, key=lambda r: (r.organisation, r.kind))
    body = {
        "format": FORMAT,
        "envelope": {
            "id": header.id,
            "digest": crypto.envelope_digest(signed_header, parts),
            "signed_header": _ascii(signed_header, "envelope header"),
            "parts": [base64.b64encode(part).decode() for part in parts],
        },
        "receipts": [
            {
                "kind": r.kind,
                "organisation": r.organisation,
                "document": _ascii(r.document, "receipt"),
            }
            for r in ordered
        ],
        "certificates": {
            # Re-encoded so the PEM is in the one form verification accepts.
            "anchor": crypto.Certificate.from_pem(anchor_pem).pem.decode(),
            "organisations": {
                code: crypto.Certificate.from_pem(pem).pem.decode()
                for code, pem in sorted(certificates.items())
            },
        },
        "directory": {
            "version": directory_version,
            "document": _ascii(directory_document, "directory"),
        },
    }
    return serialise(body)
