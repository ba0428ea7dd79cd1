"""Central witnessing gateways' audit logs: signed tree heads that must keep extending."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gcx import audit, crypto
from gcx.audit.checkpoint import AuditTree
from gcx.central.checkpoints import CheckpointWitness
from gcx.clock import FixedClock
from gcx.errors import AuditChainBroken, ConsistencyProofInvalid, NotFound, SignatureInvalid
from gcx.gateway.home import create_gateway_home
from gcx.store import Database, iso, open_database
from gcx.store.schema import audit_entries

from .test_central_service import PASSPHRASE, Central, central  # noqa: F401 - fixture

GATEWAY = "tower-hamlets"


@pytest.fixture
def admitted(central: Central, tmp_path: Path) -> crypto.SigningKey:  # noqa: F811
    """An approved gateway; returns its own (TLS) key, which signs its checkpoints."""
    central.register("E09000030")
    home = tmp_path / "gateway-home"
    _, request = create_gateway_home(
        home,
        name=GATEWAY,
        organisations=["E09000030"],
        central_url=central.config.url,
        anchor=central.anchor_path,
    )
    enrolment = central.submit(request)
    central.service.approve_enrolment("alice", enrolment["id"], "test")
    return crypto.load_signing_key(home / "tls.key", PASSPHRASE.encode())


@pytest.fixture
def gateway_log(tmp_path: Path) -> Iterator[Database]:
    """The gateway's own database, whose audit log the checkpoints cover."""
    # Disposed, so no SQLite connection is left to the garbage collector (Python 3.13
    # warns of every one).
    database = open_database(f"sqlite:///{tmp_path / 'gateway.db'}")
    yield database
    database.dispose()


def _append(log: Database, clock: FixedClock, count: int) -> None:
    with log.transaction() as conn:
        for i in range(count):
            audit.append(conn, actor="test", action="test.entry", subject=str(i), now=clock.now())


def _lodge(
    witness: CheckpointWitness, log: Database, key: crypto.SigningKey, clock: FixedClock
) -> dict[str, object]:
    previous = int(witness.latest(GATEWAY)["tree_size"])
    # A fresh tree each time, as after a restart: tests rewrite the log between lodgings.
    _, document = AuditTree(log).checkpoint(
        gateway=GATEWAY, previous_size=previous, key=key, clock=clock
    )
    return witness.lodge(document)


def test_growing_log_is_accepted_each_time(
    central: Central,  # noqa: F811
    admitted: crypto.SigningKey,
    gateway_log: Database,
    clock: FixedClock,
) -> None:
    """Checkpoints of a log that only grows are accepted, and the latest head is kept."""
    witness = CheckpointWitness(central.database, clock)
    _append(gateway_log, clock, 3)
    assert _lodge(witness, gateway_log, admitted, clock)["tree_size"] == 3
    _append(gateway_log, clock, 5)
    assert _lodge(witness, gateway_log, admitted, clock)["tree_size"] == 8
    assert witness.standing() == {
        GATEWAY: {"tree_size": 8, "checked_at": iso(clock.now()), "flag": None}
    }
    assert witness.latest(GATEWAY)["tree_size"] == 8
    assert witness.flags() == []
    assert len(central.actions("checkpoint.accepted")) == 2


def test_rewritten_history_is_refused_and_flagged(
    central: Central,  # noqa: F811
    admitted: crypto.SigningKey,
    gateway_log: Database,
    clock: FixedClock,
) -> None:
    """A gateway whose log was rewritten (every hash recomputed so the chain itself still
    verifies) cannot prove its new head extends the old: refused, and flagged."""
    witness = CheckpointWitness(central.database, clock)
    _append(gateway_log, clock, 6)
    _lodge(witness, gateway_log, admitted, clock)

    with gateway_log.transaction() as conn:
        rows = conn.execute(sa.select(audit_entries).order_by(audit_entries.c.seq)).all()
        conn.execute(sa.delete(audit_entries))
        conn.execute(sa.text("UPDATE audit_head SET seq = 0, entry_hash = :h"), {"h": "0" * 64})
        for row in rows:
            audit.append(
                conn,
                actor=row.actor,
                action=row.action,
                subject="rewritten" if row.seq == 2 else row.subject,
                now=clock.now(),
            )
    with gateway_log.transaction() as conn:
        assert audit.verify(conn).ok  # the local chain alone cannot show the rewrite
    _append(gateway_log, clock, 1)

    with pytest.raises(ConsistencyProofInvalid):
        _lodge(witness, gateway_log, admitted, clock)
    with pytest.raises(ConsistencyProofInvalid):  # the gateway retries a minute later
        _lodge(witness, gateway_log, admitted, clock)
    flags = witness.flags()
    assert [f["gateway"] for f in flags] == [GATEWAY]  # flagged once, not once a minute
    assert central.actions("checkpoint.refused")
    assert flags[0]["code"] == "consistency-proof-invalid"
    assert central.actions("gateway.flagged")
    assert witness.latest(GATEWAY)["tree_size"] == 6
    standing = witness.standing()[GATEWAY]
    assert standing["tree_size"] == 6, "the last good head"
    assert standing["flag"] is not None and "does not extend 6" in standing["flag"]["reason"]


