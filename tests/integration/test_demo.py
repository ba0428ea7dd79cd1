"""`gcx demo`: the showcase run passes every step, and `--serve` keeps a usable network up
until interrupted, then takes all of it down (embedded defaults, so SQLite only)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gcx import crypto

from .conftest import run_async
from .netutil import eventually_sync, gcx, http

pytestmark = pytest.mark.integration

READY_DEADLINE = 180.0  # about 16 s on an idle machine; CI shares two cores
EXIT_DEADLINE = 60.0


def test_demo_json_run_passes_every_step(tmp_path: Path) -> None:
    """`gcx demo --dir DIR --json` exits 0 with ok true and every step ok."""
    result = gcx("demo", "--dir", str(tmp_path / "demo"), "--json", timeout=180)

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["steps"], report
    failed = [s for s in report["steps"] if not s["ok"]]
    assert failed == [], failed
    assert Path(report["network"]) == (tmp_path / "demo" / "network.json").resolve()


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`gcx demo --serve` as a subprocess; whatever is left of it is killed at teardown."""
    directory = tmp_path / "served"
    with (tmp_path / "demo-serve.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gcx.cli.main", "demo", "--serve", "--dir", str(directory)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    children: list[int] = []
    try:
        yield process, directory
    finally:
        if process.poll() is None:
            children = _children(process.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        for child in children:  # each runs in a session of its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child, signal.SIGKILL)


def _read_description(process: subprocess.Popen[bytes], path: Path, log: Path) -> dict[str, Any]:
    if process.poll() is not None:
        pytest.fail(
            f"gcx demo --serve exited with {process.returncode} before writing {path.name}:\n"
            + log.read_text(errors="replace")[-3000:]
        )
    assert path.exists(), f"{path} not written yet"
    try:
        return dict(json.loads(path.read_text()))
    except ValueError as exc:
        raise AssertionError(f"{path} not complete yet: {exc}") from exc


def test_demo_serve_runs_a_usable_network_until_interrupted(
    served: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    """`gcx demo --serve` serves a usable network and takes it all down on SIGINT."""
    process, directory = served
    log = tmp_path / "demo-serve.log"
    description = eventually_sync(
        lambda: _read_description(process, directory / "network.json", log),
        timeout=READY_DEADLINE,
        what="network.json from gcx demo --serve",
    )

    anchor = Path(description["central"]["anchor"])
    status, body, _ = run_async(
        http(
            "GET",
            description["central"]["url"] + "/api/v1/health",
            ssl=crypto.client_context(anchor),
        )
    )
    assert status == 200 and body["status"] == "ok", body
    assert len(description["gateways"]) == 3
    ports = [int(description["central"]["url"].rsplit(":", 1)[1])]
    for gateway in description["gateways"]:
        status, body, _ = run_async(http("GET", gateway["api_url"] + "/api/v1/health"))
        assert status == 200 and body["exchanging"] is True, (gateway["name"], body)
        for key in ("tls_certificate", "tls_key", "tls_key_passphrase_file", "ca_certificate"):
            assert Path(gateway[key]).is_file(), (gateway["name"], key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=gateway["ca_certificate"])
        passphrase = Path(gateway["tls_key_passphrase_file"]).read_bytes().strip()
        context.load_cert_chain(gateway["tls_certificate"], gateway["tls_key"], password=passphrase)
        ports += [
            int(gateway["api_url"].rsplit(":", 1)[1]),
            int(gateway["peer_address"].rsplit(":", 1)[1]),
        ]

    # The web pages: every service's address and, for each role, a person who can sign in.
    web = description["web"]
    assert set(web) == {"central", "tower-hamlets", "dwp", "met-police"}
    printed = log.read_text(errors="replace")
    for where, site in web.items():
        with urllib.request.urlopen(site["url"] + "/sign-in") as page:
            assert page.status == 200 and "Sign in" in page.read().decode(), where
        assert site["url"] in printed, f"the web address of {where} is printed"
        ports.append(int(site["url"].rsplit(":", 1)[1]))
        for person in site["people"]:
            secret = crypto.totp_secret_from_text(person["totp_secret"])
            assert len(crypto.totp_code(secret, dt.datetime.now(dt.UTC))) == 6
            for shown in (person["username"], person["password"], person["totp_secret"]):
                assert shown in printed, f"{where}: {person['username']}'s sign-in details"
    roles = {role for site in web.values() for p in site["people"] for role in p["roles"]}
    assert roles == {"staff", "admin", "operator", "assessor", "security-officer", "sign-off"}

    children = _children(process.pid)
    assert len(children) >= 4, f"expected central and three gateways, found {children}"

    os.kill(process.pid, signal.SIGINT)
    try:
        returncode = process.wait(timeout=EXIT_DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gcx demo --serve still running {EXIT_DEADLINE:.0f} s after SIGINT")
    assert returncode == 0, log.read_text(errors="replace")[-3000:]
    left = [pid for pid in children if _alive(pid)]
    assert left == [], f"processes left running after the demo exited: {left}"
    still_open = [port for port in ports if _listening(port)]
    assert still_open == [], f"ports still accepting connections: {still_open}"
