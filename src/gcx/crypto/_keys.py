"""Key generation and storage at rest.

Private keys are written as encrypted PKCS#8 PEM (a published format any
OpenSSL can read with the passphrase), with file mode 0600, and never leave
the process that made them. The hybrid encryption key (ML-KEM-768 + X25519,
as HPKE uses it) is stored as its two component keys, each in its own
encrypted PKCS#8 block, in one file.
"""

from __future__ import annotations

import base64
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519

from gcx.errors import CryptoError, KeyDecryptionFailed, SignatureInvalid

_PEM_END = b"-----END ENCRYPTED PRIVATE KEY-----"


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key; sign-only, the private half never serialised in clear."""

    _key: ed25519.Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ed25519.Ed25519PrivateKey.generate())

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    @property
    def public(self) -> VerifyKey:
        return VerifyKey(self._key.public_key())


@dataclass(frozen=True)
class VerifyKey:
    """An Ed25519 public key. :meth:`verify` raises, it never returns False."""

    _key: ed25519.Ed25519PublicKey

    def verify(self, signature: bytes, data: bytes) -> None:
        try:
            self._key.verify(signature, data)
        except InvalidSignature as exc:
            raise SignatureInvalid() from exc

    def raw(self) -> bytes:
        return self._key.public_bytes_raw()

    def b64(self) -> str:
        return base64.b64encode(self.raw()).decode()

    @classmethod
    def from_raw(cls, raw: bytes) -> VerifyKey:
        try:
            return cls(ed25519.Ed25519PublicKey.from_public_bytes(raw))
        except ValueError as exc:
            raise CryptoError("The public signing key is not a valid Ed25519 key.") from exc

    @classmethod
    def from_b64(cls, text: str) -> VerifyKey:
        try:
            raw = base64.b64decode(text, validate=True)
        except ValueError as exc:
            raise CryptoError("The public signing key is not valid base64.") from exc
        return cls.from_raw(raw)


@dataclass(frozen=True)
class EncryptionKey:
    """The hybrid ML-KEM-768 + X25519 private key that HPKE opens envelopes with."""

    _mlkem: mlkem.MLKEM768PrivateKey
    _x25519: x25519.X25519PrivateKey

    @classmethod
    def generate(cls) -> EncryptionKey:
        return cls(mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate())

    # Derived once and kept: a gateway seals every message it sends to its own
    # organisation too (the sent copy), and deriving the key and parsing it again
    # for HPKE cost about 45 µs a message, a tenth of the seal.
    @functools.cached_property
    def public(self) -> EncryptionPublicKey:
        return EncryptionPublicKey(
            self._mlkem.public_key().public_bytes_raw()
            + self._x25519.public_key().public_bytes_raw()
        )

    def hpke_key(self) -> hpke.MLKEM768X25519PrivateKey:
        return hpke.MLKEM768X25519PrivateKey(self._mlkem, self._x25519)


_MLKEM768_PUBLIC_LEN = 1184
_X25519_PUBLIC_LEN = 32


@dataclass(frozen=True)
class EncryptionPublicKey:
    """The encoded hybrid public key: the ML-KEM-768 key then the X25519 key (1,216 bytes)."""

    encoded: bytes

    def __post_init__(self) -> None:
        if len(self.encoded) != _MLKEM768_PUBLIC_LEN + _X25519_PUBLIC_LEN:
            raise CryptoError("The encryption public key is not an ML-KEM-768 + X25519 key.")

    def b64(self) -> str:
        return base64.b64encode(self.encoded).decode()

    @classmethod
    def from_b64(cls, text: str) -> EncryptionPublicKey:
        try:
            return cls(base64.b64decode(text, validate=True))
        except ValueError as exc:
            raise CryptoError("The encryption public key is not valid base64.") from exc

    def hpke_key(self) -> hpke.MLKEM768X25519PublicKey:
        return self._parsed

    # Parsed on first use and kept with the key: parsing costs about a fifth of a
    # seal, and a key held for a directory entry seals many envelopes. (A frozen
    # dataclass still lets cached_property write to the instance's __dict__.)
    @functools.cached_property
    def _parsed(self) -> hpke.MLKEM768X25519PublicKey:
        try:
            m = mlkem.MLKEM768PublicKey.from_public_bytes(self.encoded[:_MLKEM768_PUBLIC_LEN])
            x = x25519.X25519PublicKey.from_public_bytes(self.encoded[_MLKEM768_PUBLIC_LEN:])
        except ValueError as exc:
            raise CryptoError("The encryption public key does not decode.") from exc
        return hpke.MLKEM768X25519PublicKey(m, x)


def _encrypt_pkcs8(key: object, passphrase: bytes) -> bytes:
    serialisable = key  # every private key class here has private_bytes()
    return serialisable.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def _write_private(path: Path, data: bytes) -> None:
    # Created with 0600 from the start so the key is never readable by others,
    # not even between a write and a chmod.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _load_blocks(path: Path, passphrase: bytes) -> list[object]:
    data = path.read_bytes()
    blocks = [b + _PEM_END + b"\n" for b in data.split(_PEM_END) if b.strip()]
    keys: list[object] = []
    for block in blocks:
        try:
            keys.append(serialization.load_pem_private_key(block, password=passphrase))
        except (ValueError, TypeError) as exc:
            raise KeyDecryptionFailed(
                f"The private key in {path.name} could not be decrypted with the configured "
                "key passphrase."
            ) from exc
    return keys


def save_signing_key(path: Path, key: SigningKey, passphrase: bytes) -> None:
    _write_private(path, _encrypt_pkcs8(key._key, passphrase))


def load_signing_key(path: Path, passphrase: bytes) -> SigningKey:
    keys = _load_blocks(path, passphrase)
    key = keys[0] if len(keys) == 1 else None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyDecryptionFailed(f"{path.name} does not hold an Ed25519 key.")
    return SigningKey(key)


def save_encryption_key(path: Path, key: EncryptionKey, passphrase: bytes) -> None:
    _write_private(
        path, _encrypt_pkcs8(key._mlkem, passphrase) + _encrypt_pkcs8(key._x25519, passphrase)
    )


def load_encryption_key(path: Path, passphrase: bytes) -> EncryptionKey:
    keys = _load_blocks(path, passphrase)
    if (
        len(keys) != 2
        or not isinstance(keys[0], mlkem.MLKEM768PrivateKey)
        or not isinstance(keys[1], x25519.X25519PrivateKey)
    ):
        raise KeyDecryptionFailed(f"{path.name} does not hold an ML-KEM-768 + X25519 key pair.")
    return EncryptionKey(keys[0], keys[1])


def private_key_is_encrypted(path: Path) -> bool:
    """True if every PEM block in the file is an encrypted PKCS#8 key (a self-check)."""
    data = path.read_bytes()
    return (
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data and b"-----BEGIN PRIVATE KEY" not in data
    )
