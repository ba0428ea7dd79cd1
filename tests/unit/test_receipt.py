"""Receipts: the model, signing and verifying, and refusal of tampered or mismatched ones."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from pydantic import ValidationError

from gcx.crypto import EncryptionKey, SigningKey, VerifiedRoots, key_id, sign_document
from gcx.crypto._envelope import envelope_digest, seal_envelope
from gcx.crypto._receipt import sign_receipt, sign_receipts, verify_receipt
from gcx.errors import (
    ReceiptInvalid,
    SignatureInvalid,
)
from gcx.protocol.receipt import (
    Receipt,
    Refusal,
    accepted_receipt,
    refused_receipt,
)

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
ENVELOPE_ID = "0123456789abcdef0123456789abcdef"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def dwp_key() -> SigningKey:
    return SigningKey.generate()


def _accepted(**changes: object) -> Receipt:
    fields: dict[str, object] = {
        "envelope_id": ENVELOPE_ID,
        "envelope_digest": DIGEST,
        "recipient": "DWP",
        "gateway": "dwp-gw",
        "now": NOW,
        **changes,
    }
    return accepted_receipt(**fields)  # type: ignore[arg-type]


def _verify(document: bytes, key: SigningKey, **changes: str) -> Receipt:
    expected = {"envelope_id": ENVELOPE_ID, "envelope_digest": DIGEST, "recipient": "DWP"}
    expected.update(changes)
    return verify_receipt(document, key.public, **expected)


def test_accepted_receipt_round_trip(dwp_key: SigningKey) -> None:
    """A signed acceptance verifies and reads back as the same receipt."""
    receipt = _accepted(unknown_addresses=("nobody@DWP",))
    verified = _verify(sign_receipt(receipt, dwp_key), dwp_key)
    assert verified == receipt
    assert verified.accepted and verified.unknown_addresses == ("nobody@DWP",)
    assert verified.format == "gcx.receipt/1"


def test_refusal_receipt_round_trip(dwp_key: SigningKey) -> None:
    """A signed refusal verifies too, carrying the receiver's code and sentence."""
    receipt = refused_receipt(
        envelope_id=ENVELOPE_ID,
        envelope_digest=DIGEST,
        recipient="DWP",
        gateway="dwp-gw",
        now=NOW,
        code="envelope-expired",
        message="The envelope is past its expiry time.",
    )
    verified = _verify(sign_receipt(receipt, dwp_key), dwp_key)
    assert not verified.accepted
    assert verified.refusal == Refusal(
        code="envelope-expired", message="The envelope is past its expiry time."
    )


def test_receipt_over_a_real_envelope(dwp_key: SigningKey) -> None:
    """A receipt names the digest of the framed envelope, and verifies against it."""
    sealed = seal_envelope(
        kind="message",
        sender_org="E09000030",
        sender_user="alice",
        sender_key=SigningKey.generate(),
        recipients={"DWP": EncryptionKey.generate().public},
        marking="OFFICIAL",
        parts=[("a.txt", "text/plain", b"hello")],
        now=NOW,
    )
    digest = envelope_digest(sealed.signed_header, sealed.parts)
    receipt = _accepted(envelope_id=sealed.header.id, envelope_digest=digest)
    document = sign_receipt(receipt, dwp_key)
    assert _verify(document, dwp_key, envelope_id=sealed.header.id, envelope_digest=digest)


