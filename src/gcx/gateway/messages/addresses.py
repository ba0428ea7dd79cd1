"""The address book: who this gateway lists to peers, and what peers list to it.

Two sides of one exchange (``gcx.address-listing/1``, docs/protocol.md):

* **Answering.** ``GET /peer/v1/addresses?organisation=ORG`` returns a
  listing of a hosted organisation's shared mailboxes and of the people who
  chose to be listed, signed by the organisation. The receiving gateway
  stays the authority for its people: nobody else can list them.
* **Asking.** :class:`AddressBook` gathers, for the pages, every connected
  organisation with its addresses: hosted ones straight from the database,
  others from the signed listing their gateway answered, kept in
  ``peer_address_listings`` until it expires (every replica shares it) and
  verified again each time it is read. A listing that fails a check is
  refused whole (``address-listing-invalid``), audited, and the page shows
  the organisation without people, saying why.

Who is listed is opt-in for people (:func:`set_person_listed`): the listing
gives every member organisation a person's name and work address, which is
personal data, so a person is listed only once they choose to be. An
organisation's administrators may list its shared mailboxes only
(:func:`set_people_listed`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from aiohttp import web

from gcx import audit, crypto
from gcx.errors import (
    AddressListingInvalid,
    GcxError,
    InputError,
    NotFound,
    SignatureInvalid,
)
from gcx.gateway.exchange.peer_client import PeerClient, Timeouts, refusal_code, refusal_of
from gcx.gateway.peer import GATEWAY, verify_signed_by_org
from gcx.gateway.runtime import Gateway
from gcx.httpapi import run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol.addresses import (
    ADDRESS_LISTING_TYPE,
    LISTING_LIFETIME,
    MAX_LIFETIME,
    AddressListing,
    ListingEntry,
    check_listing,
    check_name,
)
from gcx.protocol.identifiers import check_organisation_code
from gcx.store import iso, parse_iso
from gcx.store.schema import mailboxes
from gcx.store.schema_mail import address_book_people, address_book_policy, peer_address_listings
from gcx.store.schema_web import web_users

# Listing answers are small; a peer answering more is not speaking the protocol.
MAX_LISTING_BYTES = 4 * 1024 * 1024
# A page waits for peers' listings; one that does not answer soon is shown
# without its people rather than holding the page.
LISTING_TIMEOUTS = Timeouts(total=8, connect=4)
_MAIL_ROLES = ("staff", "admin")


# -- choices -------------------------------------------------------------------------


def person_listed(gateway: Gateway, organisation: str, account: str) -> bool:
    with gateway.db.read() as conn:
        listed = conn.execute(
            sa.select(address_book_people.c.listed).where(
                address_book_people.c.organisation == organisation,
                address_book_people.c.account == account,
            )
        ).scalar()
    return bool(listed)


def set_person_listed(gateway: Gateway, organisation: str, account: str, listed: bool) -> None:
    """Record a person's own choice, and audit it: it decides what peers learn of them."""
    now = gateway.clock.now()
    with gateway.db.transaction() as conn:
        where = (address_book_people.c.organisation == organisation) & (
            address_book_people.c.account == account
        )
        if conn.execute(sa.select(address_book_people.c.account).where(where)).first():
            conn.execute(
                address_book_people.update().where(where).values(listed=listed, updated_at=iso(now))
            )
        else:
            conn.execute(
                address_book_people.insert().values(
                    organisation=organisation, account=account, listed=listed, updated_at=iso(now)
                )
            )
        audit.append(
            conn,
            actor=f"user:{account}@{organisation}",
            action="address-book.listed" if listed else "address-book.unlisted",
            subject=f"{account}@{organisation}",
            now=now,
        )


def people_listed(gateway: Gateway, organisation: str) -> bool:
    """Whether the organisation lists people at all (it does unless an administrator said not)."""
    with gateway.db.read() as conn:
        value = conn.execute(
            sa.select(address_book_policy.c.people_listed).where(
                address_book_policy.c.organisation == organisation
            )
        ).scalar()
    return True if value is None else bool(value)


def set_people_listed(gateway: Gateway, organisation: str, listed: bool, by: str) -> None:
    if organisation not in gateway.config.organisations:
        raise InputError(f"This gateway does not host {organisation[:16]}.")
    now = gateway.clock.now()
    with gateway.db.transaction() as conn:
        where = address_book_policy.c.organisation == organisation
        values = {"people_listed": listed, "updated_at": iso(now), "updated_by": by}
        if conn.execute(sa.select(address_book_policy.c.organisation).where(where)).first():
            conn.execute(address_book_policy.update().where(where).values(**values))
        else:
            conn.execute(address_book_policy.insert().values(organisation=organisation, **values))
        audit.append(
            conn,
            actor=f"user:{by}@{organisation}",
            action="address-book.people-listed" if listed else "address-book.mailboxes-only",
            subject=organisation,
            now=now,
        )


