"""Batch signatures: one Ed25519 signature over the Merkle root of many documents.

Why: verifying an Ed25519 signature costs about 100 µs and signing about 30 µs,
a large part of what a gateway spends on a small service call. When several
documents are signed at about the same moment by the same key, one signature
over the Merkle tree of all of them does, and each document carries the path
from its own leaf to the signed root (as X-Road's signer does when busy). A
verifier that has seen the root once (a :class:`VerifiedRoots` cache) checks
the next document of the same batch with a few SHA-256 operations.

Format ``gcx.batch-signed/1`` (specified in ``docs/protocol.md``), compact
JSON with exactly these keys in this order::

    {"format": "gcx.batch-signed/1",
     "payloadType": TYPE, "payload": BASE64,
     "leaf": INDEX, "path": [BASE64 of 32 bytes, ...],
     "root": ROOT}

``ROOT`` is a DSSE document (:mod:`gcx.crypto._dsse`, as a JSON string) of
type :data:`ROOT_TYPE` whose payload is ``{"format": "gcx.batch-root/1",
"hash": "sha256", "size": N, "root": HEX}``. The tree is RFC 9162's (the one
:mod:`gcx.crypto._merkle` builds for the audit log): the leaf for a document
is ``SHA-256(0x00 || PAE(TYPE, payload))``, DSSE's own pre-authentication
encoding, so the type is bound as in a plain DSSE signature; ``path`` is the
RFC 9162 inclusion proof of leaf ``INDEX`` in a tree of ``N`` leaves.

As for DSSE documents, exactly one serialisation is accepted: the reader
rebuilds the canonical form from what it parsed and requires byte equality,
so nothing can change in transit under a still-valid signature. Any failure
raises :class:`~gcx.errors.SignatureInvalid`, saying no more.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from gcx.crypto._dsse import pae, parse_document, sign_document, verify_document
from gcx.crypto._keys import SigningKey, VerifyKey
from gcx.errors import CryptoError, SignatureInvalid
from gcx.protocol import strict_json

BATCH_FORMAT = "gcx.batch-signed/1"
ROOT_FORMAT = "gcx.batch-root/1"
ROOT_TYPE = "application/vnd.gcx.batch-root+json"
# A verifier refuses larger trees: no signer needs them, and the path stays short.
MAX_BATCH = 1 << 16
_KEYS = ["format", "payloadType", "payload", "leaf", "path", "root"]
_ROOT_KEYS = ["format", "hash", "size", "root"]


def _leaf_hash(payload_type: str, payload: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + pae(payload_type, payload)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the RFC 9162 tree, leaves first; an odd last node is carried up."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        level = levels[-1]
        above = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            above.append(level[-1])
        levels.append(above)
    return levels


def _inclusion_path(levels: list[list[bytes]], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 section 2.1.3.1, from the levels built above."""
    path = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):  # a carried node has no sibling at this level
            path.append(level[sibling])
        index >>= 1
    return path


