"""Chunks written on another thread while the next is sealed (gcx.store.write_behind)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gcx.errors import StorageFull
from gcx.store.transfer_files import ChunkWriter
from gcx.store.write_behind import WriteBehind

SLOT = 8192  # aligned: written around the page cache where the filesystem allows


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=1)
    yield executor
    executor.shutdown(wait=True)


def _chunks(count: int) -> list[bytes]:
    return [os.urandom(SLOT if n < count - 1 else 100) for n in range(count)]


def test_each_chunk_is_written_before_what_follows_it_runs(
    tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    """``then`` sees every chunk already in its slot, in the order written; wait() returns
    once all are there."""
    path, chunks, seen = tmp_path / "chunks", _chunks(9), []

    def then(number: int, data: bytes) -> None:
        with path.open("rb") as handle:
            handle.seek(number * SLOT)
            assert handle.read(len(data)) == data
        seen.append(number)

    with ChunkWriter(path, SLOT) as writer:
        behind = WriteBehind(writer, pool, then)
        for number, data in enumerate(chunks):
            behind.write(number, data)
        behind.wait()
    assert seen == list(range(9))
    raw = path.read_bytes()
    assert [raw[n * SLOT : n * SLOT + len(c)] for n, c in enumerate(chunks)] == chunks


def test_at_most_depth_chunks_wait(tmp_path: Path, pool: ThreadPoolExecutor) -> None:
    """With the writing thread busy, ``depth`` chunks are taken at once and the next write
    waits until one is written: memory stays bounded."""
    gate = threading.Event()
    pool.submit(gate.wait, 30)  # the writing thread is busy until the gate opens
    chunks = _chunks(4)
    with ChunkWriter(tmp_path / "chunks", SLOT) as writer:
        behind = WriteBehind(writer, pool, depth=3)
        for number in range(3):
            behind.write(number, chunks[number])
        fourth = threading.Thread(target=behind.write, args=(3, chunks[3]))
        fourth.start()
        fourth.join(0.2)
        assert fourth.is_alive(), "a fourth chunk was taken while three were waiting"
        gate.set()
        fourth.join(10)
        assert not fourth.is_alive()
        behind.wait()


def test_a_failed_write_stops_the_writing_and_is_raised(
    tmp_path: Path, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first failure is raised by the next write and by wait(); nothing after it is
    written or passed on; drain() waits without raising."""
    real = ChunkWriter.write

    def failing(self: ChunkWriter, number: int, data: bytes) -> None:
        if number == 1:
            raise StorageFull()
        real(self, number, data)

    monkeypatch.setattr(ChunkWriter, "write", failing)
    passed_on: list[int] = []
    chunks = _chunks(4)
    with ChunkWriter(tmp_path / "chunks", SLOT) as writer:
        behind = WriteBehind(writer, pool, lambda n, _: passed_on.append(n))
        behind.write(0, chunks[0])
        behind.write(1, chunks[1])
        behind.drain()
        with pytest.raises(StorageFull):
            behind.write(2, chunks[2])
        with pytest.raises(StorageFull):
            behind.wait()
    assert passed_on == [0]
    assert (tmp_path / "chunks").stat().st_size <= SLOT  # nothing past chunk 0