def test_tampered_receipt_refused(dwp_key: SigningKey) -> None:
    """A receipt whose payload was edited after signing (refused made accepted) fails."""
    document = sign_receipt(
        refused_receipt(
            envelope_id=ENVELOPE_ID,
            envelope_digest=DIGEST,
            recipient="DWP",
            gateway="dwp-gw",
            now=NOW,
            code="address-unknown",
            message="No such person.",
        ),
        dwp_key,
    )
    outer = json.loads(document)
    payload = json.loads(base64.b64decode(outer["payload"]))
    payload.update(outcome="accepted", refusal=None)
    outer["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    with pytest.raises(SignatureInvalid):
        _verify(json.dumps(outer).encode(), dwp_key)


@pytest.mark.parametrize("position", [5, 60, 150, -20])
def test_changed_byte_in_receipt_refused(dwp_key: SigningKey, position: int) -> None:
    """A changed byte anywhere in the signed receipt fails verification."""
    document = bytearray(sign_receipt(_accepted(), dwp_key))
    document[position] ^= 0x01
    with pytest.raises(SignatureInvalid):
        _verify(bytes(document), dwp_key)


def test_receipt_signed_by_another_key_refused(dwp_key: SigningKey) -> None:
    """Only the recipient organisation's key makes a receipt."""
    document = sign_receipt(_accepted(), SigningKey.generate())
    with pytest.raises(SignatureInvalid):
        _verify(document, dwp_key)


def test_other_signed_document_is_not_a_receipt(dwp_key: SigningKey) -> None:
    """A document signed under another payload type cannot pass as a receipt."""
    document = sign_document(
        "application/vnd.gcx.envelope+json",
        _accepted().to_bytes(),
        dwp_key,
        key_id(dwp_key.public),
    )
    with pytest.raises(SignatureInvalid):
        _verify(document, dwp_key)


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ({"envelope_id": "f" * 32}, "is for envelope"),
        ({"envelope_digest": "sha256:" + "cd" * 32}, "different bytes"),
        ({"recipient": "MPS"}, "is from DWP"),
    ],
)
def test_receipt_for_something_else_refused(
    dwp_key: SigningKey, expected: dict[str, str], message: str
) -> None:
    """A well-signed receipt for another envelope, other bytes or another recipient is refused."""
    document = sign_receipt(_accepted(), dwp_key)
    with pytest.raises(ReceiptInvalid, match=message) as caught:
        _verify(document, dwp_key, **expected)
    assert caught.value.code == "receipt-invalid"


def test_signed_receipt_outside_the_format_refused(dwp_key: SigningKey) -> None:
    """A genuinely signed payload that is not a gcx.receipt/1 is refused as invalid."""
    document = sign_document(
        "application/vnd.gcx.receipt+json",
        b'{"format":"gcx.receipt/2"}',
        dwp_key,
        key_id(dwp_key.public),
    )
    with pytest.raises(ReceiptInvalid, match="format"):
        _verify(document, dwp_key)


@pytest.mark.parametrize(
    "fields",
    [
        {"outcome": "refused"},
        {"outcome": "accepted", "refusal": {"code": "x", "message": "Y."}},
        {"outcome": "lost"},
        {"received_at": dt.datetime(2026, 11, 21, 9, 0)},
        {"envelope_digest": "ab" * 32},
        {"recipient": "dwp"},
        {"gateway": "DWP GW"},
        {"refusal": {"code": "Not Hyphenated", "message": "Y."}, "outcome": "refused"},
    ],
)
def test_receipt_model_refuses_inconsistent_fields(fields: dict[str, object]) -> None:
    """Outcome and refusal agree, times are aware, digests name their algorithm, codes are valid."""
    base: dict[str, object] = {
        "envelope_id": ENVELOPE_ID,
        "envelope_digest": DIGEST,
        "recipient": "DWP",
        "gateway": "dwp-gw",
        "received_at": NOW,
        "outcome": "accepted",
    }
    with pytest.raises(ValidationError):
        Receipt.model_validate({**base, **fields})


def test_receipt_bytes_round_trip() -> None:
    """A receipt read back from its bytes is the same receipt; garbage is refused."""
    receipt = _accepted()
    assert Receipt.from_bytes(receipt.to_bytes()) == receipt
    with pytest.raises(ReceiptInvalid):
        Receipt.from_bytes(b"{}")


