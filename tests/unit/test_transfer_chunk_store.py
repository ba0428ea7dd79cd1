"""The one-file chunk store and the receiver's memory of held chunks."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from gcx import crypto
from gcx.errors import NotFound
from gcx.gateway.transfers.held import HeldChunks
from gcx.store.transfer_files import TransferFiles

SLOT = 64


def _chunks() -> list[bytes]:
    return [secrets.token_bytes(SLOT), secrets.token_bytes(SLOT), secrets.token_bytes(10)]


def test_chunks_written_in_any_order_read_back_from_their_slots(tmp_path: Path) -> None:
    """Each chunk is read back exactly from its slot, whatever order they were written in."""
    files, tid, chunks = TransferFiles(tmp_path), secrets.token_hex(16), _chunks()
    for number in (2, 0, 1):
        files.write_chunk("incoming", tid, number, chunks[number], SLOT)
    for number, data in enumerate(chunks):
        assert files.read_chunk("incoming", tid, number, len(data), SLOT) == data


@pytest.mark.parametrize("slot", [SLOT, 4096], ids=["page-cache", "aligned-slot"])
def test_a_chunk_written_as_the_pieces_it_arrived_in_is_the_chunk(
    tmp_path: Path, slot: int
) -> None:
    """A chunk handed over as pieces (as the network gave them, never joined) is stored
    exactly as the joined bytes would be, in a slot written through the page cache and
    in an aligned one written around it; pieces longer than the slot are refused."""
    files, tid = TransferFiles(tmp_path), secrets.token_hex(16)
    chunk = secrets.token_bytes(slot - 16)
    pieces: list[bytes | memoryview] = [chunk[:7], b"", memoryview(chunk)[7:40], chunk[40:]]
    files.write_chunk("incoming", tid, 1, pieces, slot)
    files.write_chunk("incoming", tid, 0, chunk[:5], slot)
    assert files.read_chunk("incoming", tid, 1, len(chunk), slot) == chunk
    assert files.read_chunk("incoming", tid, 0, 5, slot) == chunk[:5]
    with pytest.raises(ValueError):
        files.write_chunk("incoming", tid, 2, [chunk, b"x" * 17], slot)


def test_verified_chunks_keeps_only_slots_matching_the_manifest(tmp_path: Path) -> None:
    """After a restart the held chunks are those whose slot has the listed digest (of the
    manifest's kind): a slot never written (a hole), or one holding other bytes, is missing."""
    files, tid, chunks = TransferFiles(tmp_path), secrets.token_hex(16), _chunks()
    files.write_chunk("incoming", tid, 2, chunks[2], SLOT)
    files.write_chunk("incoming", tid, 1, b"x" * SLOT, SLOT)
    sizes = [len(c) for c in chunks]
    for name in ("sha256", "blake3"):
        digests = [crypto.chunk_digest(name, c) for c in chunks]
        digest_of = crypto.chunk_hasher(name)
        assert files.verified_chunks("incoming", tid, digests, sizes, SLOT, digest_of) == {2}
        other = secrets.token_hex(16)
        assert files.verified_chunks("incoming", other, digests, sizes, SLOT, digest_of) == set()
    # Digests of one kind never pass for the other.
    digests = [crypto.chunk_digest("sha256", c) for c in chunks]
    blake3 = crypto.chunk_hasher("blake3")
    assert files.verified_chunks("incoming", tid, digests, sizes, SLOT, blake3) == set()


def test_a_chunk_not_held_is_not_found(tmp_path: Path) -> None:
    """Reading a chunk past what was written, or of a transfer not held, is NotFound."""
    files, tid = TransferFiles(tmp_path), secrets.token_hex(16)
    with pytest.raises(NotFound):
        files.read_chunk("out", tid, 0, 10, SLOT)
    files.write_chunk("out", tid, 0, b"0123456789", SLOT)
    with pytest.raises(NotFound):
        files.read_chunk("out", tid, 1, 10, SLOT)


def test_chunks_of_the_older_file_per_chunk_layout_are_still_read(tmp_path: Path) -> None:
    """A transfer stored before the one-file layout (a file per chunk) is still readable."""
    files, tid = TransferFiles(tmp_path), secrets.token_hex(16)
    (tmp_path / "received" / tid).mkdir(parents=True)
    (tmp_path / "received" / tid / "3").write_bytes(b"old chunk")
    assert files.read_chunk("received", tid, 3, 9, SLOT) == b"old chunk"


def test_publish_moves_the_whole_transfer_at_once(tmp_path: Path) -> None:
    """Publishing renames the incoming folder into received/ with its chunks."""
    files, tid = TransferFiles(tmp_path), secrets.token_hex(16)
    files.write_chunk("incoming", tid, 0, b"chunk", SLOT)
    files.publish(tid)
    assert files.is_published(tid)
    assert files.read_chunk("received", tid, 0, 5, SLOT) == b"chunk"
    assert not (tmp_path / "incoming" / tid).exists()


def test_held_chunks_asks_the_disk_only_for_a_transfer_it_does_not_know() -> None:
    """A transfer not remembered is re-checked on disk once; chunks written after are added."""
    held, asked = HeldChunks(limit=2), []

    def on_disk() -> set[int]:
        asked.append(1)
        return {0}

    held.add("a", 5)  # not tracked yet: ignored, the disk decides
    assert held.held("a", on_disk) == {0}
    held.add("a", 1)
    assert held.held("a", on_disk) == {0, 1}
    assert len(asked) == 1
    held.held("b", set)
    held.held("c", set)  # pushes "a" out: it is asked of the disk again
    assert held.held("a", on_disk) == {0}
    assert len(asked) == 2
    held.forget("a")
    assert held.held("a", set) == set()


def test_a_kept_upload_is_read_back_and_outlives_the_upload_name(tmp_path: Path) -> None:
    """An upload kept as a transfer's file is a second name for it: deleting the upload
    leaves the kept file, read back at any offset with its sealed key; a transfer held as
    chunks has no kept key, and a read past the kept file's end is not found."""
    files = TransferFiles(tmp_path)
    upload, transfer = "aa" * 16, "bb" * 16
    files.create_upload(upload)
    files.upload_path(upload).write_bytes(b"0123456789")
    files.keep_uploads(transfer, [upload], "c2VhbGVk")
    files.delete_upload(upload)
    assert not files.upload_path(upload).exists()
    assert files.kept_key(transfer) == "c2VhbGVk"
    assert files.read_kept(transfer, 0, 3, 4) == b"3456"
    with pytest.raises(NotFound):
        files.read_kept(transfer, 0, 8, 4)
    with pytest.raises(NotFound):
        files.read_kept(transfer, 1, 0, 1)
    assert files.kept_key("cc" * 16) is None
    files.delete("out", transfer)
    assert files.kept_key(transfer) is None
