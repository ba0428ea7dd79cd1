"""Signed documents in the DSSE v1 envelope format.

DSSE (Dead Simple Signing Envelope, secure-systems-lab) signs the exact
payload bytes together with their type, so there is no canonicalisation step
to get wrong, and it holds a list of signatures so a post-quantum signature
can later sit beside Ed25519 without a format break. The signature input is
the DSSE pre-authentication encoding::

    "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

The serialised form is JSON: ``{"payloadType", "payload" (base64),
"signatures": [{"keyid", "sig" (base64)}]}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from gcx.crypto._keys import SigningKey, VerifyKey
from gcx.errors import CryptoError, SignatureInvalid


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding of a payload and its type."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def sign_document(payload_type: str, payload: bytes, key: SigningKey, key_id: str) -> bytes:
    """Sign ``payload`` and return the DSSE JSON envelope as bytes."""
    signature = key.sign(pae(payload_type, payload))
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key_id, "sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def verify_document(document: bytes, payload_type: str, trusted: Mapping[str, VerifyKey]) -> bytes:
    """Return the payload if a signature by one of ``trusted`` (key id -> key) verifies.

    Any failure, whether malformed JSON, wrong type or a bad signature, raises
    :class:`SignatureInvalid`; the caller learns nothing more, on purpose.
    """
    try:
        envelope = json.loads(document)
        if envelope["payloadType"] != payload_type:
            raise SignatureInvalid("The signed document is not of the expected type.")
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = envelope["signatures"]
        if not isinstance(signatures, list):
            raise SignatureInvalid()
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise SignatureInvalid("The signed document is not a DSSE envelope.") from exc
    message = pae(payload_type, payload)
    for entry in signatures:
        if not isinstance(entry, dict):
            continue
        key = trusted.get(str(entry.get("keyid")))
        if key is None:
            continue
        try:
            key.verify(base64.b64decode(str(entry.get("sig")), validate=True), message)
        except (SignatureInvalid, ValueError, binascii.Error):
            continue
        return payload
    raise SignatureInvalid()


def signature_key_ids(document: bytes) -> list[str]:
    """The key ids a DSSE envelope claims to be signed by (unverified)."""
    try:
        return [str(s["keyid"]) for s in json.loads(document)["signatures"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise CryptoError("The signed document is not a DSSE envelope.") from exc
