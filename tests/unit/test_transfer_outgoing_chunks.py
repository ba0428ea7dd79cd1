"""The chunks a sending gateway sends: from its chunk file, or made again from a kept upload
(gateway.transfers.outgoing_chunks), never a chunk the signed manifest does not list."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gcx import crypto
from gcx.errors import NotFound
from gcx.gateway.transfers.outgoing_chunks import chunk_reader
from gcx.protocol.envelope import Sender
from gcx.protocol.transfer import TransferManifest
from gcx.store.transfer_files import TransferFiles

SEGMENT = 64 * 1024
NOW = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)


def _sealed(data: bytes) -> tuple[crypto.TransferSealer, TransferManifest, dict[int, bytes]]:
    """One file sealed as an upload is, in pieces; its manifest and the chunks it yielded."""
    sealer = crypto.TransferSealer(secrets.token_hex(16), SEGMENT)
    chunks: dict[int, bytes] = {}
    file = sealer.begin_file(len(data), chunks.__setitem__)
    for start in range(0, len(data), 10_000):
        file.feed(data[start : start + 10_000])
    sealer.end_file(file)
    manifest = sealer.seal(
        sender=Sender(organisation="DWP", user="clerk"),
        recipients={"TOWER": crypto.EncryptionKey.generate().public},
        marking="OFFICIAL",
        created_at=NOW,
        expires_at=NOW + dt.timedelta(days=1),
        metadata=b"{}",
        signing_key=crypto.SigningKey.generate(),
    ).manifest
    return sealer, manifest, chunks


def _gateway(tmp_path: Path, key: crypto.EncryptionKey) -> Any:
    """What chunk_reader reads of a gateway: its chunk store and its organisations' keys."""
    return SimpleNamespace(
        chunks=TransferFiles(tmp_path),
        keys=SimpleNamespace(organisations={"DWP": SimpleNamespace(encryption=key)}),
    )


def test_a_kept_upload_gives_every_chunk_exactly_and_not_one_changed_since(
    tmp_path: Path,
) -> None:
    data = secrets.token_bytes(2 * SEGMENT + 99)
    sealer, manifest, chunks = _sealed(data)
    own = crypto.EncryptionKey.generate()
    gateway = _gateway(tmp_path, own)
    files: TransferFiles = gateway.chunks
    upload = "ab" * 16
    files.create_upload(upload)
    files.upload_path(upload).write_bytes(data)
    files.keep_uploads(manifest.id, [upload], sealer.kept_key("DWP", own.public))
    files.delete_upload(upload)
    read = chunk_reader(gateway, manifest.id, manifest)
    assert [read(n) for n in range(len(manifest.chunks))] == [chunks[n] for n in sorted(chunks)]
    # One byte of the second segment changed on disk: that chunk is refused, not sealed
    # again under its nonce nor sent; the others are still what the manifest lists.
    kept = tmp_path / "out" / manifest.id / "file-0"
    changed = bytearray(kept.read_bytes())
    changed[SEGMENT + 5] ^= 1
    kept.write_bytes(bytes(changed))
    with pytest.raises(NotFound):
        read(1)
    assert read(0) == chunks[0] and read(2) == chunks[2]
    kept.write_bytes(data[:SEGMENT])  # cut short
    with pytest.raises(NotFound):
        read(2)


def test_a_kept_key_that_the_organisations_key_does_not_open_is_not_found(
    tmp_path: Path,
) -> None:
    data = secrets.token_bytes(SEGMENT)
    sealer, manifest, _ = _sealed(data)
    gateway = _gateway(tmp_path, crypto.EncryptionKey.generate())
    files: TransferFiles = gateway.chunks
    upload = "cd" * 16
    files.create_upload(upload)
    files.upload_path(upload).write_bytes(data)
    someone_else = crypto.EncryptionKey.generate().public
    files.keep_uploads(manifest.id, [upload], sealer.kept_key("DWP", someone_else))
    with pytest.raises(NotFound):
        chunk_reader(gateway, manifest.id, manifest)


def test_a_transfer_held_as_chunks_is_read_from_its_chunk_file(tmp_path: Path) -> None:
    data = secrets.token_bytes(SEGMENT + 1)
    _, manifest, chunks = _sealed(data)
    gateway = _gateway(tmp_path, crypto.EncryptionKey.generate())
    files: TransferFiles = gateway.chunks
    for number, chunk in chunks.items():
        files.write_chunk("out", manifest.id, number, chunk, manifest.chunk_slot)
    read = chunk_reader(gateway, manifest.id, manifest)
    assert [read(0), read(1)] == [chunks[0], chunks[1]]
