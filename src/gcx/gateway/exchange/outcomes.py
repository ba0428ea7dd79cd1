"""Recording how a try at an outbox row ended, the same way for every kind.

A carrier that handed its row over calls :meth:`Outcomes.delivered`; one
that could not calls :meth:`Outcomes.failed`
with the reason and whether it is final. A final refusal ends the row
``failed``; anything else waits with exponential backoff and full jitter
(:func:`gcx.protocol.delivery.next_attempt_at`) and ends it ``expired`` once
the next try would come after the subject's expiry. Each outcome is one short
transaction with its audit entry; a carrier that must settle its subject in
that same transaction (a transfer is finished when its last row ends) passes
``then``.

Audit actions are ``<prefix>.failed``, ``<prefix>.expired`` and
``<prefix>.retrying``, where the prefix is ``delivery`` for envelopes (their
historic names) and the kind for everything else, so an alert says what it
was that did not arrive.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from gcx import audit
from gcx.errors import GcxError
from gcx.gateway.exchange import outbox
from gcx.gateway.runtime import Gateway
from gcx.protocol.delivery import DeliveryEvent, next_attempt_at
from gcx.store import iso

# Runs inside the transaction that ended a row, with the row and its new state.
Settle = Callable[[Connection, outbox.OutboxEntry, str], None]

# Refusals that will not change if the same bytes are offered again, whatever the
# kind: the receiver judged the thing itself (its form, signature, times, size),
# not its own state at the moment.
FINAL_CODES = frozenset(
    {
        "envelope-malformed",
        "envelope-replayed",
        "envelope-expired",
        "envelope-from-future",
        "signature-invalid",
        "kind-not-supported",
        "input-invalid",
        "transfer-refused",
        "transfer-unreadable",
        "quota-exceeded",
        "peer-refused",
    }
)
# Refusals that say "not now": the receiver may be able to take it later.
PASSING_CODES = frozenset({"storage-full", "rate-limited", "peer-timeout", "peer-unreachable"})
# 4xx statuses that mean "try later" rather than "never".
_PASSING_STATUSES = frozenset({408, 409, 425, 429})


def is_final_refusal(code: str, status: int | None = None) -> bool:
    """Whether a peer's refusal (its code, and HTTP status if there was one) is for good.

    The one judgement every carrier uses. A code says more than a status, so
    it decides when it is known either way; otherwise a 4xx is final except
    the "try later" ones, and anything else (5xx, no status) is tried again
    until the work expires.
    """
    if code in PASSING_CODES:
        return False
    if code in FINAL_CODES:
        return True
    return status is not None and 400 <= status < 500 and status not in _PASSING_STATUSES


def action_prefix(kind: str) -> str:
    return "delivery" if kind == outbox.MESSAGE else kind


def _audit(
    conn: Connection, entry: outbox.OutboxEntry, action: str, now: dt.datetime, details: Any
) -> None:
    audit.append(
        conn, actor="delivery", action=action, subject=entry.subject_id, now=now, details=details
    )


class Outcomes:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._random = random.SystemRandom().random

    def delivered(self, entry: outbox.OutboxEntry, action: str, details: dict[str, Any]) -> bool:
        """Record a row handed over, with its audit entry ``action``; False if it was not
        ours to end (another worker took it after our lease lapsed and ended it)."""
        now = self.gateway.clock.now()
        with self.gateway.db.transaction() as conn:
            if outbox.state_of(conn, entry.id) != "sending":
                return False
            outbox.transition(conn, entry.id, DeliveryEvent.RECEIPT, now=now)
            _audit(conn, entry, action, now, details)
        return True

    def failed_all(
        self, entries: Sequence[outbox.OutboxEntry], error: GcxError, permanent: bool = False
    ) -> None:
        for entry in entries:
            self.failed(entry, error, permanent=permanent)

    def failed(
        self,
        entry: outbox.OutboxEntry,
        error: GcxError | dict[str, Any],
        *,
        permanent: bool,
        then: Settle | None = None,
    ) -> str | None:
        """Record one failed try; returns the row's new state (None if it was not ours)."""
        gateway = self.gateway
        now = gateway.clock.now()
        body = error.to_dict() if isinstance(error, GcxError) else error
        code, message = str(body.get("code")), str(body.get("message"))
        prefix = action_prefix(entry.kind)
        details: dict[str, Any] = {"gateway": entry.peer_gateway, "code": code}
        with gateway.db.transaction() as conn:
            if outbox.state_of(conn, entry.id) != "sending":
                # Another worker took the row after our lease lapsed and ended it.
                return None
            retry_at = (
                None
                if permanent
                else next_attempt_at(now, max(entry.attempts, 1), entry.expires_at, self._random)
            )
            if permanent or retry_at is None:
                event = DeliveryEvent.PERMANENT_REFUSAL if permanent else DeliveryEvent.EXPIRE
                state = outbox.transition(
                    conn, entry.id, event, now=now, error_code=code, error=message
                )
                action = f"{prefix}.{'failed' if permanent else 'expired'}"
                details.update(message=message, alert=True)
            else:
                state = outbox.transition(
                    conn,
                    entry.id,
                    DeliveryEvent.TRANSIENT_FAILURE,
                    now=now,
                    next_attempt_at=retry_at,
                    error_code=code,
                    error=message,
                )
                action = f"{prefix}.retrying"
                details.update(attempts=entry.attempts, next=iso(retry_at))
            _audit(conn, entry, action, now, details)
            if then is not None and state is not None:
                then(conn, entry, state)
        return state