# -- answering ------------------------------------------------------------------------


def mailbox_name(name: str) -> str:
    """A shared mailbox's name as people read it: ``benefits.team`` is "Benefits team"."""
    words = name.replace(".", " ").replace("_", " ").replace("-", " ").split()
    return " ".join(words).capitalize() or name


def local_listing(gateway: Gateway, organisation: str) -> AddressListing:
    """The listing of a hosted organisation, as of now."""
    if organisation not in gateway.config.organisations:
        raise NotFound(f"This gateway does not host {organisation[:16]}.")
    now = gateway.clock.now()
    with_people = people_listed(gateway, organisation)
    entries: dict[str, ListingEntry] = {}
    with gateway.db.read() as conn:
        for row in conn.execute(
            sa.select(mailboxes.c.name).where(mailboxes.c.organisation == organisation)
        ):
            entries[row.name] = ListingEntry(mailbox_name(row.name), row.name, "mailbox")
        if with_people:
            rows = conn.execute(
                sa.select(web_users.c.username, web_users.c.display_name, web_users.c.roles)
                .join(
                    address_book_people,
                    (address_book_people.c.organisation == web_users.c.organisation)
                    & (address_book_people.c.account == web_users.c.username),
                )
                .where(
                    web_users.c.organisation == organisation,
                    web_users.c.disabled_at.is_(None),
                    address_book_people.c.listed.is_(True),
                )
            )
            for row in rows:
                if row.username in entries or not set(row.roles or ()) & set(_MAIL_ROLES):
                    continue
                try:
                    name = check_name(row.display_name)
                except ValueError:
                    name = row.username
                entries[row.username] = ListingEntry(name, row.username, "person")
    return AddressListing(
        organisation=organisation,
        gateway=gateway.config.name,
        issued_at=now,
        expires_at=now + LISTING_LIFETIME,
        people_listed=with_people,
        entries=tuple(sorted(entries.values())),
    )


def signed_listing(gateway: Gateway, organisation: str) -> bytes:
    keys = gateway.keys.organisations[organisation]
    return crypto.sign_document(
        ADDRESS_LISTING_TYPE,
        local_listing(gateway, organisation).to_bytes(),
        keys.signing,
        crypto.key_id(keys.signing.public),
    )


async def handle_addresses(request: web.Request) -> web.Response:
    """``GET /peer/v1/addresses?organisation=ORG``, behind the peer check."""
    gateway = request.app[GATEWAY]
    organisation = request.query.get("organisation", "")
    check_organisation_code(organisation)
    document = await run_sync(signed_listing, gateway, organisation)
    return web.Response(body=document, content_type="application/json")


# -- asking ---------------------------------------------------------------------------


@dataclass
class OrganisationAddresses:
    """One organisation in the address book, and why its people are missing if they are."""

    code: str
    name: str
    entries: list[ListingEntry] = field(default_factory=list)
    people_listed: bool = True
    problem: str | None = None
    problem_code: str | None = None


def _verified(
    directory: dirproto.Directory,
    document: bytes,
    organisation: str,
    gateway: str,
    now: dt.datetime,
) -> AddressListing:
    try:
        payload = verify_signed_by_org(
            directory, document, ADDRESS_LISTING_TYPE, claimed=organisation
        )
    except SignatureInvalid as exc:
        raise AddressListingInvalid(
            f"The address listing for {organisation[:16]} is not signed with the key the "
            "directory lists for it."
        ) from exc
    listing = AddressListing.from_bytes(payload)
    check_listing(listing, organisation=organisation, gateway=gateway, now=now)
    return listing


