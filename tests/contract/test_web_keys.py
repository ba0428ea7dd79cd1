"""Security-key ceremonies refused without a browser: bad answers, spent challenges, lockout.

The happy paths need an authenticator and run in Chromium
(tests/integration/test_web_keys.py); these are the refusals a forged or
replayed request meets, on both databases.
"""

from __future__ import annotations

import json

import pytest

from gcx import audit, crypto
from gcx.clock import FixedClock
from gcx.errors import AccountLocked, CryptoError, SessionExpired, SignInRefused
from gcx.store import Database
from gcx.web.accounts import MAX_FAILURES, WebAccounts
from gcx.web.keys import SecurityKeys
from gcx.web.people import NewUser

KEY = crypto.secret_sealing_key(b"a-test-passphrase-of-length", "web second factor")
PASSWORD = "correct horse battery staple"
RP = "localhost"
ORIGIN = "http://localhost:8080"
FORGED = json.dumps(
    {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {
            "clientDataJSON": "e30",
            "attestationObject": "oA",
            "authenticatorData": "",
            "signature": "",
        },
    }
)


@pytest.fixture
def accounts(database: Database, clock: FixedClock) -> WebAccounts:
    return WebAccounts(database, clock, KEY, "gcx test", ("staff",))


@pytest.fixture
def alice(accounts: WebAccounts) -> NewUser:
    return accounts.add_user("alice", "Alice", ["staff"], "E09000030", by="t", password=PASSWORD)


def _signed_in(accounts: WebAccounts, alice: NewUser, clock: FixedClock) -> str:
    secret = crypto.totp_secret_from_text(alice.totp_secret)
    pending = accounts.check_password("alice", PASSWORD)
    return accounts.check_code(pending, crypto.totp_code(secret, clock.now()))


def test_registration_refuses_a_forged_answer_and_spends_the_challenge(
    accounts: WebAccounts, alice: NewUser, clock: FixedClock
) -> None:
    keys = SecurityKeys(accounts, "gcx test")
    cookie = _signed_in(accounts, alice, clock)
    user = accounts.session(cookie).user
    options = json.loads(keys.registration_options(cookie, user, RP))
    assert options["rp"]["id"] == RP and options["user"]["name"] == "alice"
    with pytest.raises(CryptoError):
        keys.register(cookie, user, FORGED, "Forged", RP, ORIGIN)
    with pytest.raises(SessionExpired):  # the challenge was used by the first answer
        keys.register(cookie, user, FORGED, "Forged", RP, ORIGIN)
    assert keys.keys(user) == []


def test_no_key_is_offered_to_someone_without_one(accounts: WebAccounts, alice: NewUser) -> None:
    keys = SecurityKeys(accounts, "gcx test")
    pending = accounts.check_password("alice", PASSWORD)
    assert keys.waiting_has_keys(pending) is False
    assert keys.sign_in_options(pending, RP) is None
    with pytest.raises(SessionExpired):  # no ceremony was started
        keys.sign_in(pending, FORGED, RP, ORIGIN)


def test_forged_key_answers_count_towards_the_lockout(
    accounts: WebAccounts, alice: NewUser, clock: FixedClock, database: Database
) -> None:
    keys = SecurityKeys(accounts, "gcx test")
    # A registered key is needed for a ceremony to start; plant one directly.
    import sqlalchemy as sa

    from gcx.store.schema_web import web_credentials, web_users

    with database.transaction() as conn:
        user_id = conn.execute(sa.select(web_users.c.id)).scalar_one()
        conn.execute(
            web_credentials.insert().values(
                user_id=user_id,
                credential_id="AAAA",
                public_key=b"x",
                sign_count=0,
                name="Planted",
                created_at="2026-11-21T09:00:00Z",
            )
        )
    for attempt in range(MAX_FAILURES):
        pending = accounts.check_password("alice", PASSWORD)
        assert keys.waiting_has_keys(pending)
        assert json.loads(keys.sign_in_options(pending, RP) or "{}")["rpId"] == RP
        expected = AccountLocked if attempt == MAX_FAILURES - 1 else SignInRefused
        with pytest.raises(expected):
            keys.sign_in(pending, FORGED, RP, ORIGIN)
    with database.read() as conn:
        failures = [e for e in audit.entries(conn) if e.action == "web.sign-in-refused"]
    assert {e.details_dict["failed"] for e in failures} == {"security-key"}
