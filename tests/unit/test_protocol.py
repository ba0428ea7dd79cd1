"""Identifiers, the enrolment state table, the signed ping and the key-binding message."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from gcx.errors import InputError, OrganisationCodeInvalid, PeerRefused, StateTransitionRefused
from gcx.protocol.enrolment import (
    HOLDING_STATES,
    EnrolmentEvent,
    EnrolmentState,
    key_binding_message,
    next_state,
)
from gcx.protocol.identifiers import (
    OrganisationType,
    check_account_name,
    check_gateway_name,
    check_organisation_code,
    parse_organisation_type,
)
from gcx.protocol.ping import Ping, Pong, check_ping

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)

# -- identifiers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "E09000030",
        "W06000015",
        "S12000033",
        "N09000003",
        "DWP",
        "HMRC",
        "MPS",
        "NHS-ENGLAND",
        "DFE",
    ],
)
def test_organisation_codes_accepted(code: str) -> None:
    """GSS codes and short upper-case codes are organisation codes."""
    assert check_organisation_code(code) == code


@pytest.mark.parametrize(
    "code",
    [
        "",
        "dwp",
        "Dwp",
        "e09000030",
        "E0900003",
        "E090000300",
        "../x",
        "D",
        "DWP/1",
        "DWP ",
        " DWP",
        "ABCDEFGHIJKLMNOPQ",
        "1DWP",
        "DW P",
    ],
)
def test_organisation_codes_refused(code: str) -> None:
    """Lower case, short GSS codes, path tricks and empty codes are refused."""
    with pytest.raises(OrganisationCodeInvalid):
        check_organisation_code(code)


@pytest.mark.parametrize("code", ["DWP\n", "E09000030\n"])
def test_organisation_code_with_trailing_newline_refused(code: str) -> None:
    """A code followed by a newline is refused ('$' in a regex also matches before one)."""
    with pytest.raises(OrganisationCodeInvalid):
        check_organisation_code(code)


@pytest.mark.parametrize("name", ["alpha", "gw-1", "0", "a" * 63])
def test_gateway_names_accepted(name: str) -> None:
    """Lower-case letters, digits and hyphens up to 63 characters make a gateway name."""
    assert check_gateway_name(name) == name


@pytest.mark.parametrize("name", ["", "Alpha", "-alpha", "a" * 64, "al pha", "al/pha", "alpha\n"])
def test_gateway_names_refused(name: str) -> None:
    """Upper case, leading hyphens, over-long names, spaces and newlines are refused."""
    with pytest.raises(InputError):
        check_gateway_name(name)


@pytest.mark.parametrize("name", ["", "Alice", ".alice", "al ice", "a" * 65, "alice\n"])
def test_account_names_refused(name: str) -> None:
    """Account names are lower case and start with a letter or digit."""
    with pytest.raises(InputError):
        check_account_name(name)


def test_account_names_accepted() -> None:
    """Dots, underscores and hyphens are allowed inside account names."""
    assert check_account_name("jane.smith_2-x") == "jane.smith_2-x"


def test_organisation_types() -> None:
    """Known organisation types parse; anything else is an InputError listing the choices."""
    assert parse_organisation_type("local-authority") is OrganisationType.LOCAL_AUTHORITY
    with pytest.raises(InputError, match="local-authority"):
        parse_organisation_type("council")


# -- the enrolment state table ---------------------------------------------------

ALLOWED = {
    (EnrolmentState.PENDING, EnrolmentEvent.APPROVE): EnrolmentState.ACTIVE,
    (EnrolmentState.PENDING, EnrolmentEvent.REJECT): EnrolmentState.REJECTED,
    (EnrolmentState.ACTIVE, EnrolmentEvent.REVOKE): EnrolmentState.REVOKED,
}
DISALLOWED = [
    pair for pair in itertools.product(EnrolmentState, EnrolmentEvent) if pair not in ALLOWED
]


@pytest.mark.parametrize(("pair", "after"), list(ALLOWED.items()))
def test_allowed_enrolment_transitions(
    pair: tuple[EnrolmentState, EnrolmentEvent], after: EnrolmentState
) -> None:
    """Pending may be approved or rejected; active may be revoked."""
    assert next_state(*pair) is after


@pytest.mark.parametrize("pair", DISALLOWED)
def test_disallowed_enrolment_transitions(pair: tuple[EnrolmentState, EnrolmentEvent]) -> None:
    """Every other step raises StateTransitionRefused (rejected and revoked are final)."""
    with pytest.raises(StateTransitionRefused):
        next_state(*pair)


def test_disallowed_transitions_cover_the_rest_of_the_table() -> None:
    """The table has four states and three events, so nine steps are refused."""
    assert len(DISALLOWED) == 9


def test_holding_states() -> None:
    """Pending and active enrolments hold their gateway name and organisations."""
    assert frozenset({EnrolmentState.PENDING, EnrolmentState.ACTIVE}) == HOLDING_STATES


# -- ping ------------------------------------------------------------------------


def _ping(sent_at: dt.datetime = NOW, from_org: str = "DWP", to_org: str = "E09000030") -> Ping:
    return Ping(from_org=from_org, to_org=to_org, nonce="n1", sent_at=sent_at)


def test_valid_ping_passes() -> None:
    """A ping from an organisation of the peer, to one we host, within the skew, passes."""
    check_ping(_ping(), peer_organisations=("DWP", "HMRC"), hosted=["E09000030"], now=NOW)


def test_ping_from_an_organisation_the_peer_does_not_host_is_refused() -> None:
    """A ping claiming a sender the peer gateway does not host is a PeerRefused."""
    with pytest.raises(PeerRefused):
        check_ping(
            _ping(from_org="HMRC"), peer_organisations=("DWP",), hosted=["E09000030"], now=NOW
        )


def test_ping_to_an_organisation_we_do_not_host_is_refused() -> None:
    """A ping for an organisation this gateway does not host is an InputError."""
    with pytest.raises(InputError):
        check_ping(
            _ping(to_org="W06000015"), peer_organisations=("DWP",), hosted=["E09000030"], now=NOW
        )


@pytest.mark.parametrize(
    "offset", [dt.timedelta(minutes=5, seconds=1), -dt.timedelta(minutes=5, seconds=1)]
)
def test_ping_outside_clock_skew_is_refused(offset: dt.timedelta) -> None:
    """A ping more than five minutes early or late is refused."""
    with pytest.raises(InputError):
        check_ping(
            _ping(sent_at=NOW + offset), peer_organisations=("DWP",), hosted=["E09000030"], now=NOW
        )


@pytest.mark.parametrize("offset", [dt.timedelta(minutes=5), -dt.timedelta(minutes=5)])
def test_ping_at_the_skew_limit_passes(offset: dt.timedelta) -> None:
    """Exactly five minutes of skew is still accepted."""
    check_ping(
        _ping(sent_at=NOW + offset), peer_organisations=("DWP",), hosted=["E09000030"], now=NOW
    )


def test_ping_and_pong_round_trip() -> None:
    """Ping and Pong survive to_bytes and from_bytes unchanged."""
    ping = _ping()
    assert Ping.from_bytes(ping.to_bytes()) == ping
    pong = Pong(org="E09000030", gateway="alpha", nonce="n1", directory_version=7)
    assert Pong.from_bytes(pong.to_bytes()) == pong


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"nonsense",
        b"[]",
        b'{"type": "pong", "from": "A", "to": "B", "nonce": "n",'
        b' "sent_at": "2026-11-21T09:00:00+00:00"}',
        b'{"type": "ping"}',
        b'{"type": "ping", "from": "A", "to": "B", "nonce": "n", "sent_at": "yesterday"}',
    ],
)
def test_malformed_ping_is_an_input_error(payload: bytes) -> None:
    """Anything that is not a ping raises InputError."""
    with pytest.raises(InputError):
        Ping.from_bytes(payload)


def test_ping_bytes_are_not_a_pong() -> None:
    """A ping is not accepted where a pong is expected."""
    with pytest.raises(InputError):
        Pong.from_bytes(_ping().to_bytes())


# -- key binding -------------------------------------------------------------------


def test_key_binding_message_format() -> None:
    """The key-binding message is the version line, code, keys and the stripped CSR, by lines."""
    message = key_binding_message(b"\n-----CSR-----\n", "DWP", "c2lnbg==", "ZW5j")
    assert message == b"gcx-key-binding/1\nDWP\nc2lnbg==\nZW5j\n-----CSR-----"


def test_key_binding_message_binds_every_part() -> None:
    """Changing the CSR, code, signing key or encryption key changes the message."""
    base = ("csr", "DWP", "sig", "enc")
    message = key_binding_message(base[0].encode(), *base[1:])
    for index in range(4):
        parts = list(base)
        parts[index] += "x"
        assert key_binding_message(parts[0].encode(), *parts[1:]) != message
