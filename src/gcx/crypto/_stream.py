"""Streaming encryption of files for bulk transfer (``gcx.transfer/1``).

The construction is STREAM (Hoang, Reyhanitabar, Rogaway and Vizár, "Online
authenticated-encryption and its nonce-reuse misuse-resistance", 2015), the
online AE that age and Tink's streaming AEAD use, over AES-256-GCM:

* A fresh 32-byte content key is drawn per transfer and sealed to each
  recipient organisation with HPKE (the same suite and reasoning as
  ``gcx.envelope/1``), with ``info = b"gcx.transfer/1 " + id + b" " + org``.
* Each file gets its own AES-256-GCM key, derived with HKDF-SHA256 from the
  content key and ``b"gcx.transfer/1 file " + id + b" " + index``, so a
  segment moved to another file or another transfer fails to authenticate.
* A file is cut into fixed-size plaintext segments (1 MiB by default). The
  nonce of segment ``i`` is ``prefix (7 random bytes, per file) ||
  uint32_be(i) || last`` where ``last`` is 1 for the final segment and 0
  otherwise. The counter stops reordering, the flag stops truncation (a
  stream cut after a non-final segment never ends with a segment that
  decrypts as final), and the random prefix keeps nonces unique even if a
  key were ever reused. An empty file is one empty final segment.
* Each ciphertext segment (ciphertext || 16-byte tag) is a chunk: it is
  stored, sent and verified on its own, so transfers resume chunk by chunk and
  chunks travel in parallel. The signed manifest lists every chunk's digest,
  which a gateway checks without any key: SHA-256 in ``gcx.transfer/1``,
  BLAKE3 (256-bit output) in ``gcx.transfer/2``, which is otherwise the same.
* File names, media types and each file's plaintext SHA-256 are encrypted as
  one metadata document (key derived with ``b"gcx.transfer/1 metadata " +
  id``), so nothing that might name a person sits in the clear.

Decryption failures of every kind raise one opaque :class:`TransferUnreadable`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gcx.crypto._keys import EncryptionKey, EncryptionPublicKey
from gcx.errors import TransferUnreadable

SEGMENT_SIZE = 1 << 20
TAG_BYTES = 16
NONCE_PREFIX_BYTES = 7
MAX_SEGMENTS = 1 << 32
_KEY_BYTES = 32
_LABEL = b"gcx.transfer/1"
_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


class _Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> object: ...
    def hexdigest(self) -> str: ...


# Chunk digests by the name a manifest's format gives them. BLAKE3 (one thread) hashes
# at about 6 GB/s on the 2-core benchmark machine against SHA-256's 1.7, and a chunk is
# hashed twice (sealed, received), so gcx.transfer/2 saves ~0.85 CPU s per GiB.
_HASHERS: dict[str, Callable[[], _Hasher]] = {"sha256": hashlib.sha256, "blake3": blake3.blake3}


def _whole(make: Callable[[], _Hasher]) -> Callable[[bytes], str]:
    def digest(data: bytes) -> str:
        hasher = make()
        hasher.update(data)
        return hasher.hexdigest()

    return digest


CHUNK_DIGESTS: dict[str, Callable[[bytes], str]] = {n: _whole(m) for n, m in _HASHERS.items()}


def chunk_hasher(algorithm: str) -> Callable[[bytes], str]:
    """The function giving a ciphertext chunk's hex digest with ``algorithm``."""
    try:
        return CHUNK_DIGESTS[algorithm]
    except KeyError:
        raise ValueError(f"unknown chunk digest {algorithm!r}") from None


def chunk_digest(algorithm: str, data: bytes) -> str:
    """The hex digest of one ciphertext chunk with ``algorithm`` (the manifest's)."""
    return chunk_hasher(algorithm)(data)


def pieces_digest(algorithm: str, pieces: Iterable[bytes | memoryview]) -> str:
    """The hex digest, with ``algorithm``, of the chunk made of ``pieces`` in order: for a
    chunk received as the pieces the network gave, which joining would copy first."""
    chunk_hasher(algorithm)  # refuses an unknown name
    hasher = _HASHERS[algorithm]()
    for piece in pieces:
        hasher.update(piece)
    return hasher.hexdigest()


