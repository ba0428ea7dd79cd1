"""Address listings: the people and shared mailboxes an organisation lets peers find.

The network directory names organisations, never people: the receiving
gateway alone knows who its addresses are. So the receiving gateway stays the
authority, and publishes to peer gateways, on request, a listing signed by
the organisation (``application/vnd.gcx.address-listing+json``)::

    {"format": "gcx.address-listing/1", "organisation": "DWP", "gateway": "dwp",
     "issued_at": ..., "expires_at": ..., "people_listed": true,
     "entries": [{"address": "claims.processor", "kind": "person",
                  "name": "Claire Processor"}, ...]}

``address`` is the local part (``claims.processor@DWP``). A listing with
``people_listed`` false lists shared mailboxes only, and then may carry no
person. The asking gateway keeps a listing until ``expires_at``.

Everything a peer sends is checked here, and a listing that fails any check
is refused whole with :class:`~gcx.errors.AddressListingInvalid`: a page then
shows the organisation with no people rather than anything the signature
does not vouch for. Time is an argument, as everywhere in ``protocol``.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from gcx.errors import AddressListingInvalid, InputError
from gcx.protocol.documents import field_str, field_time, load_object
from gcx.protocol.identifiers import check_account_name

ADDRESS_LISTING_TYPE = "application/vnd.gcx.address-listing+json"
FORMAT = "gcx.address-listing/1"
KINDS = ("person", "mailbox")
# A large department lists a few thousand people; past this it is not a listing.
MAX_ENTRIES = 20_000
MAX_NAME_CHARS = 200
# Long enough that a busy page rarely asks, short enough that a person who
# stops being listed disappears from peers' address books within the hour.
LISTING_LIFETIME = dt.timedelta(hours=1)
# A peer may not ask to be believed for longer than a day, whatever it writes.
MAX_LIFETIME = dt.timedelta(days=1)
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
_FIELDS = ("format", "organisation", "gateway", "issued_at", "expires_at", "people_listed")


@dataclass(frozen=True, order=True)
class ListingEntry:
    """One address: a person who chose to be listed, or a shared mailbox."""

    name: str
    address: str
    kind: str

    def to_dict(self) -> dict[str, str]:
        return {"address": self.address, "kind": self.kind, "name": self.name}


@dataclass(frozen=True)
class AddressListing:
    organisation: str
    gateway: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    people_listed: bool
    entries: tuple[ListingEntry, ...]

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "organisation": self.organisation,
                "gateway": self.gateway,
                "issued_at": self.issued_at.isoformat(),
                "expires_at": self.expires_at.isoformat(),
                "people_listed": self.people_listed,
                "entries": [e.to_dict() for e in sorted(self.entries)],
            },
            ensure_ascii=False,
            separators=(",", ":"),
            sort_keys=True,
        ).encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> AddressListing:
        """Read a listing strictly; raise :class:`AddressListingInvalid` saying what is wrong."""
        try:
            raw = load_object(payload, (*_FIELDS, "entries"))
            if raw["format"] != FORMAT:
                raise ValueError(f"the format is not {FORMAT}")
            people_listed = raw["people_listed"]
            if not isinstance(people_listed, bool):
                raise ValueError("people_listed must be true or false")
            listing = cls(
                organisation=field_str(raw, "organisation"),
                gateway=field_str(raw, "gateway"),
                issued_at=field_time(raw, "issued_at"),
                expires_at=field_time(raw, "expires_at"),
                people_listed=people_listed,
                entries=_entries(raw["entries"], people_listed),
            )
        except (ValueError, KeyError, TypeError, InputError) as exc:
            raise AddressListingInvalid(
                f"The address listing is not in the {FORMAT} format: {_reason(exc)}."
            ) from exc
        return listing


def _reason(exc: Exception) -> str:
    text = exc.message if isinstance(exc, InputError) else str(exc)
    return text.rstrip(".")[:160] or type(exc).__name__


def _entries(value: Any, people_listed: bool) -> tuple[ListingEntry, ...]:
    if not isinstance(value, list):
        raise ValueError("entries must be an array")
    if len(value) > MAX_ENTRIES:
        raise ValueError(f"a listing holds at most {MAX_ENTRIES} entries")
    entries: list[ListingEntry] = []
    seen: set[str] = set()
    for item in value:
        raw = load_object(json.dumps(item).encode(), ("address", "kind", "name"))
        address = check_account_name(field_str(raw, "address"))
        kind = field_str(raw, "kind")
        if kind not in KINDS:
            raise ValueError("an entry's kind must be person or mailbox")
        if kind == "person" and not people_listed:
            raise ValueError("a listing of mailboxes only lists a person")
        if address in seen:
            raise ValueError(f"{address} is listed twice")
        seen.add(address)
        entries.append(ListingEntry(check_name(field_str(raw, "name")), address, kind))
    return tuple(entries)


def check_name(name: str) -> str:
    """A name shown to people: one line of printable text, at most 200 characters."""
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise ValueError(f"a name must be 1 to {MAX_NAME_CHARS} characters")
    # Control and format characters (bidirectional overrides among them) could
    # make a name read as someone else's on the page.
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise ValueError("a name may not hold control or formatting characters")
    return name


def check_listing(
    listing: AddressListing, *, organisation: str, gateway: str, now: dt.datetime
) -> None:
    """The listing is the one asked for, from the gateway asked, and in force at ``now``."""
    if listing.organisation != organisation:
        raise AddressListingInvalid(
            f"The gateway answered with a listing for {listing.organisation[:16]}, "
            f"not {organisation[:16]}."
        )
    if listing.gateway != gateway:
        raise AddressListingInvalid(
            f"The listing for {organisation[:16]} names gateway {listing.gateway[:63]}, not the "
            "gateway the directory names for it."
        )
    if listing.issued_at > now + MAX_CLOCK_SKEW:
        raise AddressListingInvalid(f"The listing for {organisation[:16]} is dated in the future.")
    if listing.expires_at <= now:
        raise AddressListingInvalid(f"The listing for {organisation[:16]} has expired.")
    if listing.expires_at - listing.issued_at > MAX_LIFETIME:
        raise AddressListingInvalid(
            f"The listing for {organisation[:16]} asks to be kept for more than a day."
        )
