"""The life of a statement of compliance, as one table, and who may move it.

Rules this module keeps:

* Every state a statement can be in and every step between states is a row of
  :data:`TRANSITIONS`, together with the one role allowed to take that step.
  Nothing else in gcx moves a statement: the use cases ask :func:`advance`.
* Separation of duties: nobody signs off, assesses or approves their own
  work. :func:`check_separation` is given who did the earlier steps and
  refuses anyone among them.
* ``approved``, ``rejected``, ``withdrawn``, ``superseded`` and ``abandoned``
  are final. A renewal is a new statement (a copy), never a step back.

The life of one statement::

    draft ──request-sign-off──▶ awaiting-sign-off ──sign-off──▶ submitted
      ▲  ◀──decline-sign-off──┘                                   │ start-assessment
      │                                                           ▼
    changes-requested ◀──────return──────────────────────── under-assessment
      │                 ◀──return (operator)── assessed ◀──complete──┘
      └──request-sign-off──▶ …                 │  │
                                      approve ─┘  └─ reject
                                         ▼            ▼
                     withdrawn ◀─withdraw─ approved ─supersede─▶ superseded
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from gcx.errors import RoleRequired, SeparationOfDuties, StateTransitionRefused


class Role(StrEnum):
    """Roles in the Code of Connection workflow.

    ``security-officer`` and ``sign-off`` belong to people of one organisation;
    ``assessor`` and ``operator`` to the network's own staff.
    """

    SECURITY_OFFICER = "security-officer"
    SIGN_OFF = "sign-off"
    ASSESSOR = "assessor"
    OPERATOR = "operator"


ORGANISATION_ROLES = frozenset({Role.SECURITY_OFFICER, Role.SIGN_OFF})
CENTRAL_ROLES = frozenset({Role.ASSESSOR, Role.OPERATOR})


class StatementState(StrEnum):
    DRAFT = "draft"
    AWAITING_SIGN_OFF = "awaiting-sign-off"
    SUBMITTED = "submitted"
    UNDER_ASSESSMENT = "under-assessment"
    CHANGES_REQUESTED = "changes-requested"
    ASSESSED = "assessed"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    SUPERSEDED = "superseded"
    ABANDONED = "abandoned"


class StatementEvent(StrEnum):
    REQUEST_SIGN_OFF = "request-sign-off"
    DECLINE_SIGN_OFF = "decline-sign-off"
    SIGN_OFF = "sign-off"
    START_ASSESSMENT = "start-assessment"
    RETURN = "return"
    COMPLETE_ASSESSMENT = "complete-assessment"
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    SUPERSEDE = "supersede"
    ABANDON = "abandon"


@dataclass(frozen=True)
class Transition:
    to: StatementState
    role: Role | None  # None: taken by central itself, never by a person


S, E, R = StatementState, StatementEvent, Role

TRANSITIONS: dict[tuple[StatementState, StatementEvent], Transition] = {
    (S.DRAFT, E.REQUEST_SIGN_OFF): Transition(S.AWAITING_SIGN_OFF, R.SECURITY_OFFICER),
    (S.DRAFT, E.ABANDON): Transition(S.ABANDONED, R.SECURITY_OFFICER),
    (S.AWAITING_SIGN_OFF, E.SIGN_OFF): Transition(S.SUBMITTED, R.SIGN_OFF),
    (S.AWAITING_SIGN_OFF, E.DECLINE_SIGN_OFF): Transition(S.DRAFT, R.SIGN_OFF),
    (S.SUBMITTED, E.START_ASSESSMENT): Transition(S.UNDER_ASSESSMENT, R.ASSESSOR),
    (S.UNDER_ASSESSMENT, E.RETURN): Transition(S.CHANGES_REQUESTED, R.ASSESSOR),
    (S.UNDER_ASSESSMENT, E.COMPLETE_ASSESSMENT): Transition(S.ASSESSED, R.ASSESSOR),
    (S.CHANGES_REQUESTED, E.REQUEST_SIGN_OFF): Transition(S.AWAITING_SIGN_OFF, R.SECURITY_OFFICER),
    (S.CHANGES_REQUESTED, E.ABANDON): Transition(S.ABANDONED, R.SECURITY_OFFICER),
    (S.ASSESSED, E.APPROVE): Transition(S.APPROVED, R.OPERATOR),
    (S.ASSESSED, E.REJECT): Transition(S.REJECTED, R.OPERATOR),
    (S.ASSESSED, E.RETURN): Transition(S.CHANGES_REQUESTED, R.OPERATOR),
    (S.APPROVED, E.WITHDRAW): Transition(S.WITHDRAWN, R.OPERATOR),
    (S.APPROVED, E.SUPERSEDE): Transition(S.SUPERSEDED, None),
}

# The organisation may change answers and evidence only in these states.
EDITABLE = frozenset({S.DRAFT, S.CHANGES_REQUESTED})
# A second, consistency-only assessment may be recorded in these states.
SECOND_ASSESSABLE = frozenset({S.UNDER_ASSESSMENT, S.ASSESSED, S.APPROVED})
# States that still await a decision (one such statement per organisation).
OPEN = frozenset(
    {S.DRAFT, S.AWAITING_SIGN_OFF, S.SUBMITTED, S.UNDER_ASSESSMENT, S.CHANGES_REQUESTED, S.ASSESSED}
)
FINAL = frozenset(set(S) - OPEN - {S.APPROVED})


def require_step_role(event: StatementEvent, roles: Iterable[str]) -> None:
    """Refuse someone who holds no role that takes ``event`` from any state.

    Who may take a step does not depend on the state, so a person without the
    role hears that first, whatever state the statement is in, and before
    anything they sent is read (the API calls this ahead of the body).
    """
    allowed = {t.role for (_, e), t in TRANSITIONS.items() if e is event and t.role is not None}
    if allowed and not {r.value for r in allowed} & set(roles):
        needed = " or ".join(sorted(r.value for r in allowed))
        raise RoleRequired(f"The step {event.value!r} needs the {needed} role.", role=needed)


def advance(state: StatementState, event: StatementEvent, roles: Iterable[str]) -> StatementState:
    """The state after ``event``, if it is allowed from ``state`` for someone with ``roles``."""
    held = set(roles)
    require_step_role(event, held)
    transition = TRANSITIONS.get((state, event))
    if transition is None or transition.role is None:
        raise StateTransitionRefused(
            f"A statement that is {state.value} cannot take the step {event.value!r}.",
            state=state.value,
            step=event.value,
        )
    if transition.role.value not in held:
        raise RoleRequired(
            f"The step {event.value!r} needs the {transition.role.value} role here.",
            role=transition.role.value,
        )
    return transition.to


def system_advance(state: StatementState, event: StatementEvent) -> StatementState:
    """A step central takes itself (superseding), still only along the table."""
    transition = TRANSITIONS.get((state, event))
    if transition is None or transition.role is not None:
        raise StateTransitionRefused(
            f"A statement that is {state.value} cannot take the step {event.value!r}."
        )
    return transition.to


def check_separation(actor: str, earlier: Iterable[str | None], step: str) -> None:
    """Refuse ``actor`` if they did any earlier step of the same statement.

    People are compared by account name, which is one namespace across
    central's operators and compliance accounts: an assessor account named
    like an operator is the same person.
    """
    if actor in {name for name in earlier if name}:
        raise SeparationOfDuties(
            f"{actor} took part in an earlier step of this statement and so may not {step} it; "
            "another person must.",
            step=step,
        )
