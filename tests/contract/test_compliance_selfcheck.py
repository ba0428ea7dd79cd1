"""Gateway self-checks for real: probe a TLS 1.3 peer endpoint, sign, submit, attach as evidence."""

from __future__ import annotations

import asyncio

from gcx import crypto, listeners
from gcx.gateway.home import create_gateway_home, store_certificates
from gcx.gateway.selfcheck import probe_version, run_self_checks, sign_report
from gcx.store import open_database
from gcx.web.accounts import WebAccounts

from .compliance_support import ORG, Network, network

__all__ = ["network"]


async def test_selfcheck_probes_tls_and_attaches_signed_report(network: Network) -> None:
    """Only TLS 1.3 is accepted; the signed report verifies and attaches to its controls."""
    network.approved()
    sock = listeners.bind()  # the peer port is in the enrolment, before the server starts
    port = listeners.port_of(sock)
    config, request = create_gateway_home(
        network.tmp / "gw",
        name="tower-hamlets",
        organisations=[ORG],
        central_url="https://127.0.0.1:1",
        anchor=network.home / "anchor.pem",
        peer_port=port,
    )
    enrolment = network.central.submit_enrolment(
        request["csr"].encode(), request["peer_address"], request["organisation_keys"]
    )
    store_certificates(config, network.central.approve_enrolment("olivia", enrolment["id"], "ok"))
    context = crypto.server_context(
        config.home / "anchor.pem",
        config.home / "tls.pem",
        config.home / "tls.key",
        config.passphrase(),
        require_client_cert=True,
    )

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, sock=sock, ssl=context)
    try:
        outcomes = {
            v: (await asyncio.to_thread(probe_version, config, "127.0.0.1", port, v))[0]
            for v in ("TLSv1.2", "TLSv1.3")
        }
        # One web administrator and one member of staff: only the administrator is counted.
        database = open_database(config.db_url)
        accounts = WebAccounts(database, network.clock, b"k" * 32, "gcx", ("staff", "admin"))
        accounts.add_user("ada.admin", "Ada Admin", ["admin"], ORG, by="test")
        accounts.add_user("sam.staff", "Sam Staff", ["staff"], ORG, by="test")
        database.dispose()
        checks = await run_self_checks(config, clock=network.clock)
    finally:
        server.close()
        await server.wait_closed()
    assert outcomes == {"TLSv1.2": "refused", "TLSv1.3": "accepted"}
    status = {c.id: c.status for c in checks}
    assert status["tls-versions"] == "pass"
    assert status["tls-cipher-suites"] == "pass"
    assert status["keys-encrypted"] == "pass"
    assert status["admin-second-factor"] == "pass"
    second_factor = next(c for c in checks if c.id == "admin-second-factor")
    assert second_factor.data == {"administrators": 1, "without_second_factor": 0}
    assert status["clock-skew"] == "unknown"  # no central listening in this test
    statement = network.coco.create_statement(network.officer, ORG)
    document = sign_report(config, ORG, checks, network.clock.now())
    result = network.coco.submit_selfcheck(document)
    attached = result["attached"][statement["id"]]
    assert {"CFG-01", "CFG-02", "CFG-03", "ACC-03", "PAT-03"} <= set(attached)
