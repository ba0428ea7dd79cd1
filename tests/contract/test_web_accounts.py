"""People signing in to the web pages: the rules of WebAccounts, on both databases."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from gcx import audit, crypto
from gcx.clock import FixedClock
from gcx.errors import (
    AccountLocked,
    CryptoError,
    DuplicateEnrolment,
    InputError,
    NotFound,
    SessionExpired,
    SignInRefused,
)
from gcx.store import Database
from gcx.store.schema_web import web_credentials, web_sign_in_names, web_users
from gcx.web.accounts import IDLE_TIMEOUT, LOCKOUT, MAX_FAILURES, WebAccounts
from gcx.web.people import NewUser

KEY = crypto.secret_sealing_key(b"a-test-passphrase-of-length", "web second factor")
ROLES = ("staff", "admin")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def accounts(database: Database, clock: FixedClock) -> WebAccounts:
    return WebAccounts(database, clock, KEY, "gcx test", ROLES)


@pytest.fixture
def alice(accounts: WebAccounts) -> NewUser:
    return accounts.add_user(
        "alice", "Alice Example", ["staff"], "E09000030", by="test", password=PASSWORD
    )


def _code(new: NewUser, clock: FixedClock, steps_ahead: int = 0) -> str:
    secret = crypto.totp_secret_from_text(new.totp_secret)
    return crypto.totp_code(secret, clock.now() + dt.timedelta(seconds=30 * steps_ahead))


def _actions(database: Database) -> list[str]:
    with database.read() as conn:
        return [e.action for e in audit.entries(conn)]


def test_password_then_code_gives_a_signed_in_session(
    accounts: WebAccounts, alice: NewUser, clock: FixedClock, database: Database
) -> None:
    pending = accounts.check_password("alice", PASSWORD)
    with pytest.raises(SessionExpired):
        accounts.session(pending)  # a password alone signs nobody in
    cookie = accounts.check_code(pending, _code(alice, clock))
    assert cookie != pending, "the session identifier changes at sign-in"
    session = accounts.session(cookie)
    assert session.user.username == "alice"
    assert session.user.roles == frozenset({"staff"})
    assert session.user.organisation == "E09000030"
    assert _actions(database)[-1] == "web.signed-in"
    with pytest.raises(SessionExpired):
        accounts.check_code(pending, _code(alice, clock, 1))  # the waiting session is spent


def test_the_stored_record_holds_no_password_or_secret_in_the_clear(
    accounts: WebAccounts, alice: NewUser, database: Database
) -> None:
    import sqlalchemy as sa

    from gcx.store.schema_web import web_users

    with database.read() as conn:
        row = conn.execute(sa.select(web_users)).one()
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash
    assert alice.totp_secret not in row.totp_sealed
    # The sealed secret is bound to its account: copied to another, it does not open.
    with pytest.raises(CryptoError):
        crypto.open_secret(KEY, row.totp_sealed, "mallory")


def test_wrong_password_and_unknown_user_get_the_same_refusal(
    accounts: WebAccounts, alice: NewUser, database: Database
) -> None:
    with pytest.raises(SignInRefused) as wrong:
        accounts.check_password("alice", "not the password")
    with pytest.raises(SignInRefused) as unknown:
        accounts.check_password("nobody", "not the password")
    assert wrong.value.message == unknown.value.message
    assert _actions(database).count("web.sign-in-refused") == 2


def test_a_code_is_accepted_once(accounts: WebAccounts, alice: NewUser, clock: FixedClock) -> None:
    code = _code(alice, clock)
    accounts.check_code(accounts.check_password("alice", PASSWORD), code)
    with pytest.raises(SignInRefused):
        accounts.check_code(accounts.check_password("alice", PASSWORD), code)


def test_codes_one_step_either_side_are_accepted_but_not_two(
    accounts: WebAccounts, alice: NewUser, clock: FixedClock
) -> None:
    with pytest.raises(SignInRefused):
        accounts.check_code(accounts.check_password("alice", PASSWORD), _code(alice, clock, 2))
    accounts.check_code(accounts.check_password("alice", PASSWORD), _code(alice, clock, 1))


def test_five_failures_lock_for_fifteen_minutes(
    accounts: WebAccounts, alice: NewUser, clock: FixedClock, database: Database
) -> None:
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(SignInRefused):
            accounts.check_password("alice", "wrong")
    with pytest.raises(AccountLocked):
        accounts.check_password("alice", "wrong")
    with pytest.raises(AccountLocked):
        accounts.check_password("alice", PASSWORD)  # even the right password, while locked
    assert "web.user-locked" in _actions(database)
    assert accounts.users()[0]["locked"] is True
    clock.advance(LOCKOUT)
    accounts.check_code(accounts.check_password("alice", PASSWORD), _code(alice, clock))


def test_wrong_codes_count_towards_the_lock(
    accounts: WebAccounts, alice: NewUser, clock: FixedClock
) -> None:
    for _ in range(MAX_FAILURES - 1):
        pending = accounts.check_password("alice", PASSWORD)
        with pytest.raises(SignInRefused):
            accounts.check_code(pending, "000000" if _code(alice, clock) != "000000" else "111111")
    with pytest.raises(AccountLocked):
        accounts.check_password("alice", "wrong")


def test_an_administrator_unlocks(accounts: WebAccounts, alice: NewUser, clock: FixedClock) -> None:
    for _ in range(MAX_FAILURES):
        with pytest.raises((SignInRefused, AccountLocked)):
            accounts.check_password("alice", "wrong")
    accounts.unlock("alice", by="admin")
    accounts.check_password("alice", PASSWORD)


def test_sessions_end_when_idle_at_sign_out_and_when_disabled(
    accounts: WebAccounts, alice: NewUser, clock: FixedClock
) -> None:
    cookie = accounts.check_code(accounts.check_password("alice", PASSWORD), _code(alice, clock))
    clock.advance(IDLE_TIMEOUT - dt.timedelta(seconds=1))
    accounts.session(cookie)  # a request refreshes the idle timer
    clock.advance(IDLE_TIMEOUT - dt.timedelta(seconds=1))
    accounts.session(cookie)
    clock.advance(IDLE_TIMEOUT)
    with pytest.raises(SessionExpired):
        accounts.session(cookie)

    cookie = accounts.check_code(accounts.check_password("alice", PASSWORD), _code(alice, clock))
    accounts.sign_out(cookie)
    with pytest.raises(SessionExpired):
        accounts.session(cookie)

    clock.advance(dt.timedelta(minutes=1))
    cookie = accounts.check_code(accounts.check_password("alice", PASSWORD), _code(alice, clock))
    accounts.disable("alice", by="admin")
    with pytest.raises(SessionExpired):
        accounts.session(cookie)
    with pytest.raises(SignInRefused):
        accounts.check_password("alice", PASSWORD)


def test_a_flash_is_shown_once(accounts: WebAccounts, alice: NewUser, clock: FixedClock) -> None:
    cookie = accounts.check_code(accounts.check_password("alice", PASSWORD), _code(alice, clock))
    accounts.flash(cookie, "Message sent")
    assert accounts.session(cookie).flash == "Message sent"
    assert accounts.session(cookie).flash is None


def test_adding_people_refuses_bad_input(accounts: WebAccounts, alice: NewUser) -> None:
    with pytest.raises(DuplicateEnrolment):
        accounts.add_user("alice", "Alice Again", ["staff"], None, by="test")
    with pytest.raises(InputError):
        accounts.add_user("Bad Name!", "Someone", ["staff"], None, by="test")
    with pytest.raises(InputError):
        accounts.add_user("bob", "Bob", ["root"], None, by="test")
    with pytest.raises(InputError):
        accounts.add_user("bob", "Bob", ["staff"], None, by="test", password="short")
    with pytest.raises(NotFound):
        accounts.set_roles("nobody", ["staff"], by="test")
    generated = accounts.add_user("bob", "Bob", ["staff", "admin"], None, by="test")
    assert len(generated.password) >= 12
    assert generated.totp_uri.startswith("otpauth://totp/")


def test_people_change_their_own_password(
    accounts: WebAccounts, alice: NewUser, clock: FixedClock, database: Database
) -> None:
    cookie = accounts.check_code(accounts.check_password("alice", PASSWORD), _code(alice, clock))
    me = accounts.session(cookie).user
    with pytest.raises(SignInRefused):
        accounts.change_password(me, "not my password", "a brand new passphrase")
    with pytest.raises(InputError):
        accounts.change_password(me, PASSWORD, "short")
    accounts.change_password(me, PASSWORD, "a brand new passphrase")
    assert "web.password-changed" in _actions(database)
    with pytest.raises(SignInRefused):
        accounts.check_password("alice", PASSWORD)
    accounts.check_password("alice", "a brand new passphrase")


def test_one_code_used_by_racing_requests_signs_in_once(
    accounts: WebAccounts, alice: NewUser, clock: FixedClock, database: Database
) -> None:
    """Eight sign-ins with the same code, all past their checks before any writes: one wins."""
    import concurrent.futures
    import threading
    from collections.abc import Iterator
    from contextlib import contextmanager

    from sqlalchemy.engine import Connection

    pending = [accounts.check_password("alice", PASSWORD) for _ in range(8)]
    code = _code(alice, clock)
    barrier = threading.Barrier(len(pending))
    local = threading.local()

    class HeldAtFirstWrite:
        """The database, but each thread's first write waits until every thread is there."""

        def read(self) -> Any:
            return database.read()

        @contextmanager
        def transaction(self) -> Iterator[Connection]:
            if not getattr(local, "waited", False):
                local.waited = True
                barrier.wait(timeout=30)
            with database.transaction() as conn:
                yield conn

    accounts.db = HeldAtFirstWrite()  # type: ignore[assignment]

    def attempt(cookie: str) -> bool:
        try:
            accounts.check_code(cookie, code)
        except (SignInRefused, AccountLocked):
            return False
        return True

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(pending)) as pool:
        outcomes = list(pool.map(attempt, pending))
    assert outcomes.count(True) == 1