def new_content_key() -> bytes:
    """A fresh transfer content key; it never leaves the process unsealed."""
    return secrets.token_bytes(_KEY_BYTES)


def _derive(content_key: bytes, info: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=info).derive(
        content_key
    )
    return AESGCM(key)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if not 0 <= counter < MAX_SEGMENTS:
        raise ValueError("segment counter out of range")
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def segment_count(size: int, segment_size: int = SEGMENT_SIZE) -> int:
    """How many segments (chunks) a file of ``size`` plaintext bytes has; at least one."""
    return max(1, -(-size // segment_size))


class StreamCipher:
    """Seals and opens the segments of one file of one transfer."""

    def __init__(self, content_key: bytes, transfer_id: str, index: int, nonce_prefix: bytes):
        if len(nonce_prefix) != NONCE_PREFIX_BYTES:
            raise ValueError("the nonce prefix must be 7 bytes")
        self._aead = _derive(content_key, b"%b file %b %d" % (_LABEL, transfer_id.encode(), index))
        self._prefix = nonce_prefix

    def seal(self, counter: int, plaintext: bytes, *, last: bool) -> bytes:
        return self._aead.encrypt(_nonce(self._prefix, counter, last), plaintext, None)

    def open(self, counter: int, chunk: bytes, *, last: bool) -> bytes:
        try:
            return self._aead.decrypt(_nonce(self._prefix, counter, last), chunk, None)
        except (InvalidTag, ValueError):
            raise TransferUnreadable() from None


@dataclass(frozen=True)
class SealedFile:
    """What encrypting one file yields besides its chunks."""

    size: int
    sha256: str
    nonce_prefix: str
    chunk_digests: tuple[str, ...]


class FileSealer:
    """Seals one file pushed to it in pieces of any size: the push form of :func:`encrypt_file`.

    :meth:`feed` takes the plaintext as it arrives (an upload in progress) and
    hands each complete segment's chunk to ``write_chunk(segment, ciphertext)``;
    the final segment is held back until :meth:`finish`, which seals it with the
    ``last`` flag. Memory stays about one segment plus one piece. Each chunk's
    digest is taken with ``chunk_hash`` (a name in :data:`CHUNK_DIGESTS`). Raises
    ``ValueError`` if more or fewer than ``size`` bytes are fed.
    """

    def __init__(
        self,
        *,
        content_key: bytes,
        transfer_id: str,
        index: int,
        size: int,
        write_chunk: Callable[[int, bytes], None],
        segment_size: int = SEGMENT_SIZE,
        chunk_hash: str = "sha256",
    ) -> None:
        self.size = size
        self._chunk_digest = chunk_hasher(chunk_hash)
        self._prefix = secrets.token_bytes(NONCE_PREFIX_BYTES)
        self._cipher = StreamCipher(content_key, transfer_id, index, self._prefix)
        self._write = write_chunk
        self._segment_size = segment_size
        self._count = segment_count(size, segment_size)
        self._plain = hashlib.sha256()
        self._pending: list[bytes | memoryview] = []
        self._pending_bytes = 0
        self._segment = 0
        self._received = 0
        self._digests: list[str] = []

    @property
    def received(self) -> int:
        """Plaintext bytes fed so far."""
        return self._received

    def feed(self, data: bytes | memoryview) -> None:
        if self._received + len(data) > self.size:
            raise ValueError("the file is longer than its recorded size")
        self._received += len(data)
        self._plain.update(data)
        # Pieces are kept as they came and joined once per segment: one copy of the
        # plaintext, where appending to a buffer and slicing it took two.
        self._pending.append(data)
        self._pending_bytes += len(data)
        # The final segment (only it carries the last flag) is sealed once every byte is
        # here, so a chunk sent on as soon as it is sealed does not wait for finish().
        while self._pending_bytes >= self._segment_size and self._segment < self._count - 1:
            over = self._pending_bytes - self._segment_size
            first = self._pending[0]
            if over == 0 and len(self._pending) == 1 and isinstance(first, bytes):
                segment, self._pending = first, []  # a whole segment as it came: no copy
            else:
                last = memoryview(self._pending[-1])
                cut = len(last) - over
                segment = b"".join([*self._pending[:-1], last[:cut]])
                self._pending = [last[cut:]] if over else []
            self._pending_bytes = over
            self._seal(segment, last=False)
        if self._received == self.size and self._segment < self._count:
            self._seal_last()

    def finish(self) -> SealedFile:
        if self._received != self.size:
            raise ValueError("the file is shorter than its recorded size")
        if self._segment < self._count:  # an empty file: nothing was fed
            self._seal_last()
        return SealedFile(
            self.size, self._plain.hexdigest(), self._prefix.hex(), tuple(self._digests)
        )

    def _seal_last(self) -> None:
        self._seal(b"".join(self._pending), last=True)
        self._pending, self._pending_bytes = [], 0

    def _seal(self, plaintext: bytes, *, last: bool) -> None:
        chunk = self._cipher.seal(self._segment, plaintext, last=last)
        self._digests.append(self._chunk_digest(chunk))
        self._write(self._segment, chunk)
        self._segment += 1


def encrypt_file(
    source: BinaryIO,
    size: int,
    *,
    content_key: bytes,
    transfer_id: str,
    index: int,
    write_chunk: Callable[[int, bytes], None],
    segment_size: int = SEGMENT_SIZE,
    chunk_hash: str = "sha256",
) -> SealedFile:
    """Encrypt ``size`` bytes from ``source`` segment by segment; memory stays one segment.

    ``write_chunk(segment, ciphertext)`` stores each chunk before the next is
    read. Raises ``ValueError`` if the source is shorter or longer than
    ``size``, since a file that changed under us must not be sent.
    """
    sealer = FileSealer(
        content_key=content_key,
        transfer_id=transfer_id,
        index=index,
        size=size,
        write_chunk=write_chunk,
        segment_size=segment_size,
        chunk_hash=chunk_hash,
    )
    left = size
    while left:
        data = source.read(min(segment_size, left))
        if not data:
            raise ValueError("the file is shorter than its recorded size")
        sealer.feed(data)
        left -= len(data)
    if source.read(1):
        raise ValueError("the file is longer than its recorded size")
    return sealer.finish()


def seal_content_key(
    content_key: bytes, recipient: EncryptionPublicKey, transfer_id: str, organisation: str
) -> str:
    """The content key sealed to one organisation with HPKE, base64."""
    info = b"%b %b %b" % (_LABEL, transfer_id.encode(), organisation.encode())
    return base64.b64encode(_SUITE.encrypt(content_key, recipient.hpke_key(), info=info)).decode()


def open_content_key(sealed: str, key: EncryptionKey, transfer_id: str, organisation: str) -> bytes:
    info = b"%b %b %b" % (_LABEL, transfer_id.encode(), organisation.encode())
    try:
        content_key = _SUITE.decrypt(
            base64.b64decode(sealed, validate=True), key.hpke_key(), info=info
        )
    except (InvalidTag, ValueError):
        raise TransferUnreadable() from None
    if len(content_key) != _KEY_BYTES:
        raise TransferUnreadable()
    return content_key


def seal_metadata(content_key: bytes, transfer_id: str, plaintext: bytes) -> str:
    """The transfer's metadata document (names, media types, digests) encrypted, base64."""
    aead = _derive(content_key, b"%b metadata %b" % (_LABEL, transfer_id.encode()))
    nonce = secrets.token_bytes(12)
    return base64.b64encode(nonce + aead.encrypt(nonce, plaintext, None)).decode()


def open_metadata(content_key: bytes, transfer_id: str, sealed: str) -> bytes:
    aead = _derive(content_key, b"%b metadata %b" % (_LABEL, transfer_id.encode()))
    try:
        raw = base64.b64decode(sealed, validate=True)
        return aead.decrypt(raw[:12], raw[12:], None)
    except (InvalidTag, ValueError):
        raise TransferUnreadable() from None
