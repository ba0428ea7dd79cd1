"""A gateway witnesses central's audit log: heads that extend are kept, a rewrite raises an alarm.

The gateway's store is on both databases; central's logs are SQLite files of
their own, so that one can be swapped for a rewritten history.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gcx import audit, crypto
from gcx.audit.checkpoint import AuditTree
from gcx.central.checkpoints import sign_central_head
from gcx.clock import FixedClock
from gcx.errors import ConsistencyProofInvalid, InputError, NotFound, SignatureInvalid
from gcx.gateway.central_witness import CentralLogWitness
from gcx.store import Database, open_database

ROOT = crypto.SigningKey.generate()


@pytest.fixture
def central_log(tmp_path: Path, clock: FixedClock) -> Iterator[Callable[[str, int], Database]]:
    """Central audit logs by name, each grown to a number of entries on request."""
    opened: dict[str, Database] = {}

    def log(name: str, entries: int) -> Database:
        if name not in opened:
            opened[name] = open_database(f"sqlite:///{tmp_path / name}.db")
        db = opened[name]
        with db.transaction() as conn:
            have = len(list(audit.entries(conn)))
            for n in range(have, entries):
                audit.append(
                    conn, actor="central", action=f"{name}.{n}", subject="x", now=clock.now()
                )
        return db

    yield log
    for db in opened.values():
        db.dispose()


@pytest.fixture
def witness(database: Database, clock: FixedClock) -> CentralLogWitness:
    return CentralLogWitness(database, ROOT.public, clock)


def _head(db: Database, witness: CentralLogWitness, clock: FixedClock) -> bytes:
    # A fresh tree per head, as after a restart: the tests swap whole logs.
    return sign_central_head(AuditTree(db), ROOT, clock, witness.held_size())


def _actions(database: Database, action: str) -> list[dict[str, object]]:
    with database.read() as conn:
        return [json.loads(e.details) for e in audit.entries(conn) if e.action == action]


def test_heads_that_extend_the_one_held_are_kept(
    witness: CentralLogWitness, central_log: Callable[[str, int], Database], clock: FixedClock
) -> None:
    assert witness.state() is None and witness.held_size() == 0
    honest = central_log("honest", 3)
    assert witness.check(_head(honest, witness, clock))["tree_size"] == 3
    grown = central_log("honest", 9)
    witness.check(_head(grown, witness, clock))
    state = witness.state()
    assert state is not None
    assert state["tree_size"] == witness.held_size() == 9
    assert state["alarm_at"] is None
    witness.check(_head(grown, witness, clock))  # nothing new: still consistent


def test_a_rewritten_history_raises_one_alarm_and_keeps_the_old_head(
    witness: CentralLogWitness,
    central_log: Callable[[str, int], Database],
    clock: FixedClock,
    database: Database,
) -> None:
    witness.check(_head(central_log("honest", 5), witness, clock))
    held = witness.state()
    assert held is not None
    rewritten = central_log("rewritten", 8)  # a different history, longer than the one held

    for _ in range(2):
        with pytest.raises(ConsistencyProofInvalid, match="may have been rewritten"):
            witness.check(_head(rewritten, witness, clock))
    state = witness.state()
    assert state is not None
    assert (state["tree_size"], state["root_hash"]) == (held["tree_size"], held["root_hash"])
    assert state["alarm_at"] is not None and "does not extend 5" in str(state["alarm_reason"])
    alarms = _actions(database, "central.log-inconsistent")
    assert len(alarms) == 1, "one entry, not one a minute"
    assert alarms[0]["held_size"] == 5 and alarms[0]["claimed_size"] == 8

    # Central going back to the honest log does not erase the evidence.
    witness.check(_head(central_log("honest", 7), witness, clock))
    state = witness.state()
    assert state is not None and state["tree_size"] == 7 and state["alarm_at"] is not None


def test_a_shrunk_log_is_refused(
    witness: CentralLogWitness, central_log: Callable[[str, int], Database], clock: FixedClock
) -> None:
    witness.check(_head(central_log("honest", 6), witness, clock))
    with pytest.raises(ConsistencyProofInvalid):
        witness.check(_head(central_log("short", 2), witness, clock))
    assert witness.held_size() == 6


def test_heads_not_signed_as_centrals_are_refused(
    witness: CentralLogWitness, central_log: Callable[[str, int], Database], clock: FixedClock
) -> None:
    honest = central_log("honest", 2)
    tree = AuditTree(honest)
    with pytest.raises(SignatureInvalid, match="root key"):
        witness.check(sign_central_head(tree, crypto.SigningKey.generate(), clock, 0))
    # A gateway's kind of checkpoint, though signed by the root.
    _, gateway_kind = tree.checkpoint(gateway="central", previous_size=0, key=ROOT, clock=clock)
    with pytest.raises(SignatureInvalid):
        witness.check(gateway_kind)
    with pytest.raises(InputError):
        sign_central_head(tree, ROOT, clock, -1)
    assert witness.state() is None


def test_accepting_the_alarm_takes_centrals_log_as_it_now_is(
    witness: CentralLogWitness,
    central_log: Callable[[str, int], Database],
    clock: FixedClock,
    database: Database,
) -> None:
    with pytest.raises(NotFound):
        witness.accept_alarm(by="administrator")
    witness.check(_head(central_log("honest", 4), witness, clock))
    restored = central_log("restored", 6)
    with pytest.raises(ConsistencyProofInvalid):
        witness.check(_head(restored, witness, clock))

    accepted = witness.accept_alarm(by="administrator")

    assert accepted["tree_size"] == 6
    state = witness.state()
    assert state is not None and state["alarm_at"] is None and state["tree_size"] == 6
    entry = _actions(database, "central.log-accepted")[-1]
    assert (entry["held_size"], entry["accepted_size"]) == (4, 6)
    witness.check(_head(central_log("restored", 9), witness, clock))
    assert witness.held_size() == 9
