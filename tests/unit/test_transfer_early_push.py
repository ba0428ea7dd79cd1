"""Sending chunks ahead (gateway.transfers.early_push): the sealing never waits for a receiver.

The transport here stands in for the network only (the integration tests in
tests/integration/test_transfer_early_chunks.py push over real mutual TLS).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gcx.gateway.transfers.early_push import IN_FLIGHT, Pushing

SLOT = 100
PEER: Any = SimpleNamespace(name="dwp")  # all Pushing reads of a directory entry


class _Transport:
    """Answers each PUT with ``status`` once ``gate`` is open, recording what was sent."""

    def __init__(self, status: int = 204) -> None:
        self.executor = ThreadPoolExecutor(max_workers=IN_FLIGHT)
        self.gate = threading.Event()
        self.status = status
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []
        self._lock = threading.Lock()

    def put(self, peer: Any, path: str, body: bytes, headers: dict[str, str]) -> Any:
        assert self.gate.wait(30)
        with self._lock:
            self.sent.append((path, body, headers))
        return SimpleNamespace(status=self.status)


def _chunks(tmp_path: Path, count: int) -> tuple[Path, list[bytes]]:
    path = tmp_path / "chunks"
    chunks = [bytes([n]) * (SLOT - 10) for n in range(count)]
    with path.open("wb") as handle:
        for number, data in enumerate(chunks):
            handle.seek(number * SLOT)
            handle.write(data)
    return path, chunks


def _send_all(pushing: Pushing, chunks: list[bytes]) -> None:
    """Send every chunk from another thread, and require that it never waited."""
    sender = threading.Thread(target=lambda: [pushing.send(n, c) for n, c in enumerate(chunks)])
    sender.start()
    sender.join(10)
    assert not sender.is_alive(), "sending a chunk ahead waited for the receiver"


def test_chunks_sealed_faster_than_sent_are_read_back_and_all_sent(tmp_path: Path) -> None:
    path, chunks = _chunks(tmp_path, 3 * IN_FLIGHT + 1)
    transport = _Transport()
    pushing = Pushing(transport, transport.executor, "ab" * 16, SLOT, path, PEER, "blake3")
    _send_all(pushing, chunks)  # the receiver answers nothing yet
    transport.gate.set()
    transport.executor.shutdown(wait=True)
    got = {int(p.rsplit("/", 1)[1]): body for p, body, _ in transport.sent}
    assert got == dict(enumerate(chunks))
    # Each says its slot and the digest its manifest will list.
    expected = {"Gcx-Chunk-Slot": str(SLOT), "Gcx-Chunk-Digest": "blake3"}
    assert all(h == expected for _, _, h in transport.sent)
    assert all(p.startswith(f"/peer/v1/transfers/{'ab' * 16}/early/") for p, _, _ in transport.sent)


def test_a_refusal_stops_the_pushing(tmp_path: Path) -> None:
    path, chunks = _chunks(tmp_path, 3 * IN_FLIGHT)
    transport = _Transport(status=409)
    pushing = Pushing(transport, transport.executor, "cd" * 16, SLOT, path, PEER, "blake3")
    _send_all(pushing, chunks)
    transport.gate.set()
    transport.executor.shutdown(wait=True)
    assert pushing.stopped
    # Those already on their way were answered; none of the waiting ones was sent.
    assert 1 <= len(transport.sent) <= IN_FLIGHT
    sent = len(transport.sent)
    pushing.send(0, chunks[0])
    assert len(transport.sent) == sent


def test_a_chunk_file_moved_on_stops_the_pushing_quietly(tmp_path: Path) -> None:
    path, chunks = _chunks(tmp_path, 2 * IN_FLIGHT)
    transport = _Transport()
    pushing = Pushing(transport, transport.executor, "ef" * 16, SLOT, path, PEER, "blake3")
    _send_all(pushing, chunks)
    path.rename(tmp_path / "adopted")  # the transfer was made: its file moved to out/
    transport.gate.set()
    transport.executor.shutdown(wait=True)
    assert pushing.stopped
    assert sorted(int(p.rsplit("/", 1)[1]) for p, _, _ in transport.sent) == list(range(IN_FLIGHT))
