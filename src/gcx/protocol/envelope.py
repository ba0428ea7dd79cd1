"""The envelope: the one signed unit every kind of exchange crosses the network in.

An envelope is a signed header and a list of encrypted parts. The header is
readable by every gateway that carries or stores it, so it holds routing
metadata only: id, kind, sending organisation and user, recipient
organisations, marking, times, and for each part its index, ciphertext size
and ciphertext SHA-256. Everything a person wrote, including attachment names
and media types, is encrypted: part names and types travel in the sealed
``manifest``, and subjects, bodies and handling instructions inside the parts.
A relaying gateway, a database dump or a backup therefore learns who wrote to
whom, when, how much and at what marking, and nothing of the content.

Header (``gcx.envelope/1``, canonical JSON, DSSE-signed as
``application/vnd.gcx.envelope+json`` by the sending organisation)::

    {"format": "gcx.envelope/1", "id": 32 lower-case hex,
     "kind": "message" | "file" | "document" | "event",
     "sender": {"organisation", "user"}, "recipients": [organisation codes],
     "marking": "OFFICIAL" | "OFFICIAL-SENSITIVE",
     "created_at", "expires_at": RFC 3339 UTC,
     "parts": [{"index", "size", "sha256"}],
     "keys": [{"organisation", "kem": "MLKEM768-X25519", "sealed_key": base64}],
     "content_aead": "AES-256-GCM", "manifest": base64}

This module is pure: it checks headers against a ``now`` it is given, and
frames and unframes bytes. Sealing, signing and opening are in
``gcx.crypto._envelope``.

Invariants of a valid header (:func:`check_structure`):

* recipients are unique and non-empty, and ``keys`` holds exactly one sealed
  key per recipient organisation and no other;
* parts are numbered 0..n-1 in order, since the wire carries them by position;
* it expires after it was created, and lives no longer than ``max_lifetime``,
  because receivers keep its id (to refuse replays) for as long as it lives.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gcx.errors import (
    EnvelopeDigestMismatch,
    EnvelopeExpired,
    EnvelopeFromFuture,
    EnvelopeMalformed,
    OrganisationCodeInvalid,
)
from gcx.protocol.directory import canonical_json
from gcx.protocol.documents import Time, load_model
from gcx.protocol.identifiers import check_organisation_code
from gcx.protocol.marking import Marking

# -- the header -------------------------------------------------------------------

FORMAT = "gcx.envelope/1"
PAYLOAD_TYPE = "application/vnd.gcx.envelope+json"
KEM = "MLKEM768-X25519"
CONTENT_AEAD = "AES-256-GCM"

DEFAULT_TTL = dt.timedelta(hours=72)
MAX_LIFETIME = dt.timedelta(days=30)
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_RECIPIENTS = 1000
MAX_PARTS = 1024

Kind = Literal["message", "file", "document", "event"]

_HEX32 = r"^[0-9a-f]{32}$"
_HEX64 = r"^[0-9a-f]{64}$"
_USER = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _organisation(code: str) -> str:
    # One rule for organisation codes (identifiers.py); re-raised as ValueError
    # so that pydantic reports it as a validation error like any other.
    try:
        return check_organisation_code(code)
    except OrganisationCodeInvalid as exc:
        raise ValueError(exc.message) from None


class Sender(_Model):
    organisation: str
    user: str = Field(pattern=_USER)

    _check_organisation = field_validator("organisation")(_organisation)


class PartEntry(_Model):
    """What the header says about one encrypted part: enough to check it, nothing more."""

    index: int = Field(ge=0, lt=MAX_PARTS)
    size: int = Field(ge=0, description="Bytes of ciphertext (nonce included).")
    sha256: str = Field(pattern=_HEX64, description="SHA-256 of the ciphertext, hex.")


class SealedKey(_Model):
    organisation: str
    kem: Literal["MLKEM768-X25519"] = "MLKEM768-X25519"
    sealed_key: str = Field(
        min_length=1, max_length=4096, description="HPKE single-shot output, base64."
    )

    _check_organisation = field_validator("organisation")(_organisation)


class EnvelopeHeader(_Model):
    format: Literal["gcx.envelope/1"] = "gcx.envelope/1"
    id: str = Field(pattern=_HEX32)
    kind: Kind
    sender: Sender
    recipients: tuple[str, ...] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    marking: Marking
    created_at: Time
    expires_at: Time
    parts: tuple[PartEntry, ...] = Field(min_length=1, max_length=MAX_PARTS)
    keys: tuple[SealedKey, ...] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    content_aead: Literal["AES-256-GCM"] = "AES-256-GCM"
    manifest: str = Field(
        min_length=1, description="Sealed part names and media types, base64 (see crypto)."
    )

    @field_validator("recipients")
    @classmethod
    def _check_recipients(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_organisation(code) for code in value)

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, payload: bytes) -> EnvelopeHeader:
        """Parse a header and check its structure; raise :class:`EnvelopeMalformed`."""
        try:
            header = load_model(cls, payload)
        except (ValidationError, ValueError) as exc:
            raise EnvelopeMalformed(
                "The envelope header does not match the gcx.envelope/1 format."
            ) from exc
        check_structure(header)
        return header

    def sealed_key_for(self, organisation: str) -> SealedKey | None:
        return next((k for k in self.keys if k.organisation == organisation), None)


def check_structure(header: EnvelopeHeader) -> None:
    """Raise :class:`EnvelopeMalformed` unless the header's fields agree with each other."""
    if len(set(header.recipients)) != len(header.recipients):
        raise EnvelopeMalformed("The envelope names a recipient organisation more than once.")
    key_orgs = [k.organisation for k in header.keys]
    if len(set(key_orgs)) != len(key_orgs) or set(key_orgs) != set(header.recipients):
        raise EnvelopeMalformed(
            "The envelope must carry exactly one sealed key for each recipient organisation."
        )
    indexes = [p.index for p in header.parts]
    if len(set(indexes)) != len(indexes):
        raise EnvelopeMalformed("The envelope lists the same part index more than once.")
    if indexes != list(range(len(indexes))):
        raise EnvelopeMalformed("The envelope's parts must be numbered 0, 1, 2… in order.")
    if header.expires_at <= header.created_at:
        raise EnvelopeMalformed("The envelope expires before it was created.")


