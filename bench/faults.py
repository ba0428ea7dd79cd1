"""Fault runs for bulk transfer at full size (1 GiB by default), too slow for CI.

Run as root from the project's virtual environment::

    python bench/faults.py                 # 1 GiB, every scenario
    python bench/faults.py --size 256M --only receiver-killed

On one fresh local network (central, two gateways as real processes, real
mutual TLS, SQLite), each scenario sends one file of random bytes from
Tower Hamlets to DWP with the real CLI, and:

* ``receiver-killed``: SIGKILLs the receiving gateway once it holds 60 % of the
  file's chunks, restarts it;
* ``sender-killed``: SIGKILLs the sending gateway likewise, restarts it;
* ``changed-chunk``: the sending gateway flips one byte of chunk 100 on its
  first sending (started through ``tests/integration/fault_gateway.py
  --corrupt-chunk 100``, then restarted without it);
* ``receiver-killed-ahead``: the chunks go ahead while the CLI uploads
  (gcx.gateway.transfers.early_push), and the receiving gateway is SIGKILLed
  once it holds 60 % of them, before the transfer exists, and restarted.

In the first three the receiver refuses chunks sent ahead
(``transfer_early_bytes = 0``), so that the delivery itself is cut off
mid-way, as before chunks went ahead.

Each then waits for the receipt and checks: completed, one
``transfer.received`` audit entry at the receiver (once, not twice), how many
chunks the first offer after the fault still asked for (resumed, not from
zero), and the downloaded file's SHA-256 against the original. One JSON line
per scenario on standard output, then a summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from gcx import audit
from gcx.localnet import DEMO_GATEWAYS, LocalNetwork
from gcx.store import open_database

sys.path.insert(0, str(Path(__file__).parent))
from bulk import make_file, parse_size

SENDER, RECEIVER = DEMO_GATEWAYS[0], DEMO_GATEWAYS[1]
# Starts a gateway with faults injected (the production `gcx gateway serve` has none).
FAULT_GATEWAY = Path(__file__).resolve().parents[1] / "tests" / "integration" / "fault_gateway.py"
MIB = 1024 * 1024


def log(message: str) -> None:
    print(f"[faults] {message}", file=sys.stderr, flush=True)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(4 * MIB):
            digest.update(block)
    return digest.hexdigest()


def cli(network: LocalNetwork, name: str, *args: str) -> Any:
    gateway = network.gateways[name]
    result = subprocess.run(
        [sys.executable, "-m", "gcx.cli.main", "file", *args, "--json"],
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "GCX_API_URL": gateway.config.api_url,
            "GCX_TOKEN": gateway.token,
            "XDG_STATE_HOME": str(network.root / "cli-state"),
        },
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout)


def audit_entries(network: LocalNetwork, name: str, action: str, subject: str) -> list[Any]:
    database = open_database(network.gateways[name].config.db_url)
    try:
        with database.transaction() as conn:
            return [e for e in audit.entries(conn, action=action) if e.subject == subject]
    finally:
        database.dispose()


def restart(network: LocalNetwork, name: str, *faults: str) -> None:
    """Restart ``name``, through the fault-injecting program if ``faults`` are given."""
    network.stop_process(network.gateways[name].process)
    if faults:
        network.start_gateway(name, program=(str(FAULT_GATEWAY), *faults))
    else:
        network.start_gateway(name)
    asyncio.run(network.wait_for_gateway(name))


def take_chunks_ahead(network: LocalNetwork, name: str, allowed: bool) -> None:
    """Let ``name`` take chunks ahead of their manifest, or refuse them (then restart it)."""
    path = network.gateways[name].home / "gateway.toml"
    lines = [
        line
        for line in path.read_text().splitlines()
        if not line.startswith("transfer_early_bytes")
    ]
    lines.append(f"transfer_early_bytes = {8 * 1024**3 if allowed else 0}")
    path.write_text("\n".join(lines) + "\n")
    restart(network, name)


def newest_incoming(network: LocalNetwork) -> Path | None:
    """The receiver's most recently made incoming chunk folder, if any."""
    root = network.gateways[RECEIVER.name].home / "blobs/transfers/incoming"
    folders = list(root.glob("*")) if root.exists() else []
    return max(folders, key=lambda f: f.stat().st_mtime) if folders else None


def held_mib(incoming: Path) -> int:
    """MiB of chunks the receiver has written: the disk its sparse chunk file takes."""
    chunks = incoming / "chunks"
    return chunks.stat().st_blocks * 512 // MIB if chunks.exists() else 0


def kill_at(source: Path) -> int:
    """MiB held at the receiver when a gateway is killed: 60 % of the file, so the offer
    after the restart must ask for the rest (resumed) and not for all of it."""
    return source.stat().st_size * 6 // 10 // MIB


def kill_and_restart(network: LocalNetwork, victim: str, incoming: Path, kind: str) -> None:
    process = network.gateways[victim].process
    assert process is not None
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    log(f"{kind}: SIGKILLed {victim} holding {held_mib(incoming)} MiB of chunks")
    network.start_gateway(victim)
    asyncio.run(network.wait_for_gateway(victim))


