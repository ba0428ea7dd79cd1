"""Bearer tokens for operators and API users.

Tokens carry 256 bits from the OS's CSPRNG, so a single SHA-256 is enough to
store them (a slow password hash adds nothing against a search of 2**256).
Lookups are by hash; the final comparison is constant-time anyway so that a
future change of lookup strategy cannot open a timing side channel.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token(prefix: str) -> str:
    """A fresh token such as ``gcxo_…``; the prefix tells a person what it is for."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_id(nbytes: int = 16) -> str:
    return secrets.token_hex(nbytes)
