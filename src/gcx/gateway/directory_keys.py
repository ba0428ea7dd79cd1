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
from collections.abc import Mapping

from gcx import crypto
from gcx.protocol import directory as dirproto

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


@functools.lru_cache(maxsize=_HELD)
def verify_key_with_id(encoded: str) -> tuple[str, crypto.VerifyKey]:
    """An Ed25519 key from the directory with its key id (what a signature names)."""
    key = verify_key(encoded)
    return crypto.key_id(key), key


# The directory a gateway holds is one object until the next is accepted: its index of
# signing keys by id is made once for it, not once per document verified against "any
# organisation" (a ping, a recall, a read receipt), which parsed every member's key each
# time and grows with the network. One entry; replaced whole, so threads see either.
_INDEX: tuple[dirproto.Directory, Mapping[str, crypto.VerifyKey]] | None = None


def signing_keys_by_id(directory: dirproto.Directory) -> Mapping[str, crypto.VerifyKey]:
    """Every signing key ``directory`` lists for an organisation, by key id."""
    global _INDEX
    held = _INDEX
    if held is not None and held[0] is directory:
        return held[1]
    listed = [o.signing_key for o in directory.organisations if o.signing_key]
    index = dict(verify_key_with_id(encoded) for encoded in listed)
    _INDEX = (directory, index)
    return index