def test_finished_sessions_are_pruned_after_a_day(
    accounts: WebAccounts, alice: NewUser, clock: FixedClock, database: Database
) -> None:
    import sqlalchemy as sa

    from gcx.store.schema_web import web_sessions

    # A day-old sign-in: its spent second-factor session and its signed-out session.
    old = accounts.check_code(accounts.check_password("alice", PASSWORD), _code(alice, clock))
    accounts.sign_out(old)
    assert accounts.prune_sessions() == 0, "nothing is a day past its end yet"
    clock.advance(dt.timedelta(hours=25))
    live = accounts.check_code(accounts.check_password("alice", PASSWORD), _code(alice, clock))
    assert accounts.prune_sessions() == 2
    with database.read() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(web_sessions)).scalar_one()
    assert left == 2, "today's sign-in keeps both its rows"
    assert accounts.session(live).user.username == "alice"


def test_a_reset_hands_over_new_details_and_nothing_old_still_works(
    accounts: WebAccounts, alice: NewUser, clock: FixedClock, database: Database
) -> None:
    cookie = accounts.check_code(accounts.check_password("alice", PASSWORD), _code(alice, clock))
    with database.transaction() as conn:
        user_id = conn.execute(
            sa.select(web_users.c.id).where(web_users.c.username == "alice")
        ).scalar_one()
        conn.execute(
            web_credentials.insert().values(
                user_id=user_id,
                credential_id="a-passkey-on-the-lost-phone",
                public_key=b"key",
                sign_count=0,
                name="Phone",
                created_at="2026-11-21T09:00:00.000000Z",
            )
        )
    for _ in range(MAX_FAILURES):
        with pytest.raises((SignInRefused, AccountLocked)):
            accounts.check_password("alice", "wrong")

    fresh = accounts.reset_sign_in("alice", by="admin")

    assert fresh.username == "alice"
    assert fresh.password != PASSWORD and fresh.totp_secret != alice.totp_secret
    with pytest.raises(SessionExpired):
        accounts.session(cookie)  # whoever holds the old session is signed out
    with pytest.raises(SignInRefused):
        accounts.check_password("alice", PASSWORD)
    pending = accounts.check_password("alice", fresh.password)  # the lockout is lifted
    with pytest.raises(SignInRefused):
        accounts.check_code(pending, _code(alice, clock))  # the old app's code is refused
    clock.advance(dt.timedelta(seconds=30))
    pending = accounts.check_password("alice", fresh.password)
    accounts.session(accounts.check_code(pending, _code(fresh, clock)))
    with database.read() as conn:
        assert conn.execute(sa.select(web_credentials)).first() is None, "keys removed"
        entry = [e for e in audit.entries(conn) if e.action == "web.sign-in-reset"][-1]
    assert (entry.actor, entry.subject) == ("admin", "alice")
    assert json.loads(entry.details) == {"security_keys_removed": 1}
    with pytest.raises(NotFound):
        accounts.reset_sign_in("nobody", by="admin")


