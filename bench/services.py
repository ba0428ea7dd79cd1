"""Benchmark: service calls through two gcx gateways against the same backend called directly.

    python bench/services.py                       # 30 s per phase, 32 clients
    python bench/services.py --seconds 10 --concurrency 32 --logging full

A fresh local network (central, the council's and DWP's gateways as real
``gcx`` processes, real mutual TLS, the default SQLite store) in a temporary
directory, with the DWP reference lookup (``gcx.reference``, its own process)
published by DWP's gateway and granted to the council.

Phases, in one run, each with the same fixed number of closed-loop clients
(aiohttp, keep-alive) cycling through 16 synthetic National Insurance numbers:

1. ``direct``: GET the backend's /customers/{nino} for ``--seconds``;
2. ``gateway``: the same lookups through the council's gateway
   (/services/DWP/dwp-cis/customers/{nino}, with user and purpose headers):
   consumer gateway → mutual TLS → provider gateway → backend, signed both ways
   and logged on both sides;
3. ``half-rate``: open-loop load at half the gateway's measured maximum, first
   direct, then through the gateways, ``--seconds`` / 3 each; the added latency
   is the gateway p99 minus the direct p99 at that rate.

Every answer is checked (status 200, SYNTHETIC label); errors are counted.
The CPU each process used in the ``gateway`` phase (Linux ``/proc``), per call,
is reported beside the rates: on a shared, noisy machine it is the steadier
figure. ``--profile DIR`` samples both gateways with py-spy (on ``PATH``) during
that phase and writes ``DIR/<gateway>.txt`` as collapsed stacks.
The last line on standard output is one JSON object, ratio last.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from gcx.localnet import DEMO_GATEWAYS, LocalNetwork
from gcx.reference import sample_ninos
from gcx.reference.network import set_up_dwp_lookup

NINOS = sample_ninos(16)
HEADERS = {"X-Gcx-User": "bench.user", "X-Gcx-Purpose": "benchmark"}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_profilers(pids: dict[str, int], directory: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy sampling each process until stopped with SIGINT (collapsed stacks)."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy).")
    directory.mkdir(parents=True, exist_ok=True)
    profilers = []
    for name, pid in pids.items():
        command = [py_spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw"]
        command += ["--output", str(directory / f"{name}.txt")]
        profilers.append(
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    time.sleep(1.0)  # let py-spy attach before the clock starts
    return profilers


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        with contextlib.suppress(ProcessLookupError):
            profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        try:
            profiler.wait(timeout=60)
        except subprocess.TimeoutExpired:
            profiler.kill()
            profiler.wait()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(latencies: list[float], errors: int, seconds: float) -> dict[str, Any]:
    return {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
    }


async def _one(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> bool:
    async with session.get(url, headers=headers) as response:
        body = await response.read()
        return response.status == 200 and b"SYNTHETIC" in body


async def closed_loop(
    base: str, headers: dict[str, str], concurrency: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(index: int) -> None:
            nonlocal errors
            n = index
            while time.perf_counter() < deadline:
                url = f"{base}/customers/{NINOS[n % len(NINOS)]}"
                n += 1
                started = time.perf_counter()
                try:
                    ok = await _one(session, url, headers)
                except (aiohttp.ClientError, OSError):
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    return _summary(latencies, errors, elapsed)


async def open_loop(
    base: str, headers: dict[str, str], rate: float, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    tasks: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def fire(n: int) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                ok = await _one(session, f"{base}/customers/{NINOS[n % len(NINOS)]}", headers)
            except (aiohttp.ClientError, OSError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

        start = time.perf_counter()
        n = 0
        while (now := time.perf_counter()) < start + seconds:
            due = start + n / rate
            if due > now:
                await asyncio.sleep(due - now)
            task = asyncio.create_task(fire(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return _summary(latencies, errors, elapsed)


async def run(
    seconds: float, concurrency: int, logging: str, profile: Path | None, keep: bool = False
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gcx-bench-services-") as tmp:
        if keep:
            tmp = tempfile.mkdtemp(prefix="gcx-bench-services-")
            print(f"keeping the network's files in {tmp}", file=sys.stderr)
        network = LocalNetwork(Path(tmp) / "net", poll_seconds=0.5)
        try:
            print("starting the network...", file=sys.stderr)
            await network.start(DEMO_GATEWAYS[:2])
            backend = await set_up_dwp_lookup(
                network, logging=logging, rate_per_second=100_000.0, burst=100_000
            )
            council = network.gateways["tower-hamlets"]
            gateway_base = f"{council.config.api_url}/services/DWP/dwp-cis"
            # A back-office system stating its end user: a person's token may name
            # no other user (user-mismatch), so the benchmark calls as a system.
            system = network.add_system_token("tower-hamlets", "bench-system", ("system",))
            gateway_headers = {"Authorization": f"Bearer {system}", **HEADERS}
            # Warm up both paths (TLS sessions, caches, connection pools).
            await closed_loop(backend, {}, concurrency, 2)
            await closed_loop(gateway_base, gateway_headers, concurrency, 2)
            print(f"direct, {concurrency} clients, {seconds:g} s...", file=sys.stderr)
            direct = await closed_loop(backend, {}, concurrency, seconds)
            pids = {"benchmark": os.getpid()}
            for name, gateway in network.gateways.items():
                assert gateway.process is not None
                pids[name] = gateway.process.pid
            pids["backend"] = network.extra_processes[-1].pid
            profilers = start_profilers(pids, profile) if profile is not None else []
            print(f"through the gateways, {seconds:g} s...", file=sys.stderr)
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            try:
                through = await closed_loop(gateway_base, gateway_headers, concurrency, seconds)
            finally:
                stop_profilers(profilers)
            used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
            calls = max(through["requests"], 1)
            through["cpu_ms_per_call"] = {
                name: round(1000 * value / calls, 3) for name, value in used.items()
            }
            if not through["requests"]:
                raise SystemExit(f"every call through the gateways failed: {through}")
            half = through["requests_per_s"] / 2
            print(f"open loop at {half:.0f}/s (half the gateway maximum)...", file=sys.stderr)
            half_direct = await open_loop(backend, {}, half, seconds / 3)
            half_gateway = await open_loop(gateway_base, gateway_headers, half, seconds / 3)
        finally:
            network.stop()
    return {
        "benchmark": "services",
        "seconds": seconds,
        "concurrency": concurrency,
        "logging_policy": logging,
        "store": "sqlite",
        "direct": direct,
        "gateway": through,
        "half_rate": {
            "rate_per_s": round(half, 1),
            "direct": half_direct,
            "gateway": half_gateway,
            "p99_added_ms": round(half_gateway["p99_ms"] - half_direct["p99_ms"], 2),
        },
        "p99_added_ms": round(half_gateway["p99_ms"] - half_direct["p99_ms"], 2),
        "ratio": round(through["requests_per_s"] / max(direct["requests_per_s"], 1e-9), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--logging", choices=["metadata", "full"], default="metadata")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR")
    parser.add_argument("--keep", action="store_true", help="keep the gateways' homes and logs")
    args = parser.parse_args()
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at the start: {load}", file=sys.stderr)
    result = asyncio.run(run(args.seconds, args.concurrency, args.logging, args.profile, args.keep))
    # The ratio stays the last key.
    result = {"load_average_at_start": load, **result}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
