"""`gcx central serve` and `gcx gateway serve` refuse a home other local users can read."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from gcx.config import CentralConfig
from gcx.localnet import DEMO_GATEWAYS, GatewayProcess, LocalNetwork
from gcx.store.db import sqlite_files

from .netutil import POLL_SECONDS, gcx

pytestmark = pytest.mark.integration


def _exposed(path: Path) -> int:
    """Give group and others access to ``path``, as a careless umask or copy would; the old mode."""
    original = stat.S_IMODE(path.stat().st_mode)
    path.chmod(0o755 if path.is_dir() else 0o644)
    return original


async def test_serve_refuses_a_readable_home_and_starts_once_private(
    database_url_factory: Callable[[str], str], tmp_path: Path
) -> None:
    """Each serve exits 2 with [home-not-private] naming the exposed file, then starts."""
    # Only the steps this needs (central, one enrolled gateway), not a whole demo network.
    network = LocalNetwork(
        tmp_path / "net", database_url=database_url_factory, poll_seconds=POLL_SECONDS
    )
    try:
        network.prepare()
        network.init_central()
        network.start_central()
        await network.wait_for_central()
        await network.register(DEMO_GATEWAYS[:1])
        gateway = await network.enrol(DEMO_GATEWAYS[0])
        network.start_gateway(gateway.spec.name)
        await network.wait_for_gateway(gateway.spec.name)  # its database and blobs now exist
        network.stop_process(gateway.process)
        network.stop_process(network.central_process)
        await _refuse_then_serve(network, gateway)
    finally:
        network.stop()


async def _refuse_then_serve(network: LocalNetwork, gateway: GatewayProcess) -> None:
    central_home, gateway_home = network.central_home, gateway.home
    cases = [
        ("central", central_home, central_home),
        ("central", central_home, central_home / "root.key"),
        ("central", central_home, central_home / "tls.key"),
        ("central", central_home, central_home / "secrets"),
        ("gateway", gateway_home, gateway_home),
        ("gateway", gateway_home, gateway_home / "tls.key"),
        ("gateway", gateway_home, gateway_home / "orgs" / gateway.codes[0] / "encryption.key"),
        ("gateway", gateway_home, gateway_home / "blobs"),
    ]
    # On SQLite the test network keeps each database outside its home: still checked.
    for role, home, url in (
        ("central", central_home, CentralConfig.load(central_home).db_url),
        ("gateway", gateway_home, gateway.config.db_url),
    ):
        cases += [(role, home, path) for path in sqlite_files(url)[:1]]
    for role, home, path in cases:
        original = _exposed(path)
        try:
            result = gcx(role, "serve", "--home", str(home), timeout=60)
        finally:
            path.chmod(original)
        assert result.returncode == 2, f"{role} served with {path} exposed"
        assert "[home-not-private]" in result.stderr, result.stderr
        assert str(path) in result.stderr, result.stderr

    network.start_central()
    await network.wait_for_central()
    network.start_gateway(gateway.spec.name)
    await network.wait_for_gateway(gateway.spec.name)
