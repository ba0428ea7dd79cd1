"""Public keys from the directory, parsed once and kept while the directory names them.

Every message sealed, every envelope verified and every receipt checked needs
a key the directory gives as base64; parsing it each time (an ML-KEM-768
public key in particular) costs as much as a fifth of the operation that
uses it. The cache is keyed by the encoded key itself, so a key that changes
in a new directory is a new entry, never a stale one; it is bounded, so keys
dropped from the directory fall out in time.
"""

from __future__ import annotations

import functools

from gcx import crypto

# Enough for every organisation of a large network, twice over (a key and its successor).
_HELD = 4096


@functools.lru_cache(maxsize=_HELD)
def verify_key(encoded: str) -> crypto.VerifyKey:
    """The Ed25519 key a directory entry gives as base64 (raises as ``VerifyKey.from_b64``)."""
    return crypto.VerifyKey.from_b64(encoded)


@functools.lru_cache(maxsize=_HELD)
def encryption_key(encoded: str) -> crypto.EncryptionPublicKey:
    """The hybrid HPKE key a directory entry gives as base64, parsed once."""
    return crypto.EncryptionPublicKey.from_b64(encoded)
