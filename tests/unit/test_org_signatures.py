"""Documents verified against the signing keys the directory lists (gcx.gateway.peer)."""

from __future__ import annotations

import datetime as dt

import pytest

from gcx import crypto
from gcx.errors import SignatureInvalid
from gcx.gateway import directory_keys as key_cache
from gcx.gateway.peer import verify_signed_by_org
from gcx.protocol.directory import Directory, OrganisationEntry

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
TYPE = "application/vnd.gcx.test+json"
KEYS = {f"ORG{n:04d}": crypto.SigningKey.generate() for n in range(300)}


def _directory(version: int = 1, *, without: str | None = None) -> Directory:
    return Directory(
        network="test-net",
        version=version,
        issued_at=NOW,
        expires_at=NOW + dt.timedelta(hours=1),
        organisations=tuple(
            OrganisationEntry(
                code=code,
                name=code,
                type="local-authority",
                signing_key=None if code == without else key.public.b64(),
            )
            for code, key in KEYS.items()
        ),
    )


def _signed(code: str, payload: bytes = b'{"n":1}') -> bytes:
    key = KEYS[code]
    return crypto.sign_document(TYPE, payload, key, crypto.key_id(key.public))


def test_a_document_verifies_against_its_organisations_key_and_no_other() -> None:
    """Signed by any member, it verifies when no signer is claimed yet, and when the
    signer is claimed only against that member's key; a member with no key, or an
    organisation the directory does not list, verifies nothing."""
    directory = _directory(without="ORG0007")
    document = _signed("ORG0123")
    assert verify_signed_by_org(directory, document, TYPE, claimed=None) == b'{"n":1}'
    assert verify_signed_by_org(directory, document, TYPE, claimed="ORG0123") == b'{"n":1}'
    for claimed in ("ORG0124", "ORG0007", "NOT-LISTED"):
        with pytest.raises(SignatureInvalid):
            verify_signed_by_org(directory, document, TYPE, claimed=claimed)
    with pytest.raises(SignatureInvalid):
        verify_signed_by_org(directory, _signed("ORG0007"), TYPE, claimed=None)
    with pytest.raises(SignatureInvalid):
        verify_signed_by_org(directory, document, "application/other", claimed=None)


def test_the_members_keys_are_read_once_per_directory_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Verifying against "any member" no longer reads every member's key each time: the
    index is made once for the directory held, and made again for the next directory,
    where a member whose key was withdrawn no longer verifies."""
    key_cache.verify_key.cache_clear()
    key_cache.verify_key_with_id.cache_clear()
    parsed: list[str] = []
    real = crypto.VerifyKey.from_b64

    def counting(text: str) -> crypto.VerifyKey:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(crypto.VerifyKey, "from_b64", staticmethod(counting))
    first = _directory(1)
    for code in ("ORG0001", "ORG0150", "ORG0299"):
        verify_signed_by_org(first, _signed(code), TYPE, claimed=None)
    assert len(parsed) == len(KEYS)
    assert key_cache.signing_keys_by_id(first) is key_cache.signing_keys_by_id(first)
    second = _directory(2, without="ORG0150")
    with pytest.raises(SignatureInvalid):
        verify_signed_by_org(second, _signed("ORG0150"), TYPE, claimed=None)
    verify_signed_by_org(second, _signed("ORG0001"), TYPE, claimed=None)
    assert len(parsed) == len(KEYS)  # the same keys, already read