def _root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 section 2.1.3.2); ValueError if it cannot."""
    if not 0 <= index < size:
        raise ValueError("the leaf index is outside the tree")
    fn, sn, node = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            raise ValueError("the path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            node = _node(sibling, node)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            node = _node(node, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the path is shorter than the tree is deep")
    return node


def _serialise(
    payload_type: str, payload_b64: str, leaf: int, path: list[str], root_document: str
) -> bytes:
    document = {
        "format": BATCH_FORMAT,
        "payloadType": payload_type,
        "payload": payload_b64,
        "leaf": leaf,
        "path": path,
        "root": root_document,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _root_payload(size: int, root: bytes) -> bytes:
    statement = {"format": ROOT_FORMAT, "hash": "sha256", "size": size, "root": root.hex()}
    return json.dumps(statement, separators=(",", ":")).encode()


def sign_batch(documents: Sequence[tuple[str, bytes]], key: SigningKey, key_id: str) -> list[bytes]:
    """Sign ``(payload type, payload)`` pairs with one signature; one document for each, in order.

    A batch of one is valid too (its path is empty): a signer never waits for
    company.
    """
    if not 1 <= len(documents) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} documents")
    levels = _levels([_leaf_hash(kind, payload) for kind, payload in documents])
    root_document = sign_document(
        ROOT_TYPE, _root_payload(len(documents), levels[-1][0]), key, key_id
    ).decode()
    signed = []
    for index, (kind, payload) in enumerate(documents):
        path = [base64.b64encode(h).decode() for h in _inclusion_path(levels, index)]
        signed.append(
            _serialise(kind, base64.b64encode(payload).decode(), index, path, root_document)
        )
    return signed


def is_batch_signed(document: bytes) -> bool:
    """True if ``document`` claims to be ``gcx.batch-signed/1`` (checks nothing else)."""
    return document.startswith(b'{"format":"' + BATCH_FORMAT.encode() + b'"')


def _canonical_b64(text: Any, length: int | None = None) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    value = base64.b64decode(text, validate=True)
    if base64.b64encode(value).decode() != text or (length is not None and len(value) != length):
        raise ValueError("not canonical base64 of the expected length")
    return value


def _parse_batch(document: bytes) -> tuple[str, bytes, int, list[bytes], str]:
    """(payload type, payload, leaf index, path, root document), in the canonical form only.

    The standard parser is enough here, and faster than strict_json: a form
    with duplicate keys, other spacing or escapes, or a number for a string
    fails the byte-for-byte comparison with the canonical form below.
    """
    try:
        value = json.loads(document)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc
    if not isinstance(value, dict) or list(value) != _KEYS or value["format"] != BATCH_FORMAT:
        raise ValueError("not the batch-signed keys in their order")
    payload_type, leaf, path, root_document = (
        value["payloadType"],
        value["leaf"],
        value["path"],
        value["root"],
    )
    if not isinstance(payload_type, str) or not isinstance(root_document, str):
        raise ValueError("not strings")
    if type(leaf) is not int or not isinstance(path, list) or len(path) > 64:
        raise ValueError("not a leaf index and a path")
    payload = _canonical_b64(value["payload"])
    hashes = [_canonical_b64(h, 32) for h in path]
    if _serialise(payload_type, value["payload"], leaf, path, root_document) != document:
        raise ValueError("not the canonical serialisation")
    return payload_type, payload, leaf, hashes, root_document


def _parse_root(root_document: bytes) -> tuple[str, int, bytes]:
    """(key id, tree size, root hash) a root document claims (its signature unchecked)."""
    root_type, payload, key_id, _ = parse_document(root_document)
    if root_type != ROOT_TYPE:
        raise ValueError("not a batch root")
    statement = strict_json.loads_object(payload)
    if list(statement) != _ROOT_KEYS or statement["format"] != ROOT_FORMAT:
        raise ValueError("not the batch root keys in their order")
    size, root = statement["size"], statement["root"]
    if statement["hash"] != "sha256" or type(size) is not int or not 1 <= size <= MAX_BATCH:
        raise ValueError("not a supported tree")
    if not isinstance(root, str) or len(root) != 64 or root != root.lower():
        raise ValueError("not a root hash")
    digest = bytes.fromhex(root)
    if _root_payload(size, digest) != payload:
        raise ValueError("not the canonical root statement")
    return key_id, size, digest


class VerifiedRoots:
    """Root documents whose signature this process has checked, and by which key.

    Bounded (least recently used out). An entry holds what the root states and
    the exact public key that verified it, so a root verified under one key
    never counts for another, and a root seen again is neither parsed nor
    verified again. Thread-safe.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._seen: OrderedDict[str, tuple[str, int, bytes, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, root_document: str) -> tuple[str, int, bytes, bytes] | None:
        """(key id, size, root, raw key that verified it) for a root seen before."""
        with self._lock:
            found = self._seen.get(root_document)
            if found is not None:
                self._seen.move_to_end(root_document)
            return found

    def add(self, root_document: str, key_id: str, size: int, root: bytes, key: VerifyKey) -> None:
        with self._lock:
            self._seen[root_document] = (key_id, size, root, key.raw())
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)


def verify_signed(
    document: bytes,
    payload_type: str,
    trusted: Mapping[str, VerifyKey],
    *,
    roots: VerifiedRoots | None = None,
) -> bytes:
    """The payload of a plain DSSE or a ``gcx.batch-signed/1`` document signed by ``trusted``.

    A batch-signed document is accepted only if its leaf, with its path, leads
    to the root its root document states, and that root document is signed by
    one of ``trusted`` (key id -> key); ``roots`` remembers roots already
    checked, so a batch's signature is verified once. Every failure raises
    :class:`~gcx.errors.SignatureInvalid`.
    """
    if not is_batch_signed(document):
        return verify_document(document, payload_type, trusted)
    try:
        found_type, payload, leaf, path, root_text = _parse_batch(document)
        cached = roots.get(root_text) if roots is not None else None
        if cached is None:
            key_id, size, root = _parse_root(root_text.encode())
        else:
            key_id, size, root, _ = cached
        reached = _root_from_path(_leaf_hash(found_type, payload), leaf, size, path)
    except (ValueError, binascii.Error) as exc:
        raise SignatureInvalid(
            "The signed document is not a batch-signed document in its canonical form."
        ) from exc
    if found_type != payload_type:
        raise SignatureInvalid("The signed document is not of the expected type.")
    key = trusted.get(key_id)
    if key is None or reached != root:
        raise SignatureInvalid()
    if cached is None or cached[3] != key.raw():
        verify_document(root_text.encode(), ROOT_TYPE, {key_id: key})
        if roots is not None:
            roots.add(root_text, key_id, size, root, key)
    return payload


def signed_payload(document: bytes) -> bytes:
    """The payload of a plain DSSE or batch-signed document WITHOUT checking any signature.

    Only for choosing which key to verify with; verify with :func:`verify_signed`
    before trusting any of it.
    """
    try:
        if is_batch_signed(document):
            return _parse_batch(document)[1]
        return parse_document(document)[1]
    except (ValueError, binascii.Error) as exc:
        raise CryptoError("The signed document is not a DSSE or batch-signed document.") from exc