def check_header(
    header: EnvelopeHeader,
    *,
    now: dt.datetime,
    max_lifetime: dt.timedelta = MAX_LIFETIME,
    max_skew: dt.timedelta = MAX_CLOCK_SKEW,
) -> None:
    """Refuse a header that is inconsistent, expired, from the future or too long-lived.

    A receiving gateway keeps every accepted envelope id until the envelope
    expires, to refuse replays; ``max_lifetime`` bounds that memory.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    check_structure(header)
    if header.expires_at - header.created_at > max_lifetime:
        raise EnvelopeMalformed(
            f"The envelope lives longer than the {max_lifetime.days} days a gateway keeps "
            "envelope ids for."
        )
    if now >= header.expires_at:
        raise EnvelopeExpired(
            f"The envelope {header.id} expired at {header.expires_at.isoformat()} and was "
            "refused; send it again if it is still needed."
        )
    if header.created_at > now + max_skew:
        raise EnvelopeFromFuture()


def check_part_digest(
    header: EnvelopeHeader, index: int, sha256_hex: str, *, size: int | None = None
) -> None:
    """Refuse a part whose ciphertext digest (or size) is not the one the header signs."""
    if not 0 <= index < len(header.parts):
        raise EnvelopeMalformed(f"The envelope has no part {index}.")
    entry = header.parts[index]
    if size is not None and size != entry.size:
        raise EnvelopeDigestMismatch(
            f"Part {index} of envelope {header.id} is {size} bytes, not the {entry.size} its "
            "signed header gives."
        )
    if sha256_hex.lower() != entry.sha256:
        raise EnvelopeDigestMismatch(
            f"Part {index} of envelope {header.id} does not match the digest in its signed header."
        )


# -- the part manifest (sealed; its plaintext is this model) -----------------------


def check_part_name(name: str) -> str:
    """A part name that is safe to save as a file name: no path, no control characters.

    Format characters (Cf) are refused too: a right-to-left override makes
    ``invoice\u202efdp.exe`` display as ``invoiceexe.pdf``.
    """
    if not 1 <= len(name) <= 255:
        raise ValueError("a part name must be 1 to 255 characters")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError("a part name must not contain a path")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise ValueError("a part name must not contain control or format characters")
    return name


class ManifestEntry(_Model):
    index: int = Field(ge=0, lt=MAX_PARTS)
    name: str
    media_type: str

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_part_name(value)

    @field_validator("media_type")
    @classmethod
    def _check_media_type(cls, value: str) -> str:
        if not _MEDIA_TYPE.match(value):
            raise ValueError("not a media type of the form type/subtype")
        return value


class Manifest(_Model):
    format: Literal["gcx.manifest/1"] = "gcx.manifest/1"
    parts: tuple[ManifestEntry, ...]

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


class PlainPart(NamedTuple):
    """A part before sealing or after opening: its name, media type and content."""

    name: str
    media_type: str
    data: bytes


# -- framing on the wire ------------------------------------------------------------
#
#   magic  b"GCXE1\n"                      6 bytes; the digit is the format version
#   header length                         4 bytes, big-endian
#   signed header (DSSE JSON)
#   part count                            2 bytes, big-endian
#   for each part: length (8 bytes, big-endian), then the ciphertext
#
# The whole envelope is in memory here, which is right for messages (up to
# about 100 MiB). Bulk files will stream their parts instead, chunk by chunk,
# with the same header; the length-prefixed layout lets a reader do that
# without buffering, since each part's size is known before its bytes arrive.

MAGIC = b"GCXE1\n"
MAX_HEADER_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_FRAME_BYTES = 128 * 1024 * 1024
_HEADER_LEN = struct.Struct(">I")
_COUNT = struct.Struct(">H")
_PART_LEN = struct.Struct(">Q")


def frame_pieces(signed_header: bytes, parts: Sequence[bytes]) -> Iterator[bytes]:
    """The framed envelope as successive pieces, so it can be hashed or sent unjoined."""
    if len(signed_header) > MAX_HEADER_BYTES:
        raise EnvelopeMalformed("The envelope header is larger than a gateway accepts.")
    if len(parts) > MAX_PARTS:
        raise EnvelopeMalformed(f"An envelope may carry at most {MAX_PARTS} parts.")
    yield MAGIC
    yield _HEADER_LEN.pack(len(signed_header))
    yield signed_header
    yield _COUNT.pack(len(parts))
    for part in parts:
        yield _PART_LEN.pack(len(part))
        yield part


def frame(signed_header: bytes, parts: Sequence[bytes]) -> bytes:
    """The envelope as one byte string for the wire or for storage."""
    return b"".join(frame_pieces(signed_header, parts))


def unframe(data: bytes, *, max_size: int = DEFAULT_MAX_FRAME_BYTES) -> tuple[bytes, list[bytes]]:
    """Split framed bytes into the signed header and the parts; refuse anything else.

    Every length is checked against what is actually left before it is used,
    so a forged length can neither read past the end nor make us allocate.
    """
    if len(data) > max_size:
        raise EnvelopeMalformed(f"The envelope is larger than the {max_size} bytes accepted.")
    view = memoryview(data)
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise EnvelopeMalformed("The data is not a gcx.envelope/1 envelope (bad magic bytes).")
    offset = len(MAGIC)

    def take(count: int, what: str) -> memoryview:
        nonlocal offset
        if count > len(view) - offset:
            raise EnvelopeMalformed(f"The envelope is truncated inside the {what}.")
        piece = view[offset : offset + count]
        offset += count
        return piece

    (header_len,) = _HEADER_LEN.unpack(take(_HEADER_LEN.size, "header length"))
    if header_len > MAX_HEADER_BYTES:
        raise EnvelopeMalformed("The envelope header is larger than a gateway accepts.")
    signed_header = bytes(take(header_len, "header"))
    (count,) = _COUNT.unpack(take(_COUNT.size, "part count"))
    if count > MAX_PARTS:
        raise EnvelopeMalformed(f"An envelope may carry at most {MAX_PARTS} parts.")
    parts: list[bytes] = []
    for index in range(count):
        (part_len,) = _PART_LEN.unpack(take(_PART_LEN.size, f"length of part {index}"))
        parts.append(bytes(take(part_len, f"part {index}")))
    if offset != len(view):
        raise EnvelopeMalformed("The envelope has data after its last part.")
    return signed_header, parts