class AddressBook:
    """Every connected organisation and its addresses, for the pages of this gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def _cached(
        self, directory: dirproto.Directory, organisation: str, gateway: str
    ) -> AddressListing | None:
        now = self.gateway.clock.now()
        with self.gateway.db.read() as conn:
            row = conn.execute(
                sa.select(peer_address_listings).where(
                    peer_address_listings.c.organisation == organisation
                )
            ).first()
        if row is None or parse_iso(row.expires_at) <= now:
            return None
        try:
            return _verified(directory, bytes(row.document), organisation, gateway, now)
        except GcxError:
            return None  # asked again below, and refused then if it still fails

    def _keep(self, organisation: str, document: bytes, listing: AddressListing) -> None:
        now = self.gateway.clock.now()
        expires = min(listing.expires_at, now + MAX_LIFETIME)
        values = {"document": document, "fetched_at": iso(now), "expires_at": iso(expires)}
        where = peer_address_listings.c.organisation == organisation
        try:
            with self.gateway.db.transaction() as conn:
                if conn.execute(
                    sa.select(peer_address_listings.c.organisation).where(where)
                ).first():
                    conn.execute(peer_address_listings.update().where(where).values(**values))
                else:
                    conn.execute(
                        peer_address_listings.insert().values(organisation=organisation, **values)
                    )
        except sa.exc.IntegrityError:
            pass  # another replica kept the same peer's listing at the same moment

    def _refused(self, peer: str, organisation: str, error: GcxError) -> None:
        self.gateway.record(
            actor=f"gateway:{peer}",
            action="address-listing.refused",
            subject=organisation,
            details={"code": error.code, "message": error.message},
        )

    async def _fetch(
        self,
        client: PeerClient,
        directory: dirproto.Directory,
        entry: dirproto.GatewayEntry,
        organisation: str,
    ) -> AddressListing:
        answer = await client.request(
            "GET",
            entry,
            f"/peer/v1/addresses?organisation={organisation}",
            limit=MAX_LISTING_BYTES,
        )
        if answer.status != 200:
            raise refusal_of(answer, f"The gateway for {organisation}")
        now = self.gateway.clock.now()
        try:
            listing = _verified(directory, answer.body, organisation, entry.name, now)
        except AddressListingInvalid as error:
            await run_sync(self._refused, entry.name, organisation, error)
            raise
        await run_sync(self._keep, organisation, answer.body, listing)
        return listing

    def listed_names(self) -> dict[str, str]:
        """Listed people and mailboxes by address (``claims.processor@DWP``), by the name
        their organisation lists, from what is at hand: this gateway's own listings
        and peers' cached ones. No peer is asked, so a list page never waits on one.
        """
        try:
            directory = self.gateway.directory.current()
        except GcxError:
            return {}
        hosted = set(self.gateway.config.organisations)
        names: dict[str, str] = {}
        for org in directory.organisations:
            entry = directory.gateway_for_organisation(org.code)
            if entry is None:
                continue
            listing = (
                local_listing(self.gateway, org.code)
                if org.code in hosted
                else self._cached(directory, org.code, entry.name)
            )
            if listing is not None:
                names.update({f"{e.address}@{org.code}": e.name for e in listing.entries})
        return names

    async def organisations(self, *, ask_peers: bool = True) -> list[OrganisationAddresses]:
        """Every organisation that can receive mail, by name, with what it lists.

        With ``ask_peers`` false, a peer's listing that is not cached is left
        out rather than fetched, so a page that only uses names as a courtesy
        never waits on a peer.
        """
        directory = self.gateway.directory.current()
        hosted = set(self.gateway.config.organisations)
        book: list[OrganisationAddresses] = []
        wanted: list[tuple[OrganisationAddresses, dirproto.GatewayEntry]] = []
        for org in directory.organisations:
            entry = directory.gateway_for_organisation(org.code)
            if entry is None or not org.encryption_key:
                continue
            item = OrganisationAddresses(org.code, org.name)
            book.append(item)
            listing: AddressListing | None
            if org.code in hosted:
                listing = await run_sync(local_listing, self.gateway, org.code)
            else:
                listing = await run_sync(self._cached, directory, org.code, entry.name)
                if listing is None:
                    wanted.append((item, entry))
                    continue
            item.entries, item.people_listed = list(listing.entries), listing.people_listed
        if wanted and ask_peers:
            async with PeerClient.for_gateway(
                self.gateway, pool_size=1, timeouts=LISTING_TIMEOUTS
            ) as client:
                results = await asyncio.gather(
                    *(self._fetch(client, directory, entry, item.code) for item, entry in wanted),
                    return_exceptions=True,
                )
            for (item, _), result in zip(wanted, results, strict=True):
                if isinstance(result, AddressListing):
                    item.entries, item.people_listed = list(result.entries), result.people_listed
                elif isinstance(result, GcxError):
                    item.problem_code = refusal_code(result)
                    item.problem = (
                        f"We could not get the list of people at {item.name} just now. You can "
                        "still write to the organisation, or to an address you know."
                    )
                else:
                    raise result
        return sorted(book, key=lambda o: o.name.casefold())
