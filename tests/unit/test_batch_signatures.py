"""Batch signatures (gcx.batch-signed/1): one signature over a Merkle root, a path per document."""

from __future__ import annotations

import base64
import json

import pytest

from gcx import crypto
from gcx.crypto import _batch
from gcx.crypto._merkle import tree_head
from gcx.errors import SignatureInvalid

TYPE = "application/vnd.gcx.call-request+json"


@pytest.fixture(scope="module")
def key() -> tuple[crypto.SigningKey, str]:
    signing = crypto.SigningKey.generate()
    return signing, crypto.key_id(signing.public)


def _trusted(key: tuple[crypto.SigningKey, str]) -> dict[str, crypto.VerifyKey]:
    return {key[1]: key[0].public}


def _batch_of(key: tuple[crypto.SigningKey, str], n: int) -> list[bytes]:
    return crypto.sign_batch([(TYPE, b'{"n":%d}' % i) for i in range(n)], key[0], key[1])


def _edit(document: bytes, **changes: object) -> bytes:
    value = json.loads(document)
    value.update(changes)
    return json.dumps(value, separators=(",", ":")).encode()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 33])
def test_every_document_of_a_batch_verifies_to_its_own_payload(
    key: tuple[crypto.SigningKey, str], n: int
) -> None:
    """Each of n documents verifies, alone and through a shared cache, to its own payload."""
    roots = crypto.VerifiedRoots()
    for i, document in enumerate(_batch_of(key, n)):
        assert crypto.verify_signed(document, TYPE, _trusted(key)) == b'{"n":%d}' % i
        assert crypto.verify_signed(document, TYPE, _trusted(key), roots=roots) == b'{"n":%d}' % i
        assert crypto.signed_payload(document) == b'{"n":%d}' % i


def test_the_root_is_the_rfc_9162_tree_over_the_dsse_encodings(
    key: tuple[crypto.SigningKey, str],
) -> None:
    """The signed root equals the audit log's Merkle tree head over PAE(type, payload) leaves."""
    payloads = [b"a", b"b", b"c", b"d", b"e"]
    document = crypto.sign_batch([(TYPE, p) for p in payloads], key[0], key[1])[0]
    root_document = json.loads(document)["root"].encode()
    statement = json.loads(crypto.verify_document(root_document, _batch.ROOT_TYPE, _trusted(key)))
    assert statement == {
        "format": "gcx.batch-root/1",
        "hash": "sha256",
        "size": 5,
        "root": tree_head([crypto.pae(TYPE, p) for p in payloads]).hex(),
    }


def test_a_plain_dsse_document_is_still_accepted(key: tuple[crypto.SigningKey, str]) -> None:
    """Documents signed one by one (format 1 peers) verify through the same recipe."""
    document = crypto.sign_document(TYPE, b"{}", key[0], key[1])
    assert crypto.verify_signed(document, TYPE, _trusted(key)) == b"{}"


def _tampered(documents: list[bytes]) -> dict[str, bytes]:
    third = documents[2]
    value = json.loads(third)
    path = list(value["path"])
    flipped = bytearray(base64.b64decode(path[0]))
    flipped[0] ^= 1
    root_value = json.loads(value["root"])
    statement = json.loads(base64.b64decode(root_value["payload"]))
    return {
        "payload changed": _edit(third, payload=base64.b64encode(b'{"n":9}').decode()),
        "payload of another leaf": _edit(third, payload=json.loads(documents[3])["payload"]),
        "leaf index changed": _edit(third, leaf=3),
        "leaf index outside the tree": _edit(third, leaf=99),
        "path element changed": _edit(third, path=[base64.b64encode(flipped).decode(), *path[1:]]),
        "path element dropped": _edit(third, path=path[:-1]),
        "path element added": _edit(third, path=[*path, path[0]]),
        "path swapped with another leaf's": _edit(third, path=json.loads(documents[0])["path"]),
        "type changed": _edit(third, payloadType="application/vnd.gcx.call-response+json"),
        "root statement size changed (signature kept)": _edit(
            third,
            root=json.dumps(
                {
                    **root_value,
                    "payload": base64.b64encode(
                        json.dumps({**statement, "size": 8}, separators=(",", ":")).encode()
                    ).decode(),
                },
                separators=(",", ":"),
            ),
        ),
        "extra key": third[:-1] + b',"note":"x"}',
        "spaces": third.replace(b'","', b'", "', 1),
        "keys reordered": json.dumps(
            dict(reversed(list(value.items()))), separators=(",", ":")
        ).encode(),
        "leaf as a string": _edit(third, leaf="2"),
        "not JSON": b'{"format":"gcx.batch-signed/1",',
        "deeply nested": b'{"format":"gcx.batch-signed/1","payloadType":' + b"[" * 100_000,
    }


_CASES = list(
    _tampered(
        crypto.sign_batch([(TYPE, b"%d" % i) for i in range(6)], crypto.SigningKey.generate(), "k")
    )
)


@pytest.mark.parametrize("case", _CASES)
def test_a_tampered_batch_document_is_refused(
    key: tuple[crypto.SigningKey, str], case: str
) -> None:
    """Every change to a document, its path or its root is refused, cache or no cache."""
    document = _tampered(_batch_of(key, 6))[case]
    with pytest.raises(SignatureInvalid):
        crypto.verify_signed(document, TYPE, _trusted(key))
    roots = crypto.VerifiedRoots()
    for good in _batch_of(key, 6)[:1]:
        crypto.verify_signed(good, TYPE, _trusted(key), roots=roots)
    with pytest.raises(SignatureInvalid):
        crypto.verify_signed(document, TYPE, _trusted(key), roots=roots)


def test_a_root_signed_by_another_key_is_refused(key: tuple[crypto.SigningKey, str]) -> None:
    """A batch signed by a key that is not trusted is refused, even under the trusted key's id."""
    other = crypto.SigningKey.generate()
    document = crypto.sign_batch([(TYPE, b"x"), (TYPE, b"y")], other, key[1])[0]
    with pytest.raises(SignatureInvalid):
        crypto.verify_signed(document, TYPE, _trusted(key))


def test_a_cached_root_does_not_count_for_another_key(key: tuple[crypto.SigningKey, str]) -> None:
    """A root verified under one key is verified again, and refused, under another."""
    roots = crypto.VerifiedRoots()
    documents = _batch_of(key, 3)
    crypto.verify_signed(documents[0], TYPE, _trusted(key), roots=roots)
    stranger = {key[1]: crypto.SigningKey.generate().public}
    with pytest.raises(SignatureInvalid):
        crypto.verify_signed(documents[1], TYPE, stranger, roots=roots)


def test_a_cached_root_still_needs_the_right_path(key: tuple[crypto.SigningKey, str]) -> None:
    """The cache skips the signature, never the inclusion proof."""
    roots = crypto.VerifiedRoots()
    documents = _batch_of(key, 4)
    crypto.verify_signed(documents[0], TYPE, _trusted(key), roots=roots)
    forged = _edit(documents[1], payload=base64.b64encode(b"forged").decode())
    with pytest.raises(SignatureInvalid):
        crypto.verify_signed(forged, TYPE, _trusted(key), roots=roots)


def test_a_batch_holds_one_document_or_more(key: tuple[crypto.SigningKey, str]) -> None:
    """An empty batch is a programming error, refused before anything is signed."""
    with pytest.raises(ValueError, match="batch"):
        crypto.sign_batch([], key[0], key[1])
