"""Two enrolled gateways ping each other over mutual TLS, through the local API and the CLI."""

from __future__ import annotations

import json

import pytest

from gcx.localnet import DEMO_GATEWAYS, LocalNetwork

from .conftest import NetworkFactory
from .netutil import (
    api_ping,
    audit_log,
    central_directory,
    certificate_fingerprint,
    eventually,
    gcx,
)

pytestmark = pytest.mark.integration

DIRECTIONS = [("tower-hamlets", "dwp"), ("dwp", "tower-hamlets")]


@pytest.fixture(scope="module")
def network(network_factory: NetworkFactory) -> LocalNetwork:
    return network_factory(DEMO_GATEWAYS[:2])


@pytest.mark.parametrize(("source_name", "target_name"), DIRECTIONS)
async def test_api_ping_reaches_the_peer_listed_in_the_directory(
    network: LocalNetwork, source_name: str, target_name: str
) -> None:
    """API ping answers with the peer's organisation, directory-listed certificate and version."""
    source, target = network.gateways[source_name], network.gateways[target_name]
    _, directory = await central_directory(network)
    listed = directory.gateway_named(target_name)
    assert listed is not None

    status, body, _ = await api_ping(source, target.codes[0])

    assert status == 200, body
    assert body["organisation"] == target.codes[0]
    assert body["gateway"] == target_name
    assert body["peer_address"] == target.config.peer_address
    assert body["certificate_fingerprint"] == listed.certificate_fingerprint
    assert body["certificate_fingerprint"] == certificate_fingerprint(target.home / "tls.pem")
    assert isinstance(body["directory_version"], int) and body["directory_version"] >= 1


@pytest.mark.parametrize(("source_name", "target_name"), DIRECTIONS)
async def test_ping_is_audited_on_both_sides(
    network: LocalNetwork, source_name: str, target_name: str
) -> None:
    """A ping leaves ping.sent in the sender's audit log and ping.answered in the peer's."""
    source, target = network.gateways[source_name], network.gateways[target_name]
    with audit_log(source.config.db_url) as sent_log, audit_log(target.config.db_url) as peer_log:
        sent_after, answered_after = sent_log.head(), peer_log.head()
        status, body, _ = await api_ping(source, target.codes[0])
        assert status == 200, body

        async def probe() -> None:
            sent = sent_log.entries("ping.sent", after=sent_after)
            answered = peer_log.entries("ping.answered", after=answered_after)
            assert [e.subject for e in sent] == [target.codes[0]], sent
            assert [e.details_dict["from"] for e in answered] == [source.codes[0]], answered
            assert answered[0].actor == f"gateway:{source_name}"

        await eventually(probe, timeout=60, what="ping.sent and ping.answered entries")


@pytest.mark.parametrize(("source_name", "target_name"), DIRECTIONS)
def test_cli_ping_reaches_the_peer(
    network: LocalNetwork, source_name: str, target_name: str
) -> None:
    """`gcx gateway ping ORG --home HOME --json` prints the peer's checked answer."""
    source, target = network.gateways[source_name], network.gateways[target_name]

    result = gcx("gateway", "ping", target.codes[0], "--home", str(source.home), "--json")

    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["organisation"] == target.codes[0]
    assert body["gateway"] == target_name
    assert body["certificate_fingerprint"] == certificate_fingerprint(target.home / "tls.pem")
    assert body["directory_version"] >= 1


async def test_audit_verify_passes_after_traffic(network: LocalNetwork) -> None:
    """`gcx audit verify --home` exits 0 on both gateways and on central after pings."""
    for source_name, target_name in DIRECTIONS:
        status, body, _ = await api_ping(
            network.gateways[source_name], network.gateways[target_name].codes[0]
        )
        assert status == 200, body
    homes = [network.central_home] + [g.home for g in network.gateways.values()]
    for home in homes:
        result = gcx("audit", "verify", "--home", str(home))
        assert result.returncode == 0, f"{home.name}: {result.stdout}{result.stderr}"
        assert result.stdout.startswith("ok: "), result.stdout
        as_json = json.loads(gcx("audit", "verify", "--home", str(home), "--json").stdout)
        assert as_json["ok"] is True and as_json["entries"] > 0
