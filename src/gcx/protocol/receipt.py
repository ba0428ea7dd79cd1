"""Receipts: a receiving organisation's signed word on what it accepted or refused.

A receipt is the sender's proof of delivery, so it names exactly what it
covers: the envelope id and the SHA-256 of the framed envelope as received
(:func:`gcx.crypto.envelope_digest`), the recipient organisation and the
gateway that received it, and when. It is signed (DSSE,
``application/vnd.gcx.receipt+json``) with the recipient organisation's
signing key, so anyone holding that key's certificate can check it offline.

Payload (``gcx.receipt/1``, canonical JSON)::

    {"format": "gcx.receipt/1", "envelope_id": 32 hex,
     "envelope_digest": "sha256:" + 64 hex,
     "recipient": organisation code, "gateway": receiving gateway name,
     "received_at": RFC 3339 UTC, "outcome": "accepted" | "refused",
     "refusal": {"code", "message"} | null,
     "unknown_addresses": [addresses at the recipient it could not resolve]}

``refusal`` is present exactly when the outcome is ``refused``: a refusal is
signed too, so the sender can show a non-delivery report it can prove. An
accepted envelope may still list ``unknown_addresses`` (some people or
mailboxes named in it do not exist there); the sender reports those as not
delivered while the rest were.

There is one receipt per recipient organisation: a gateway hosting two of
the recipients returns two receipts, each signed by its own organisation.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gcx.errors import OrganisationCodeInvalid, ReceiptInvalid
from gcx.protocol.directory import canonical_json
from gcx.protocol.documents import Time, load_model
from gcx.protocol.identifiers import check_organisation_code

FORMAT = "gcx.receipt/1"
PAYLOAD_TYPE = "application/vnd.gcx.receipt+json"
MAX_UNKNOWN_ADDRESSES = 1000


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Refusal(_Model):
    code: str = Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$", max_length=64)
    message: str = Field(min_length=1, max_length=1000)


class Receipt(_Model):
    format: Literal["gcx.receipt/1"] = "gcx.receipt/1"
    envelope_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    envelope_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    recipient: str
    gateway: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    received_at: Time
    outcome: Literal["accepted", "refused"]
    refusal: Refusal | None = None
    unknown_addresses: tuple[Annotated[str, Field(min_length=1, max_length=320)], ...] = Field(
        default=(), max_length=MAX_UNKNOWN_ADDRESSES
    )

    @field_validator("recipient")
    @classmethod
    def _check_recipient(cls, value: str) -> str:
        try:
            return check_organisation_code(value)
        except OrganisationCodeInvalid as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _refusal_matches_outcome(self) -> Self:
        if (self.outcome == "refused") != (self.refusal is not None):
            raise ValueError("a refusal is given exactly when the outcome is refused")
        return self

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, payload: bytes) -> Receipt:
        try:
            return load_model(cls, payload)
        except (ValidationError, ValueError) as exc:
            raise ReceiptInvalid("The receipt does not match the gcx.receipt/1 format.") from exc


def accepted_receipt(
    *,
    envelope_id: str,
    envelope_digest: str,
    recipient: str,
    gateway: str,
    now: dt.datetime,
    unknown_addresses: tuple[str, ...] = (),
) -> Receipt:
    return Receipt(
        envelope_id=envelope_id,
        envelope_digest=envelope_digest,
        recipient=recipient,
        gateway=gateway,
        received_at=now,
        outcome="accepted",
        unknown_addresses=unknown_addresses,
    )


def refused_receipt(
    *,
    envelope_id: str,
    envelope_digest: str,
    recipient: str,
    gateway: str,
    now: dt.datetime,
    code: str,
    message: str,
) -> Receipt:
    """A signed refusal; ``code`` and ``message`` are the gcx error the receiver raised."""
    return Receipt(
        envelope_id=envelope_id,
        envelope_digest=envelope_digest,
        recipient=recipient,
        gateway=gateway,
        received_at=now,
        outcome="refused",
        refusal=Refusal(code=code, message=message[:1000]),
    )


def check_receipt_matches(
    receipt: Receipt, *, envelope_id: str, envelope_digest: str, recipient: str
) -> None:
    """Refuse a receipt that is not for this envelope, these exact bytes and this recipient.

    A receipt for other bytes proves nothing about what we sent, even when
    its signature is good, so the sender must not store it as proof.
    """
    if receipt.envelope_id != envelope_id:
        raise ReceiptInvalid(
            f"The receipt is for envelope {receipt.envelope_id}, not {envelope_id}."
        )
    if receipt.envelope_digest != envelope_digest:
        raise ReceiptInvalid(
            f"The receipt for envelope {envelope_id} covers different bytes from those sent."
        )
    if receipt.recipient != recipient:
        raise ReceiptInvalid(
            f"The receipt for envelope {envelope_id} is from {receipt.recipient}, not {recipient}."
        )