def test_truncated_log_is_refused(
    central: Central,  # noqa: F811
    admitted: crypto.SigningKey,
    gateway_log: Database,
    clock: FixedClock,
) -> None:
    """A log shorter than the head already lodged is refused (entries were deleted)."""
    witness = CheckpointWitness(central.database, clock)
    _append(gateway_log, clock, 4)
    _lodge(witness, gateway_log, admitted, clock)
    with gateway_log.transaction() as conn:
        conn.execute(sa.delete(audit_entries).where(audit_entries.c.seq > 2))
    with pytest.raises(ConsistencyProofInvalid):
        _lodge(witness, gateway_log, admitted, clock)


def test_checkpoint_signed_by_another_key_is_refused(
    central: Central,  # noqa: F811
    admitted: crypto.SigningKey,
    gateway_log: Database,
    clock: FixedClock,
) -> None:
    """Only the key central certified for the gateway may sign its checkpoints."""
    witness = CheckpointWitness(central.database, clock)
    _append(gateway_log, clock, 2)
    with pytest.raises(SignatureInvalid):
        _lodge(witness, gateway_log, crypto.SigningKey.generate(), clock)
    assert witness.latest(GATEWAY)["tree_size"] == 0


def test_checkpoint_from_unknown_gateway_is_not_found(
    central: Central,  # noqa: F811
    gateway_log: Database,
    clock: FixedClock,
) -> None:
    """A checkpoint naming a gateway central has not admitted is refused."""
    witness = CheckpointWitness(central.database, clock)
    _append(gateway_log, clock, 1)
    with pytest.raises(NotFound):
        _lodge(witness, gateway_log, crypto.SigningKey.generate(), clock)


def test_one_tree_kept_by_a_process_follows_the_log_as_it_grows(
    central: Central,  # noqa: F811
    admitted: crypto.SigningKey,
    gateway_log: Database,
    clock: FixedClock,
) -> None:
    """The remembered tree gives the heads hashing the whole log would, lodging after lodging."""
    witness = CheckpointWitness(central.database, clock)
    tree = AuditTree(gateway_log, block_level=2)
    for grow in (1, 6, 0, 17, 40):
        _append(gateway_log, clock, grow)
        previous = int(witness.latest(GATEWAY)["tree_size"])
        checkpoint, document = tree.checkpoint(
            gateway=GATEWAY, previous_size=previous, key=admitted, clock=clock
        )
        assert witness.lodge(document)["accepted"] is True
        with gateway_log.read() as conn:
            hashes = [bytes.fromhex(e.entry_hash) for e in audit.entries(conn)]
        assert checkpoint.tree_size == len(hashes)
        assert checkpoint.root_hash == crypto.tree_head(hashes).hex()


def test_a_gap_in_the_log_stops_the_checkpoint(gateway_log: Database, clock: FixedClock) -> None:
    _append(gateway_log, clock, 5)
    with gateway_log.transaction() as conn:
        conn.execute(audit_entries.delete().where(audit_entries.c.seq == 3))
    with pytest.raises(AuditChainBroken, match="missing entries"):
        AuditTree(gateway_log).checkpoint(
            gateway=GATEWAY, previous_size=0, key=crypto.SigningKey.generate(), clock=clock
        )


def test_a_kept_tree_refuses_a_log_changed_under_it(
    gateway_log: Database, clock: FixedClock
) -> None:
    """A head is never signed from memory over entries the database no longer holds."""
    key = crypto.SigningKey.generate()
    tree = AuditTree(gateway_log)
    _append(gateway_log, clock, 4)
    tree.checkpoint(gateway=GATEWAY, previous_size=0, key=key, clock=clock)
    with gateway_log.transaction() as conn:
        kept = conn.execute(
            sa.select(audit_entries.c.entry_hash).where(audit_entries.c.seq == 3)
        ).scalar_one()
        conn.execute(audit_entries.delete().where(audit_entries.c.seq == 4))
        conn.execute(sa.text("UPDATE audit_head SET seq = 3, entry_hash = :h"), {"h": kept})
        audit.append(conn, actor="someone", action="test.rewritten", subject="4", now=clock.now())
    with pytest.raises(AuditChainBroken, match="no longer holds the 4 entries"):
        tree.checkpoint(gateway=GATEWAY, previous_size=4, key=key, clock=clock)
    with gateway_log.transaction() as conn:
        conn.execute(audit_entries.delete().where(audit_entries.c.seq >= 3))
    with pytest.raises(AuditChainBroken, match="no longer holds"):
        tree.checkpoint(gateway=GATEWAY, previous_size=4, key=key, clock=clock)
