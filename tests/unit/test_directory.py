"""The directory model and the pure rules for accepting and using one."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gcx.errors import (
    DirectoryExpired,
    DirectoryMalformed,
    DirectoryRollback,
    DirectoryUnavailable,
)
from gcx.protocol.directory import (
    Directory,
    GatewayEntry,
    OrganisationEntry,
    Revocation,
    accept_directory,
    canonical_json,
    usable_directory,
)

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
NETWORK = "test-net"


def _directory(
    version: int = 1,
    *,
    expires_in: dt.timedelta = dt.timedelta(minutes=10),
    network: str = NETWORK,
    **extra: object,
) -> Directory:
    return Directory(
        network=network,
        version=version,
        issued_at=NOW,
        expires_at=NOW + expires_in,
        **extra,  # type: ignore[arg-type]
    )


def _populated() -> Directory:
    gateway = GatewayEntry(
        name="alpha",
        peer_address="alpha.example:9443",
        certificate_fingerprint="ab" * 32,
        certificate_serial="1f",
        certificate_not_after=NOW + dt.timedelta(days=365),
        organisations=("E09000030", "DWP"),
    )
    return _directory(
        3,
        organisations=(
            OrganisationEntry(
                code="E09000030", name="Tower Hamlets", type="local-authority", gateway="alpha"
            ),
            OrganisationEntry(code="DWP", name="DWP", type="central-government", gateway="alpha"),
            OrganisationEntry(code="HMRC", name="HMRC", type="central-government"),
        ),
        gateways=(gateway,),
        revocations=(
            Revocation(
                gateway="beta",
                certificate_serial="2a",
                certificate_fingerprint="cd" * 32,
                reason="approval withdrawn",
                revoked_at=NOW,
            ),
        ),
    )


# -- accept_directory ----------------------------------------------------------


def test_first_directory_is_accepted() -> None:
    """With nothing held, a valid directory for our network is accepted."""
    offered = _directory(1)
    assert accept_directory(None, None, offered, offered.to_bytes(), network=NETWORK, now=NOW)


def test_higher_version_is_accepted() -> None:
    """A directory with a higher version replaces the one held."""
    held, offered = _directory(4), _directory(5)
    assert (
        accept_directory(
            held, held.to_bytes(), offered, offered.to_bytes(), network=NETWORK, now=NOW
        )
        is True
    )


def test_lower_version_is_a_rollback() -> None:
    """A directory older than the one held is refused as a rollback."""
    held, offered = _directory(5), _directory(4)
    with pytest.raises(DirectoryRollback):
        accept_directory(
            held, held.to_bytes(), offered, offered.to_bytes(), network=NETWORK, now=NOW
        )


def test_same_version_same_bytes_is_not_a_change() -> None:
    """The directory already held, offered again, is accepted but reported as unchanged."""
    held = _directory(5)
    again = Directory.from_bytes(held.to_bytes())
    assert (
        accept_directory(held, held.to_bytes(), again, held.to_bytes(), network=NETWORK, now=NOW)
        is False
    )


def test_same_version_different_bytes_is_refused() -> None:
    """Two different directories claiming one version: the second is refused."""
    held = _directory(5)
    offered = _directory(5, expires_in=dt.timedelta(minutes=20))
    with pytest.raises(DirectoryRollback):
        accept_directory(
            held, held.to_bytes(), offered, offered.to_bytes(), network=NETWORK, now=NOW
        )


def test_expired_directory_is_refused() -> None:
    """A directory at or past its expiry is refused, even with nothing held."""
    offered = _directory(1, expires_in=dt.timedelta(minutes=10))
    with pytest.raises(DirectoryExpired):
        accept_directory(
            None,
            None,
            offered,
            offered.to_bytes(),
            network=NETWORK,
            now=NOW + dt.timedelta(minutes=10),
        )
    assert accept_directory(
        None,
        None,
        offered,
        offered.to_bytes(),
        network=NETWORK,
        now=NOW + dt.timedelta(minutes=10) - dt.timedelta(microseconds=1),
    )


def test_directory_for_another_network_is_refused() -> None:
    """A directory naming another network is malformed for us, whatever its version."""
    held = _directory(1)
    offered = _directory(9, network="other-net")
    with pytest.raises(DirectoryMalformed):
        accept_directory(
            held, held.to_bytes(), offered, offered.to_bytes(), network=NETWORK, now=NOW
        )


# -- usable_directory ------------------------------------------------------------


def test_no_directory_is_unavailable() -> None:
    """Holding no directory means the gateway may not exchange."""
    with pytest.raises(DirectoryUnavailable):
        usable_directory(None, now=NOW)


def test_expired_directory_is_unavailable() -> None:
    """A held directory stops being usable at its expiry instant."""
    held = _directory(1, expires_in=dt.timedelta(minutes=10))
    assert usable_directory(held, now=NOW + dt.timedelta(minutes=9)) is held
    with pytest.raises(DirectoryUnavailable):
        usable_directory(held, now=NOW + dt.timedelta(minutes=10))


# -- the format --------------------------------------------------------------------


def test_directory_round_trips_through_bytes() -> None:
    """to_bytes then from_bytes gives an equal directory."""
    directory = _populated()
    assert Directory.from_bytes(directory.to_bytes()) == directory
    assert json.loads(directory.to_bytes())["format"] == "gcx.directory/1"


@pytest.mark.parametrize("payload", [b"", b"garbage", b"[]", b"{}", b'{"network": "x"}'])
def test_garbage_is_malformed(payload: bytes) -> None:
    """Bytes that are not a directory raise DirectoryMalformed."""
    with pytest.raises(DirectoryMalformed):
        Directory.from_bytes(payload)


@pytest.mark.parametrize(
    "change",
    [
        {"surprise": 1},
        {"format": "gcx.directory/2"},
        {"version": 0},
        {"version": "one"},
        {"expires_at": "tomorrow"},
    ],
)
def test_unexpected_fields_or_values_are_malformed(change: dict[str, object]) -> None:
    """Extra fields, another format or invalid values raise DirectoryMalformed."""
    body = json.loads(_directory(1).to_bytes())
    body.update(change)
    with pytest.raises(DirectoryMalformed):
        Directory.from_bytes(json.dumps(body).encode())


def test_extra_field_in_a_nested_entry_is_malformed() -> None:
    """Extra fields are refused inside gateway entries too, not only at the top."""
    body = json.loads(_populated().to_bytes())
    body["gateways"][0]["admin"] = True
    with pytest.raises(DirectoryMalformed):
        Directory.from_bytes(json.dumps(body).encode())


# -- lookups -----------------------------------------------------------------------


def test_gateway_by_fingerprint() -> None:
    """A gateway is found by its certificate fingerprint, and only by it."""
    directory = _populated()
    found = directory.gateway_by_fingerprint("ab" * 32)
    assert found is not None
    assert found.name == "alpha"
    assert directory.gateway_by_fingerprint("cd" * 32) is None


def test_gateway_for_organisation() -> None:
    """An organisation's gateway is the one its entry names; unconnected ones have none."""
    directory = _populated()
    gateway = directory.gateway_for_organisation("DWP")
    assert gateway is not None
    assert gateway.name == "alpha"
    assert directory.gateway_for_organisation("HMRC") is None
    assert directory.gateway_for_organisation("W06000015") is None


