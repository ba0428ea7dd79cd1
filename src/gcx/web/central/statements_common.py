"""What the Code of Connection pages share: loading a statement, grouping, labels.

A statement page shows one statement together with the catalogue version it
was written against (not the current one: a statement keeps its catalogue
for life), so every page loads both through :func:`load_statement`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gcx.central.compliance import ComplianceService
from gcx.compliance.catalogue import Area, Catalogue, Control
from gcx.compliance.statement import EDITABLE, StatementState
from gcx.errors import GcxError
from gcx.httpapi import run_sync
from gcx.web.central import CENTRAL, COMPLIANCE, principal_of
from gcx.web.words import day, moment

# Statements of compliance describe an organisation's controls, not the data it
# exchanges; nothing in the catalogue or a statement carries a higher marking,
# so every Code of Connection page is OFFICIAL.
MARKING = "OFFICIAL"

# Words for the states of :data:`gcx.compliance.statement.TRANSITIONS`, and the
# Design System tag colour for each.
STATE_LABELS: dict[str, tuple[str, str]] = {
    "draft": ("Draft", "govuk-tag--grey"),
    "awaiting-sign-off": ("Awaiting sign-off", "govuk-tag--yellow"),
    "submitted": ("Submitted for assessment", "govuk-tag--blue"),
    "under-assessment": ("Under assessment", "govuk-tag--light-blue"),
    "changes-requested": ("Changes requested", "govuk-tag--orange"),
    "assessed": ("Assessed", "govuk-tag--purple"),
    "approved": ("Approved", "govuk-tag--green"),
    "rejected": ("Rejected", "govuk-tag--red"),
    "withdrawn": ("Withdrawn", "govuk-tag--red"),
    "superseded": ("Superseded", "govuk-tag--grey"),
    "abandoned": ("Abandoned", "govuk-tag--grey"),
}

# Words for each step in a statement's history (``create`` and the events of
# :class:`gcx.compliance.statement.StatementEvent`).
STEP_LABELS: dict[str, str] = {
    "create": "Started",
    "request-sign-off": "Sent for sign-off",
    "decline-sign-off": "Sign-off declined",
    "sign-off": "Signed off and submitted",
    "start-assessment": "Assessment started",
    "return": "Sent back for changes",
    "complete-assessment": "Assessment completed",
    "approve": "Approved",
    "reject": "Rejected",
    "withdraw": "Withdrawn",
    "supersede": "Replaced by a newer statement",
    "abandon": "Abandoned",
}

RESULT_LABELS: dict[str, str] = {
    "compliant": "Met (compliant)",
    "partially-compliant": "Partly met (partially compliant)",
    "non-compliant": "Not met (non-compliant)",
    "not-applicable": "Not applicable",
}


def service(request: web.Request) -> ComplianceService:
    return request.app[COMPLIANCE]


def state_tag(state: str) -> dict[str, str]:
    text, colour = STATE_LABELS.get(
        state, (state.replace("-", " ").capitalize(), "govuk-tag--grey")
    )
    return {"text": text, "classes": colour}


def state_words(state: str) -> str:
    return state_tag(state)["text"]


def step_words(step: str) -> str:
    return STEP_LABELS.get(step, step.replace("-", " ").capitalize())


def statement_name(summary: dict[str, Any], names: dict[str, str]) -> str:
    """How people name a statement: whose it is and when it was started, never its id.

    ``names`` maps organisation codes to their names; a code without one is shown as is.
    """
    whose = names.get(summary["organisation"], summary["organisation"])
    kind = "renewal" if summary.get("renewal_of") else "statement"
    return f"{whose} {kind} started {day(summary['created_at'])}"


def organisation_names(request: web.Request) -> dict[str, str]:
    """Every member organisation's name by its code (for naming statements)."""
    return {o["code"]: o["name"] for o in request.app[CENTRAL].list_organisations()}


