"""Carrying several envelopes in one request between gateways, and the controls that follow.

When the queue for a peer is busy, envelopes travel together so throughput
does not depend on one round trip each. A batch on the wire is::

    b"GCXB1\\n" | u16 count | count x (u32 length | framed envelope)

and the answer is JSON: ``{"results": [{"envelope_id", "receipts": [signed
receipt (DSSE JSON text), ...], "error": {code, message} | null}]}``, one
result per envelope in the order sent. ``error`` is set only when the
receiver could not even produce a signed receipt (for example, the framing
was broken), and then the sender treats it as transient or permanent by
its code.

Recall (``application/vnd.gcx.recall+json``), signed by the sending
organisation: ``{"format": "gcx.recall/1", "envelope_id", "organisation",
"requested_by", "requested_at"}``; the answer is a signed
``application/vnd.gcx.recall-result+json``: ``{"format":
"gcx.recall-result/1", "envelope_id", "organisation" (the recipient),
"outcome": "recalled" | "refused", "code", "message", "at"}``.

Read receipt (``application/vnd.gcx.read-receipt+json``), signed by the
reading organisation: ``{"format": "gcx.read-receipt/1", "envelope_id",
"organisation", "reader", "read_at"}``.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gcx.errors import EnvelopeMalformed, InputError
from gcx.protocol.documents import field_optional_str, field_str, field_time, load_object

MAGIC = b"GCXB1\n"
MAX_BATCH = 1000
_COUNT = struct.Struct(">H")
_LENGTH = struct.Struct(">I")

RECALL_TYPE = "application/vnd.gcx.recall+json"
RECALL_RESULT_TYPE = "application/vnd.gcx.recall-result+json"
READ_RECEIPT_TYPE = "application/vnd.gcx.read-receipt+json"


def frame_batch(envelopes: Sequence[bytes]) -> bytes:
    if not 1 <= len(envelopes) <= MAX_BATCH:
        raise ValueError("a batch carries 1 to 1000 envelopes")
    pieces = [MAGIC, _COUNT.pack(len(envelopes))]
    for envelope in envelopes:
        pieces += [_LENGTH.pack(len(envelope)), envelope]
    return b"".join(pieces)


def unframe_batch(data: bytes) -> list[bytes]:
    """The framed envelopes in a batch; anything malformed is refused whole."""
    view = memoryview(data)
    if bytes(view[: len(MAGIC)]) != MAGIC or len(view) < len(MAGIC) + _COUNT.size:
        raise EnvelopeMalformed("The batch does not start with the gcx batch marker.")
    (count,) = _COUNT.unpack_from(view, len(MAGIC))
    if not 1 <= count <= MAX_BATCH:
        raise EnvelopeMalformed("A batch must carry 1 to 1000 envelopes.")
    offset = len(MAGIC) + _COUNT.size
    envelopes: list[bytes] = []
    for _ in range(count):
        if offset + _LENGTH.size > len(view):
            raise EnvelopeMalformed("The batch ends in the middle of an envelope length.")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += _LENGTH.size
        if offset + length > len(view):
            raise EnvelopeMalformed("The batch ends in the middle of an envelope.")
        envelopes.append(bytes(view[offset : offset + length]))
        offset += length
    if offset != len(view):
        raise EnvelopeMalformed("The batch has bytes after its last envelope.")
    return envelopes


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _load(payload: bytes, expected_format: str, fields: tuple[str, ...]) -> dict[str, Any]:
    try:
        value = load_object(payload, ("format", *fields))
        if value["format"] != expected_format:
            raise ValueError(expected_format)
        return value
    except ValueError as exc:
        raise InputError(f"The document is not in the {expected_format} format.") from exc


@dataclass(frozen=True)
class Recall:
    envelope_id: str
    organisation: str
    requested_by: str
    requested_at: dt.datetime

    def to_bytes(self) -> bytes:
        return _json(
            {
                "format": "gcx.recall/1",
                "envelope_id": self.envelope_id,
                "organisation": self.organisation,
                "requested_by": self.requested_by,
                "requested_at": self.requested_at.isoformat(),
            }
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> Recall:
        raw = _load(
            payload, "gcx.recall/1", ("envelope_id", "organisation", "requested_by", "requested_at")
        )
        try:
            return cls(
                field_str(raw, "envelope_id"),
                field_str(raw, "organisation"),
                field_str(raw, "requested_by"),
                field_time(raw, "requested_at"),
            )
        except (KeyError, ValueError) as exc:
            raise InputError("The recall is missing a field.") from exc


@dataclass(frozen=True)
class RecallResult:
    envelope_id: str
    organisation: str
    outcome: str  # "recalled" or "refused"
    code: str | None
    message: str | None
    at: dt.datetime

    def to_bytes(self) -> bytes:
        return _json(
            {
                "format": "gcx.recall-result/1",
                "envelope_id": self.envelope_id,
                "organisation": self.organisation,
                "outcome": self.outcome,
                "code": self.code,
                "message": self.message,
                "at": self.at.isoformat(),
            }
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> RecallResult:
        raw = _load(
            payload,
            "gcx.recall-result/1",
            ("envelope_id", "organisation", "outcome", "code", "message", "at"),
        )
        try:
            return cls(
                field_str(raw, "envelope_id"),
                field_str(raw, "organisation"),
                field_str(raw, "outcome"),
                field_optional_str(raw, "code"),
                field_optional_str(raw, "message"),
                field_time(raw, "at"),
            )
        except (KeyError, ValueError) as exc:
            raise InputError("The recall result is missing a field.") from exc


@dataclass(frozen=True)
class ReadReceipt:
    envelope_id: str
    organisation: str
    reader: str
    read_at: dt.datetime

    def to_bytes(self) -> bytes:
        return _json(
            {
                "format": "gcx.read-receipt/1",
                "envelope_id": self.envelope_id,
                "organisation": self.organisation,
                "reader": self.reader,
                "read_at": self.read_at.isoformat(),
            }
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> ReadReceipt:
        raw = _load(
            payload, "gcx.read-receipt/1", ("envelope_id", "organisation", "reader", "read_at")
        )
        try:
            return cls(
                field_str(raw, "envelope_id"),
                field_str(raw, "organisation"),
                field_str(raw, "reader"),
                field_time(raw, "read_at"),
            )
        except (KeyError, ValueError) as exc:
            raise InputError("The read receipt is missing a field.") from exc
