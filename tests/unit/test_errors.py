"""The error tree: stable codes, HTTP statuses, sentences and the JSON body."""

from __future__ import annotations

import re

import pytest

from gcx import errors
from gcx.errors import GcxError, RemoteRefusal


def _tree(root: type[GcxError]) -> list[type[GcxError]]:
    found = [root]
    for sub in root.__subclasses__():
        found += _tree(sub)
    return found


ERRORS = [cls for cls in _tree(GcxError) if cls.__module__ == "gcx.errors"]


def test_tree_is_found() -> None:
    """The walk finds the whole documented tree, not just the root."""
    assert len(ERRORS) >= 25
    assert errors.DirectoryUnavailable in ERRORS
    assert errors.KeyDecryptionFailed in ERRORS


def test_codes_are_unique() -> None:
    """No two errors share a code, so a program can match on it."""
    codes = [cls.code for cls in ERRORS]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_code_is_lower_case_and_hyphenated(cls: type[GcxError]) -> None:
    """Each code is lower-case words (digits allowed, as in utf8) joined by single hyphens."""
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", cls.code)


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_status_is_an_http_error_status(cls: type[GcxError]) -> None:
    """Each error maps to a 4xx or 5xx HTTP status."""
    assert 400 <= cls.status <= 599


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_default_message_is_a_sentence(cls: type[GcxError]) -> None:
    """Each default message is a sentence: it starts with a capital and ends with a full stop."""
    assert cls.default_message.endswith(".")
    assert cls.default_message[0].isupper()


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_is_in_the_documented_tree(cls: type[GcxError]) -> None:
    """The module docstring's tree names every error class."""
    assert re.search(rf"\b{cls.__name__}\b", errors.__doc__ or "")


def test_to_dict_without_details() -> None:
    """to_dict gives code and message, and no details key when there are none."""
    assert errors.DirectoryRollback().to_dict() == {
        "code": "directory-rollback",
        "message": errors.DirectoryRollback.default_message,
    }


def test_to_dict_with_message_and_details() -> None:
    """A given message replaces the default and details appear under 'details'."""
    error = errors.UnknownOrganisation("HMRC is not registered.", organisations=["HMRC"])
    assert error.to_dict() == {
        "code": "organisation-unknown",
        "message": "HMRC is not registered.",
        "details": {"organisations": ["HMRC"]},
    }
    assert str(error) == "HMRC is not registered."


def test_remote_refusal_carries_the_remote_code() -> None:
    """A refusal relayed from another service keeps its code, message and status."""
    error = RemoteRefusal(409, "enrolment-duplicate", "Already enrolled.")
    assert error.to_dict() == {
        "code": "enrolment-duplicate",
        "message": "Already enrolled.",
        "details": {"remote_status": 409},
    }
    assert error.status == 502


def test_hierarchy_lets_callers_catch_families() -> None:
    """Specific errors are caught by their family (e.g. every directory problem)."""
    assert issubclass(errors.DirectoryExpired, errors.DirectoryError)
    assert issubclass(errors.CsrInvalid, errors.InputError)
    assert issubclass(errors.DuplicateEnrolment, errors.Conflict)
    assert issubclass(errors.SignatureInvalid, errors.CryptoError)
    assert issubclass(errors.PeerRevoked, errors.PeerRefused)
