"""OpenID Connect for people: PKCE and the checking of ID tokens (through PyJWT).

An organisation may let its staff sign in to its gateway through its own
identity provider. The gateway is then a relying party using the
authorization code flow with PKCE (RFC 7636, S256), and trusts an ID token
only when its signature verifies against a key from the provider's published
JWKS and its issuer, audience, expiry and nonce are right (OpenID Connect
Core 1.0, section 3.1.3.7). Only asymmetric algorithms are accepted: an
``HS256`` token signed with the client secret, or one with ``alg: none``,
is refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

import jwt

from gcx.errors import CryptoError

ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]
_LEEWAY_SECONDS = 60


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def verify_id_token(
    token: str,
    jwks: dict[str, Any],
    *,
    issuer: str,
    audience: str,
    nonce: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """The claims of ``token`` once every check passes; raises CryptoError otherwise."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in ALGORITHMS:
            raise CryptoError("The identity provider's token uses an algorithm gcx refuses.")
        key_set = jwt.PyJWKSet.from_dict(jwks)
        kid = header.get("kid")
        candidates = [k for k in key_set.keys if kid is None or k.key_id == kid]
        if not candidates:
            raise CryptoError("The identity provider's token is signed by an unknown key.")
        claims: dict[str, Any] = jwt.decode(
            token,
            candidates[0],
            algorithms=ALGORITHMS,
            audience=audience,
            issuer=issuer,
            leeway=_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"], "verify_iat": False},
        )
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise CryptoError("The identity provider's token did not verify.") from exc
    # PyJWT compares exp with the wall clock; gcx's clock is an argument, so check it too.
    expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
    if expires + dt.timedelta(seconds=_LEEWAY_SECONDS) < now:
        raise CryptoError("The identity provider's token has expired.")
    if not hmac.compare_digest(str(claims["nonce"]).encode(), nonce.encode()):
        raise CryptoError("The identity provider's token was not issued for this sign-in.")
    return claims