def send_while_killing_the_receiver(network: LocalNetwork, source: Path) -> str:
    """``receiver-killed-ahead``: the CLI uploads while its chunks go ahead, and the receiver
    is SIGKILLed holding 60 % of them before the transfer exists; its table of early chunks
    dies with it, so the offer re-checks the chunk file on disk."""
    before = newest_incoming(network)
    gateway = network.gateways[SENDER.name]
    command = [sys.executable, "-m", "gcx.cli.main", "file", "send", "--json"]
    command += ["--to", RECEIVER.organisations[0].code, "--marking", "OFFICIAL", str(source)]
    environment = {
        **os.environ,
        "GCX_API_URL": gateway.config.api_url,
        "GCX_TOKEN": gateway.token,
        "XDG_STATE_HOME": str(network.root / "cli-state"),
    }
    with subprocess.Popen(command, stdout=subprocess.PIPE, env=environment, text=True) as sender:
        while (incoming := newest_incoming(network)) in (None, before) or held_mib(
            incoming
        ) < kill_at(source):
            if sender.poll() is not None:
                raise RuntimeError("the upload ended before 60 % of it was sent ahead")
            time.sleep(0.02)
        kill_and_restart(network, RECEIVER.name, incoming, "receiver-killed-ahead")
        out, _ = sender.communicate(timeout=600)
    if sender.returncode != 0:
        raise RuntimeError(f"gcx file send failed: {out[-2000:]}")
    transfer_id = str(json.loads(out)["id"])
    if incoming.name != transfer_id:
        raise RuntimeError("the chunks sent ahead were not the transfer's")
    return transfer_id


def scenario(network: LocalNetwork, kind: str, source: Path, expected: str) -> dict[str, Any]:
    if kind == "changed-chunk":
        restart(network, SENDER.name, "--corrupt-chunk", "100")
    elif kind == "receiver-killed-ahead":
        restart(network, SENDER.name)  # a gateway with faults injected sends nothing ahead
    # The kill scenarios test a delivery cut off mid-way: with chunks sent ahead the
    # receiver would hold them all before the transfer exists, so it refuses them there.
    take_chunks_ahead(network, RECEIVER.name, kind == "receiver-killed-ahead")
    started = time.perf_counter()
    if kind == "receiver-killed-ahead":
        return finish(
            network, kind, send_while_killing_the_receiver(network, source), expected, started
        )
    sent = cli(
        network,
        SENDER.name,
        "send",
        "--to",
        RECEIVER.organisations[0].code,
        "--marking",
        "OFFICIAL",
        str(source),
    )
    transfer_id = sent["id"]
    if kind in ("receiver-killed", "sender-killed"):
        incoming = network.gateways[RECEIVER.name].home / "blobs/transfers/incoming" / transfer_id
        while held_mib(incoming) < kill_at(source):
            time.sleep(0.02)
        victim = RECEIVER.name if kind == "receiver-killed" else SENDER.name
        kill_and_restart(network, victim, incoming, kind)
    return finish(network, kind, transfer_id, expected, started)


def finish(
    network: LocalNetwork, kind: str, transfer_id: str, expected: str, started: float
) -> dict[str, Any]:
    """Wait for the transfer's end, download it and judge the scenario."""
    deadline = time.monotonic() + 600
    while True:
        gateway = network.gateways[SENDER.name]
        request = urllib.request.Request(  # noqa: S310 - loopback URL from our own config
            f"{gateway.config.api_url}/api/v1/transfers/{transfer_id}",
            headers={"Authorization": f"Bearer {gateway.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status = json.loads(response.read())
        if status["state"] in ("complete", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    out = network.root / f"out-{kind}"
    got = cli(network, RECEIVER.name, "get", transfer_id, "--out", str(out))
    downloaded = sha256(Path(got["files"][0]["path"]))
    shutil.rmtree(out, ignore_errors=True)
    answers = [
        e.details_dict["missing"]
        for e in audit_entries(network, SENDER.name, "transfer.offer-answered", transfer_id)
    ]
    return {
        "scenario": kind,
        "state": status["state"],
        "seconds": round(elapsed, 2),
        "received_entries": len(
            audit_entries(network, RECEIVER.name, "transfer.received", transfer_id)
        ),
        "chunk_refusals": len(
            audit_entries(network, RECEIVER.name, "transfer.chunk-refused", transfer_id)
        ),
        "missing_per_offer": answers,
        "sha256_ok": downloaded == expected,
        "ok": status["state"] == "complete"
        and downloaded == expected
        and len(audit_entries(network, RECEIVER.name, "transfer.received", transfer_id)) == 1,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1G")
    parser.add_argument(
        "--only",
        choices=["receiver-killed", "sender-killed", "changed-chunk", "receiver-killed-ahead"],
        action="append",
    )
    args = parser.parse_args(argv)
    size = parse_size(args.size)
    workdir = Path(tempfile.mkdtemp(prefix="gcx-faults-"))
    network = LocalNetwork(workdir / "gcx", network_name="gcx-faults", poll_seconds=1.0)
    results = []
    try:
        asyncio.run(network.start((SENDER, RECEIVER)))
        source = workdir / "random.bin"
        make_file(source, size)
        expected = sha256(source)
        every = ["receiver-killed", "sender-killed", "receiver-killed-ahead", "changed-chunk"]
        for kind in args.only or every:
            result = scenario(network, kind, source, expected)
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        network.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {"size_bytes": size, "all_ok": all(r["ok"] for r in results)}
    print(json.dumps(summary))
    return 0 if summary["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
