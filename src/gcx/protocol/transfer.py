"""Bulk file transfers (``gcx.transfer/1`` and ``/2``): the signed manifest, receipts and lifecycle.

A transfer is an envelope of kind ``file`` whose payload is a batch of files
encrypted in chunks (see :mod:`gcx.crypto._stream` for the construction and
``docs/transfers.md`` for the format). Its header is the **manifest**, signed
by the sending organisation (DSSE, ``application/vnd.gcx.transfer+json``). It
names, in the clear, only what a gateway needs to carry and check the data:
sender, recipients, marking, times, segment size, each file's plaintext size,
nonce prefix and chunk range, and the digest of every ciphertext chunk.
Names, media types and plaintext digests travel encrypted in ``metadata``.
The two formats differ only in that chunk digest: SHA-256 in
``gcx.transfer/1``, BLAKE3 in ``gcx.transfer/2`` (:data:`CHUNK_HASHES`). A
gateway that knows only ``/1`` refuses a ``/2`` manifest as malformed, so a
sender keeps writing ``/1`` (``transfer_format``) until its peers have moved.

The receipt (``gcx.transfer-receipt/1``, DSSE
``application/vnd.gcx.transfer-receipt+json``) is signed by each recipient
organisation once every chunk is held and verified: it names the manifest's
digest and every file with its size and plaintext SHA-256, so the sender holds
proof of exactly what arrived. Existing ``gcx.receipt/1`` receipts for
messages are unchanged. A transfer's delivery to each receiving gateway
follows the one lifecycle every kind of exchange follows
(:mod:`gcx.protocol.delivery`).

Everything here is pure: data in, decisions out.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, Literal, Self, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gcx.errors import (
    EnvelopeExpired,
    EnvelopeFromFuture,
    EnvelopeMalformed,
    ReceiptInvalid,
    TransferUnreadable,
)
from gcx.protocol.directory import canonical_json
from gcx.protocol.documents import Time, load_model
from gcx.protocol.envelope import MAX_CLOCK_SKEW, MAX_RECIPIENTS, SealedKey, Sender

FORMAT: Final = "gcx.transfer/1"
FORMAT_2: Final = "gcx.transfer/2"
# The digest each format lists for every ciphertext chunk.
CHUNK_HASHES = {FORMAT: "sha256", FORMAT_2: "blake3"}
TransferFormat = Literal["gcx.transfer/1", "gcx.transfer/2"]


def transfer_format(name: str) -> TransferFormat:
    """``name`` as a transfer format; ``ValueError`` for one gcx does not know."""
    if name not in CHUNK_HASHES:
        raise ValueError(f"{name!r} is not a transfer format; use one of {', '.join(CHUNK_HASHES)}")
    return cast(TransferFormat, name)


PAYLOAD_TYPE = "application/vnd.gcx.transfer+json"
RECEIPT_FORMAT = "gcx.transfer-receipt/1"
RECEIPT_TYPE = "application/vnd.gcx.transfer-receipt+json"
TAG_BYTES = 16
MAX_FILES = 10_000
MAX_NOTE_CHARS = 2000
MAX_CHUNKS = 1 << 22  # 4 TiB at 1 MiB segments
MIN_SEGMENT = 64 * 1024
MAX_SEGMENT = 16 * 1024 * 1024
MAX_LIFETIME = dt.timedelta(days=30)
# The slot size (segment plus tag) a chunk sent ahead of its manifest is written in.
CHUNK_SLOT_HEADER = "Gcx-Chunk-Slot"
# The digest the manifest will list for a chunk sent ahead ("sha256" when absent, as
# gateways before gcx.transfer/2 sent it).
CHUNK_DIGEST_HEADER = "Gcx-Chunk-Digest"
DEFAULT_TTL = dt.timedelta(days=7)
_HEX32 = r"^[0-9a-f]{32}$"
_HEX64 = r"^[0-9a-f]{64}$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TransferFile(_Model):
    index: int = Field(ge=0, lt=MAX_FILES)
    size: int = Field(ge=0, description="Plaintext bytes.")
    nonce_prefix: str = Field(pattern=r"^[0-9a-f]{14}$")
    first_chunk: int = Field(ge=0)
    chunks: int = Field(ge=1)


class TransferManifest(_Model):
    format: TransferFormat = "gcx.transfer/1"
    id: str = Field(pattern=_HEX32)
    kind: Literal["file"] = "file"
    sender: Sender
    recipients: tuple[str, ...] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    marking: str
    created_at: Time
    expires_at: Time
    segment_size: int = Field(ge=MIN_SEGMENT, le=MAX_SEGMENT)
    keys: tuple[SealedKey, ...]
    metadata: str = Field(min_length=1, max_length=8 * 1024 * 1024)
    files: tuple[TransferFile, ...] = Field(min_length=1, max_length=MAX_FILES)
    chunks: tuple[str, ...] = Field(min_length=1, max_length=MAX_CHUNKS)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.recipients)) != len(self.recipients):
            raise ValueError("recipients repeat")
        if sorted(k.organisation for k in self.keys) != sorted(self.recipients):
            raise ValueError("there must be one sealed key per recipient")
        expected = 0
        for position, entry in enumerate(self.files):
            if entry.index != position or entry.first_chunk != expected:
                raise ValueError("files must be listed in order with contiguous chunks")
            if entry.chunks != max(1, -(-entry.size // self.segment_size)):
                raise ValueError("a file's chunk count does not match its size")
            expected += entry.chunks
        if expected != len(self.chunks):
            raise ValueError("the chunk list does not match the files")
        if any(len(c) != 64 or c.strip("0123456789abcdef") for c in self.chunks):
            raise ValueError("chunk digests must be 64 lower-case hex digits")
        return self

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, payload: bytes) -> TransferManifest:
        try:
            return load_model(cls, payload)
        except (ValidationError, ValueError) as exc:
            raise EnvelopeMalformed(
                "The transfer manifest is not in the gcx.transfer/1 or gcx.transfer/2 format."
            ) from exc

    @property
    def chunk_hash(self) -> str:
        """The name of the digest ``chunks`` lists (a key of ``gcx.crypto.CHUNK_DIGESTS``)."""
        return CHUNK_HASHES[self.format]

    def locate(self, chunk: int) -> tuple[TransferFile, int, bool]:
        """The file a chunk belongs to, its segment number in that file, and whether it is last."""
        if not 0 <= chunk < len(self.chunks):
            raise EnvelopeMalformed(f"Chunk {chunk} is outside this transfer.")
        low, high = 0, len(self.files) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if self.files[middle].first_chunk <= chunk:
                low = middle
            else:
                high = middle - 1
        entry = self.files[low]
        segment = chunk - entry.first_chunk
        return entry, segment, segment == entry.chunks - 1

    def chunk_size(self, chunk: int) -> int:
        """The exact ciphertext size of a chunk (plaintext segment plus tag)."""
        entry, segment, _ = self.locate(chunk)
        return min(self.segment_size, entry.size - segment * self.segment_size) + TAG_BYTES

    @property
    def chunk_slot(self) -> int:
        """The room one chunk takes in a chunk file: a whole segment and its tag."""
        return self.segment_size + TAG_BYTES

    @property
    def ciphertext_bytes(self) -> int:
        return sum(f.size for f in self.files) + TAG_BYTES * len(self.chunks)

    @property
    def plaintext_bytes(self) -> int:
        return sum(f.size for f in self.files)


def check_manifest(
    manifest: TransferManifest, *, now: dt.datetime, max_skew: dt.timedelta = MAX_CLOCK_SKEW
) -> None:
    """Refuse a manifest that is expired, from the future or too long-lived."""
    if manifest.created_at - now > max_skew:
        raise EnvelopeFromFuture()
    if manifest.expires_at <= now:
        raise EnvelopeExpired()
    if not dt.timedelta(0) < manifest.expires_at - manifest.created_at <= MAX_LIFETIME:
        raise EnvelopeMalformed("The transfer's lifetime must be positive and at most 30 days.")


class FileMetadata(_Model):
    """What the encrypted metadata says about one file."""

    index: int = Field(ge=0, lt=MAX_FILES)
    name: str = Field(min_length=1, max_length=255)
    media_type: str = Field(default="application/octet-stream", max_length=255)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=_HEX64, description="SHA-256 of the plaintext, hex.")


class TransferMetadata(_Model):
    files: tuple[FileMetadata, ...]
    # The sender's covering note, encrypted with the files (issue 17). Optional
    # and left out when empty, so metadata without one is byte for byte what
    # older gateways wrote and read.
    note: str | None = Field(default=None, min_length=1, max_length=MAX_NOTE_CHARS)

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_bytes(cls, payload: bytes) -> TransferMetadata:
        # The sender wrote this under the content key, so it decrypts; an
        # admitted but faulty sender can still have written nonsense.
        try:
            return load_model(cls, payload, optional=("note",))
        except (ValidationError, ValueError) as exc:
            raise TransferUnreadable(
                "The transfer's metadata is not in the gcx.transfer/1 format."
            ) from exc

    def matches(self, manifest: TransferManifest) -> bool:
        return [(f.index, f.size) for f in self.files] == [
            (f.index, f.size) for f in manifest.files
        ]


class ReceiptFile(_Model):
    index: int = Field(ge=0, lt=MAX_FILES)
    name: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=_HEX64)


class TransferReceipt(_Model):
    format: Literal["gcx.transfer-receipt/1"] = "gcx.transfer-receipt/1"
    transfer_id: str = Field(pattern=_HEX32)
    manifest_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    recipient: str
    gateway: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    received_at: Time
    outcome: Literal["accepted"] = "accepted"
    files: tuple[ReceiptFile, ...] = Field(min_length=1, max_length=MAX_FILES)

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, payload: bytes) -> TransferReceipt:
        try:
            return load_model(cls, payload)
        except (ValidationError, ValueError) as exc:
            raise ReceiptInvalid(
                "The receipt is not in the gcx.transfer-receipt/1 format."
            ) from exc


def check_receipt(
    receipt: TransferReceipt,
    *,
    transfer_id: str,
    manifest_digest: str,
    organisation: str,
    files: tuple[tuple[str, int, str], ...],
) -> None:
    """A receipt must acknowledge exactly this manifest, for this organisation, every file."""
    if (
        receipt.transfer_id != transfer_id
        or receipt.manifest_digest != manifest_digest
        or receipt.recipient != organisation
    ):
        raise ReceiptInvalid("The receipt does not acknowledge this transfer.")
    if tuple((f.name, f.size, f.sha256) for f in receipt.files) != files:
        raise ReceiptInvalid("The receipt does not name every file sent with its SHA-256.")
