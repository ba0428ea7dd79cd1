"""Benchmark: one large file through gcx (person → own gateway → recipient gateway → receipt)
against OpenSSH sftp to a private sshd on loopback.

Run as root from the project's virtual environment (sshd must start as root)::

    python bench/bulk.py --size 1G
    python bench/bulk.py --size 256M --skip-sftp
    python bench/bulk.py --size 1G --files 4   # one batch of four 256 MiB files
    python bench/bulk.py --size 1G --rounds 5  # alternating pairs, medians

gcx: a fresh local network (central and two gateways as real ``gcx``
processes, real mutual TLS, the default SQLite store) in a temporary
directory. A file of random bytes is sent with the real CLI
(``gcx file send --wait``): preflight, tus upload to the sender's gateway,
encryption into 2 MiB chunks as the upload arrives, each chunk sent on to the
receiving gateway as it is sealed (several in flight), the offer of the signed
manifest, completion and the signed receipt, verified by the sender. The
clock runs from the CLI's start until it sees the transfer ``complete``
(every receipt held); its --wait polls every 100 ms. Peak
resident memory of each gateway process is its ``VmHWM`` from
``/proc/PID/status``, polled during the run.

sftp: a private ``sshd`` (own host key, own client key and authorized_keys in
the temporary directory, a free port on 127.0.0.1), started before and
stopped after; the same file is uploaded with ``sftp -b`` using the cipher
``aes128-gcm@openssh.com``, timed end to end. Any system sshd is left alone.
That upload ends with the file in the page cache, not yet on the disk, while
gcx answers only once each side holds its copy durably (fsync); so the file is
also put a second time with ``put -f`` (the server fsyncs it before answering),
after the first has been flushed, and reported as ``sftp_fsync_mib_per_s``
with ``ratio_to_sftp_fsync``. The ratio (last) stays the one to plain sftp.

With ``--files N`` the size is split over N files sent as one batch (and put
one after another by sftp); the gateway seals a batch's files one after
another as they arrive, as it does a single file.

Also reported: each gateway's CPU seconds (user plus system, from
``/proc/PID/stat``) and the CLI's over the timed run, sftp's (the ``sftp``
and ``ssh`` client processes, and sshd's processes for the connection,
counted once sshd has reaped them), and the load average at the start,
since the machine is shared and the wall-clock figures move with whatever
else runs.

``--rounds N`` runs both N times, sftp first in every other round, and
reports each round and the medians; the ratio is then the median of the
rounds' ratios. On this kind of machine both speeds drift by tens of per
cent over minutes, so a single pair can favour either side.

The last line on standard output is one JSON object (ratio last); progress
goes to standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from gcx.localnet import DEMO_GATEWAYS, LocalNetwork, free_port

SENDER, RECEIVER = DEMO_GATEWAYS[0], DEMO_GATEWAYS[1]
SSHD = Path("/usr/sbin/sshd")
MIB = 1024 * 1024


def log(message: str) -> None:
    print(f"[bulk] {message}", file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    units = {"K": 1024, "M": MIB, "G": 1024 * MIB}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def make_file(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        left = size
        while left:
            block = os.urandom(min(left, 16 * MIB))
            handle.write(block)
            left -= len(block)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time a process has used so far (``/proc/PID/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def reaped_children_cpu_seconds(pid: int) -> float:
    """CPU time of the children a process has waited for (``cutime`` + ``cstime``): for
    sshd, every connection's processes once they have ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def has_children(pid: int) -> bool:
    try:
        return any(
            Path(t, "children").read_text().strip() for t in Path(f"/proc/{pid}/task").iterdir()
        )
    except OSError:
        return False


def vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory:
    """Polls VmHWM of some processes every 50 ms on a thread."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], vm_hwm_kib(pid))
            time.sleep(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        for name, pid in self.pids.items():
            self.peak[name] = max(self.peak[name], vm_hwm_kib(pid))


async def start_network(workdir: Path) -> LocalNetwork:
    network = LocalNetwork(workdir / "gcx", network_name="gcx-bench", poll_seconds=1.0)
    await network.start((SENDER, RECEIVER))
    return network


def run_gcx(sources: list[Path], size: int, workdir: Path) -> dict[str, Any]:
    network = asyncio.run(start_network(workdir))
    try:
        sender = network.gateways[SENDER.name]
        receiver = network.gateways[RECEIVER.name]
        assert sender.process is not None and receiver.process is not None
        env = {
            **os.environ,
            "GCX_API_URL": sender.config.api_url,
            "GCX_TOKEN": sender.token,
            "XDG_STATE_HOME": str(workdir / "cli-state"),
        }
        pids = {SENDER.name: sender.process.pid, RECEIVER.name: receiver.process.pid}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        cli_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with PeakMemory(pids) as memory:
            started = time.perf_counter()
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "gcx.cli.main",
                    "file",
                    "send",
                    "--to",
                    RECEIVER.organisations[0].code,
                    "--marking",
                    "OFFICIAL-SENSITIVE",
                    "--wait",
                    "--json",
                    *map(str, sources),
                ],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            elapsed = time.perf_counter() - started
        cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        cpu = {name: round(sum(cpu_after[name]) - sum(cpu_before[name]), 2) for name in pids}
        # The kernel's share shows what writing into the page cache costs on this machine.
        system = {name: round(cpu_after[name][1] - cpu_before[name][1], 2) for name in pids}
        cli_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu["cli"] = round(
            cli_after.ru_utime + cli_after.ru_stime - cli_before.ru_utime - cli_before.ru_stime, 2
        )
        if result.returncode != 0:
            raise RuntimeError(f"gcx file send failed: {result.stderr[-2000:]}")
        status = json.loads(result.stdout)
        if status["state"] != "complete" or len(status["receipts"]) != 1:
            raise RuntimeError(f"no receipt: {status}")
        return {
            "seconds": round(elapsed, 3),
            "mib_per_s": round(size / MIB / elapsed, 1),
            "peak_rss_mib": {k: round(v / 1024, 1) for k, v in memory.peak.items()},
            "cpu_seconds": cpu,
            "system_cpu_seconds": system,
            "transfer_id": status["id"],
        }
    finally:
        network.stop()


def sftp_put(home: Path, port: int, puts: list[tuple[Path, Path]], *, fsync: bool) -> float:
    """Seconds for one ``sftp -b`` session putting each source to its target."""
    flag = "-f " if fsync else ""
    (home / "batch").write_text("".join(f"put {flag}{s} {t}\n" for s, t in puts))
    started = time.perf_counter()
    subprocess.run(
        [
            "sftp",
            "-q",
            "-b",
            str(home / "batch"),
            "-i",
            str(home / "client_key"),
            "-P",
            str(port),
            "-o",
            "Ciphers=aes128-gcm@openssh.com",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            f"UserKnownHostsFile={home / 'known_hosts'}",
            "root@127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def run_sftp(sources: list[Path], size: int, workdir: Path) -> dict[str, Any]:
    if not SSHD.exists():
        log("installing openssh-server")
        subprocess.run(
            ["apt-get", "install", "-y", "openssh-server", "openssh-client"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
        )
    home = workdir / "sshd"
    home.mkdir()
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / name)], check=True
        )
    (home / "authorized_keys").write_text((home / "client_key.pub").read_text())
    target = home / "upload"
    target.mkdir()
    port = free_port()
    (home / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home / 'host_key'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\nPidFile {home / 'sshd.pid'}\n"
        "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
        "Ciphers aes128-gcm@openssh.com\n"
    )
    sshd = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(home / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=(home / "sshd.log").open("wb"),
    )
    try:
        time.sleep(0.5)
        client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_before = reaped_children_cpu_seconds(sshd.pid)
        elapsed = sftp_put(home, port, [(s, target / s.name) for s in sources], fsync=False)
        if sum((target / s.name).stat().st_size for s in sources) != size:
            raise RuntimeError("sftp did not upload every file whole")
        # The connection's sshd processes count once sshd has reaped them.
        deadline = time.monotonic() + 5
        while has_children(sshd.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        client = sum(
            (
                client_after.ru_utime - client_before.ru_utime,
                client_after.ru_stime - client_before.ru_stime,
            )
        )
        figures = {
            "seconds": round(elapsed, 3),
            "mib_per_s": round(size / MIB / elapsed, 1),
            "cpu_seconds": {
                "sshd": round(reaped_children_cpu_seconds(sshd.pid) - server_before, 2),
                "sftp_and_ssh": round(client, 2),
            },
        }
        # The same upload made durable as gcx makes its copies (put -f: the server
        # fsyncs each file before answering), to other names beside the first, once
        # the first upload's bytes have left the page cache (untimed).
        os.sync()
        durable = sftp_put(home, port, [(s, target / f"{s.name}.f") for s in sources], fsync=True)
        figures["fsync_seconds"] = round(durable, 3)
        figures["fsync_mib_per_s"] = round(size / MIB / durable, 1)
        return figures
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)


def one_round(gcx: dict[str, Any], sftp: dict[str, Any] | None) -> dict[str, Any]:
    """One round's figures: gcx's, and sftp's beside them when it ran."""
    return {
        "gcx_mib_per_s": gcx["mib_per_s"],
        "sftp_mib_per_s": sftp["mib_per_s"] if sftp else None,
        "gcx_seconds": gcx["seconds"],
        "sftp_seconds": sftp["seconds"] if sftp else None,
        "peak_rss_mib": gcx["peak_rss_mib"],
        "gateway_cpu_seconds": gcx["cpu_seconds"],
        "gateway_system_cpu_seconds": gcx["system_cpu_seconds"],
        "sftp_cpu_seconds": sftp["cpu_seconds"] if sftp else None,
        "sftp_fsync_mib_per_s": sftp["fsync_mib_per_s"] if sftp else None,
        "ratio_to_sftp_fsync": round(gcx["mib_per_s"] / sftp["fsync_mib_per_s"], 3)
        if sftp
        else None,
        "ratio": round(gcx["mib_per_s"] / sftp["mib_per_s"], 3) if sftp else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1G", help="file size, e.g. 256M, 1G, 10G (default 1G)")
    parser.add_argument("--files", type=int, default=1, help="split the size over N files")
    parser.add_argument("--skip-sftp", action="store_true", help="measure gcx only")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds of both, in alternating order (medians)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    size = parse_size(args.size)
    if not 1 <= args.files <= 64 or size % args.files:
        parser.error("--files must be 1 to 64 and divide the size")
    workdir = Path(tempfile.mkdtemp(prefix="gcx-bulk-"))
    load = round(os.getloadavg()[0], 2)
    log(f"working in {workdir}; load average {load:.2f} on {os.cpu_count()} CPUs")
    rounds: list[dict[str, Any]] = []
    try:
        sources = [workdir / f"random-{n}.bin" for n in range(args.files)]
        for source in sources:
            make_file(source, size // args.files)
        for number in range(args.rounds):
            # Every other round runs sftp first, so that neither side always meets the
            # machine warmer: on this shared machine speeds drift run by run.
            order = ["gcx", "sftp"] if number % 2 == 0 else ["sftp", "gcx"]
            figures: dict[str, Any] = {"gcx": None, "sftp": None}
            for which in order:
                place = workdir / f"{which}-{number}"
                place.mkdir()
                if which == "gcx":
                    figures["gcx"] = run_gcx(sources, size, place)
                elif not args.skip_sftp:
                    figures["sftp"] = run_sftp(sources, size, place)
                log(f"round {number + 1}, {which}: {figures[which]}")
                if not args.keep:  # what it received: rounds must not fill the disk
                    shutil.rmtree(place, ignore_errors=True)
            rounds.append(one_round(figures["gcx"], figures["sftp"]))
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result: dict[str, Any] = {"size_bytes": size, "files": args.files, **rounds[0]}
    if len(rounds) > 1:
        result = {
            "size_bytes": size,
            "files": args.files,
            "rounds": rounds,
            "gcx_mib_per_s_median": round(statistics.median(r["gcx_mib_per_s"] for r in rounds), 1),
        }
        if not args.skip_sftp:
            for key in ("sftp_mib_per_s", "sftp_fsync_mib_per_s"):
                result[f"{key}_median"] = round(statistics.median(r[key] for r in rounds), 1)
            result["ratio_to_sftp_fsync_median"] = round(
                statistics.median(r["ratio_to_sftp_fsync"] for r in rounds), 3
            )
    result["load_average"] = load
    result.pop("ratio", None)  # last, always
    result["ratio"] = (
        None if args.skip_sftp else round(statistics.median(r["ratio"] for r in rounds), 3)
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
