"""Writing around the page cache: appends and chunk slots read back exactly as written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from gcx.store import direct_io
from gcx.store.transfer_files import ChunkWriter, TransferFiles


def _pieces(data: bytes, sizes: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in sizes:
        out.append(data[at : at + size])
        at += size
    return out


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("start", [0, 1, 4095, 4096, 10_000])
def test_appends_from_any_offset_keep_the_bytes_before_and_end_exactly(
    tmp_path: Path, direct: bool, start: int
) -> None:
    """An upload continued at an offset off the alignment keeps what it held, and the file
    ends at the last byte given, whatever padding the aligned writes used."""
    path = tmp_path / "upload"
    before = os.urandom(start)
    path.write_bytes(before + b"left by a crashed PATCH")
    os.truncate(path, start)  # as begin_append cuts it
    data = os.urandom(3 * 4096 + 777)
    appender = direct_io.Appender(path, start, direct=direct)
    appender.write(_pieces(data, [1, 5000, 3000]))
    assert appender.end <= start + 8001
    appender.write(_pieces(data[8001:], [4096]))
    appender.finish([data[8001 + 4096 :]])
    assert appender.closed
    assert appender.end == start + len(data)
    assert path.read_bytes() == before + data


def test_an_append_of_nothing_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(b"x" * 5000)
    appender = direct_io.Appender(path, 5000)
    appender.finish([])
    assert appender.end == 5000
    assert path.read_bytes() == b"x" * 5000


def test_an_append_past_the_end_of_the_file_is_refused(tmp_path: Path) -> None:
    """A file shorter than the offset recorded (it cannot be, after an fsync) is not
    appended to, so no byte lands at the wrong place."""
    path = tmp_path / "upload"
    path.write_bytes(b"x" * 100)
    for offset in (4096, 4096 + 200):
        with pytest.raises(OSError):
            direct_io.Appender(path, offset)
    assert path.read_bytes() == b"x" * 100


def test_a_failed_write_leaves_the_file_cut_where_its_bytes_end(tmp_path: Path) -> None:
    """After a write fails, finish writes nothing more and the file ends at ``end``."""
    path = tmp_path / "upload"
    path.write_bytes(b"")
    appender = direct_io.Appender(path, 0)
    first = os.urandom(8192)
    appender.write([first])
    assert appender.end == 8192
    with pytest.raises(TypeError):
        appender.write([object()])  # type: ignore[list-item]
    with pytest.raises(OSError):
        appender.write([b"more"])
    appender.finish([b"not written after a failure"])
    assert path.read_bytes() == first


@pytest.mark.parametrize("slot", [4096 * 3, 4096 * 3 + 16])
def test_chunks_in_aligned_and_unaligned_slots_read_back(tmp_path: Path, slot: int) -> None:
    """Slots on 4 KiB boundaries are written directly and padded inside the slot: a short
    chunk never touches its neighbour, whatever order the chunks come in."""
    files = TransferFiles(tmp_path)
    transfer_id = "ab" * 16
    chunks = [os.urandom(slot), os.urandom(100), os.urandom(slot), os.urandom(1)]
    for number in (3, 1, 0, 2):
        files.write_chunk("incoming", transfer_id, number, chunks[number], slot)
    for number, chunk in enumerate(chunks):
        assert files.read_chunk("incoming", transfer_id, number, len(chunk), slot) == chunk
    with ChunkWriter(tmp_path / "other", slot) as writer, pytest.raises(ValueError):
        writer.write(0, bytes(slot + 1))


def _refuse_alignment(*_: object) -> int:
    raise OSError(errno.EINVAL, "this device wants a larger alignment")


@pytest.mark.parametrize("start", [0, 100, 4096])
def test_a_device_refusing_the_alignment_is_written_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: int
) -> None:
    """Opening with O_DIRECT can succeed on a device whose blocks are larger than 4 KiB;
    its first refused write turns the writer to the page cache, with nothing lost."""
    monkeypatch.setattr(direct_io, "write_padded", _refuse_alignment)
    path = tmp_path / "upload"
    before = os.urandom(start)
    path.write_bytes(before)
    data = os.urandom(5 * 4096 + 3)
    appender = direct_io.Appender(path, start)
    appender.write([data[:9000]])
    appender.finish([data[9000:]])
    assert path.read_bytes() == before + data

    files = TransferFiles(tmp_path / "store")
    chunk = os.urandom(4096 * 2 - 5)
    files.write_chunk("incoming", "cd" * 16, 1, chunk, 4096 * 2)
    assert files.read_chunk("incoming", "cd" * 16, 1, len(chunk), 4096 * 2) == chunk


def test_a_tail_refused_by_the_device_is_written_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "upload"
    path.write_bytes(b"")
    appender = direct_io.Appender(path, 0)
    data = os.urandom(4096 + 10)
    appender.write([data])  # the whole block goes directly; 10 bytes wait
    monkeypatch.setattr(direct_io, "write_padded", _refuse_alignment)
    appender.finish([])
    assert path.read_bytes() == data
