"""Drafts are sealed at rest and private to their owner; listings list only who chose to be.

Run on SQLite and PostgreSQL. The gateway here is its real database and
clock with a passphrase; the address book's peer side is checked with real
keys and a real directory: a listing signed by anyone but the organisation
asked about, or for another gateway, is refused whole.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from gcx import crypto
from gcx.clock import FixedClock
from gcx.errors import AddressListingInvalid, NotFound
from gcx.gateway.messages.addresses import (
    _verified,
    local_listing,
    set_people_listed,
    set_person_listed,
)
from gcx.gateway.messages.drafts import DraftStore
from gcx.protocol import directory as dirproto
from gcx.protocol.addresses import ADDRESS_LISTING_TYPE, AddressListing, ListingEntry
from gcx.store import Database, iso
from gcx.store.schema import mailboxes
from gcx.store.schema_mail import mail_draft_attachments, mail_drafts
from gcx.store.schema_web import web_users

DWP = "DWP"
SECRET_WORDS = "Claimant AB123456C moved to 4 Acacia Avenue"


@pytest.fixture
def gateway(database: Database, clock: FixedClock) -> Any:
    config = SimpleNamespace(
        passphrase=lambda: b"a passphrase for the tests",
        organisations=[DWP],
        name="dwp",
    )
    return SimpleNamespace(db=database, clock=clock, config=config)


def _fields(subject: str = "Change of address") -> dict[str, Any]:
    return {"subject": subject, "body": SECRET_WORDS, "marking": "OFFICIAL-SENSITIVE"}


def test_a_draft_and_its_attachments_are_sealed_at_rest(gateway: Any) -> None:
    """Nothing typed or attached is stored in clear; the owner gets it all back."""
    store = DraftStore(gateway)
    draft_id = store.save(
        DWP,
        "claims.processor",
        None,
        _fields(),
        [("notes.txt", "text/plain", SECRET_WORDS.encode())],
    )
    with gateway.db.read() as conn:
        stored = [str(tuple(r)) for r in conn.execute(sa.select(mail_drafts))]
        stored += [str(tuple(r)) for r in conn.execute(sa.select(mail_draft_attachments))]
    assert not any("Acacia" in row or "notes.txt" in row for row in stored)
    draft = store.open(DWP, "claims.processor", draft_id)
    assert draft.fields["body"] == SECRET_WORDS
    assert draft.attachments == [("notes.txt", "text/plain", SECRET_WORDS.encode())]


def test_another_persons_draft_is_not_found(gateway: Any) -> None:
    """Open, list, replace and delete all name the owner; a colleague finds nothing."""
    store = DraftStore(gateway)
    draft_id = store.save(DWP, "claims.processor", None, _fields(), [])
    with pytest.raises(NotFound):
        store.open(DWP, "colleague", draft_id)
    with pytest.raises(NotFound):
        store.save(DWP, "colleague", draft_id, _fields("Taken over"), [])
    with pytest.raises(NotFound):
        store.delete(DWP, "colleague", draft_id)
    assert store.list(DWP, "colleague") == []
    assert [d.id for d in store.list(DWP, "claims.processor")] == [draft_id]


def test_a_sealed_draft_moved_to_another_row_does_not_open(gateway: Any) -> None:
    """The seal is bound to the draft and its owner: copying it elsewhere gets nothing."""
    store = DraftStore(gateway)
    first = store.save(DWP, "claims.processor", None, _fields("First"), [])
    second = store.save(DWP, "claims.processor", None, _fields("Second"), [])
    with gateway.db.transaction() as conn:
        sealed = conn.execute(sa.select(mail_drafts.c.sealed).where(mail_drafts.c.id == first))
        conn.execute(
            mail_drafts.update().where(mail_drafts.c.id == second).values(sealed=sealed.scalar())
        )
    with pytest.raises(NotFound):
        store.open(DWP, "claims.processor", second)
    assert store.open(DWP, "claims.processor", first).fields["subject"] == "First"


def test_saving_again_replaces_the_attachments_and_delete_removes_everything(
    gateway: Any,
) -> None:
    store = DraftStore(gateway)
    draft_id = store.save(DWP, "a.person", None, _fields(), [("a.txt", "text/plain", b"a")])
    store.save(DWP, "a.person", draft_id, _fields(), [("b.txt", "text/plain", b"bb")])
    assert store.open(DWP, "a.person", draft_id).attachments == [("b.txt", "text/plain", b"bb")]
    store.delete(DWP, "a.person", draft_id)
    with gateway.db.read() as conn:
        assert conn.execute(sa.select(mail_draft_attachments)).first() is None
    with pytest.raises(NotFound):
        store.open(DWP, "a.person", draft_id)


def _person(gateway: Any, username: str, name: str, **values: Any) -> None:
    now = iso(gateway.clock.now())
    row = {
        "username": username,
        "organisation": DWP,
        "display_name": name,
        "roles": ["staff"],
        "password_hash": "x",
        "totp_sealed": "x",
        "totp_last_step": 0,
        "failed_attempts": 0,
        "created_at": now,
        **values,
    }
    with gateway.db.transaction() as conn:
        conn.execute(web_users.insert().values(**row))


def test_people_are_listed_only_once_they_choose_and_the_organisation_allows(
    gateway: Any,
) -> None:
    """Opt-in per person; disabled people and non-mail roles never; mailboxes-only hides all."""
    _person(gateway, "claims.processor", "Claire Processor")
    _person(gateway, "quiet.person", "Quiet Person")
    _person(gateway, "gone.person", "Gone Person", disabled_at=iso(gateway.clock.now()))
    _person(gateway, "the.officer", "Security Officer", roles=["security-officer"])
    with gateway.db.transaction() as conn:
        conn.execute(
            mailboxes.insert().values(
                organisation=DWP, name="claims", members=[], created_at=iso(gateway.clock.now())
            )
        )
    assert [e.address for e in local_listing(gateway, DWP).entries] == ["claims"]
    for username in ("claims.processor", "gone.person", "the.officer"):
        set_person_listed(gateway, DWP, username, True)
    listing = local_listing(gateway, DWP)
    assert {(e.address, e.kind, e.name) for e in listing.entries} == {
        ("claims", "mailbox", "Claims"),
        ("claims.processor", "person", "Claire Processor"),
    }
    set_people_listed(gateway, DWP, False, "dwp.admin")
    listing = local_listing(gateway, DWP)
    assert not listing.people_listed
    assert [e.kind for e in listing.entries] == ["mailbox"]
    # What gcx writes, gcx reads: the listing round-trips through the strict reader.
    assert AddressListing.from_bytes(listing.to_bytes()) == listing


def _directory(keys: dict[str, crypto.SigningKey], now: dt.datetime) -> dirproto.Directory:
    return dirproto.Directory(
        network="gcx-test",
        version=1,
        issued_at=now,
        expires_at=now + dt.timedelta(hours=1),
        organisations=tuple(
            dirproto.OrganisationEntry(
                code=code,
                name=code,
                type="central-government",
                gateway=code.lower(),
                signing_key=key.public.b64(),
            )
            for code, key in keys.items()
        ),
        gateways=(),
        revocations=(),
    )


def test_a_listing_signed_by_another_organisation_is_refused(clock: FixedClock) -> None:
    """Only the key the directory lists for the organisation asked about will do."""
    now = clock.now()
    keys = {"DWP": crypto.SigningKey.generate(), "HMRC": crypto.SigningKey.generate()}
    directory = _directory(keys, now)
    listing = AddressListing(
        "DWP",
        "dwp",
        now,
        now + dt.timedelta(hours=1),
        True,
        (ListingEntry("Claire Processor", "claims.processor", "person"),),
    )

    def signed(by: str) -> bytes:
        key = keys[by]
        return crypto.sign_document(
            ADDRESS_LISTING_TYPE, listing.to_bytes(), key, crypto.key_id(key.public)
        )

    assert _verified(directory, signed("DWP"), "DWP", "dwp", now) == listing
    with pytest.raises(AddressListingInvalid):
        _verified(directory, signed("HMRC"), "DWP", "dwp", now)
    with pytest.raises(AddressListingInvalid):
        _verified(directory, signed("DWP"), "DWP", "hmrc", now)
    with pytest.raises(AddressListingInvalid):
        _verified(directory, b"<html>not a listing</html>", "DWP", "dwp", now)
