"""gcx.crypto's recipes for people: argon2id passwords, TOTP codes, sealed secrets."""

from __future__ import annotations

import datetime as dt

import pytest

from gcx import crypto
from gcx.errors import CryptoError

AT = dt.datetime(2026, 11, 22, 9, 0, 0, tzinfo=dt.UTC)


def test_password_hashes_are_argon2id_salted_and_verify() -> None:
    first = crypto.hash_password("correct horse battery staple")
    second = crypto.hash_password("correct horse battery staple")
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert first != second, "each hash has its own salt"
    assert crypto.password_matches("correct horse battery staple", first)
    assert not crypto.password_matches("correct horse battery stapler", first)
    assert not crypto.password_needs_rehash(first)


def test_weaker_stored_hashes_are_flagged_and_damaged_ones_never_match() -> None:
    weaker = crypto.hash_password("x").replace("m=19456,t=2,p=1", "m=8192,t=1,p=1")
    assert crypto.password_needs_rehash(weaker)
    assert not crypto.password_matches("x", "$2b$12$notargon"), "a damaged hash never matches"


def test_rfc6238_reference_code() -> None:
    # RFC 6238 appendix B: the SHA-1 secret "12345678901234567890" at T=59 gives 94287082
    # (8 digits); gcx uses 6 digits, the last six of the same value.
    secret = b"12345678901234567890"
    assert crypto.totp_code(secret, dt.datetime.fromtimestamp(59, dt.UTC)) == "287082"


def test_codes_match_within_one_step_and_report_the_step() -> None:
    secret = crypto.new_totp_secret()
    code = crypto.totp_code(secret, AT)
    step = int(AT.timestamp()) // 30
    assert crypto.totp_step_matched(secret, code, AT) == step
    assert crypto.totp_step_matched(secret, code, AT + dt.timedelta(seconds=30)) == step
    assert crypto.totp_step_matched(secret, code, AT + dt.timedelta(seconds=61)) is None
    assert crypto.totp_step_matched(secret, "12a456", AT) is None
    assert crypto.totp_step_matched(secret, code[:3] + " " + code[3:], AT) == step


def test_secret_text_round_trips_and_bad_text_is_refused() -> None:
    secret = crypto.new_totp_secret()
    text = crypto.totp_secret_text(secret)
    assert crypto.totp_secret_from_text(text.lower()) == secret
    assert crypto.totp_uri(secret, "alice", "gcx test").startswith("otpauth://totp/")
    with pytest.raises(CryptoError):
        crypto.totp_secret_from_text("not base32!")


def test_sealed_secrets_open_only_with_the_same_key_and_binding() -> None:
    key = crypto.secret_sealing_key(b"a passphrase of some length", "web second factor")
    other = crypto.secret_sealing_key(b"a passphrase of some length", "something else")
    sealed = crypto.seal_secret(key, b"the secret", "alice")
    assert crypto.open_secret(key, sealed, "alice") == b"the secret"
    for wrong_key, binding in ((other, "alice"), (key, "bob")):
        with pytest.raises(CryptoError):
            crypto.open_secret(wrong_key, sealed, binding)
    with pytest.raises(CryptoError):
        crypto.open_secret(key, "AAAA", "alice")
