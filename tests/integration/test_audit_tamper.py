"""Tampering with audit logs is caught: `gcx audit verify` finds an entry edited behind a
stopped gateway's back, and gateways witnessing central find its history rewritten."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from gcx import audit
from gcx.config import CentralConfig
from gcx.localnet import DEMO_GATEWAYS
from gcx.store import open_database
from gcx.store.schema import audit_entries, audit_head

from .conftest import NetworkFactory
from .netutil import api_ping, audit_log, eventually, gateway_status, gcx

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)


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

    seq = await eventually(answered, timeout=60, what="dwp's ping.answered entry")
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


async def test_a_gateway_notices_central_rewriting_its_own_history(
    fresh_network: NetworkFactory,
) -> None:
    """Central's log rewritten consistently passes its own verify, but not its witnesses."""
    network = fresh_network(DEMO_GATEWAYS[:1])
    witness = network.gateways["tower-hamlets"]

    async def witnessed() -> int:
        held = (await gateway_status(witness))["central_log"]
        assert held is not None and held["tree_size"] > 2, f"central's head held: {held}"
        return int(held["tree_size"])

    held = await eventually(witnessed, timeout=60, what="the gateway holding central's head")

    # Rewrite central's history from entry held - 1 on, keeping the chain whole.
    network.stop_process(witness.process)
    network.stop_process(network.central_process)
    central_db = open_database(CentralConfig.load(network.central_home).db_url)
    try:
        with central_db.transaction() as conn:
            keep = held - 2
            kept_hash = conn.execute(
                sa.select(audit_entries.c.entry_hash).where(audit_entries.c.seq == keep)
            ).scalar_one()
            conn.execute(audit_entries.delete().where(audit_entries.c.seq > keep))
            conn.execute(audit_head.update().values(seq=keep, entry_hash=kept_hash))
            for n in range(5):
                audit.append(
                    conn, actor="central", action="history.rewritten", subject=str(n), now=NOW
                )
    finally:
        central_db.dispose()
    local = gcx("audit", "verify", "--home", str(network.central_home))
    assert local.returncode == 0, "a consistent rewrite passes central's own check"

    network.start_central()
    await network.wait_for_central()
    network.start_gateway("tower-hamlets")
    await network.wait_for_gateway("tower-hamlets")

    async def alarmed() -> dict[str, object]:
        state = (await gateway_status(witness))["central_log"]
        assert state["alarm_at"] is not None, f"no alarm yet: {state}"
        return dict(state)

    state = await eventually(alarmed, timeout=60, what="the gateway's alarm about central")
    assert state["tree_size"] == held, "the head known good is kept"
    assert f"does not extend {held}" in str(state["alarm_reason"])
    with audit_log(witness.config.db_url) as log:
        alarms = log.entries("central.log-inconsistent")
    assert len(alarms) == 1
    assert alarms[0].details_dict["held_size"] == held

    accepted = gcx("gateway", "central-log", "accept", "--home", str(witness.home))
    assert accepted.returncode == 0, accepted.stderr
    shown = json.loads(gcx("gateway", "central-log", "show", "--home", str(witness.home)).stdout)
    assert shown["alarm_at"] is None and shown["tree_size"] > held
    with audit_log(witness.config.db_url) as log:
        assert [e.actor for e in log.entries("central.log-accepted")] == ["administrator"]
