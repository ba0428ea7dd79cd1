"""STREAM over AES-256-GCM and the gcx.transfer/1 manifest: round trips and every refusal."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest

from gcx import crypto
from gcx.errors import EnvelopeExpired, EnvelopeMalformed, ReceiptInvalid, TransferUnreadable
from gcx.protocol.envelope import SealedKey, Sender
from gcx.protocol.transfer import (
    ReceiptFile,
    TransferFile,
    TransferManifest,
    TransferReceipt,
    check_manifest,
    check_receipt,
)

SEGMENT = 64 * 1024
NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
TID = "ab" * 16


def _encrypt(data: bytes, key: bytes, index: int = 0) -> tuple[crypto.SealedFile, list[bytes]]:
    chunks: list[bytes] = []
    sealed = crypto.encrypt_file(
        io.BytesIO(data),
        len(data),
        content_key=key,
        transfer_id=TID,
        index=index,
        write_chunk=lambda n, c: chunks.append(c),
        segment_size=SEGMENT,
    )
    return sealed, chunks


def _decrypt(sealed: crypto.SealedFile, chunks: list[bytes], key: bytes, index: int = 0) -> bytes:
    cipher = crypto.StreamCipher(key, TID, index, bytes.fromhex(sealed.nonce_prefix))
    return b"".join(cipher.open(n, c, last=n == len(chunks) - 1) for n, c in enumerate(chunks))


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT])
def test_round_trip_at_segment_boundaries(size: int) -> None:
    """Every size, including empty and exact multiples, decrypts to the same bytes and digest."""
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    key = crypto.new_content_key()
    sealed, chunks = _encrypt(data, key)
    assert len(chunks) == crypto.segment_count(size, SEGMENT)
    assert sealed.sha256 == hashlib.sha256(data).hexdigest()
    assert list(sealed.chunk_digests) == [hashlib.sha256(c).hexdigest() for c in chunks]
    assert _decrypt(sealed, chunks, key) == data


def test_the_last_chunk_is_sealed_with_the_last_byte_fed() -> None:
    """A chunk sent on as it is sealed need not wait for finish(); feeding nothing more
    afterwards seals nothing more, and the result is the one-pass encryption's."""
    data = bytes(range(256)) * (SEGMENT // 128) + b"tail"
    key = crypto.new_content_key()
    chunks: list[bytes] = []
    sealer = crypto.FileSealer(
        content_key=key,
        transfer_id=TID,
        index=0,
        size=len(data),
        write_chunk=lambda n, c: chunks.append(c),
        segment_size=SEGMENT,
    )
    sealer.feed(data[:SEGMENT])
    assert len(chunks) == 1
    sealer.feed(data[SEGMENT:])
    assert len(chunks) == 3  # the final, short chunk too, before finish()
    sealer.feed(b"")
    sealed = sealer.finish()
    assert len(chunks) == 3
    assert list(sealed.chunk_digests) == [hashlib.sha256(c).hexdigest() for c in chunks]
    assert _decrypt(sealed, chunks, key) == data


def test_truncation_reordering_and_changed_bytes_are_refused() -> None:
    """Dropping the last chunk, swapping chunks, a flipped bit or another file's key all fail."""
    key = crypto.new_content_key()
    sealed, chunks = _encrypt(b"x" * (3 * SEGMENT), key)
    cipher = crypto.StreamCipher(key, TID, 0, bytes.fromhex(sealed.nonce_prefix))
    with pytest.raises(TransferUnreadable):
        cipher.open(1, chunks[1], last=True)  # truncated stream: a middle chunk posing as last
    with pytest.raises(TransferUnreadable):
        cipher.open(0, chunks[1], last=False)  # reordered
    with pytest.raises(TransferUnreadable):
        cipher.open(0, bytes([chunks[0][0] ^ 1]) + chunks[0][1:], last=False)
    other = crypto.StreamCipher(key, TID, 1, bytes.fromhex(sealed.nonce_prefix))
    with pytest.raises(TransferUnreadable):
        other.open(0, chunks[0], last=False)  # moved to another file of the batch


def test_content_key_and_metadata_open_only_for_their_organisation() -> None:
    """The sealed key is bound to transfer and organisation; metadata to the transfer."""
    org_key = crypto.EncryptionKey.generate()
    key = crypto.new_content_key()
    sealed = crypto.seal_content_key(key, org_key.public, TID, "DWP")
    assert crypto.open_content_key(sealed, org_key, TID, "DWP") == key
    with pytest.raises(TransferUnreadable):
        crypto.open_content_key(sealed, org_key, TID, "E09000030")
    with pytest.raises(TransferUnreadable):
        crypto.open_content_key(sealed, org_key, "cd" * 16, "DWP")
    meta = crypto.seal_metadata(key, TID, b'{"files":[]}')
    assert crypto.open_metadata(key, TID, meta) == b'{"files":[]}'
    with pytest.raises(TransferUnreadable):
        crypto.open_metadata(key, "cd" * 16, meta)


def _manifest(**changes: object) -> TransferManifest:
    values: dict[str, object] = {
        "id": TID,
        "sender": Sender(organisation="DWP", user="claims.processor"),
        "recipients": ("E09000030",),
        "marking": "OFFICIAL-SENSITIVE",
        "created_at": NOW,
        "expires_at": NOW + dt.timedelta(days=7),
        "segment_size": SEGMENT,
        "keys": (SealedKey(organisation="E09000030", sealed_key="AAAA"),),
        "metadata": "AAAA",
        "files": (
            TransferFile(index=0, size=SEGMENT + 1, nonce_prefix="00" * 7, first_chunk=0, chunks=2),
            TransferFile(index=1, size=0, nonce_prefix="11" * 7, first_chunk=2, chunks=1),
        ),
        "chunks": ("a" * 64, "b" * 64, "c" * 64),
    }
    values.update(changes)
    return TransferManifest.model_validate(values)


def test_manifest_locates_chunks_and_sizes() -> None:
    """Chunk numbers map to (file, segment, last) and exact ciphertext sizes."""
    manifest = _manifest()
    assert manifest.locate(1)[1:] == (1, True)
    assert manifest.locate(2)[0].index == 1
    assert [manifest.chunk_size(n) for n in range(3)] == [SEGMENT + 16, 17, 16]
    assert TransferManifest.from_bytes(manifest.to_bytes()) == manifest
    with pytest.raises(EnvelopeMalformed):
        manifest.locate(3)


def test_manifest_refuses_inconsistent_chunk_lists_and_old_manifests() -> None:
    """A chunk count that does not match the sizes, or an expired manifest, is refused."""
    with pytest.raises(ValueError, match="chunk"):
        _manifest(chunks=("a" * 64, "b" * 64))
    with pytest.raises(ValueError, match="sealed key"):
        _manifest(keys=())
    with pytest.raises(EnvelopeExpired):
        check_manifest(_manifest(), now=NOW + dt.timedelta(days=8))


def test_receipt_must_name_every_file_with_its_digest() -> None:
    """A receipt for another file list or another manifest is not proof of this transfer."""
    receipt = TransferReceipt(
        transfer_id=TID,
        manifest_digest="sha256:" + "0" * 64,
        recipient="E09000030",
        gateway="tower-hamlets",
        received_at=NOW,
        files=(ReceiptFile(index=0, name="a.pdf", size=3, sha256="1" * 64),),
    )
    check_receipt(
        receipt,
        transfer_id=TID,
        manifest_digest="sha256:" + "0" * 64,
        organisation="E09000030",
        files=(("a.pdf", 3, "1" * 64),),
    )
    with pytest.raises(ReceiptInvalid):
        check_receipt(
            receipt,
            transfer_id=TID,
            manifest_digest="sha256:" + "0" * 64,
            organisation="E09000030",
            files=(("a.pdf", 3, "2" * 64),),
        )
