"""Sealing an upload as it arrives: the same chunks in any piece sizes, and the upload's
sealed chunk file kept only when it is exactly complete."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

import pytest

from gcx import crypto
from gcx.errors import StorageFull
from gcx.gateway.transfers.sealing_ahead import SealingAhead
from gcx.store.transfer_files import ChunkWriter

SEGMENT = 64 * 1024
TID = "cd" * 16


def _open(key: bytes, sealed: crypto.SealedFile, chunks: dict[int, bytes]) -> bytes:
    cipher = crypto.StreamCipher(key, TID, 0, bytes.fromhex(sealed.nonce_prefix))
    last = len(chunks) - 1
    return b"".join(cipher.open(n, chunks[n], last=n == last) for n in range(len(chunks)))


@pytest.mark.parametrize("size", [1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 3 * SEGMENT + 7])
@pytest.mark.parametrize("piece", [1000, SEGMENT, 3 * SEGMENT])
def test_pieces_of_any_size_seal_to_a_file_that_opens(size: int, piece: int) -> None:
    """Fed in pieces that do not line up with segments, the file seals to chunks that decrypt
    in order to the same bytes, with the same digests a whole-file seal reports."""
    data = secrets.token_bytes(size)
    key = crypto.new_content_key()
    chunks: dict[int, bytes] = {}
    sealer = crypto.FileSealer(
        content_key=key,
        transfer_id=TID,
        index=0,
        size=size,
        write_chunk=chunks.__setitem__,
        segment_size=SEGMENT,
    )
    for start in range(0, size, piece):
        sealer.feed(data[start : start + piece])
    sealed = sealer.finish()
    assert len(chunks) == crypto.segment_count(size, SEGMENT)
    assert sealed.sha256 == hashlib.sha256(data).hexdigest()
    assert list(sealed.chunk_digests) == [hashlib.sha256(chunks[n]).hexdigest() for n in chunks]
    assert _open(key, sealed, chunks) == data


def test_more_or_fewer_bytes_than_declared_are_refused() -> None:
    """A file fed past its size, or finished short of it, is refused (ValueError)."""
    sealer = crypto.FileSealer(
        content_key=crypto.new_content_key(),
        transfer_id=TID,
        index=0,
        size=10,
        write_chunk=lambda n, c: None,
        segment_size=SEGMENT,
    )
    sealer.feed(b"12345")
    with pytest.raises(ValueError):
        sealer.finish()
    with pytest.raises(ValueError):
        sealer.feed(b"123456")


def _fed(ahead: SealingAhead, upload: str, data: bytes, path: Path) -> None:
    ahead.start(upload, len(data), SEGMENT, path)
    for start in range(0, len(data), 5000):
        future = ahead.feed(upload, data[start : start + 5000])
        assert future is not None
        future.result()


def test_a_complete_upload_is_taken_with_its_chunks_on_disk(tmp_path: Path) -> None:
    """Fed whole, the upload is taken once: a transfer sealer holding the one file, and its
    chunk file, whose slots hold the chunks the manifest will list."""
    ahead, data, path = SealingAhead(), secrets.token_bytes(2 * SEGMENT + 3), tmp_path / "s"
    _fed(ahead, "u1", data, path)
    assert ahead.covers("u1", len(data))
    taken = ahead.take("u1")
    assert taken is not None and taken.chunks == path
    assert taken.sealed.sha256 == hashlib.sha256(data).hexdigest()
    raw = path.read_bytes()
    slot = SEGMENT + 16
    sizes = [slot, slot, 3 + 16]
    on_disk = [raw[n * slot : n * slot + size] for n, size in enumerate(sizes)]
    # Sealed ahead in the format new transfers are written in: BLAKE3 chunk digests.
    assert taken.sealer.format == "gcx.transfer/2"
    blake3 = [crypto.chunk_digest("blake3", c) for c in on_disk]
    assert blake3 == list(taken.sealed.chunk_digests)
    assert ahead.take("u1") is None


def test_an_incomplete_or_dropped_upload_is_not_taken_and_its_file_goes(tmp_path: Path) -> None:
    """An upload not fed to its end is not taken; its chunk file is deleted, as is a dropped
    one's; a PATCH that does not continue where the feeding stopped is not covered."""
    ahead, data = SealingAhead(), secrets.token_bytes(SEGMENT + 1)
    ahead.start("u2", len(data), SEGMENT, tmp_path / "short")
    ahead.feed("u2", data[:100])
    assert not ahead.covers("u2", 50)
    assert ahead.take("u2") is None
    assert not (tmp_path / "short").exists()
    _fed(ahead, "u3", data, tmp_path / "dropped")
    ahead.drop("u3")
    assert ahead.take("u3") is None
    ahead.feed("u3", b"late")  # not being sealed any more: ignored
    ahead.start("u4", 0, SEGMENT, tmp_path / "empty")
    assert ahead.take("u4") is None  # an empty upload is sealed when the transfer is made
    # Discards run on the sealing thread, in order: once a later piece is sealed, they ran.
    _fed(ahead, "u5", b"x", tmp_path / "later")
    assert not (tmp_path / "dropped").exists()


def test_each_chunk_is_sent_ahead_only_once_it_is_on_disk(tmp_path: Path) -> None:
    """Chunks are written off the sealing thread; the push still sees each one only after its
    slot holds it (a chunk sent late is read back from the file), and in order."""
    ahead, data, path = SealingAhead(), secrets.token_bytes(5 * SEGMENT + 9), tmp_path / "s"
    slot = SEGMENT + 16
    seen: list[int] = []

    def push(transfer_id: str, slot_size: int, chunks: Path, digest: str) -> Any:
        assert (slot_size, chunks, digest) == (slot, path, "blake3")

        def sent(number: int, chunk: bytes) -> None:
            with chunks.open("rb") as handle:
                handle.seek(number * slot)
                assert handle.read(len(chunk)) == chunk
            seen.append(number)

        return sent

    ahead.start("u6", len(data), SEGMENT, path, push)
    for start in range(0, len(data), 7000):
        future = ahead.feed("u6", data[start : start + 7000])
        assert future is not None
        future.result()
    taken = ahead.take("u6")
    assert taken is not None and seen == list(range(6))


def test_a_chunk_that_cannot_be_written_drops_the_sealing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error writing one chunk (on the writing thread) leaves nothing to adopt: the
    upload is not taken, its chunk file goes, and the transfer is sealed from the upload."""
    real = ChunkWriter.write

    def failing(self: ChunkWriter, number: int, data: bytes) -> None:
        if number == 1:
            raise StorageFull()
        real(self, number, data)

    monkeypatch.setattr(ChunkWriter, "write", failing)
    ahead, path, data = SealingAhead(), tmp_path / "full", secrets.token_bytes(4 * SEGMENT)
    ahead.start("u7", len(data), SEGMENT, path)
    fed = []
    for start in range(0, len(data), SEGMENT):
        future = ahead.feed("u7", data[start : start + SEGMENT])
        fed.append(future is not None)
        if future is not None:
            future.result()
    # Pieces fed after the failure was seen are not sealed; when that is depends on the
    # writing thread, but the first two were sealed before chunk 1 was written.
    assert fed[:2] == [True, True]
    assert ahead.take("u7") is None
    assert not path.exists()
