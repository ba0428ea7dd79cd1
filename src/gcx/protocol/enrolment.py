"""The enrolment lifecycle of a gateway, as one table.

A gateway asks to join (``pending``); an operator approves (``active``: its
certificates are issued and it enters the directory) or rejects it
(``rejected``); an active gateway can be revoked (``revoked``: its certificate
goes into the directory's revocations and peers refuse it). ``rejected`` and
``revoked`` are final: a gateway that wants back in enrols again with new keys.
"""

from __future__ import annotations

from enum import StrEnum

from gcx.errors import StateTransitionRefused


class EnrolmentState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"
    REVOKED = "revoked"


class EnrolmentEvent(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REVOKE = "revoke"


TRANSITIONS: dict[tuple[EnrolmentState, EnrolmentEvent], EnrolmentState] = {
    (EnrolmentState.PENDING, EnrolmentEvent.APPROVE): EnrolmentState.ACTIVE,
    (EnrolmentState.PENDING, EnrolmentEvent.REJECT): EnrolmentState.REJECTED,
    (EnrolmentState.ACTIVE, EnrolmentEvent.REVOKE): EnrolmentState.REVOKED,
}

# States in which an enrolment holds its gateway name and organisations, so a
# second request for them is a duplicate.
HOLDING_STATES = frozenset({EnrolmentState.PENDING, EnrolmentState.ACTIVE})


def next_state(state: EnrolmentState, event: EnrolmentEvent) -> EnrolmentState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise StateTransitionRefused(
            f"An enrolment that is {state.value} cannot be {event.value}d."
        ) from None


def key_binding_message(
    csr_pem: bytes, organisation: str, signing_key_b64: str, encryption_key_b64: str
) -> bytes:
    """What a gateway signs with an organisation's signing key when it enrols.

    The signature proves it holds that key, and binds the organisation's
    encryption key and this very enrolment request to it, so neither can be
    swapped in transit.
    """
    return b"\n".join(
        [
            b"gcx-key-binding/1",
            organisation.encode(),
            signing_key_b64.encode(),
            encryption_key_b64.encode(),
            csr_pem.strip(),
        ]
    )
