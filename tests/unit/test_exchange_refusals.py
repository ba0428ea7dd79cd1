"""The one judgement of a peer's refusal that every carrier uses: for good, or try again."""

from __future__ import annotations

import pytest

from gcx.gateway.exchange.outcomes import FINAL_CODES, PASSING_CODES, is_final_refusal


@pytest.mark.parametrize("code", sorted(FINAL_CODES))
def test_refusals_of_the_thing_itself_are_final_with_or_without_a_status(code: str) -> None:
    assert is_final_refusal(code)
    assert is_final_refusal(code, 422)
    assert is_final_refusal(code, 503)


@pytest.mark.parametrize("code", sorted(PASSING_CODES))
def test_not_now_refusals_are_tried_again_whatever_the_status(code: str) -> None:
    assert not is_final_refusal(code)
    assert not is_final_refusal(code, 400)
    assert not is_final_refusal(code, 507)


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (400, True),
        (403, True),
        (404, True),
        (410, True),
        (413, True),
        (422, True),
        (408, False),
        (409, False),
        (425, False),
        (429, False),
        (500, False),
        (502, False),
        (503, False),
        (507, False),
        (None, False),
    ],
)
def test_other_codes_follow_the_status(status: int | None, final: bool) -> None:
    """A code gcx does not list is judged by its status: a 4xx is final unless it means
    "try later"; a 5xx, or no answer at all, is tried again until the work expires."""
    assert is_final_refusal("some-new-code", status) is final


def test_no_code_is_both_final_and_passing() -> None:
    assert not FINAL_CODES & PASSING_CODES
