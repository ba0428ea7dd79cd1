"""The statuses of the sign-in form's refusals are the ones docs/protocol.md gives."""

from __future__ import annotations

import pytest

from gcx.errors import AccountLocked, GcxError, SessionExpired, SignInRefused, SignInThrottled
from gcx.web.sign_in import errors_status
from gcx.web.site import FormErrors


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (SignInRefused(), 400),
        (SessionExpired(), 400),
        (AccountLocked(), 429),
        (SignInThrottled(), 429),
    ],
)
def test_sign_in_refusals_have_their_documented_status(error: GcxError, status: int) -> None:
    """Wrong details are 400 (a form has no WWW-Authenticate challenge); lock and throttle 429."""
    assert errors_status(FormErrors.of(error, "username")) == status


def test_a_fresh_sign_in_form_is_200() -> None:
    """The form with nothing refused is an ordinary page."""
    assert errors_status(None) == 200
