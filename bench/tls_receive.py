"""Diagnostic: the CPU a server spends receiving 1 GiB over TLS on loopback, through
asyncio's TLS (as aiohttp's server receives chunk bodies) against the ``ssl`` module's
blocking socket (as a dedicated chunk listener on threads would).

Run from the project's virtual environment::

    python bench/tls_receive.py --rounds 2

Each round runs each server in a process of its own, with a client process
sending 1 MiB blocks over TLS (a throwaway network root and Ed25519 server
certificate made as the gateways' are, through ``gcx.crypto``);
the server's user and system CPU is read with ``getrusage`` from the first
byte to the last. The first round on a freshly started machine also pays for
touching fresh memory; compare the later rounds. The last line on standard
output is one JSON object ending with the ratio (asyncio's CPU over the
blocking socket's, the last round's).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import os
import resource
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gcx import crypto

TOTAL = 1 << 30
BLOCK = 1 << 20


PASSPHRASE = b"bench-only"


def make_certificate(folder: Path) -> None:
    """A network root and a server certificate for 127.0.0.1, as the gateways use."""
    now = dt.datetime.now(dt.UTC)
    root_key = crypto.SigningKey.generate()
    root = crypto.create_network_root(root_key, "tls-bench", now, dt.timedelta(hours=2))
    key = crypto.SigningKey.generate()
    server = crypto.issue_server_certificate(
        root_key, root, "tls-bench", key.public, ["127.0.0.1"], now, dt.timedelta(hours=1)
    )
    (folder / "anchor.pem").write_bytes(root.pem)
    (folder / "server.pem").write_bytes(server.pem)
    crypto.save_signing_key(folder / "server.key", key, PASSPHRASE)


def server_context(folder: Path) -> ssl.SSLContext:
    return crypto.server_context(
        folder / "anchor.pem",
        folder / "server.pem",
        folder / "server.key",
        PASSPHRASE,
        require_client_cert=False,
    )


def client(folder: Path, port: int) -> None:
    context = ssl.create_default_context(cafile=str(folder / "anchor.pem"))
    connection = socket.create_connection(("127.0.0.1", port))
    with context.wrap_socket(connection, server_hostname="127.0.0.1") as sock:
        block = os.urandom(BLOCK)
        for _ in range(TOTAL // BLOCK):
            sock.sendall(block)
        sock.recv(1)


def cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def report(queue: Any, started: float, before: tuple[float, float]) -> None:
    after = cpu()
    queue.put(
        {
            "wall_s": round(time.perf_counter() - started, 3),
            "user_s": round(after[0] - before[0], 3),
            "system_s": round(after[1] - before[1], 3),
        }
    )


def asyncio_server(folder: Path, queue: Any) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        clock: dict[str, Any] = {}

        class Receiver(asyncio.Protocol):
            received = 0

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                assert isinstance(transport, asyncio.WriteTransport)
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                if not self.received:
                    clock["started"], clock["before"] = time.perf_counter(), cpu()
                self.received += len(data)
                if self.received >= TOTAL:
                    report(queue, clock["started"], clock["before"])
                    self.transport.write(b"x")
                    done.set_result(None)

        server = await loop.create_server(Receiver, "127.0.0.1", 0, ssl=server_context(folder))
        queue.put(server.sockets[0].getsockname()[1])
        await done
        server.close()

    asyncio.run(serve())


def blocking_server(folder: Path, queue: Any) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        queue.put(listener.getsockname()[1])
        connection, _ = listener.accept()
        with server_context(folder).wrap_socket(connection, server_side=True) as sock:
            buffer = bytearray(BLOCK)
            received = sock.recv_into(buffer)
            started, before = time.perf_counter(), cpu()
            while received < TOTAL:
                received += sock.recv_into(buffer)
            report(queue, started, before)
            sock.sendall(b"x")


def measure(server: Any, folder: Path) -> dict[str, float]:
    queue: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=server, args=(folder, queue))
    process.start()
    sender = multiprocessing.Process(target=client, args=(folder, queue.get(timeout=30)))
    sender.start()
    result: dict[str, float] = queue.get(timeout=300)
    sender.join()
    process.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gcx-tls-") as tmp:
        folder = Path(tmp)
        make_certificate(folder)
        for number in range(args.rounds):
            done = {"asyncio": measure(asyncio_server, folder)}
            done["blocking"] = measure(blocking_server, folder)
            print(f"[tls] round {number + 1}: {done}", file=sys.stderr, flush=True)
            rounds.append(done)
    last = rounds[-1]
    cpu_of = {k: last[k]["user_s"] + last[k]["system_s"] for k in ("asyncio", "blocking")}
    result = {
        "bytes": TOTAL,
        "load_average": os.getloadavg()[0],
        "rounds": rounds,
        "ratio": round(cpu_of["asyncio"] / cpu_of["blocking"], 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
