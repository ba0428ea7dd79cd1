"""Sending chunks ahead (gateway.transfers.early_push): the sealing never waits for a receiver.

The transport here stands in for the network only (the integration tests in
tests/integration/test_transfer_early_chunks.py push over real mutual TLS).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

from gcx.gateway.transfers.early_push import IN_FLIGHT, WAITING, Pushing

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


def _chunks(count: int) -> list[bytes]:
    return [bytes([n]) * (SLOT - 10) for n in range(count)]


def _send_all(pushing: Pushing, chunks: list[bytes]) -> None:
    """Send every chunk from another thread, and require that it never waited."""
    sender = threading.Thread(target=lambda: [pushing.send(n, c) for n, c in enumerate(chunks)])
    sender.start()
    sender.join(10)
    assert not sender.is_alive(), "sending a chunk ahead waited for the receiver"


def test_chunks_sealed_faster_than_sent_wait_in_memory_and_the_rest_are_left() -> None:
    """With the receiver answering nothing yet, IN_FLIGHT chunks go and WAITING wait; the
    rest are not sent ahead (the offer lists them and the carrier sends them), so neither
    the sealing nor the memory waits on a slow receiver."""
    chunks = _chunks(3 * IN_FLIGHT + WAITING + 1)
    transport = _Transport()
    pushing = Pushing(transport, transport.executor, "ab" * 16, SLOT, PEER, "blake3")
    _send_all(pushing, chunks)  # the receiver answers nothing yet
    transport.gate.set()
    transport.executor.shutdown(wait=True)
    got = {int(p.rsplit("/", 1)[1]): body for p, body, _ in transport.sent}
    assert got == dict(enumerate(chunks[: IN_FLIGHT + WAITING]))
    assert pushing.skipped == len(chunks) - IN_FLIGHT - WAITING
    assert not pushing.stopped
    # Each says its slot and the digest its manifest will list.
    expected = {"Gcx-Chunk-Slot": str(SLOT), "Gcx-Chunk-Digest": "blake3"}
    assert all(h == expected for _, _, h in transport.sent)
    assert all(p.startswith(f"/peer/v1/transfers/{'ab' * 16}/early/") for p, _, _ in transport.sent)


def test_a_receiver_keeping_up_is_sent_every_chunk() -> None:
    """Chunks handed over no faster than they are answered all go ahead, in order of sealing."""
    chunks = _chunks(3 * IN_FLIGHT)
    transport = _Transport()
    transport.gate.set()
    pushing = Pushing(transport, transport.executor, "cd" * 16, SLOT, PEER, "blake3")
    for number, chunk in enumerate(chunks):
        pushing.send(number, chunk)
        if number % IN_FLIGHT == IN_FLIGHT - 1:
            while len(transport.sent) < number + 1:  # the receiver has taken them all
                threading.Event().wait(0.001)
    transport.executor.shutdown(wait=True)
    got = {int(p.rsplit("/", 1)[1]): body for p, body, _ in transport.sent}
    assert got == dict(enumerate(chunks)) and pushing.skipped == 0


def test_a_refusal_stops_the_pushing() -> None:
    chunks = _chunks(3 * IN_FLIGHT)
    transport = _Transport(status=409)
    pushing = Pushing(transport, transport.executor, "ef" * 16, SLOT, PEER, "blake3")
    _send_all(pushing, chunks)
    transport.gate.set()
    transport.executor.shutdown(wait=True)
    assert pushing.stopped
    # Those already on their way were answered; none of the waiting ones was sent.
    assert 1 <= len(transport.sent) <= IN_FLIGHT
    sent = len(transport.sent)
    pushing.send(0, chunks[0])
    assert len(transport.sent) == sent
