"""Run a gateway that injects faults into the requests it sends (tests and bench only).

    python tests/integration/fault_gateway.py [--corrupt-chunk N] [--chunk-delay SECONDS] \\
        [--hold PATH=GATE ...] gateway serve --home HOME

Production gateways run ``gcx gateway serve``, which never injects faults: the
hook is a ``faults`` argument of :func:`gcx.gateway.server.serve` that only
this program passes. It reaches the one peer client, which shows it every
request before sending. Start a gateway through this program with
``LocalNetwork.start_gateway(name, program=fault_program(...))``.

* ``--corrupt-chunk N`` flips one byte of chunk ``N`` of each transfer the
  first time it is sent, so the receiver refuses it as changed and it is sent
  again;
* ``--chunk-delay SECONDS`` waits before sending each chunk, to widen the
  window for killing a process mid-transfer;
* ``--hold PATH=GATE`` holds every request to a peer path matching ``PATH``
  (a shell-style pattern: ``/peer/v1/transfers/*/chunks/20``) until the file
  ``GATE`` exists, and creates ``GATE.waiting`` while it holds one,
  so a test can stop a request at a known step, act, and then let it go (or
  kill the process while it is held) without guessing at timing.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import logging
import re
import sys
from pathlib import Path

CHUNK_PATH = re.compile(r"/peer/v1/transfers/(?P<transfer>[^/]+)/chunks/(?P<number>\d+)")


HOLD_POLL_SECONDS = 0.05


def fault_program(
    *,
    corrupt_chunk: int | None = None,
    chunk_delay: float = 0.0,
    hold: dict[str, Path] | None = None,
) -> tuple[str, ...]:
    """What :meth:`gcx.localnet.LocalNetwork.start_gateway` runs for a gateway with these faults."""
    program = [str(Path(__file__).resolve())]
    if corrupt_chunk is not None:
        program += ["--corrupt-chunk", str(corrupt_chunk)]
    if chunk_delay:
        program += ["--chunk-delay", str(chunk_delay)]
    for path, gate in (hold or {}).items():
        program += ["--hold", f"{path}={gate}"]
    return tuple(program)


def waiting_marker(gate: Path) -> Path:
    """The file a held request creates beside its gate."""
    return gate.with_name(gate.name + ".waiting")


class ChunkFaults:
    """A :class:`gcx.gateway.exchange.peer_client.PeerFaults` acting on transfer chunks."""

    def __init__(
        self, corrupt_chunk: int | None, chunk_delay: float, hold: dict[str, Path] | None = None
    ) -> None:
        self.corrupt_chunk = corrupt_chunk
        self.chunk_delay = chunk_delay
        self.hold = hold or {}
        self._corrupted: set[tuple[str, int]] = set()

    async def outgoing(self, method: str, path: str, body: bytes) -> bytes:
        gate = next((g for p, g in self.hold.items() if fnmatch.fnmatchcase(path, p)), None)
        if gate is not None:
            waiting_marker(gate).touch()
            while not gate.exists():
                await asyncio.sleep(HOLD_POLL_SECONDS)
        match = CHUNK_PATH.fullmatch(path) if method == "PUT" else None
        if match is None:
            return body
        if self.chunk_delay:
            await asyncio.sleep(self.chunk_delay)
        key = (match["transfer"], int(match["number"]))
        if key[1] == self.corrupt_chunk and key not in self._corrupted and body:
            self._corrupted.add(key)
            return bytes([body[0] ^ 0x01]) + body[1:]
        return body


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corrupt-chunk", type=int)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--hold", action="append", default=[], metavar="PATH=GATE")
    parser.add_argument("command", nargs=2, help="gateway serve")
    parser.add_argument("--home", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command != ["gateway", "serve"]:
        parser.error("only 'gateway serve' can run with faults")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)

    from gcx.config import GatewayConfig
    from gcx.gateway.server import serve

    hold = {path: Path(gate) for path, _, gate in (h.partition("=") for h in args.hold)}
    faults = ChunkFaults(args.corrupt_chunk, args.chunk_delay, hold)
    logging.getLogger("gcx.faults").warning(
        "injecting faults: corrupt chunk %s, delay %ss per chunk, holding %s",
        args.corrupt_chunk,
        args.chunk_delay,
        sorted(hold),
    )
    asyncio.run(serve(GatewayConfig.load(args.home), faults=faults))


if __name__ == "__main__":
    main(sys.argv[1:])
