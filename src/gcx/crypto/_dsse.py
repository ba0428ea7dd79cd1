"""Signed documents in the DSSE v1 envelope format.

DSSE (Dead Simple Signing Envelope, secure-systems-lab) signs the exact
payload bytes together with their type, so there is no canonicalisation step
to get wrong, and it holds a list of signatures so a post-quantum signature
can later sit beside Ed25519 without a format break. The signature input is
the DSSE pre-authentication encoding::

    "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

The serialised form is JSON: ``{"payloadType", "payload" (base64),
"signatures": [{"keyid", "sig" (base64)}]}``.

gcx accepts a document only in the one form :func:`sign_document` writes:
compact JSON with exactly these keys in this order, exactly one signature,
by the key the reader expects, and canonical base64. The signature covers
the payload and its type but not the wrapper, so any other accepted form
would let bytes change in transit under a still-valid signature: an extra
field for a second parser to read, a second signature entry claiming a
signer that never signed, or a reordering that changes a digest taken over
the document (an envelope's digest is). Rather than list what may vary, the
reader rebuilds the canonical form from the values it parsed and requires
byte equality. A post-quantum signature beside Ed25519 will be a new format
version, not an extra entry a reader skips.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from gcx.crypto._keys import SigningKey, VerifyKey
from gcx.errors import CryptoError, SignatureInvalid
from gcx.protocol import strict_json


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding of a payload and its type."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def _serialise(payload_type: str, payload_b64: str, key_id: str, sig_b64: str) -> bytes:
    envelope = {
        "payloadType": payload_type,
        "payload": payload_b64,
        "signatures": [{"keyid": key_id, "sig": sig_b64}],
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def sign_document(payload_type: str, payload: bytes, key: SigningKey, key_id: str) -> bytes:
    """Sign ``payload`` and return the DSSE JSON envelope as bytes."""
    signature = key.sign(pae(payload_type, payload))
    return _serialise(
        payload_type,
        base64.b64encode(payload).decode(),
        key_id,
        base64.b64encode(signature).decode(),
    )


def _strict_b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    value = base64.b64decode(text, validate=True)
    # Unused low bits in the last character would give a second spelling.
    if base64.b64encode(value).decode() != text:
        raise ValueError("not canonical base64")
    return value


def parse_document(document: bytes) -> tuple[str, bytes, str, bytes]:
    """(payload type, payload, key id, signature) of a DSSE document in its one canonical form.

    Checks the form only, not the signature. Raises ``ValueError`` otherwise.
    """
    envelope = strict_json.loads_object(document)
    if list(envelope) != ["payloadType", "payload", "signatures"]:
        raise ValueError("not the DSSE keys in their order")
    signatures = envelope["signatures"]
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise ValueError("not exactly one signature")
    (entry,) = signatures
    if not isinstance(entry, dict) or list(entry) != ["keyid", "sig"]:
        raise ValueError("not the signature keys in their order")
    payload_type, key_id = envelope["payloadType"], entry["keyid"]
    if not isinstance(payload_type, str) or not isinstance(key_id, str):
        raise ValueError("not strings")
    payload = _strict_b64(envelope["payload"])
    signature = _strict_b64(entry["sig"])
    if _serialise(payload_type, envelope["payload"], key_id, entry["sig"]) != document:
        raise ValueError("not the canonical serialisation")
    return payload_type, payload, key_id, signature


def verify_document(document: bytes, payload_type: str, trusted: Mapping[str, VerifyKey]) -> bytes:
    """Return the payload if it is signed by one of ``trusted`` (key id -> key), in canonical form.

    Any failure, whether malformed or non-canonical JSON, a wrong type, a
    signature entry too many, an unknown key id or a bad signature, raises
    :class:`SignatureInvalid`; the caller learns nothing more, on purpose.
    """
    try:
        found_type, payload, key_id, signature = parse_document(document)
    except (ValueError, binascii.Error) as exc:
        raise SignatureInvalid(
            "The signed document is not a DSSE envelope in its canonical form."
        ) from exc
    if found_type != payload_type:
        raise SignatureInvalid("The signed document is not of the expected type.")
    key = trusted.get(key_id)
    if key is None:
        raise SignatureInvalid()
    try:
        key.verify(signature, pae(payload_type, payload))
    except (SignatureInvalid, ValueError) as exc:
        raise SignatureInvalid() from exc
    return payload


def signature_key_ids(document: bytes) -> list[str]:
    """The key id a DSSE envelope claims to be signed by (unverified), as a list."""
    try:
        return [parse_document(document)[2]]
    except (ValueError, binascii.Error) as exc:
        raise CryptoError("The signed document is not a DSSE envelope.") from exc


def unverified_payload(document: bytes) -> bytes:
    """The payload of a canonical DSSE document WITHOUT checking its signature.

    Only for choosing which key to verify with (a sender it names); verify
    with :func:`verify_document` before trusting any of it.
    """
    try:
        return parse_document(document)[1]
    except (ValueError, binascii.Error) as exc:
        raise CryptoError("The signed document is not a DSSE envelope.") from exc
