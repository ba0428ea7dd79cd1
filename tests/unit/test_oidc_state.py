"""The pending OpenID Connect sign-in, sealed into the browser's state cookie."""

from __future__ import annotations

import pytest

from gcx import crypto
from gcx.errors import SignInRefused
from gcx.web.oidc import Pending, open_pending, seal_pending

KEY = crypto.secret_sealing_key(b"a-passphrase-for-this-test-only", "web oidc state")
PENDING = Pending("the-nonce", "the-verifier", "/inbox", "https://gcx.example/cb", 1000.0)


def test_a_sealed_sign_in_opens_with_its_state_on_any_replica() -> None:
    sealed = seal_pending(KEY, "state-1", PENDING)
    assert "the-verifier" not in sealed and "the-nonce" not in sealed, "sealed, not signed"
    # A new process with the same passphrase opens it: nothing is held in memory.
    same_key = crypto.secret_sealing_key(b"a-passphrase-for-this-test-only", "web oidc state")
    assert open_pending(same_key, "state-1", sealed, now=999.0) == PENDING


@pytest.mark.parametrize(
    ("key", "state", "now", "words"),
    [
        (KEY, "state-2", 999.0, "not started from this browser"),  # another sign-in's cookie
        (crypto.secret_sealing_key(b"another-gateways-passphrase", "web oidc state"),
         "state-1", 999.0, "not started from this browser"),
        (KEY, "state-1", 1000.5, "expired"),
    ],
)  # fmt: skip
def test_a_sealed_sign_in_is_refused_elsewhere_or_late(
    key: bytes, state: str, now: float, words: str
) -> None:
    sealed = seal_pending(KEY, "state-1", PENDING)
    with pytest.raises(SignInRefused, match=words):
        open_pending(key, state, sealed, now)


def test_a_damaged_cookie_is_refused() -> None:
    sealed = seal_pending(KEY, "state-1", PENDING)
    for damaged in ("", "not-base64!", sealed[:-4] + "AAAA"):
        with pytest.raises(SignInRefused):
            open_pending(KEY, "state-1", damaged, 999.0)
