"""The delivery lifecycle table, and retry timing with backoff and full jitter."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest

from gcx.errors import StateTransitionRefused
from gcx.protocol.delivery import (
    FINAL_STATES,
    RETRY_CAP,
    TRANSITIONS,
    DeliveryEvent,
    DeliveryState,
    is_late_receipt,
    next_attempt_at,
    next_state,
    retry_bound,
    retry_delay,
)

S = DeliveryState
E = DeliveryEvent
NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)

# The lifecycle as specified, written out independently of the module's table.
EXPECTED = {
    (S.QUEUED, E.CLAIM): S.SENDING,
    (S.QUEUED, E.EXPIRE): S.EXPIRED,
    (S.QUEUED, E.RECALL): S.RECALLED,
    (S.SENDING, E.CLAIM): S.SENDING,
    (S.SENDING, E.RECEIPT): S.DELIVERED,
    (S.SENDING, E.TRANSIENT_FAILURE): S.RETRYING,
    (S.SENDING, E.PERMANENT_REFUSAL): S.FAILED,
    (S.SENDING, E.EXPIRE): S.EXPIRED,
    (S.SENDING, E.RECALL): S.RECALLED,
    (S.RETRYING, E.CLAIM): S.SENDING,
    (S.RETRYING, E.RECEIPT): S.DELIVERED,
    (S.RETRYING, E.EXPIRE): S.EXPIRED,
    (S.RETRYING, E.RECALL): S.RECALLED,
    (S.DELIVERED, E.RECEIPT): S.DELIVERED,
    (S.DELIVERED, E.RECALL): S.RECALLED,
    (S.FAILED, E.RECEIPT): S.DELIVERED,
    (S.EXPIRED, E.RECEIPT): S.DELIVERED,
    (S.RECALLED, E.RECEIPT): S.RECALLED,
}
REFUSED = [pair for pair in itertools.product(S, E) if pair not in EXPECTED]


def test_table_is_exactly_the_specified_lifecycle() -> None:
    """The module's table has no transition more or fewer than the specification."""
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(("pair", "target"), EXPECTED.items(), ids=lambda v: str(v))
def test_allowed_transitions(pair: tuple[DeliveryState, DeliveryEvent], target: S) -> None:
    """Each specified transition leads to its target state."""
    assert next_state(*pair) is target


@pytest.mark.parametrize("pair", REFUSED, ids=str)
def test_other_transitions_refused(pair: tuple[DeliveryState, DeliveryEvent]) -> None:
    """Any pair not in the table is refused, naming the state and the event."""
    state, event = pair
    with pytest.raises(StateTransitionRefused) as caught:
        next_state(state, event)
    assert caught.value.code == "state-transition-refused"
    assert state.value in caught.value.message


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.FAILED, E.CLAIM),
        (S.EXPIRED, E.CLAIM),
        (S.RECALLED, E.CLAIM),
        (S.DELIVERED, E.TRANSIENT_FAILURE),
        (S.QUEUED, E.RECEIPT),
        (S.RETRYING, E.TRANSIENT_FAILURE),
        (S.FAILED, E.RECALL),
        (S.RECALLED, E.RECALL),
    ],
)
def test_notable_refusals(state: DeliveryState, event: DeliveryEvent) -> None:
    """Given-up entries are never claimed, stale worker reports and double recalls are refused."""
    with pytest.raises(StateTransitionRefused):
        next_state(state, event)


def test_given_up_entries_never_try_again() -> None:
    """No event takes failed, expired, recalled or delivered back to trying."""
    trying = {S.QUEUED, S.SENDING, S.RETRYING}
    for (state, _event), target in TRANSITIONS.items():
        if state in FINAL_STATES:
            assert target not in trying


@pytest.mark.parametrize("state", [S.FAILED, S.EXPIRED])
def test_late_receipt_delivers_and_is_flagged(state: DeliveryState) -> None:
    """A receipt after failure or expiry makes the entry delivered, and is known to be late."""
    assert is_late_receipt(state)
    assert next_state(state, E.RECEIPT) is S.DELIVERED


@pytest.mark.parametrize("state", [S.SENDING, S.RETRYING, S.DELIVERED, S.RECALLED])
def test_timely_receipts_are_not_late(state: DeliveryState) -> None:
    """Receipts while trying, repeated, or after recall are not late receipts."""
    assert not is_late_receipt(state)


# -- retries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [(1, 2), (2, 4), (3, 8), (6, 64), (9, 512), (10, 900), (11, 900), (10_000, 900)],
)
def test_retry_bound_doubles_to_the_cap(attempt: int, seconds: int) -> None:
    """The bound starts at 2 s, doubles each attempt and stops at 15 minutes."""
    assert retry_bound(attempt) == dt.timedelta(seconds=seconds)


def test_retry_bound_never_shrinks() -> None:
    """Each attempt's bound is at least the previous one's."""
    bounds = [retry_bound(a) for a in range(1, 40)]
    assert bounds == sorted(bounds)
    assert bounds[-1] == RETRY_CAP


def test_retry_attempts_start_at_one() -> None:
    """Attempt 0 is a programming error, not a zero delay."""
    with pytest.raises(ValueError, match="starts at 1"):
        retry_bound(0)


@pytest.mark.parametrize(("fraction", "expected"), [(0.0, 0.0), (0.5, 4.0), (0.999, 7.992)])
def test_retry_delay_is_the_drawn_fraction_of_the_bound(fraction: float, expected: float) -> None:
    """Full jitter: the delay is the random fraction of the bound (here attempt 3, 8 s)."""
    delay = retry_delay(3, random=lambda: fraction)
    assert delay.total_seconds() == pytest.approx(expected)


@pytest.mark.parametrize(("fraction", "seconds"), [(-1.0, 0), (1.5, 8)])
def test_retry_delay_clamps_a_bad_random(fraction: float, seconds: int) -> None:
    """A random source outside [0, 1] cannot produce a negative or over-long delay."""
    assert retry_delay(3, random=lambda: fraction) == dt.timedelta(seconds=seconds)


def test_retry_delays_stay_within_zero_and_the_bound() -> None:
    """With a real random source every delay lies in [0, bound] and never passes the cap."""
    source = random.Random(20261121).random
    for attempt in range(1, 30):
        for _ in range(50):
            delay = retry_delay(attempt, random=source)
            assert dt.timedelta(0) <= delay <= retry_bound(attempt) <= RETRY_CAP


def test_next_attempt_before_expiry() -> None:
    """A retry that falls before expiry is scheduled at now plus the delay."""
    at = next_attempt_at(NOW, 2, NOW + dt.timedelta(hours=1), lambda: 0.5)
    assert at == NOW + dt.timedelta(seconds=2)


@pytest.mark.parametrize("expires_in", [dt.timedelta(seconds=2), dt.timedelta(seconds=1)])
def test_no_next_attempt_at_or_past_expiry(expires_in: dt.timedelta) -> None:
    """If the next try would be at or after expiry there is none: the entry expires."""
    assert next_attempt_at(NOW, 2, NOW + expires_in, lambda: 0.5) is None


def test_no_next_attempt_once_expired() -> None:
    """Even a zero delay gives no attempt once the envelope has expired."""
    assert next_attempt_at(NOW, 1, NOW, lambda: 0.0) is None
