"""Who an API token may act as: people issue their own, administrators only systems'."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gcx import crypto
from gcx.clock import FixedClock
from gcx.errors import AccountNameTaken, NotFound, PersonTokenRefused, TokenInvalid
from gcx.gateway.messages.mailboxes import MailboxService
from gcx.gateway.tokens import TokenService
from gcx.store import Database
from gcx.store.schema_web import web_users
from gcx.web.accounts import WebAccounts

ORG = "E09000030"
KEY = crypto.secret_sealing_key(b"a-test-passphrase-of-length", "web second factor")


@pytest.fixture
def people(database: Database, clock: FixedClock) -> WebAccounts:
    accounts = WebAccounts(database, clock, KEY, "gcx test", ("staff", "admin"))
    accounts.add_user("alice", "Alice Example", ["staff"], ORG, by="test")
    return accounts


@pytest.fixture
def tokens(database: Database, clock: FixedClock) -> TokenService:
    return TokenService(database, [ORG], clock)


@pytest.fixture
def mailboxes(database: Database, clock: FixedClock) -> MailboxService:
    service = MailboxService(database, [ORG], clock)
    service.add(ORG, "benefits", ["alice"])
    return service


def _person_id(database: Database, username: str) -> int:
    with database.read() as conn:
        return int(
            conn.execute(
                sa.select(web_users.c.id).where(web_users.c.username == username)
            ).scalar_one()
        )


def test_an_administrator_cannot_make_a_persons_token(
    tokens: TokenService, people: WebAccounts
) -> None:
    """A person's token asked for by anyone but the person (web admin, CLI) is refused."""
    with pytest.raises(PersonTokenRefused):
        tokens.add(ORG, "alice", "user", ["staff"], by="web:admin@E09000030")
    assert tokens.list_for(ORG) == []


def test_a_system_token_may_not_carry_a_persons_or_a_mailboxs_name(
    tokens: TokenService, people: WebAccounts, mailboxes: MailboxService
) -> None:
    """System tokens named after a person or a shared mailbox are refused: account-name-taken."""
    for name in ("alice", "benefits"):
        with pytest.raises(AccountNameTaken):
            tokens.add_system(ORG, name, ["staff"], by="web:admin@E09000030")
    assert tokens.list_for(ORG) == []
    token = tokens.add_system(ORG, "case-system", ["system"])
    assert tokens.authenticate(token, request="test").actor == f"system:case-system@{ORG}"


def test_a_persons_own_token_acts_as_them_and_only_while_they_may(
    tokens: TokenService, people: WebAccounts, database: Database
) -> None:
    """The person's token is theirs, with their roles, and dies with their account or roles."""
    alice = _person_id(database, "alice")
    token = tokens.issue_to_person(alice)
    caller = tokens.authenticate(token, request="test")
    assert (caller.account, caller.kind, caller.roles) == ("alice", "user", ("staff",))
    people.set_roles("alice", ["admin"], by="test")
    with pytest.raises(TokenInvalid):  # no role left that the token was issued with
        tokens.authenticate(token, request="test")
    people.set_roles("alice", ["staff"], by="test")
    assert tokens.authenticate(token, request="test").roles == ("staff",)
    people.disable("alice", by="test")
    with pytest.raises(TokenInvalid):
        tokens.authenticate(token, request="test")


def test_names_of_systems_people_and_mailboxes_never_overlap(
    tokens: TokenService,
    people: WebAccounts,
    mailboxes: MailboxService,
    database: Database,
) -> None:
    """Neither a person nor a mailbox can later take a live system token's name."""
    tokens.add_system(ORG, "robot", ["system"])
    with pytest.raises(AccountNameTaken):
        people.add_user("robot", "Robot", ["staff"], ORG, by="test")
    with pytest.raises(AccountNameTaken):
        mailboxes.add(ORG, "robot", ["alice"])
    with pytest.raises(AccountNameTaken):
        people.add_user("benefits", "Benefits", ["staff"], ORG, by="test")


def test_a_system_token_whose_name_became_a_persons_is_refused(
    tokens: TokenService, people: WebAccounts, database: Database, clock: FixedClock
) -> None:
    """A system token made before a person of that name existed stops working at once."""
    token = tokens.add_system(ORG, "bob", ["system"])
    with database.transaction() as conn:  # as an older gcx, without the name check, could
        conn.execute(
            web_users.insert().values(
                username="bob",
                organisation=ORG,
                display_name="Bob",
                roles=["staff"],
                password_hash="x",
                totp_sealed="x",
                totp_last_step=0,
                failed_attempts=0,
                created_at="2026-11-21T09:00:00.000000Z",
            )
        )
    with pytest.raises(TokenInvalid):
        tokens.authenticate(token, request="test")


def test_a_person_revokes_only_their_own_tokens(
    tokens: TokenService, people: WebAccounts, database: Database
) -> None:
    """Revoking from the account page touches the person's own token and nobody else's."""
    people.add_user("carol", "Carol Example", ["staff"], ORG, by="test")
    alice, carol = _person_id(database, "alice"), _person_id(database, "carol")
    token = tokens.issue_to_person(alice)
    own = tokens.list_own(alice)
    assert [t["roles"] for t in own] == [["staff"]] and tokens.list_own(carol) == []
    with pytest.raises(NotFound):
        tokens.revoke_own(carol, own[0]["id"], by="web:carol@E09000030")
    tokens.revoke_own(alice, own[0]["id"], by="web:alice@E09000030")
    with pytest.raises(TokenInvalid):
        tokens.authenticate(token, request="test")