def history_rows(view: dict[str, Any]) -> list[dict[str, str]]:
    """A statement's history in words: when, who, what happened, and where it left it."""
    return [
        {
            "when": moment(entry["at"]),
            "who": str(entry["by"]).split(":", 1)[-1],
            "step": step_words(entry["step"]),
            "state": state_words(entry["state"]),
        }
        for entry in view["history"]
    ]


@dataclass(frozen=True)
class Loaded:
    """A statement as the API shows it, with its catalogue."""

    view: dict[str, Any]
    catalogue: Catalogue
    # How people name it: whose it is and when it was started (see statement_name).
    name: str
    # A renewal's previous statement's answers, to show what changed since (else empty).
    previous_answers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def changed_since_last_year(self, control_id: str) -> bool:
        """Whether a renewal's answer to ``control_id`` differs from last year's."""
        if not self.view.get("renewal_of"):
            return False
        now, before = self.answers.get(control_id), self.previous_answers.get(control_id)
        if now is None or before is None:
            return now is not before
        return any(now.get(k) != before.get(k) for k in ("answer", "choice", "plan", "plan_target"))

    @property
    def id(self) -> str:
        return str(self.view["id"])

    @property
    def state(self) -> str:
        return str(self.view["state"])

    @property
    def editable(self) -> bool:
        return StatementState(self.state) in EDITABLE

    @property
    def answers(self) -> dict[str, dict[str, Any]]:
        return dict(self.view["answers"])

    def areas(self) -> list[tuple[Area, list[Control]]]:
        return [
            (area, [c for c in self.catalogue.controls if c.area == area.id])
            for area in self.catalogue.areas
        ]

    def control_done(self, control_id: str) -> bool:
        answer = self.answers.get(control_id)
        control = self.catalogue.control(control_id)
        if answer is None or answer["needs_reconfirmation"]:
            return False
        return control is None or control.answered_by(answer)

    def next_to_answer(self, after: str) -> str | None:
        """The next control (in catalogue order, wrapping round) that still needs an answer."""
        ids = list(self.catalogue.control_ids)
        start = ids.index(after) + 1 if after in ids else 0
        for control_id in ids[start:] + ids[:start]:
            if control_id != after and not self.control_done(control_id):
                return control_id
        return None

    def evidence_for(self, control_id: str) -> list[dict[str, Any]]:
        return [e for e in self.view["evidence"] if control_id in e["controls"]]

    def change_requests(self) -> list[dict[str, str]]:
        """What the assessor asked to change, from the latest assessment sent back."""
        returned = [a for a in self.view["assessments"] if a["state"] == "returned"]
        return list(returned[-1]["change_requests"]) if returned else []

    def primary_assessment(self) -> dict[str, Any] | None:
        """The assessment of record (ordinal 1) that has not been sent back."""
        return next(
            (
                a
                for a in reversed(self.view["assessments"])
                if a["ordinal"] == 1 and a["state"] != "returned"
            ),
            None,
        )


async def load_statement(request: web.Request, statement_id: str) -> Loaded:
    svc = service(request)
    view = await run_sync(svc.statement, principal_of(request), statement_id)
    catalogue = await run_sync(svc.catalogue, view["catalogue_version"])
    names = await run_sync(organisation_names, request)
    previous: dict[str, dict[str, Any]] = {}
    if view.get("renewal_of"):
        try:
            earlier = await run_sync(svc.statement, principal_of(request), view["renewal_of"])
            previous = dict(earlier["answers"])
        except GcxError:
            previous = {}  # not readable by this person: nothing is marked as changed
    # Pages name the organisation; its code is only secondary text beside the name.
    view = {**view, "organisation_name": names.get(view["organisation"], view["organisation"])}
    return Loaded(view, catalogue, statement_name(view, names), previous)


def choice_label(control: Control, value: str | None) -> str | None:
    if value is None or control.choices is None:
        return None
    return next((o.label for o in control.choices.options if o.value == value), value)
