"""Recipes for a bulk transfer (``gcx.transfer/1`` and ``/2``): seal it, open it, receipt it.

Gateway code never handles a content key or assembles a manifest's
cryptographic fields; it uses these recipes, built from the STREAM
construction in :mod:`gcx.crypto._stream` and DSSE signatures:

* :class:`TransferSealer` encrypts the files of one transfer as they are
  read (chunks handed to the caller to store), then seals the content key to
  each recipient, encrypts the metadata and signs the manifest;
* :func:`open_transfer` opens a manifest for one recipient organisation and
  returns an opaque :class:`TransferKey` that decrypts the metadata and the
  files' segments;
* :meth:`TransferSealer.kept_key` and :func:`open_kept` let the sending
  gateway keep a file's plaintext instead of its ciphertext: the content key
  is sealed to the sending organisation, and :meth:`TransferKey.reseal_chunk`
  makes any chunk again, byte for byte, from its plaintext segment (AES-GCM
  is deterministic for one key, nonce and plaintext), checked against the
  manifest's digest;
* :func:`sign_transfer_receipt` and :func:`verify_transfer_receipt` make and
  check the signed ``gcx.transfer-receipt/1``.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from gcx.crypto._dsse import sign_document, verify_document
from gcx.crypto._keys import EncryptionKey, EncryptionPublicKey, SigningKey, VerifyKey
from gcx.crypto._stream import (
    FileSealer,
    SealedFile,
    StreamCipher,
    chunk_hasher,
    new_content_key,
    open_content_key,
    open_metadata,
    seal_content_key,
    seal_metadata,
)
from gcx.crypto._x509 import key_id
from gcx.errors import TransferUnreadable
from gcx.protocol.envelope import SealedKey, Sender
from gcx.protocol.transfer import (
    CHUNK_HASHES,
    FORMAT_2,
    PAYLOAD_TYPE,
    RECEIPT_TYPE,
    TransferFile,
    TransferFormat,
    TransferManifest,
    TransferReceipt,
    check_receipt,
    transfer_format,
)


@dataclass(frozen=True)
class SealedTransfer:
    """A sealed transfer: its manifest, and the signed document that carries it."""

    manifest: TransferManifest
    document: bytes


class TransferSealer:
    """Seals one transfer: :meth:`add_file` for each file in order, then :meth:`seal`.

    The content key lives only inside this object; nothing the caller is
    given can decrypt the files without a recipient's private key.
    """

    def __init__(
        self, transfer_id: str, segment_size: int, format: TransferFormat = FORMAT_2
    ) -> None:
        self.transfer_id = transfer_id
        self.segment_size = segment_size
        self.format = transfer_format(format)  # ValueError for one gcx does not know
        self._content_key = new_content_key()
        self._files: list[TransferFile] = []
        self._chunks: list[str] = []

    def kept_key(self, organisation: str, public: EncryptionPublicKey) -> str:
        """The content key sealed to ``organisation`` (the sender's own), as a recipient's is,
        so that :func:`open_kept` can remake the transfer's chunks from the files' plaintext."""
        return seal_content_key(self._content_key, public, self.transfer_id, organisation)

    def begin_file(self, size: int, write_chunk: Callable[[int, bytes], None]) -> FileSealer:
        """A sealer for the next file, to be fed as its bytes arrive, then given to
        :meth:`end_file`; ``write_chunk(chunk number in the transfer, bytes)`` stores each chunk.
        """
        index, first = len(self._files), len(self._chunks)
        return FileSealer(
            content_key=self._content_key,
            transfer_id=self.transfer_id,
            index=index,
            size=size,
            segment_size=self.segment_size,
            chunk_hash=CHUNK_HASHES[self.format],
            write_chunk=lambda segment, data: write_chunk(first + segment, data),
        )

    def end_file(self, sealer: FileSealer) -> SealedFile:
        """Add the file to the transfer (its last segment sealed, if it was empty).

        Raises ``ValueError`` if the sealer was fed more or fewer bytes than its size.
        """
        sealed = sealer.finish()
        index, first = len(self._files), len(self._chunks)
        self._files.append(
            TransferFile(
                index=index,
                size=sealed.size,
                nonce_prefix=sealed.nonce_prefix,
                first_chunk=first,
                chunks=len(sealed.chunk_digests),
            )
        )
        self._chunks.extend(sealed.chunk_digests)
        return sealed

    def add_file(
        self, source: BinaryIO, size: int, write_chunk: Callable[[int, bytes], None]
    ) -> SealedFile:
        """Encrypt the next file from ``source``; ``write_chunk`` stores each chunk.

        Raises ``ValueError`` if ``source`` is not exactly ``size`` bytes long.
        """
        sealer = self.begin_file(size, write_chunk)
        left = size
        while left:
            data = source.read(min(self.segment_size, left))
            if not data:
                raise ValueError("the file is shorter than its recorded size")
            sealer.feed(data)
            left -= len(data)
        if source.read(1):
            raise ValueError("the file is longer than its recorded size")
        return self.end_file(sealer)

    def seal(
        self,
        *,
        sender: Sender,
        recipients: Mapping[str, EncryptionPublicKey],
        marking: str,
        created_at: dt.datetime,
        expires_at: dt.datetime,
        metadata: bytes,
        signing_key: SigningKey,
    ) -> SealedTransfer:
        """The manifest, with the content key sealed to every recipient, signed by the sender."""
        manifest = TransferManifest(
            format=self.format,
            id=self.transfer_id,
            sender=sender,
            recipients=tuple(recipients),
            marking=marking,
            created_at=created_at,
            expires_at=expires_at,
            segment_size=self.segment_size,
            keys=tuple(
                SealedKey(
                    organisation=org,
                    sealed_key=seal_content_key(self._content_key, public, self.transfer_id, org),
                )
                for org, public in recipients.items()
            ),
            metadata=seal_metadata(self._content_key, self.transfer_id, metadata),
            files=tuple(self._files),
            chunks=tuple(self._chunks),
        )
        document = sign_document(
            PAYLOAD_TYPE, manifest.to_bytes(), signing_key, key_id(signing_key.public)
        )
        return SealedTransfer(manifest, document)


class TransferKey:
    """A transfer opened for one recipient organisation: reads its metadata and files."""

    def __init__(self, manifest: TransferManifest, content_key: bytes) -> None:
        self._manifest = manifest
        self._content_key = content_key
        self._ciphers: dict[int, StreamCipher] = {}
        self._chunk_digest = chunk_hasher(manifest.chunk_hash)

    def metadata(self) -> bytes:
        """The decrypted metadata document (names, media types, digests)."""
        return open_metadata(self._content_key, self._manifest.id, self._manifest.metadata)

    def file_cipher(self, index: int) -> StreamCipher:
        """The cipher that opens file ``index``'s segments, in order, each on its own."""
        entry = self._manifest.files[index]
        return StreamCipher(
            self._content_key, self._manifest.id, index, bytes.fromhex(entry.nonce_prefix)
        )

    def reseal_chunk(self, number: int, plaintext: bytes) -> bytes:
        """Chunk ``number`` made again from its segment's plaintext, exactly as it was sealed.

        The nonce is the one it was sealed under and the plaintext must be the same,
        so no nonce is ever used for two plaintexts: a chunk whose digest is not the
        manifest's (the plaintext changed) raises :class:`TransferUnreadable`.
        """
        entry, segment, last = self._manifest.locate(number)
        cipher = self._ciphers.get(entry.index)
        if cipher is None:
            cipher = self._ciphers[entry.index] = self.file_cipher(entry.index)
        chunk = cipher.seal(segment, plaintext, last=last)
        if len(chunk) != self._manifest.chunk_size(number) or not hmac.compare_digest(
            self._chunk_digest(chunk), self._manifest.chunks[number]
        ):
            raise TransferUnreadable()
        return chunk


def open_kept(
    manifest: TransferManifest, sealed_key: str, organisation: str, key: EncryptionKey
) -> TransferKey:
    """The sender's own hold on a transfer from :meth:`TransferSealer.kept_key`'s sealed key;
    raises :class:`TransferUnreadable` if it does not open with ``key``."""
    return TransferKey(manifest, open_content_key(sealed_key, key, manifest.id, organisation))


def open_transfer(manifest: TransferManifest, organisation: str, key: EncryptionKey) -> TransferKey:
    """Open ``manifest`` with ``organisation``'s private key; raises :class:`TransferUnreadable`."""
    sealed = next((k for k in manifest.keys if k.organisation == organisation), None)
    if sealed is None:
        raise TransferUnreadable()
    return TransferKey(
        manifest, open_content_key(sealed.sealed_key, key, manifest.id, organisation)
    )


def sign_transfer_receipt(receipt: TransferReceipt, key: SigningKey) -> bytes:
    """The recipient organisation's signed ``gcx.transfer-receipt/1``."""
    return sign_document(RECEIPT_TYPE, receipt.to_bytes(), key, key_id(key.public))


def verify_transfer_receipt(
    document: bytes,
    key: VerifyKey,
    *,
    transfer_id: str,
    manifest_digest: str,
    organisation: str,
    files: tuple[tuple[str, int, str], ...],
) -> TransferReceipt:
    """The receipt, if ``key`` signed it and it acknowledges exactly this transfer's files.

    Raises :class:`~gcx.errors.SignatureInvalid` for a signature that does not
    verify and :class:`~gcx.errors.ReceiptInvalid` for one that says
    something else.
    """
    payload = verify_document(document, RECEIPT_TYPE, {key_id(key): key})
    receipt = TransferReceipt.from_bytes(payload)
    check_receipt(
        receipt,
        transfer_id=transfer_id,
        manifest_digest=manifest_digest,
        organisation=organisation,
        files=files,
    )
    return receipt
