"""Pages: the address book, each person's choice to be listed, and the organisation's.

The address book shows every organisation that can receive mail by its name
(its code as secondary text), its shared mailboxes, and the people who chose
to be listed (:mod:`gcx.gateway.messages.addresses` gathers them, asking
peer gateways for their signed listings). It is a plain GET search form, so
it works without JavaScript; with it, ``gcx.js`` filters the list as the
person types.

People are not listed until they choose to be, on "Your account": the listing
gives every member organisation of the network their name and work address,
and information governance officers expect such sharing of staff details to
be a person's own choice (opt-in), not something they must discover and undo.
An organisation's administrators may list its shared mailboxes only.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gcx.errors import DirectoryError, Forbidden
from gcx.gateway.messages.addresses import (
    AddressBook,
    OrganisationAddresses,
    people_listed,
    person_listed,
    set_people_listed,
    set_person_listed,
)
from gcx.httpapi import run_sync
from gcx.web.gateway import parts_of
from gcx.web.gateway.mail_common import MAIL_ROLES
from gcx.web.site import Site, field_text, form_of, needs, redirect, render, user_of

MAX_QUERY_CHARS = 100


def navigation(site: Site) -> None:
    site.nav(text="Address book", href="/address-book", roles={"staff"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/address-book", address_book)
    app.router.add_get("/account/address-book", own_listing)
    app.router.add_post("/account/address-book", set_own_listing)
    app.router.add_get("/admin/address-book", organisation_listing)
    app.router.add_post("/admin/address-book", set_organisation_listing)


@dataclass(frozen=True)
class Recipient:
    """An address as the pages name it: "Claire Processor, Department for Work and Pensions"."""

    address: str
    name: str
    organisation: str
    organisation_name: str
    kind: str  # "person", "mailbox" or "organisation"

    @property
    def label(self) -> str:
        if self.kind == "organisation":
            return f"{self.organisation_name} (everyone there)"
        return f"{self.name}, {self.organisation_name}"


async def gather(request: web.Request, *, ask_peers: bool = True) -> list[OrganisationAddresses]:
    """Every organisation in the book; none if this gateway has no usable directory.

    With ``ask_peers`` false, only listings already cached are used (see
    :meth:`AddressBook.organisations`).
    """
    try:
        return await AddressBook(parts_of(request).gateway).organisations(ask_peers=ask_peers)
    except DirectoryError:
        return []


def recipients(book: list[OrganisationAddresses]) -> dict[str, Recipient]:
    """Every address the book knows, by address, for naming recipients on pages."""
    known: dict[str, Recipient] = {}
    for org in book:
        known[org.code] = Recipient(org.code, org.name, org.code, org.name, "organisation")
        for entry in org.entries:
            address = f"{entry.address}@{org.code}"
            known[address] = Recipient(address, entry.name, org.code, org.name, entry.kind)
    return known


def name_of(address: str, known: dict[str, Recipient], org_names: dict[str, str]) -> str:
    """A recipient by name and organisation; an address not listed, with its organisation."""
    if address in known:
        return known[address].label
    org = address.rpartition("@")[2]
    where = org_names.get(org, org)
    return f"{address} ({where})" if "@" in address else f"{where} (everyone there)"


def _matches(text: str, query: str) -> bool:
    return all(word in text.casefold() for word in query.casefold().split())


def _search(book: list[OrganisationAddresses], query: str) -> list[dict[str, object]]:
    shown = []
    for org in book:
        org_text = f"{org.name} {org.code}"
        entries = [
            {
                "name": e.name,
                "address": f"{e.address}@{org.code}",
                "kind": e.kind,
                "search": f"{e.name} {e.address} {org_text}".casefold(),
            }
            for e in org.entries
        ]
        if query and not _matches(org_text, query):
            entries = [e for e in entries if _matches(str(e["search"]), query)]
            if not entries:
                continue
        shown.append(
            {
                "code": org.code,
                "name": org.name,
                "search": org_text.casefold(),
                "people": [e for e in entries if e["kind"] == "person"],
                "mailboxes": [e for e in entries if e["kind"] == "mailbox"],
                "people_listed": org.people_listed,
                "problem": org.problem,
            }
        )
    return shown


@needs(*MAIL_ROLES)
async def address_book(request: web.Request) -> web.StreamResponse:
    query = request.query.get("q", "")[:MAX_QUERY_CHARS].strip()
    book = await gather(request)
    shown = _search(book, query)
    return render(
        request,
        "gateway/address_book.html",
        title="Address book",
        query=query,
        organisations=shown,
    )


def _own(request: web.Request) -> tuple[str, str]:
    user = user_of(request)
    if not user.organisation:
        raise Forbidden("Your account is not an organisation's; the address book needs one.")
    return user.organisation, user.username


@needs(*MAIL_ROLES)
async def own_listing(request: web.Request) -> web.StreamResponse:
    organisation, account = _own(request)
    gateway = parts_of(request).gateway
    return render(
        request,
        "gateway/address_book_own.html",
        title="Your listing in the address book",
        marking=None,
        listed=await run_sync(person_listed, gateway, organisation, account),
        people_listed=await run_sync(people_listed, gateway, organisation),
    )


@needs(*MAIL_ROLES)
async def set_own_listing(request: web.Request) -> web.StreamResponse:
    organisation, account = _own(request)
    listed = field_text(await form_of(request), "listed", 8) == "yes"
    await run_sync(set_person_listed, parts_of(request).gateway, organisation, account, listed)
    raise redirect(
        request,
        "/account",
        flash="You are now listed in the address book."
        if listed
        else "You are no longer listed in the address book.",
    )


@needs("admin")
async def organisation_listing(request: web.Request) -> web.StreamResponse:
    organisation, _ = _own(request)
    return render(
        request,
        "gateway/address_book_admin.html",
        title="What your organisation lists in the address book",
        marking=None,
        people_listed=await run_sync(people_listed, parts_of(request).gateway, organisation),
    )


@needs("admin")
async def set_organisation_listing(request: web.Request) -> web.StreamResponse:
    organisation, account = _own(request)
    listed = field_text(await form_of(request), "people", 16) == "listed"
    await run_sync(set_people_listed, parts_of(request).gateway, organisation, listed, account)
    raise redirect(
        request,
        "/admin/address-book",
        flash="People who choose to be listed are shown to other organisations."
        if listed
        else "Only your shared mailboxes are shown to other organisations.",
    )
