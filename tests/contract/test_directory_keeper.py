"""The gateway's DirectoryKeeper on every database, against documents signed by a real root."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from gcx import audit, crypto
from gcx.clock import FixedClock
from gcx.errors import (
    DirectoryExpired,
    DirectoryMalformed,
    DirectoryRollback,
    DirectorySignatureInvalid,
    DirectoryUnavailable,
)
from gcx.gateway.directory import DirectoryKeeper
from gcx.protocol.directory import PAYLOAD_TYPE, Directory, OrganisationEntry
from gcx.store import Database
from gcx.store.schema import held_directory

NETWORK = "test-net"
VALIDITY = dt.timedelta(minutes=10)


@dataclass
class Root:
    key: crypto.SigningKey
    certificate: crypto.Certificate

    def document(self, directory: Directory) -> bytes:
        return crypto.sign_document(
            PAYLOAD_TYPE, directory.to_bytes(), self.key, crypto.key_id(self.key.public)
        )


def _root() -> Root:
    key = crypto.SigningKey.generate()
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return Root(key, crypto.create_network_root(key, NETWORK, now, dt.timedelta(days=3650)))


@pytest.fixture
def root() -> Root:
    return _root()


@pytest.fixture
def keeper(database: Database, root: Root, clock: FixedClock) -> DirectoryKeeper:
    return DirectoryKeeper(database, root.certificate, NETWORK, clock)


def _directory(
    clock: FixedClock,
    version: int,
    *,
    network: str = NETWORK,
    validity: dt.timedelta = VALIDITY,
    name: str = "Tower Hamlets",
) -> Directory:
    return Directory(
        network=network,
        version=version,
        issued_at=clock.now(),
        expires_at=clock.now() + validity,
        organisations=(OrganisationEntry(code="E09000030", name=name, type="local-authority"),),
    )


def _audit(database: Database, action: str) -> list[audit.AuditEntry]:
    with database.transaction() as conn:
        return list(audit.entries(conn, action=action))


def _change_payload_byte(document: bytes, index: int) -> bytes:
    envelope = json.loads(document)
    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[index] ^= 0x01
    envelope["payload"] = base64.b64encode(bytes(payload)).decode()
    return json.dumps(envelope, separators=(",", ":")).encode()


def test_valid_directory_is_accepted(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock, database: Database
) -> None:
    """A directory signed by the anchored root is accepted, held, stored and audited."""
    directory = _directory(clock, 1)
    document = root.document(directory)
    assert keeper.offer(document) == directory
    assert keeper.current() == directory
    with database.transaction() as conn:
        row = conn.execute(sa.select(held_directory)).one()
    assert row.version == 1
    assert bytes(row.document) == document
    assert [e.subject for e in _audit(database, "directory.accepted")] == ["v1"]
    assert keeper.status()["usable"] is True
    assert keeper.status()["version"] == 1


def test_newer_directory_replaces_the_held_one(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock
) -> None:
    """A higher version replaces the one held."""
    keeper.offer(root.document(_directory(clock, 1)))
    clock.advance(dt.timedelta(minutes=1))
    newer = _directory(clock, 2, name="London Borough of Tower Hamlets")
    keeper.offer(root.document(newer))
    assert keeper.current() == newer


@pytest.mark.parametrize("index", [0, 10, -1])
def test_one_changed_byte_is_refused_and_audited(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock, database: Database, index: int
) -> None:
    """A document with one payload byte changed raises DirectorySignatureInvalid, audited."""
    document = root.document(_directory(clock, 1))
    with pytest.raises(DirectorySignatureInvalid):
        keeper.offer(_change_payload_byte(document, index))
    refused = _audit(database, "directory.refused")
    assert len(refused) == 1
    assert refused[0].details_dict["code"] == "directory-signature-invalid"
    assert keeper.last_error is not None
    assert keeper.status()["last_refusal"]["code"] == "directory-signature-invalid"
    with pytest.raises(DirectoryUnavailable):
        keeper.current()


def test_changed_byte_in_the_serialised_document_is_refused(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock
) -> None:
    """Changing a character inside the base64 payload of the document itself is refused."""
    document = root.document(_directory(clock, 1))
    start = document.index(b'"payload":"') + len(b'"payload":"') + 20
    original = document[start : start + 1]
    replacement = b"B" if original != b"B" else b"C"
    tampered = document[:start] + replacement + document[start + 1 :]
    with pytest.raises(DirectorySignatureInvalid):
        keeper.offer(tampered)


def test_directory_signed_by_another_root_is_refused(
    keeper: DirectoryKeeper, clock: FixedClock
) -> None:
    """A directory signed by a key other than the pinned anchor's is refused."""
    with pytest.raises(DirectorySignatureInvalid):
        keeper.offer(_root().document(_directory(clock, 1)))


