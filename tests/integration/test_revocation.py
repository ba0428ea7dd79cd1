"""A gateway the operator revokes is refused by its peers from their next directory on."""

from __future__ import annotations

import pytest

from gcx.config import CentralConfig
from gcx.localnet import DEMO_GATEWAYS

from .conftest import NetworkFactory
from .netutil import (
    POLL_SECONDS,
    api_ping,
    audit_log,
    central_call,
    central_directory,
    certificate_fingerprint,
    eventually,
    gcx,
)

pytestmark = pytest.mark.integration

# Generous against a loaded machine, yet a small multiple of the directory poll interval.
REFRESH_DEADLINE = max(20.0, 40 * POLL_SECONDS)


async def test_revoked_gateway_is_refused_by_its_peer(fresh_network: NetworkFactory) -> None:
    """After revocation the peer refuses the gateway with [peer-revoked], audited."""
    # Also: dwp sees the refusal through its API and CLI, the peer's audit entries carry dwp's
    # certificate, central's directory lists the revocation, and the peer stops sending to dwp.
    network = fresh_network(DEMO_GATEWAYS[:2])
    peer, revoked = network.gateways["tower-hamlets"], network.gateways["dwp"]
    status, body, _ = await api_ping(revoked, peer.codes[0])
    assert status == 200, body
    with audit_log(peer.config.db_url) as log:
        after = log.head()

    status, body, _ = await central_call(
        network,
        "POST",
        "/api/v1/gateways/dwp/revoke",
        token=network.operator_token,
        body={"reason": "integration test: Code of Connection approval withdrawn"},
    )
    assert status == 200, body
    assert body["state"] == "revoked"

    async def refused() -> dict[str, object]:
        status, body, _ = await api_ping(revoked, peer.codes[0])
        assert status != 200, f"still answered, from directory v{body['directory_version']}"
        return dict(body)

    body = await eventually(
        refused, timeout=REFRESH_DEADLINE, what="tower-hamlets refusing the revoked dwp"
    )
    assert body["code"] == "peer-revoked", body
    assert body["details"]["remote_status"] == 403, body

    result = gcx("gateway", "ping", peer.codes[0], "--home", str(revoked.home), "--json")
    assert result.returncode == 2, result.stdout
    assert "error [peer-revoked]" in result.stderr, result.stderr

    with audit_log(peer.config.db_url) as log:
        refusals = [
            e
            for e in log.entries("connection.refused", after=after)
            if e.details_dict.get("code") == "peer-revoked"
        ]
    assert len(refusals) >= 2, refusals  # the API ping and the CLI ping
    assert {e.details_dict["certificate_fingerprint"] for e in refusals} == {
        certificate_fingerprint(revoked.home / "tls.pem")
    }

    _, directory = await central_directory(network)
    assert [r.gateway for r in directory.revocations] == ["dwp"]
    assert directory.gateway_named("dwp") is None
    with audit_log(CentralConfig.load(network.central_home).db_url) as log:
        assert [e.subject for e in log.entries("gateway.revoked")] == ["dwp"]

    # The peer, holding that directory, no longer sends to the revoked gateway at all.
    with audit_log(revoked.config.db_url) as log:
        answered_before = log.head()
    status, body, headers = await api_ping(peer, revoked.codes[0])
    assert status != 200, body
    assert headers.get("X-Gcx-Error") == body["code"], body
    with audit_log(revoked.config.db_url) as log:
        assert log.entries("ping.answered", after=answered_before) == []
