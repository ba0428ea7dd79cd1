"""The one lifecycle of every outbox entry, as one table, and when to try again.

An outbox entry is one piece of work on its way to one receiving gateway,
whatever its kind: an envelope, a bulk transfer, or a control document (a
read receipt, a recall). Every kind follows this one lifecycle; ``recall``
applies to envelopes only, and ``delivered`` means whatever the kind's proof
is (an envelope's or a transfer's signed receipts, a control document's
acceptance). Its state changes only through :func:`next_state`, which reads
:data:`TRANSITIONS`; a pair missing from the table is refused with
:class:`StateTransitionRefused`.

States:

* ``queued``: written with the envelope and its audit entry, not yet tried.
* ``sending``: a worker has claimed it under a lease and is trying now.
* ``retrying``: the last try failed for a reason that may pass (peer down,
  timeout, 5xx); it waits until its next attempt time.
* ``delivered``: the signed receipts accepting it are held, one for each
  recipient organisation the entry carries (they come back together, in the
  response to one try). They are the proof.
* ``failed``: the receiving side refused it for good (a 4xx or a signed
  refusal receipt); the refusal is kept as the reason.
* ``expired``: the envelope's expiry came before any try succeeded; the last
  transient reason is kept. To a person this is also a failure, with an
  alert entry, but it is told apart because the cure differs (the peer was
  unreachable, not unwilling).
* ``recalled``: the sender withdrew it.

Rules:

1. ``claim`` takes ``queued`` or due ``retrying`` entries to ``sending``. It
   also takes ``sending`` to ``sending``: only an entry whose lease has
   lapsed (its worker died) is claimed again, and the caller checks the
   lease. Sending twice is safe because receivers eliminate duplicates by
   envelope id. Entries are claimed straight from ``retrying`` when due,
   rather than moved back to ``queued`` first: the due time is a column the
   claim query already filters on, and the extra write would buy nothing.
2. ``receipt`` (a signed receipt with outcome ``accepted``) always leads to
   ``delivered`` from any state except ``queued`` (nothing was sent, so a
   receipt for it is refused) and ``recalled`` (rule 3), and
   repeats are harmless (an idempotent worker may record it twice).
   In particular a **late receipt** for an entry already ``failed`` or
   ``expired`` moves it to ``delivered``: the receipt is signed proof that
   the recipient holds the envelope, and the state must say what is true
   now. The earlier failure is not lost; it stays in the audit log and the
   entry's last error, and :func:`is_late_receipt` tells the caller to flag
   the receipt as late and clear the alert. (Keeping ``failed`` beside a
   receipt would leave every reader to reconcile two contradicting facts.)
3. A receipt for a ``recalled`` entry is recorded and the entry stays
   ``recalled``: the sender's decision stands, and the held receipt tells
   the caller that the recall must be carried to the recipient's gateway.
4. ``transient_failure`` and ``permanent_refusal`` come only from
   ``sending``: they are outcomes of a try. A signed receipt with outcome
   ``refused`` is a ``permanent_refusal``. When :func:`next_attempt_at`
   returns None after a transient failure, the caller sends ``expire``
   instead of ``transient_failure``.
5. ``expire`` ends ``queued``, ``sending`` (a lapsed lease past expiry) and
   ``retrying`` entries. ``recall`` ends any entry not yet ended, and also a
   ``delivered`` one (the recall then travels to the recipient's gateway,
   which refuses it if the message was read).
6. ``failed``, ``expired`` and ``recalled`` never go back to trying.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import StrEnum

from gcx.errors import StateTransitionRefused


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    RECALLED = "recalled"


class DeliveryEvent(StrEnum):
    CLAIM = "claim"
    RECEIPT = "receipt"
    TRANSIENT_FAILURE = "transient_failure"
    PERMANENT_REFUSAL = "permanent_refusal"
    EXPIRE = "expire"
    RECALL = "recall"


_S = DeliveryState
_E = DeliveryEvent

TRANSITIONS: dict[tuple[DeliveryState, DeliveryEvent], DeliveryState] = {
    (_S.QUEUED, _E.CLAIM): _S.SENDING,
    (_S.QUEUED, _E.EXPIRE): _S.EXPIRED,
    (_S.QUEUED, _E.RECALL): _S.RECALLED,
    (_S.SENDING, _E.CLAIM): _S.SENDING,
    (_S.SENDING, _E.RECEIPT): _S.DELIVERED,
    (_S.SENDING, _E.TRANSIENT_FAILURE): _S.RETRYING,
    (_S.SENDING, _E.PERMANENT_REFUSAL): _S.FAILED,
    (_S.SENDING, _E.EXPIRE): _S.EXPIRED,
    (_S.SENDING, _E.RECALL): _S.RECALLED,
    (_S.RETRYING, _E.CLAIM): _S.SENDING,
    (_S.RETRYING, _E.RECEIPT): _S.DELIVERED,
    (_S.RETRYING, _E.EXPIRE): _S.EXPIRED,
    (_S.RETRYING, _E.RECALL): _S.RECALLED,
    (_S.DELIVERED, _E.RECEIPT): _S.DELIVERED,
    (_S.DELIVERED, _E.RECALL): _S.RECALLED,
    (_S.FAILED, _E.RECEIPT): _S.DELIVERED,
    (_S.EXPIRED, _E.RECEIPT): _S.DELIVERED,
    (_S.RECALLED, _E.RECEIPT): _S.RECALLED,
}

# Entries a worker may claim (``sending`` only once its lease has lapsed).
CLAIMABLE_STATES = frozenset({_S.QUEUED, _S.RETRYING, _S.SENDING})
# Entries that will never be tried again.
FINAL_STATES = frozenset({_S.DELIVERED, _S.FAILED, _S.EXPIRED, _S.RECALLED})
# A receipt arriving in one of these states is late: flag it, clear the alert.
LATE_RECEIPT_STATES = frozenset({_S.FAILED, _S.EXPIRED})


def next_state(state: DeliveryState, event: DeliveryEvent) -> DeliveryState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise StateTransitionRefused(
            f"A delivery that is {state.value} cannot take the event "
            f"{event.value.replace('_', ' ')}."
        ) from None


def is_late_receipt(state: DeliveryState) -> bool:
    """True if a receipt arriving now comes after the entry was given up."""
    return state in LATE_RECEIPT_STATES


# -- retries ----------------------------------------------------------------------
#
# Exponential backoff with "full jitter" (AWS Architecture Blog, 2015): the
# delay is uniform between zero and a bound that doubles with each attempt,
# up to a cap. Spreading retries over the whole interval keeps many senders
# whose peer came back at once from retrying in lock-step.

RETRY_BASE = dt.timedelta(seconds=2)
RETRY_CAP = dt.timedelta(minutes=15)
# 2 s * 2**9 = 1,024 s is already past the cap; larger exponents are not computed.
_MAX_DOUBLINGS = 9


def retry_bound(attempt: int) -> dt.timedelta:
    """The longest wait after ``attempt`` failed tries (1 for the first failure)."""
    if attempt < 1:
        raise ValueError("attempt counts failed tries and starts at 1")
    return min(RETRY_CAP, RETRY_BASE * (1 << min(attempt - 1, _MAX_DOUBLINGS)))


def retry_delay(attempt: int, *, random: Callable[[], float]) -> dt.timedelta:
    """How long to wait after ``attempt`` failed tries: uniform in [0, retry_bound].

    ``random`` returns a float in [0, 1) (``random.random`` in production, a
    constant in tests); values outside that range are clamped.
    """
    fraction = min(max(random(), 0.0), 1.0)
    return retry_bound(attempt) * fraction


def next_attempt_at(
    now: dt.datetime,
    attempt: int,
    expires_at: dt.datetime,
    random: Callable[[], float],
) -> dt.datetime | None:
    """When to try again, or None if that would be at or past the envelope's expiry.

    None means give up now: the receiver would refuse the envelope as expired,
    so the entry should ``expire`` with its last reason rather than wait.
    """
    at = now + retry_delay(attempt, random=random)
    return at if at < expires_at else None