def test_garbage_is_refused_as_signature_invalid(keeper: DirectoryKeeper) -> None:
    """Bytes that are not a DSSE envelope are refused without detail."""
    with pytest.raises(DirectorySignatureInvalid):
        keeper.offer(b"not a directory")


def test_signed_payload_that_is_not_a_directory_is_malformed(
    keeper: DirectoryKeeper, root: Root, database: Database
) -> None:
    """A correctly signed payload in the wrong format is refused as DirectoryMalformed."""
    document = crypto.sign_document(
        PAYLOAD_TYPE, b'{"hello": "world"}', root.key, crypto.key_id(root.key.public)
    )
    with pytest.raises(DirectoryMalformed):
        keeper.offer(document)
    assert _audit(database, "directory.refused")[0].details_dict["code"] == "directory-malformed"


def test_directory_for_another_network_is_refused(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock
) -> None:
    """A directory naming another network is refused even if signed by our root."""
    with pytest.raises(DirectoryMalformed):
        keeper.offer(root.document(_directory(clock, 1, network="other-net")))


def test_rollback_is_refused_and_previous_kept(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock, database: Database
) -> None:
    """An older version is refused as a rollback and the newer one stays held."""
    old = root.document(_directory(clock, 1))
    newer = _directory(clock, 2)
    keeper.offer(root.document(newer))
    with pytest.raises(DirectoryRollback):
        keeper.offer(old)
    assert keeper.current() == newer
    assert _audit(database, "directory.refused")[0].details_dict["code"] == "directory-rollback"
    with database.transaction() as conn:
        assert conn.execute(sa.select(held_directory.c.version)).scalar_one() == 2


def test_same_version_with_other_content_is_refused(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock
) -> None:
    """A second, different document claiming the held version is refused."""
    held = _directory(clock, 3)
    keeper.offer(root.document(held))
    with pytest.raises(DirectoryRollback):
        keeper.offer(root.document(_directory(clock, 3, name="Someone else")))
    assert keeper.current() == held


def test_same_directory_again_is_not_a_change(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock, database: Database
) -> None:
    """Offering the held directory again is accepted quietly, without a new audit entry."""
    document = root.document(_directory(clock, 1))
    keeper.offer(document)
    keeper.offer(document)
    assert len(_audit(database, "directory.accepted")) == 1
    assert _audit(database, "directory.refused") == []


