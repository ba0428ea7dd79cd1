"""What starting a local network relies on: databases opened by several processes at once,
process log files that the starter does not keep open, and ports held from the moment
they are chosen until the process that serves on them has them."""

from __future__ import annotations

import errno
import gc
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from gcx.localnet import LocalNetwork
from gcx.reference.network import start_backend, wait_for_backend
from gcx.store import open_database

from .conftest import run_async

pytestmark = pytest.mark.integration

# Imports first, then wait on stdin, so every child opens the database at the same moment.
OPEN_TOGETHER = """
import sys
from gcx.store import open_database
print("ready", flush=True)
sys.stdin.readline()
open_database(sys.argv[1]).dispose()
"""


def test_processes_opening_a_fresh_database_together_all_succeed(
    database_url_factory: Callable[[str], str],
) -> None:
    """Four processes opening (migrating) one fresh database at once all succeed."""
    url = database_url_factory("opened-together")
    children = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_TOGETHER, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outcomes = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    failures = [
        _last_error_line(err) or f"exit {child.returncode}"
        for child, (_, err) in zip(children, outcomes, strict=True)
        if child.returncode != 0
    ]
    assert not failures, f"{len(failures)} of 4 first opens failed: {failures}"
    database = open_database(url)
    database.dispose()


def _last_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "Error" in line and ":" in line]
    return lines[-1].strip()[:300] if lines else ""


def test_local_network_closes_its_process_logs(tmp_path: Path) -> None:
    """Starting a process leaves no log file open in the starter (no ResourceWarning)."""
    network = LocalNetwork(tmp_path / "net")
    network.prepare()
    network.init_central()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            network.start_central()
        finally:
            network.stop()
        gc.collect()
    leaks = [
        str(w.message)
        for w in caught
        if issubclass(w.category, ResourceWarning) and "logs" in str(w.message)
    ]
    assert not leaks, f"LocalNetwork left process log files open: {leaks}"


def _taken(port: int) -> bool:
    """Whether binding ``port`` fails because a socket holds it (SO_REUSEADDR notwithstanding)."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            other.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def test_central_port_is_held_from_choice_until_central_serves_on_it(tmp_path: Path) -> None:
    """The port written into central's configuration is bound at once, so no other process
    can take it before central starts; central then answers on it, and on it again when
    started a second time."""
    network = LocalNetwork(tmp_path / "net", web=True)
    network.prepare()
    network.init_central()
    try:
        assert _taken(network.central_port) and _taken(network.central_web_port)
        for _ in range(2):
            network.start_central()
            run_async(network.wait_for_central())
            assert _taken(network.central_port)
            network.stop_process(network.central_process)
    finally:
        network.stop()


def test_reference_backend_serves_on_the_socket_handed_to_it(tmp_path: Path) -> None:
    """A reference backend started by the network answers at the URL it was given."""
    network = LocalNetwork(tmp_path / "net")
    network.prepare()
    try:
        url = start_backend(network, "dvla")
        run_async(wait_for_backend(url))
    finally:
        network.stop()
