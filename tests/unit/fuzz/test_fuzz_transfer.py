"""Properties of bulk-transfer parsers: the signed manifest, its sealed key and metadata,
chunks, and transfer receipts."""

from __future__ import annotations

import datetime as dt
import functools
import io

from hypothesis import given
from hypothesis import strategies as st
from tests.unit.fuzz import _network as net
from tests.unit.fuzz._strategies import byte_mutants, json_texts, mutants, parse_or_refuse

from gcx import crypto
from gcx.errors import TransferUnreadable
from gcx.protocol.envelope import SealedKey, Sender
from gcx.protocol.transfer import (
    FileMetadata,
    ReceiptFile,
    TransferFile,
    TransferManifest,
    TransferMetadata,
    TransferReceipt,
)

TRANSFER_ID = "e" * 32
SEGMENT = 64 * 1024
CONTENT = b"x" * (SEGMENT + 10)


@functools.cache
def _transfer() -> tuple[TransferManifest, bytes, list[bytes]]:
    """A manifest as gcx writes it, its content key, and the chunks of its one file."""
    content_key = crypto.new_content_key()
    chunks: list[bytes] = []
    sealed = crypto.encrypt_file(
        io.BytesIO(CONTENT),
        len(CONTENT),
        content_key=content_key,
        transfer_id=TRANSFER_ID,
        index=0,
        write_chunk=lambda _, chunk: chunks.append(chunk),
        segment_size=SEGMENT,
    )
    metadata = TransferMetadata(
        files=(
            FileMetadata(
                index=0,
                name="claims.csv",
                media_type="text/csv",
                size=sealed.size,
                sha256=sealed.sha256,
            ),
        )
    )
    mps = net.network().orgs["MPS"].encryption.public
    manifest = TransferManifest(
        id=TRANSFER_ID,
        sender=Sender(organisation=net.SENDER, user="benefits.officer"),
        recipients=("MPS",),
        marking="OFFICIAL",
        created_at=net.NOW,
        expires_at=net.NOW + dt.timedelta(days=7),
        segment_size=SEGMENT,
        keys=(
            SealedKey(
                organisation="MPS",
                sealed_key=crypto.seal_content_key(content_key, mps, TRANSFER_ID, "MPS"),
            ),
        ),
        metadata=crypto.seal_metadata(content_key, TRANSFER_ID, metadata.to_bytes()),
        files=(
            TransferFile(
                index=0,
                size=sealed.size,
                nonce_prefix=sealed.nonce_prefix,
                first_chunk=0,
                chunks=len(chunks),
            ),
        ),
        chunks=sealed.chunk_digests,
    )
    return manifest, content_key, chunks


_RECEIPT = TransferReceipt(
    transfer_id=TRANSFER_ID,
    manifest_digest="sha256:" + "0" * 64,
    recipient="MPS",
    gateway="mps",
    received_at=net.NOW,
    files=(ReceiptFile(index=0, name="claims.csv", size=len(CONTENT), sha256="1" * 64),),
)
_METADATA = TransferMetadata(
    files=(FileMetadata(index=0, name="claims.csv", size=3, sha256="2" * 64),)
).to_bytes()
_hostile = st.binary(max_size=200) | json_texts()


def test_round_trips() -> None:
    """Manifest, metadata and receipt read back equal to what gcx wrote."""
    manifest = _transfer()[0]
    assert TransferManifest.from_bytes(manifest.to_bytes()) == manifest
    assert TransferReceipt.from_bytes(_RECEIPT.to_bytes()) == _RECEIPT
    assert TransferMetadata.from_bytes(_METADATA).to_bytes() == _METADATA


@given(_hostile | mutants(_transfer()[0].to_bytes()))
def test_manifest_parses_or_refuses(data: bytes) -> None:
    """A manifest payload parses, locates its chunks and writes again, or is refused."""
    manifest = parse_or_refuse(TransferManifest.from_bytes, data)
    if manifest is not None:
        assert TransferManifest.from_bytes(manifest.to_bytes()) == manifest
        for chunk in range(min(len(manifest.chunks), 5)):
            manifest.chunk_size(chunk)


@given(_hostile | mutants(_RECEIPT.to_bytes()))
def test_receipt_parses_or_refuses(data: bytes) -> None:
    """A transfer receipt payload parses and writes again, or is refused."""
    receipt = parse_or_refuse(TransferReceipt.from_bytes, data)
    if receipt is not None:
        assert TransferReceipt.from_bytes(receipt.to_bytes()) == receipt


@given(_hostile | mutants(_METADATA))
def test_metadata_parses_or_refuses(data: bytes) -> None:
    """Decrypted metadata (written by an admitted but hostile sender) parses or is refused."""
    parse_or_refuse(TransferMetadata.from_bytes, data)


@given(
    st.text(max_size=40)
    | st.just(_transfer()[0].keys[0].sealed_key).flatmap(
        lambda text: byte_mutants(text.encode()).map(lambda b: b.decode("latin-1"))
    )
)
def test_sealed_key_opens_only_unchanged(sealed: str) -> None:
    """A changed sealed content key does not open, or opens to the key sealed."""
    content_key = _transfer()[1]
    key = net.network().orgs["MPS"].encryption
    try:
        opened = crypto.open_content_key(sealed, key, TRANSFER_ID, "MPS")
    except TransferUnreadable:
        return
    assert opened == content_key


@given(byte_mutants(_transfer()[0].metadata.encode()).map(lambda b: b.decode("latin-1")))
def test_sealed_metadata_opens_only_unchanged(sealed: str) -> None:
    """Changed sealed metadata does not open, or opens to the metadata sealed."""
    manifest, content_key, _ = _transfer()
    try:
        opened = crypto.open_metadata(content_key, TRANSFER_ID, sealed)
    except TransferUnreadable:
        return
    assert opened == crypto.open_metadata(content_key, TRANSFER_ID, manifest.metadata)


@given(st.data())
def test_changed_chunk_does_not_open(data: st.DataObject) -> None:
    """A changed chunk does not open, or opens to the original segment."""
    manifest, content_key, chunks = _transfer()
    index = data.draw(st.integers(0, len(chunks) - 1))
    changed = data.draw(byte_mutants(chunks[index]))
    entry = manifest.files[0]
    cipher = crypto.StreamCipher(content_key, TRANSFER_ID, 0, bytes.fromhex(entry.nonce_prefix))
    last = index == len(chunks) - 1
    try:
        plain = cipher.open(index, changed, last=last)
    except TransferUnreadable:
        return
    assert plain == cipher.open(index, chunks[index], last=last)
