"""What starting a local network relies on: databases opened by several processes at once,
and process log files that the starter does not keep open."""

from __future__ import annotations

import gc
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from gcx.localnet import LocalNetwork
from gcx.store import open_database

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
