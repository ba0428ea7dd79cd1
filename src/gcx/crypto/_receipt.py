"""Signing and verifying receipts (``gcx.receipt/1``) as DSSE documents.

The receiving organisation signs with its own Ed25519 signing key (the one
its certificate from the network root binds to its code), not the gateway's
TLS key: the receipt is that organisation's statement, and stays checkable
offline, with the certificate, long after the TLS session has gone.

A receiving gateway that accepts many envelopes for one organisation at once
may sign their receipts together (:func:`sign_receipts`): one signature over
the Merkle root of the batch, each receipt a ``gcx.batch-signed/1`` document
carrying its own path to that root (:mod:`gcx.crypto._batch`). It does so only
for a sender that asked for them; :func:`verify_receipt` accepts both forms.
"""

from __future__ import annotations

from collections.abc import Sequence

from gcx.crypto._batch import VerifiedRoots, sign_batch, verify_signed
from gcx.crypto._dsse import sign_document
from gcx.crypto._keys import SigningKey, VerifyKey
from gcx.crypto._x509 import key_id
from gcx.protocol.receipt import PAYLOAD_TYPE, Receipt, check_receipt_matches


def sign_receipt(receipt: Receipt, key: SigningKey) -> bytes:
    """The receipt as a signed DSSE document, ready to return in the HTTP response."""
    return sign_document(PAYLOAD_TYPE, receipt.to_bytes(), key, key_id(key.public))


def sign_receipts(receipts: Sequence[Receipt], key: SigningKey) -> list[bytes]:
    """The receipts, in order, as ``gcx.batch-signed/1`` documents under one signature."""
    return sign_batch([(PAYLOAD_TYPE, r.to_bytes()) for r in receipts], key, key_id(key.public))


def verify_receipt(
    document: bytes,
    recipient_verify_key: VerifyKey,
    *,
    envelope_id: str,
    envelope_digest: str,
    recipient: str,
    roots: VerifiedRoots | None = None,
) -> Receipt:
    """Return the receipt if ``recipient`` signed it for exactly this envelope; raise otherwise.

    A bad or missing signature raises :class:`SignatureInvalid`; a signed
    receipt for another envelope, other bytes or another organisation raises
    :class:`ReceiptInvalid`. Both an acceptance and a refusal are returned:
    a signed refusal is as much evidence as an acceptance. A batch-signed
    receipt is accepted if its path leads to a root the key signed; ``roots``
    remembers roots already checked, so a batch costs one verification.
    """
    payload = verify_signed(
        document,
        PAYLOAD_TYPE,
        {key_id(recipient_verify_key): recipient_verify_key},
        roots=roots,
    )
    receipt = Receipt.from_bytes(payload)
    check_receipt_matches(
        receipt, envelope_id=envelope_id, envelope_digest=envelope_digest, recipient=recipient
    )
    return receipt