def test_is_revoked() -> None:
    """is_revoked is true only for fingerprints in the revocations."""
    directory = _populated()
    assert directory.is_revoked("cd" * 32)
    assert not directory.is_revoked("ab" * 32)


def test_lookups_are_indexed_once_and_never_leak_into_the_document() -> None:
    """Lookups answer from indexes made once per directory: the document's bytes and its
    equality are as before, and a copy with other entries answers for its own entries."""
    directory = _populated()
    before = directory.to_bytes()
    assert directory.organisation("HMRC") is directory.organisations[2]
    assert directory.organisation("NOT-LISTED") is None
    assert directory.gateway_named("alpha") is directory.gateways[0]
    assert directory.is_revoked("cd" * 32) and not directory.is_revoked("ab" * 32)
    assert directory.to_bytes() == before
    assert directory == Directory.from_bytes(before)
    other = directory.model_copy(
        update={
            "organisations": (OrganisationEntry(code="MPS", name="Met", type="police"),),
            "revocations": (),
        }
    )
    assert other.organisation("HMRC") is None
    assert other.organisation("MPS") is not None
    assert not other.is_revoked("cd" * 32)
    assert directory.organisation("HMRC") is not None


def test_canonical_json_is_compact_and_sorted() -> None:
    """canonical_json sorts keys, drops whitespace and keeps non-ASCII as UTF-8."""
    assert canonical_json({"b": 1, "a": ["é", 2]}) == '{"a":["é",2],"b":1}'.encode()
