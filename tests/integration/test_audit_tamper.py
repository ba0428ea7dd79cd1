"""`gcx audit verify` catches an audit entry edited behind a stopped gateway's back."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from gcx.localnet import DEMO_GATEWAYS
from gcx.store import open_database
from gcx.store.schema import audit_entries

from .conftest import NetworkFactory
from .netutil import api_ping, audit_log, eventually, gateway_status, gcx

pytestmark = pytest.mark.integration


async def test_audit_verify_names_the_entry_edited_in_the_database(
    fresh_network: NetworkFactory,
) -> None:
    """`gcx audit verify` exits 1 naming an entry edited by SQL, after exiting 0."""
    network = fresh_network(DEMO_GATEWAYS[:2])
    sender, receiver = network.gateways["tower-hamlets"], network.gateways["dwp"]
    status, body, _ = await api_ping(sender, receiver.codes[0])
    assert status == 200, body

    async def answered() -> int:
        with audit_log(receiver.config.db_url) as log:
            entries = log.entries("ping.answered")
        assert entries, "no ping.answered entry yet"
        return entries[0].seq

    seq = await eventually(answered, timeout=10, what="dwp's ping.answered entry")
    await gateway_status(receiver)  # one more entry (token.used), so the edit is mid-chain
    for home in (receiver.home, sender.home, network.central_home):
        result = gcx("audit", "verify", "--home", str(home))
        assert result.returncode == 0, f"{home.name}: {result.stdout}{result.stderr}"

    network.stop_process(receiver.process)
    database = open_database(receiver.config.db_url)
    try:
        with database.transaction() as conn:
            changed = conn.execute(
                audit_entries.update()
                .where(audit_entries.c.seq == seq)
                .values(details=json.dumps({"from": "HMRC"}))
            ).rowcount
            total = conn.execute(sa.select(sa.func.count()).select_from(audit_entries)).scalar()
    finally:
        database.dispose()
    assert changed == 1
    assert total is not None and total > seq, "the edited entry should not be the last"

    result = gcx("audit", "verify", "--home", str(receiver.home))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"entry {seq}" in result.stdout, result.stdout
    assert "ping.answered" in result.stdout, result.stdout

    report = json.loads(gcx("audit", "verify", "--home", str(receiver.home), "--json").stdout)
    assert report["ok"] is False
    assert report["first_bad_seq"] == seq
    assert report["entries"] == seq - 1

    result = gcx("audit", "verify", "--home", str(sender.home))
    assert result.returncode == 0, "the other gateway's log is untouched"
