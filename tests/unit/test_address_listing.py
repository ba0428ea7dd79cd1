"""Address listings from peers are read strictly and refused whole; forwarding rules hold.

A peer's listing is shown to staff as names next to addresses, so anything a
peer could use to mislead (a person in a mailboxes-only listing, an address
twice, a name with a bidirectional override, a listing for another
organisation or one that asks to be kept for a week) is refused with the one
code ``address-listing-invalid``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from gcx.errors import AddressListingInvalid, ForwardForbidden, MarkingLowered
from gcx.protocol.addresses import AddressListing, ListingEntry, check_listing
from gcx.protocol.forwarding import (
    check_forward_allowed,
    check_marking_floor,
    onward_restriction,
)
from gcx.protocol.marking import Marking

NOW = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)


def _listing(**changes: Any) -> AddressListing:
    fields: dict[str, Any] = {
        "organisation": "DWP",
        "gateway": "dwp",
        "issued_at": NOW,
        "expires_at": NOW + dt.timedelta(hours=1),
        "people_listed": True,
        "entries": (
            ListingEntry("Claire Processor", "claims.processor", "person"),
            ListingEntry("Claims team", "claims", "mailbox"),
        ),
    }
    fields.update(changes)
    return AddressListing(**fields)


def _payload(**changes: Any) -> bytes:
    value = json.loads(_listing().to_bytes())
    value.update(changes)
    return json.dumps(value).encode()


def test_a_listing_reads_back_sorted_by_name() -> None:
    """What gcx writes reads back equal, entries in name order."""
    listing = AddressListing.from_bytes(_listing().to_bytes())
    assert [e.name for e in listing.entries] == ["Claims team", "Claire Processor"]
    check_listing(listing, organisation="DWP", gateway="dwp", now=NOW)


@pytest.mark.parametrize(
    ("what", "payload"),
    [
        ("not JSON", b"<html>"),
        ("another format", _payload(format="gcx.address-listing/2")),
        ("people_listed as a string", _payload(people_listed="yes")),
        ("entries not a list", _payload(entries={"a": 1})),
        (
            "a person in a mailboxes-only listing",
            _payload(
                people_listed=False,
                entries=[{"address": "a.person", "kind": "person", "name": "A Person"}],
            ),
        ),
        (
            "an address twice",
            _payload(
                entries=[
                    {"address": "claims", "kind": "mailbox", "name": "Claims"},
                    {"address": "claims", "kind": "person", "name": "Someone Else"},
                ]
            ),
        ),
        (
            "an address that is not an account name",
            _payload(entries=[{"address": "Claims@DWP", "kind": "mailbox", "name": "Claims"}]),
        ),
        (
            "an unknown kind",
            _payload(entries=[{"address": "claims", "kind": "team", "name": "Claims"}]),
        ),
        (
            "a name with a bidirectional override",
            _payload(entries=[{"address": "claims", "kind": "mailbox", "name": "Cla\u202eims"}]),
        ),
        (
            "a name on two lines",
            _payload(entries=[{"address": "claims", "kind": "mailbox", "name": "A\nB"}]),
        ),
        (
            "an empty name",
            _payload(entries=[{"address": "claims", "kind": "mailbox", "name": " "}]),
        ),
        (
            "an entry with an extra field",
            _payload(entries=[{"address": "claims", "kind": "mailbox", "name": "C", "email": "x"}]),
        ),
        ("a field too many", _payload(note="hello")),
    ],
)
def test_malformed_listings_are_refused_with_one_code(what: str, payload: bytes) -> None:
    """Each malformed listing is refused whole as address-listing-invalid."""
    with pytest.raises(AddressListingInvalid) as refused:
        AddressListing.from_bytes(payload)
    assert refused.value.code == "address-listing-invalid", what


@pytest.mark.parametrize(
    ("what", "listing", "organisation", "gateway"),
    [
        ("for another organisation", _listing(organisation="HMRC"), "DWP", "dwp"),
        ("from another gateway", _listing(gateway="hmrc"), "DWP", "dwp"),
        ("expired", _listing(expires_at=NOW), "DWP", "dwp"),
        (
            "from the future",
            _listing(issued_at=NOW + dt.timedelta(hours=1), expires_at=NOW + dt.timedelta(hours=2)),
            "DWP",
            "dwp",
        ),
        ("kept for a week", _listing(expires_at=NOW + dt.timedelta(days=7)), "DWP", "dwp"),
    ],
)
def test_listings_out_of_place_or_time_are_refused(
    what: str, listing: AddressListing, organisation: str, gateway: str
) -> None:
    """A well-formed listing that is not the one asked for, or not in force, is refused."""
    with pytest.raises(AddressListingInvalid):
        check_listing(listing, organisation=organisation, gateway=gateway, now=NOW)


@pytest.mark.parametrize(
    "handling",
    [
        "Do not forward outside the safeguarding team.",
        "NOT TO BE SHARED",
        "No onward sharing without the data owner's agreement",
        "For addressee only",
        "Please don\u2019t pass this on.",
        "Must not be disclosed to third parties",
    ],
)
def test_handling_instructions_that_restrict_onward_sharing_block_forwarding(
    handling: str,
) -> None:
    """Restrictions on forwarding or sharing are recognised, and the refusal quotes them."""
    assert onward_restriction(handling) == handling
    with pytest.raises(ForwardForbidden) as refused:
        check_forward_allowed(handling)
    assert handling in refused.value.message


@pytest.mark.parametrize(
    "handling", [None, "", "Handle with care.", "Share with the housing team if needed."]
)
def test_other_handling_instructions_allow_forwarding(handling: str | None) -> None:
    check_forward_allowed(handling)


def test_the_marking_of_carried_material_is_a_floor() -> None:
    """A forward of OFFICIAL-SENSITIVE stays OFFICIAL-SENSITIVE; raising is allowed."""
    check_marking_floor(Marking.OFFICIAL_SENSITIVE, Marking.OFFICIAL_SENSITIVE)
    check_marking_floor(Marking.OFFICIAL_SENSITIVE, Marking.OFFICIAL)
    with pytest.raises(MarkingLowered):
        check_marking_floor(Marking.OFFICIAL, Marking.OFFICIAL_SENSITIVE)
