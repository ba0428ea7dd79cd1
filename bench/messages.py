"""Benchmark: gcx secure messages between two gateways against plain SMTP into Postfix.

Run as root from the project's virtual environment (Postfix must start as root)::

    python bench/messages.py                      # 10,000 messages of 2 KiB, 8 clients
    python bench/messages.py --count 1000 --concurrency 16
    python bench/messages.py --count 3000 --rounds 5   # alternating pairs, medians

gcx: a fresh local network (central and two gateways as real ``gcx`` processes,
real mutual TLS, the default SQLite store) in a temporary directory. The
benchmark submits ``--count`` messages through the sending gateway's local REST
API with ``--concurrency`` clients, each message carried to the other gateway
and back to a signed delivery receipt. Receipts are observed by reading the
sending gateway's SQLite ``receipts`` table read-only (same machine; nothing is
added to the gateway for the benchmark): the sender stamps ``received_at`` when
it has verified a receipt and stores it (the transaction commits right after),
so submit-to-receipt latency is that instant minus the wall-clock instant the
client began the POST, both read from the same system clock.

Postfix: a private instance (its own config, queue and data directories under
the temporary directory, its own port on 127.0.0.1, a self-signed certificate)
that delivers to a Maildir. The same number of messages of the same body size
go in over SMTP with STARTTLS from the same number of client threads (stdlib
``smtplib``, one connection per thread), timed until the last one is in
``Maildir/new``. Any system Postfix is left alone.

``--rounds N`` runs both N times, Postfix first in every other round, and
reports each round and the medians; the ratio is then the median of the
rounds' ratios (on a shared machine both rates drift from minute to minute).

The last line on standard output is one JSON object; progress goes to standard
error. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import smtplib
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gcx.localnet import DEMO_GATEWAYS, LocalNetwork, free_port

SENDER, RECEIVER = DEMO_GATEWAYS[0], DEMO_GATEWAYS[1]
POSTFIX_SBIN = Path("/usr/sbin/postfix")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def body_text(size: int) -> str:
    """Plain ASCII text of exactly ``size`` characters, in lines well under SMTP's limit."""
    line = "The quick brown fox jumps over the lazy dog; 0123456789 ABCDEFGHIJ.\n"
    return (line * (size // len(line) + 1))[:size]


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_stamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- gcx -------------------------------------------------------------------------


class ReceiptWatcher:
    """Reads the sending gateway's SQLite database read-only to see delivery receipts."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.after_id = 0

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30)
        try:
            yield connection
        finally:
            connection.close()

    def mark(self) -> None:
        """Count only receipts stored from now on (the warm-up's are skipped)."""
        with self._connect() as connection:
            row = connection.execute("SELECT coalesce(max(id), 0) FROM receipts").fetchone()
        self.after_id = int(row[0])

    def progress(self) -> tuple[int, int, int]:
        """(delivery receipts stored since mark, outbox rows retrying, rows failed or expired)."""
        with self._connect() as connection:
            done = connection.execute(
                "SELECT count(*) FROM receipts WHERE kind = 'delivery' AND id > ?",
                (self.after_id,),
            ).fetchone()[0]
            retrying = connection.execute(
                "SELECT count(*) FROM outbox WHERE state = 'retrying'"
            ).fetchone()[0]
            failed = connection.execute(
                "SELECT count(*) FROM outbox WHERE state IN ('failed', 'expired')"
            ).fetchone()[0]
        return int(done), int(retrying), int(failed)

    def receipts(self) -> dict[str, tuple[float, str]]:
        """Envelope id -> (received_at as epoch seconds, outcome)."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT subject_id, received_at, outcome FROM receipts "
                "WHERE kind = 'delivery' AND id > ?",
                (self.after_id,),
            ).fetchall()
        return {r[0]: (parse_stamp(r[1]), r[2]) for r in rows}

    def last_errors(self, limit: int = 3) -> list[tuple[str, str]]:
        with self._connect() as connection:
            return connection.execute(
                "SELECT state, coalesce(last_error, '') FROM outbox "
                "WHERE state IN ('failed', 'expired', 'retrying') LIMIT ?",
                (limit,),
            ).fetchall()


@dataclass
class Submissions:
    started: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    last_accepted: float = 0.0


async def submit_all(
    api_url: str, token: str, to: str, body: str, count: int, concurrency: int
) -> Submissions:
    """POST ``count`` messages with ``concurrency`` clients; record when each submit began."""
    result = Submissions()
    next_index = 0
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client() -> None:
            nonlocal next_index
            while next_index < count and len(result.errors) < 10:
                index = next_index
                next_index += 1
                message = {
                    "to": [to],
                    "subject": f"Benchmark message {index}",
                    "body": body,
                    "marking": "OFFICIAL",
                }
                began = time.time()
                async with session.post(f"{api_url}/api/v1/messages", json=message) as response:
                    answer = await response.json()
                if response.status != 202:
                    result.errors.append(f"{response.status}: {answer}")
                    continue
                result.started[answer["id"]] = began
                result.last_accepted = time.time()

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return result


async def warm_up(api_url: str, token: str, to: str, watcher: ReceiptWatcher) -> None:
    """Send one message (retrying until the sender's directory lists the receiver) to a receipt."""
    headers = {"Authorization": f"Bearer {token}"}
    message = {"to": [to], "subject": "warm-up", "body": "warm-up", "marking": "OFFICIAL"}
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession(headers=headers) as session:
        while True:
            async with session.post(f"{api_url}/api/v1/messages", json=message) as response:
                answer = await response.json()
            if response.status == 202:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"warm-up message refused: {response.status} {answer}")
            await asyncio.sleep(0.5)  # the directory naming the receiver is not held yet
    while (await asyncio.to_thread(watcher.progress))[0] < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the warm-up message got no receipt within 60 seconds")
        await asyncio.sleep(0.1)


def start_profilers(network: LocalNetwork, directory: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy (on PATH) sampling each gateway process until stopped with SIGINT."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy).")
    directory.mkdir(parents=True, exist_ok=True)
    profilers = []
    for name, gateway in network.gateways.items():
        assert gateway.process is not None
        # Collapsed stacks ("raw"): one line per stack with its sample count, ready for
        # flamegraph.pl or speedscope, and for grep.
        command = [py_spy, "record", "--pid", str(gateway.process.pid), "--rate", "100"]
        command += ["--format", "raw", "--output", str(directory / f"{name}.txt")]
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


async def run_gcx(
    count: int, size: int, concurrency: int, workdir: Path, profile: Path | None
) -> dict[str, Any]:
    network = LocalNetwork(workdir / "gcx", network_name="gcx-bench", poll_seconds=1.0)
    profilers: list[subprocess.Popen[bytes]] = []
    try:
        log("gcx: starting central and two gateways")
        await network.start((SENDER, RECEIVER))
        sender = network.gateways[SENDER.name]
        receiver = network.gateways[RECEIVER.name]
        to = f"{receiver.spec.account}@{receiver.codes[0]}"
        watcher = ReceiptWatcher(sender.home / "gateway.db")
        await warm_up(sender.config.api_url, sender.token, to, watcher)
        watcher.mark()
        if profile is not None:
            profilers = start_profilers(network, profile)
        log(f"gcx: sending {count} messages of {size} bytes with {concurrency} clients")
        processes = {name: g.process.pid for name, g in network.gateways.items() if g.process}
        if network.central_process is not None:
            processes["central"] = network.central_process.pid
        cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        bench_before = time.process_time()
        body = body_text(size)
        submitting = asyncio.create_task(
            submit_all(sender.config.api_url, sender.token, to, body, count, concurrency)
        )
        timeout = max(300.0, count / 10)
        deadline = time.monotonic() + timeout
        last_report = time.monotonic()
        while True:
            done, retrying, failed = await asyncio.to_thread(watcher.progress)
            if done >= count:
                break
            if failed:
                raise RuntimeError(f"gcx: {failed} messages failed: {watcher.last_errors()}")
            if submitting.done() and submitting.result().errors:
                raise RuntimeError(f"submissions refused: {submitting.result().errors[:3]}")
            if retrying:
                log(f"gcx: {retrying} outbox rows retrying: {watcher.last_errors()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {count} receipts after {timeout:.0f} s")
            if time.monotonic() - last_report > 5:
                log(f"gcx: {done} receipts so far")
                last_report = time.monotonic()
            await asyncio.sleep(0.1)
        submissions = await submitting
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in processes.items()}
        cpu["bench client"] = time.process_time() - bench_before
        log(
            "gcx: CPU seconds used while sending: "
            + json.dumps({k: round(v, 2) for k, v in cpu.items()})
        )
        stop_profilers(profilers)
        profilers = []
        held = await asyncio.to_thread(watcher.receipts)
    finally:
        stop_profilers(profilers)
        log("gcx: stopping the network")
        network.stop()

    missing = set(submissions.started) - set(held)
    refused = [i for i, (_, outcome) in held.items() if outcome != "accepted"]
    if missing or refused or len(submissions.started) != count:
        raise RuntimeError(
            f"gcx: {len(submissions.started)} submitted, {len(missing)} without receipt, "
            f"{len(refused)} refused"
        )
    first = min(submissions.started.values())
    log(
        f"gcx: the API accepted {count} messages in {submissions.last_accepted - first:.2f} s "
        f"({count / (submissions.last_accepted - first):.1f}/s)"
    )
    last = max(held[i][0] for i in submissions.started)
    latencies = sorted((held[i][0] - t) * 1000 for i, t in submissions.started.items())
    seconds = last - first
    return {
        "messages_per_s": round(count / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "seconds": round(seconds, 3),
    }


# -- Postfix ---------------------------------------------------------------------

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localhost
mydomain = localhost
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = bench.test
virtual_mailbox_base = {mail}
virtual_mailbox_maps = static:Maildir/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtp_tls_security_level = none
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
biff = no
append_dot_mydomain = no
readme_directory = no
"""

# Debian's services with chroot turned off (the chroot would need copies of
# system files inside the private queue directory) and smtpd on our own port.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PrivatePostfix:
    """A Postfix instance of our own under ``root``; the system's is never touched."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "etc"
        self.port = free_port()
        self.cert = self.config / "tls.pem"
        self.key = self.config / "tls.key"
        self.maildir = root / "mail" / "Maildir"
        self.started = False

    def _postfix(self, *args: str) -> None:
        result = subprocess.run(
            [str(POSTFIX_SBIN), "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"postfix {' '.join(args)} failed: {result.stderr.strip()[-800:]} "
                f"(log: {self.root / 'postfix.log'})"
            )

    def set_up(self) -> None:
        if not POSTFIX_SBIN.exists():
            raise SystemExit(
                "Postfix is not installed: apt-get install postfix (choose 'No configuration'; "
                "the benchmark runs a private instance and never the system one)."
            )
        if os.geteuid() != 0:
            raise SystemExit("The Postfix baseline must run as root (postfix start needs it).")
        import pwd

        nobody = pwd.getpwnam("nobody")
        spool, data, mail = self.root / "spool", self.root / "data", self.root / "mail"
        for directory in (self.config, spool, data, mail):
            directory.mkdir(parents=True)
        # Postfix's daemons run as the postfix user and deliver as nobody: let them through
        # the temporary directory (made 0700 by mkdtemp) to their own directories.
        self.root.parent.chmod(0o711)
        self.root.chmod(0o755)
        shutil.chown(data, "postfix", "postfix")
        shutil.chown(mail, nobody.pw_uid, nobody.pw_gid)
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(self.key),
                "-out",
                str(self.cert),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.key.chmod(0o600)
        (self.config / "main.cf").write_text(
            MAIN_CF.format(
                spool=spool,
                data=data,
                mail=mail,
                uid=nobody.pw_uid,
                gid=nobody.pw_gid,
                cert=self.cert,
                key=self.key,
                root=self.root,
            )
        )
        (self.config / "master.cf").write_text(MASTER_CF.format(port=self.port))

    def start(self) -> None:
        self._postfix("start")
        self.started = True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), smtplib.SMTP("127.0.0.1", self.port, timeout=5):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the private Postfix did not listen on port {self.port}")

    def stop(self) -> None:
        if not self.started:
            return
        pid_file = self.root / "spool" / "pid" / "master.pid"
        try:
            master = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            master = 0
        self._postfix("stop")
        self.started = False
        deadline = time.monotonic() + 20
        while master and time.monotonic() < deadline:  # wait for the master to be gone
            try:
                os.kill(master, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)

    def delivered(self) -> int:
        try:
            with os.scandir(self.maildir / "new") as entries:
                return sum(1 for _ in entries)
        except FileNotFoundError:
            return 0


def smtp_message(index: int, body: str) -> bytes:
    headers = (
        "From: benefits.officer@council.test\r\n"
        "To: claims.processor@bench.test\r\n"
        f"Subject: Benchmark message {index}\r\n"
        f"Message-ID: <{index}.{uuid.uuid4().hex}@postfix-bench.localhost>\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
    )
    return (headers + body.replace("\n", "\r\n")).encode("ascii")


def run_postfix(count: int, size: int, concurrency: int, workdir: Path) -> dict[str, Any]:
    postfix = PrivatePostfix(workdir / "postfix")
    postfix.set_up()
    try:
        log(f"postfix: starting a private instance on 127.0.0.1:{postfix.port}")
        postfix.start()
        context = ssl.create_default_context(cafile=str(postfix.cert))
        body = body_text(size)
        lock = threading.Lock()
        next_index = 0
        errors: list[str] = []

        def client() -> None:
            nonlocal next_index
            try:
                with smtplib.SMTP("127.0.0.1", postfix.port, timeout=120) as smtp:
                    smtp.starttls(context=context)
                    while True:
                        with lock:
                            if next_index >= count:
                                return
                            index = next_index
                            next_index += 1
                        smtp.sendmail(
                            "benefits.officer@council.test",
                            ["claims.processor@bench.test"],
                            smtp_message(index, body),
                        )
            except (smtplib.SMTPException, OSError) as error:
                with lock:
                    errors.append(repr(error))

        # Connections are opened inside the timed window, as gcx's clients open theirs.
        log(f"postfix: sending {count} messages of {size} bytes with {concurrency} clients")
        first = time.time()
        client_before = time.process_time()
        threads = [threading.Thread(target=client) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        timeout = max(300.0, count / 10)
        deadline = time.monotonic() + timeout
        last_report = time.monotonic()
        while (delivered := postfix.delivered()) < count:
            if errors:
                raise RuntimeError(f"SMTP clients failed: {errors[:3]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {delivered} of {count} in the Maildir after {timeout} s")
            if time.monotonic() - last_report > 5:
                log(f"postfix: {delivered} in the Maildir so far")
                last_report = time.monotonic()
            time.sleep(0.01)
        last = time.time()
        for thread in threads:
            thread.join()
        client_cpu = time.process_time() - client_before
        log(f"postfix: CPU seconds used by the SMTP clients: {client_cpu:.2f}")
    finally:
        log("postfix: stopping the private instance")
        postfix.stop()
    seconds = last - first
    return {"messages_per_s": round(count / seconds, 1), "seconds": round(seconds, 3)}


# -- main ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages (default 10000)")
    parser.add_argument("--size", type=int, default=2048, help="body bytes (default 2048)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients (default 8)")
    parser.add_argument("--skip-postfix", action="store_true", help="measure gcx only")
    parser.add_argument(
        "--profile",
        type=Path,
        help="sample both gateways with py-spy during the gcx run; write DIR/<gateway>.txt",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds of both, in alternating order (medians)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.count < 1 or args.size < 1 or args.concurrency < 1 or args.rounds < 1:
        parser.error("--count, --size, --concurrency and --rounds must be positive")

    workdir = Path(tempfile.mkdtemp(prefix="gcx-bench-"))
    workdir.chmod(0o711)  # Postfix's daemons pass through it to a round's directory
    log(f"working in {workdir}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rounds: list[dict[str, Any]] = []
    try:
        for number in range(args.rounds):
            # Postfix first in every other round: on a shared machine speeds drift, and a
            # side that always ran first would always meet the machine in one state.
            order = ["gcx", "postfix"] if number % 2 == 0 else ["postfix", "gcx"]
            done: dict[str, dict[str, Any] | None] = {"gcx": None, "postfix": None}
            for which in order:
                place = workdir / f"round-{number}"
                place.mkdir(mode=0o711, exist_ok=True)
                if which == "gcx":
                    profile = args.profile if number == 0 else None
                    done["gcx"] = asyncio.run(
                        run_gcx(args.count, args.size, args.concurrency, place, profile)
                    )
                elif not args.skip_postfix:
                    done["postfix"] = run_postfix(args.count, args.size, args.concurrency, place)
                log(f"round {number + 1}, {which}: {done[which]}")
            gcx, postfix = done["gcx"], done["postfix"]
            assert gcx is not None
            rate = postfix["messages_per_s"] if postfix else None
            rounds.append(
                {
                    "gcx": gcx,
                    "postfix": postfix,
                    "ratio": round(gcx["messages_per_s"] / rate, 3) if rate else None,
                }
            )
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result: dict[str, Any] = {"count": args.count, "size": args.size}
    result["concurrency"] = args.concurrency
    if len(rounds) == 1:
        result.update(rounds[0])  # gcx, postfix, ratio: as a single run always printed
    else:
        result["rounds"] = rounds
        result["gcx_messages_per_s_median"] = round(
            statistics.median(r["gcx"]["messages_per_s"] for r in rounds), 1
        )
        if not args.skip_postfix:
            result["postfix_messages_per_s_median"] = round(
                statistics.median(r["postfix"]["messages_per_s"] for r in rounds), 1
            )
        result["ratio"] = (
            None if args.skip_postfix else round(statistics.median(r["ratio"] for r in rounds), 3)
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
