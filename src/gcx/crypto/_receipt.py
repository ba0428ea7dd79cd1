"""Signing and verifying receipts (``gcx.receipt/1``) as DSSE documents.

The receiving organisation signs with its own Ed25519 signing key (the one
its certificate from the network root binds to its code), not the gateway's
TLS key: the receipt is that organisation's statement, and stays checkable
offline, with the certificate, long after the TLS session has gone.
"""

from __future__ import annotations

from gcx.crypto._dsse import sign_document, verify_document
from gcx.crypto._keys import SigningKey, VerifyKey
from gcx.crypto._x509 import key_id
from gcx.protocol.receipt import PAYLOAD_TYPE, Receipt, check_receipt_matches


def sign_receipt(receipt: Receipt, key: SigningKey) -> bytes:
    """The receipt as a signed DSSE document, ready to return in the HTTP response."""
    return sign_document(PAYLOAD_TYPE, receipt.to_bytes(), key, key_id(key.public))


def verify_receipt(
    document: bytes,
    recipient_verify_key: VerifyKey,
    *,
    envelope_id: str,
    envelope_digest: str,
    recipient: str,
) -> Receipt:
    """Return the receipt if ``recipient`` signed it for exactly this envelope; raise otherwise.

    A bad or missing signature raises :class:`SignatureInvalid`; a signed
    receipt for another envelope, other bytes or another organisation raises
    :class:`ReceiptInvalid`. Both an acceptance and a refusal are returned:
    a signed refusal is as much evidence as an acceptance.
    """
    payload = verify_document(
        document, PAYLOAD_TYPE, {key_id(recipient_verify_key): recipient_verify_key}
    )
    receipt = Receipt.from_bytes(payload)
    check_receipt_matches(
        receipt, envelope_id=envelope_id, envelope_digest=envelope_digest, recipient=recipient
    )
    return receipt