# -- receipts signed together (gcx.batch-signed/1) ------------------------------------------


def _batch_document(document: bytes) -> dict[str, object]:
    value = json.loads(document)
    assert isinstance(value, dict) and value["format"] == "gcx.batch-signed/1"
    return value


def _compact(value: dict[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _batch(key: SigningKey, count: int = 5) -> tuple[list[Receipt], list[bytes]]:
    receipts = [_accepted(envelope_id=f"{i:032x}") for i in range(count)]
    return receipts, sign_receipts(receipts, key)


def test_receipts_signed_together_each_verify_on_their_own(dwp_key: SigningKey) -> None:
    """One signature for a batch: every receipt verifies alone (an evidence file holds one),
    and through a cache of verified roots, and reads back as the receipt that was signed."""
    receipts, documents = _batch(dwp_key)
    roots = VerifiedRoots()
    for receipt, document in zip(receipts, documents, strict=True):
        assert _verify(document, dwp_key, envelope_id=receipt.envelope_id) == receipt
        assert (
            verify_receipt(
                document,
                dwp_key.public,
                envelope_id=receipt.envelope_id,
                envelope_digest=DIGEST,
                recipient="DWP",
                roots=roots,
            )
            == receipt
        )
    assert len({_batch_document(d)["root"] for d in documents}) == 1


def test_a_batch_signed_receipt_tampered_anywhere_is_refused(dwp_key: SigningKey) -> None:
    """Another receipt's payload at this leaf, a changed path hash, another leaf index, the
    root of another batch, another organisation's key, a re-serialised form: all refused."""
    receipts, documents = _batch(dwp_key)
    first = _batch_document(documents[0])
    second = _batch_document(documents[1])
    path = list(first["path"])  # type: ignore[call-overload]
    flipped = bytearray(base64.b64decode(path[0]))
    flipped[0] ^= 0x01
    _, others = _batch(dwp_key, 6)  # another batch: another tree, another root
    tampered = [
        {**first, "payload": second["payload"]},
        {**first, "path": [base64.b64encode(bytes(flipped)).decode(), *path[1:]]},
        {**first, "leaf": 1},
        {**first, "root": _batch_document(others[0])["root"]},
    ]
    for value in tampered:
        with pytest.raises(SignatureInvalid):
            _verify(_compact(value), dwp_key, envelope_id=receipts[0].envelope_id)
    with pytest.raises(SignatureInvalid):
        _verify(documents[0], SigningKey.generate(), envelope_id=receipts[0].envelope_id)
    with pytest.raises(SignatureInvalid):
        _verify(json.dumps(first).encode(), dwp_key, envelope_id=receipts[0].envelope_id)


def test_a_genuine_batch_signed_receipt_for_another_envelope_is_refused(
    dwp_key: SigningKey,
) -> None:
    """Signed by the right key but for another envelope (or other bytes): receipt-invalid."""
    receipts, documents = _batch(dwp_key)
    with pytest.raises(ReceiptInvalid):
        _verify(documents[0], dwp_key, envelope_id=receipts[1].envelope_id)
    with pytest.raises(ReceiptInvalid):
        _verify(documents[0], dwp_key, envelope_id=receipts[0].envelope_id, recipient="MPS")


def test_a_root_verified_under_one_key_is_not_trusted_for_another(dwp_key: SigningKey) -> None:
    """The cache of verified roots remembers the key: another organisation's key is refused."""
    receipts, documents = _batch(dwp_key)
    roots = VerifiedRoots()
    expected = {"envelope_digest": DIGEST, "recipient": "DWP"}
    verify_receipt(
        documents[0], dwp_key.public, envelope_id=receipts[0].envelope_id, roots=roots, **expected
    )
    with pytest.raises(SignatureInvalid):
        verify_receipt(
            documents[1],
            SigningKey.generate().public,
            envelope_id=receipts[1].envelope_id,
            roots=roots,
            **expected,
        )