def test_unknown_names_lock_after_as_many_failures_as_real_accounts(
    accounts: WebAccounts, alice: NewUser, clock: FixedClock, database: Database
) -> None:
    """An unknown name answers exactly as a real one: refused four times, then account-locked."""
    answers: dict[str, list[str]] = {"alice": [], "nobody": []}
    for name, answer in answers.items():
        for _ in range(MAX_FAILURES + 1):
            with pytest.raises((SignInRefused, AccountLocked)) as refused:
                accounts.check_password(name, "wrong")
            answer.append(f"{refused.value.code}:{refused.value.message}")
    assert answers["nobody"] == answers["alice"]
    assert answers["nobody"][-1].startswith("account-locked:")
    clock.advance(LOCKOUT)
    with pytest.raises(SignInRefused):
        accounts.check_password("nobody", "wrong")  # the name's lock has ended, as alice's would
    with database.read() as conn:
        # The typed name itself is not kept, only a keyed hash of it.
        details = " ".join(e.details for e in audit.entries(conn))
        stored = conn.execute(sa.select(web_sign_in_names.c.name_key)).scalars().all()
    assert "nobody" not in details and all("nobody" not in key for key in stored)


def test_every_name_costs_one_password_hash_even_when_locked(
    accounts: WebAccounts, alice: NewUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each password step does one password hash check, for real, unknown and locked names."""
    checks: list[str] = []
    real_matches, real_dummy = crypto.password_matches, crypto.dummy_password_check

    def counted_matches(password: str, stored: str) -> bool:
        checks.append("hash")
        return real_matches(password, stored)

    def counted_dummy(password: str) -> None:
        checks.append("hash")
        real_dummy(password)

    monkeypatch.setattr(crypto, "password_matches", counted_matches)
    monkeypatch.setattr(crypto, "dummy_password_check", counted_dummy)
    for name in ("alice", "nobody"):
        for _ in range(MAX_FAILURES + 2):  # the last two while locked
            checks.clear()
            with pytest.raises((SignInRefused, AccountLocked)):
                accounts.check_password(name, "wrong")
            assert len(checks) == 1, name
