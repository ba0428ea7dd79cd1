"""Signing people in: argon2id passwords, TOTP second factors, secrets sealed at rest.

Passwords are hashed with argon2id (RFC 9106) and kept in the PHC string
format, so the parameters travel with each hash and can be raised later
without a migration: ``password_needs_rehash`` tells when. The parameters are
OWASP's minimum for argon2id (19 MiB, two passes, one lane), which costs
tens of milliseconds here: slow for an attacker with a stolen table, bearable
for a sign-in.

The second factor is TOTP (RFC 6238: HMAC-SHA1, six digits, 30-second steps),
the kind every authenticator app reads from an ``otpauth://`` address. A code
is accepted one step either side of now for clock drift, and the step it
matched is returned so that the caller can refuse the same code twice.

TOTP secrets must be readable by the server to check a code, so they cannot
be hashed; they are sealed with AES-256-GCM under a key derived (HKDF-SHA256)
from the service's key passphrase, with the account bound in as associated
data so that a sealed secret copied to another account does not open.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import os
import secrets

from cryptography.exceptions import InvalidKey, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from gcx.errors import CryptoError

_ARGON2_MEMORY_KIB = 19_456
_ARGON2_ITERATIONS = 2
_ARGON2_LANES = 1
_TOTP_STEP = 30
_TOTP_DIGITS = 6
_TOTP_SECRET_BYTES = 20  # 160 bits, the length RFC 4226 recommends for HMAC-SHA1
_SEAL_VERSION = b"\x01"


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` in PHC string format."""
    kdf = Argon2id(
        salt=os.urandom(16),
        length=32,
        iterations=_ARGON2_ITERATIONS,
        lanes=_ARGON2_LANES,
        memory_cost=_ARGON2_MEMORY_KIB,
    )
    return kdf.derive_phc_encoded(password.encode())


def password_matches(password: str, encoded: str) -> bool:
    """Whether ``password`` matches the stored PHC hash (compared in constant time).

    A damaged or foreign hash never matches: the person is refused like any other.
    """
    try:
        Argon2id.verify_phc_encoded(password.encode(), encoded)
    except (InvalidKey, ValueError):
        return False
    return True


def password_needs_rehash(encoded: str) -> bool:
    """Whether a stored hash was made with weaker parameters than today's."""
    wanted = f"m={_ARGON2_MEMORY_KIB},t={_ARGON2_ITERATIONS},p={_ARGON2_LANES}"
    return not encoded.startswith("$argon2id$v=19$") or f"${wanted}$" not in encoded


def dummy_password_check(password: str) -> None:
    """Spend the time a real check would, so an unknown account is not told apart by timing."""
    password_matches(password, _dummy_hash())


@functools.cache
def _dummy_hash() -> str:
    # Made on first use rather than at import: every gcx command imports this
    # module, and an Argon2id hash costs a noticeable part of a second that a
    # command which never checks a password should not pay.
    return hash_password(secrets.token_urlsafe(16))


def new_totp_secret() -> bytes:
    return secrets.token_bytes(_TOTP_SECRET_BYTES)


def totp_secret_text(secret: bytes) -> str:
    """The secret in base32 without padding, as authenticator apps take it typed in."""
    return base64.b32encode(secret).decode().rstrip("=")


def totp_secret_from_text(text: str) -> bytes:
    cleaned = text.replace(" ", "").upper()
    try:
        return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except ValueError as exc:
        raise CryptoError(
            "That is not a second-factor secret (base32: the letters A to Z and digits 2 to 7)."
        ) from exc


def _totp(secret: bytes) -> TOTP:
    return TOTP(secret, _TOTP_DIGITS, hashes.SHA1(), _TOTP_STEP)  # noqa: S303 - RFC 6238 default


def totp_code(secret: bytes, at: dt.datetime) -> str:
    """The code an authenticator shows at ``at`` (used by the demo and the tests)."""
    return _totp(secret).generate(int(at.timestamp())).decode()


def totp_step_matched(secret: bytes, code: str, at: dt.datetime) -> int | None:
    """The time step ``code`` is valid for, within one step of ``at``; None if none."""
    cleaned = code.replace(" ", "").strip()
    if len(cleaned) != _TOTP_DIGITS or not cleaned.isdigit():
        return None
    totp = _totp(secret)
    now = int(at.timestamp())
    for drift in (0, -1, 1):
        moment = now + drift * _TOTP_STEP
        try:
            totp.verify(cleaned.encode(), moment)
        except InvalidToken:
            continue
        return moment // _TOTP_STEP
    return None


def totp_uri(secret: bytes, account: str, issuer: str) -> str:
    """The ``otpauth://`` address an authenticator app reads (Key Uri Format)."""
    return _totp(secret).get_provisioning_uri(account, issuer)


def secret_sealing_key(passphrase: bytes, purpose: str) -> bytes:
    """A 256-bit key for sealing stored secrets, derived from the service's passphrase."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"gcx {purpose}".encode()
    ).derive(passphrase)


def seal_secret(key: bytes, secret: bytes, bound_to: str) -> str:
    """``secret`` encrypted under ``key``, usable only with the same ``bound_to``."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, secret, _SEAL_VERSION + bound_to.encode())
    return base64.urlsafe_b64encode(_SEAL_VERSION + nonce + sealed).decode()


def open_secret(key: bytes, sealed: str, bound_to: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
    except ValueError as exc:
        raise CryptoError("A sealed secret is damaged.") from exc
    if raw[:1] != _SEAL_VERSION or len(raw) < 29:
        raise CryptoError("A sealed secret is damaged.")
    try:
        return AESGCM(key).decrypt(raw[1:13], raw[13:], _SEAL_VERSION + bound_to.encode())
    except InvalidTag as exc:
        raise CryptoError("A sealed secret does not open with this service's key.") from exc