def test_the_held_document_again_is_neither_verified_nor_read_again(
    keeper: DirectoryKeeper,
    root: Root,
    clock: FixedClock,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Polls between two versions bring the same bytes: only the expiry is checked again,
    and anything else (another version) is verified as always."""
    document = root.document(_directory(clock, 1))
    keeper.offer(document)
    held = keeper.current()
    verified: list[bytes] = []
    check = keeper._verify
    monkeypatch.setattr(keeper, "_verify", lambda d: verified.append(d) or check(d))

    assert keeper.offer(document) is held
    assert verified == []
    newer = root.document(_directory(clock, 2))
    keeper.offer(newer)
    assert verified == [newer]
    with pytest.raises(DirectorySignatureInvalid):  # a changed byte still meets the check
        keeper.offer(_change_payload_byte(newer, 5))
    clock.advance(VALIDITY)
    with pytest.raises(DirectoryExpired):  # the same bytes once expired are refused
        keeper.offer(newer)
    assert _audit(database, "directory.refused")[-1].details_dict["code"] == "directory-expired"


def test_expired_directory_is_refused_and_previous_kept(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock, database: Database
) -> None:
    """An expired directory is refused and the one held before stays in use."""
    held = _directory(clock, 1)
    keeper.offer(root.document(held))
    stale = Directory(
        network=NETWORK,
        version=2,
        issued_at=clock.now() - dt.timedelta(hours=1),
        expires_at=clock.now(),
    )
    with pytest.raises(DirectoryExpired):
        keeper.offer(root.document(stale))
    assert keeper.current() == held
    assert _audit(database, "directory.refused")[0].details_dict["code"] == "directory-expired"


def test_refusals_keep_the_previous_directory(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock
) -> None:
    """After any refusal the previously accepted directory is still the current one."""
    held = _directory(clock, 5)
    document = root.document(held)
    keeper.offer(document)
    for bad in (
        _change_payload_byte(document, 3),
        _root().document(_directory(clock, 6)),
        root.document(_directory(clock, 4)),
        root.document(_directory(clock, 7, validity=dt.timedelta(0))),
    ):
        with pytest.raises((DirectorySignatureInvalid, DirectoryRollback, DirectoryExpired)):
            keeper.offer(bad)
        assert keeper.current() == held


def test_nothing_held_is_unavailable(keeper: DirectoryKeeper) -> None:
    """A keeper with no directory raises DirectoryUnavailable and says why in its status."""
    with pytest.raises(DirectoryUnavailable):
        keeper.current()
    status = keeper.status()
    assert status["usable"] is False
    assert status["version"] is None
    assert "no directory" in status["reason"]


def test_held_directory_becomes_unavailable_at_expiry(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock
) -> None:
    """When the clock reaches the held directory's expiry, current() raises DirectoryUnavailable."""
    held = _directory(clock, 1)
    keeper.offer(root.document(held))
    clock.advance(VALIDITY - dt.timedelta(seconds=1))
    assert keeper.current() == held
    clock.advance(dt.timedelta(seconds=1))
    with pytest.raises(DirectoryUnavailable):
        keeper.current()
    assert keeper.status()["usable"] is False
    assert "expired" in keeper.status()["reason"]


def test_another_replica_sees_the_held_directory_after_reload(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock, database: Database
) -> None:
    """A second keeper on the same database picks up what the first accepted when it reloads."""
    replica = DirectoryKeeper(database, root.certificate, NETWORK, clock)
    held = _directory(clock, 1)
    keeper.offer(root.document(held))
    replica.reload()
    assert replica.current() == held
    newer = _directory(clock, 2, name="Tower Hamlets Council")
    keeper.offer(root.document(newer))
    replica.reload()
    assert replica.current() == newer


def test_new_replica_starts_with_the_held_directory(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock, database: Database
) -> None:
    """A keeper created on a database that already holds a directory starts with it."""
    held = _directory(clock, 1)
    keeper.offer(root.document(held))
    assert DirectoryKeeper(database, root.certificate, NETWORK, clock).current() == held


def test_replica_refuses_rollback_below_what_another_stored(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock, database: Database
) -> None:
    """After reloading, a replica refuses versions older than the one another replica stored."""
    replica = DirectoryKeeper(database, root.certificate, NETWORK, clock)
    keeper.offer(root.document(_directory(clock, 3)))
    replica.reload()
    with pytest.raises(DirectoryRollback):
        replica.offer(root.document(_directory(clock, 2)))


def test_stored_directory_altered_in_the_database_is_not_trusted(
    keeper: DirectoryKeeper, root: Root, clock: FixedClock, database: Database
) -> None:
    """A held document changed in the database fails verification when a keeper loads it."""
    document = root.document(_directory(clock, 1))
    keeper.offer(document)
    with database.transaction() as conn:
        conn.execute(held_directory.update().values(document=_change_payload_byte(document, 5)))
    with pytest.raises(DirectorySignatureInvalid):
        DirectoryKeeper(database, root.certificate, NETWORK, clock)
