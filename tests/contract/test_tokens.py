"""Who an API token may act as: people issue their own, administrators only systems'."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gcx import audit, crypto
from gcx.clock import FixedClock
from gcx.errors import AccountNameTaken, NotFound, PersonTokenRefused, TokenInvalid
from gcx.gateway.messages.mailboxes import MailboxService
from gcx.gateway.tokens import REMEMBER_FOR, TokenService
from gcx.store import Database
from gcx.store.schema import api_tokens
from gcx.store.schema_web import web_users
from gcx.store.tokens import standing_changed, standing_generation
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


def _refusals(database: Database) -> int:
    with database.read() as conn:
        return len(list(audit.entries(conn, action="token.refused")))


def test_a_remembered_caller_is_forgotten_the_moment_its_token_is_revoked_here(
    tokens: TokenService, people: WebAccounts, database: Database
) -> None:
    """Revoked by an administrator or by its person on this gateway: refused at the next
    request, although the caller was remembered moments before."""
    system = tokens.add_system(ORG, "case-system", ["system"])
    alice = _person_id(database, "alice")
    own = tokens.issue_to_person(alice)
    for token in (system, own):
        caller = tokens.authenticate(token, request="test", record_use=False)
        assert tokens.known(token) == caller
    tokens.revoke(ORG, "case-system", by="test")
    assert tokens.known(system) is None
    with pytest.raises(TokenInvalid):
        tokens.authenticate(system, request="test", record_use=False)
    assert tokens.known(own) is None  # every remembered caller was forgotten
    tokens.authenticate(own, request="test", record_use=False)
    tokens.revoke_own(alice, tokens.list_own(alice)[0]["id"], by="web:alice@E09000030")
    assert tokens.known(own) is None
    with pytest.raises(TokenInvalid):
        tokens.authenticate(own, request="test", record_use=False)


def test_a_person_disabled_or_given_other_roles_here_is_not_remembered(
    tokens: TokenService, people: WebAccounts, database: Database
) -> None:
    """Roles changed or the person disabled through this process: the remembered caller goes."""
    token = tokens.issue_to_person(_person_id(database, "alice"))
    tokens.authenticate(token, request="test", record_use=False)
    people.set_roles("alice", ["admin"], by="test")
    assert tokens.known(token) is None
    people.set_roles("alice", ["staff"], by="test")
    tokens.authenticate(token, request="test", record_use=False)
    people.disable("alice", by="test")
    assert tokens.known(token) is None
    with pytest.raises(TokenInvalid):
        tokens.authenticate(token, request="test", record_use=False)


def test_a_revocation_by_another_replica_counts_here_within_the_bound(
    tokens: TokenService, database: Database, clock: FixedClock
) -> None:
    """Revoked in the shared database by another process (no signal reaches this one): the
    remembered caller is honoured for at most REMEMBER_FOR, then the token is refused and
    the refusal audited."""
    token = tokens.add_system(ORG, "case-system", ["system"])
    caller = tokens.authenticate(token, request="test", record_use=False)
    with database.transaction() as conn:  # as `gcx token revoke` on another replica does
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.account == "case-system")
            .values(revoked_at="2026-11-21T09:00:00.000000Z")
        )
    assert tokens.known(token) == caller
    clock.advance(REMEMBER_FOR)
    assert tokens.known(token) is None
    before = _refusals(database)
    with pytest.raises(TokenInvalid):
        tokens.authenticate(token, request="test", record_use=False)
    assert _refusals(database) == before + 1


def test_callers_are_remembered_by_the_tokens_hash_and_refusals_never(
    tokens: TokenService, database: Database
) -> None:
    """The table holds hashes, never a token; an unknown token is looked up (and audited)
    every time."""
    token = tokens.add_system(ORG, "case-system", ["system"])
    tokens.authenticate(token, request="test", record_use=False)
    assert tokens._remembered.hashes() == [crypto.hash_token(token)]
    before = _refusals(database)
    for _ in range(2):
        with pytest.raises(TokenInvalid):
            tokens.authenticate("gcxt_not-a-token", request="test", record_use=False)
        assert tokens.known("gcxt_not-a-token") is None
    assert _refusals(database) == before + 2
    assert len(tokens._remembered) == 1


def test_a_lookup_that_raced_a_revocation_is_not_remembered(
    tokens: TokenService, database: Database
) -> None:
    """What a lookup read before a revocation committed is stale: it is not kept."""
    token = tokens.add_system(ORG, "case-system", ["system"])
    caller = tokens.authenticate(token, request="test", record_use=False)
    looked_up_under = standing_generation()
    standing_changed()  # a revocation committed while that lookup ran
    tokens._remembered.put(caller, crypto.hash_token(token), looked_up_under)
    assert tokens.known(token) is None
