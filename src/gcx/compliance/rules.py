"""Pure decisions of the Code of Connection: verdicts, consistency, extensions, reminders, standing.

Every function takes ``now`` (or the facts it needs) as an argument and reads
no clock, no database and no network, so each rule is tested on its own.

* The **verdict rule** is versioned: an assessment records the rule it was
  computed by, and a later change of rule is a new entry in
  :data:`VERDICT_RULES`, never an edit of an old one.
* **Consistency** across assessors is measured with Cohen's kappa, which
  discounts the agreement two assessors would reach by chance.
* An organisation's **standing** says whether it may be connected now: with
  a current certificate, under a granted extension, inside the grace period
  after expiry, or lapsed or withdrawn (then it leaves the directory).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gcx.compliance.catalogue import Catalogue, Level, Result
from gcx.errors import ExtensionTooLong, InputError

# -- the verdict -------------------------------------------------------------

VERDICT_RULE = "gcx-verdict/1"


class Outcome(StrEnum):
    MEETS = "meets"
    DOES_NOT_MEET = "does-not-meet"


@dataclass(frozen=True)
class Shortfall:
    control: str
    level: str
    result: str
    why: str

    def to_dict(self) -> dict[str, str]:
        return {
            "control": self.control,
            "level": self.level,
            "result": self.result,
            "why": self.why,
        }


@dataclass(frozen=True)
class Verdict:
    rule: str
    outcome: Outcome
    shortfalls: tuple[Shortfall, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "outcome": self.outcome.value,
            "shortfalls": [s.to_dict() for s in self.shortfalls],
        }


_MET = frozenset({Result.COMPLIANT, Result.NOT_APPLICABLE})


def _verdict_v1(
    catalogue: Catalogue,
    results: Mapping[str, Result],
    plan_targets: Mapping[str, dt.date | None],
    now: dt.datetime,
) -> Verdict:
    """Rule 1: every MUST met; every SHOULD met or covered by a plan whose date is not past.

    "Met" is compliant or not applicable. A partially compliant or
    non-compliant SHOULD control is "working towards" only while its plan's
    target date is today or later.
    """
    shortfalls: list[Shortfall] = []
    today = now.date()
    for control in catalogue.controls:
        result = results.get(control.id)
        if result is None:
            shortfalls.append(Shortfall(control.id, control.level, "none", "no result recorded"))
            continue
        if result in _MET:
            continue
        if control.level is Level.MUST:
            shortfalls.append(
                Shortfall(control.id, control.level, result, "a MUST control is not met")
            )
            continue
        target = plan_targets.get(control.id)
        if target is None:
            shortfalls.append(
                Shortfall(control.id, control.level, result, "a SHOULD control has no plan")
            )
        elif target < today:
            shortfalls.append(
                Shortfall(
                    control.id,
                    control.level,
                    result,
                    f"the plan's target date, {target:%-d %B %Y}, has passed",
                )
            )
    outcome = Outcome.DOES_NOT_MEET if shortfalls else Outcome.MEETS
    return Verdict(VERDICT_RULE, outcome, tuple(shortfalls))


VerdictRule = Callable[
    [Catalogue, Mapping[str, Result], Mapping[str, "dt.date | None"], dt.datetime], Verdict
]
VERDICT_RULES: dict[str, VerdictRule] = {VERDICT_RULE: _verdict_v1}


def compute_verdict(
    catalogue: Catalogue,
    results: Mapping[str, Result],
    plan_targets: Mapping[str, dt.date | None],
    now: dt.datetime,
    *,
    rule: str = VERDICT_RULE,
) -> Verdict:
    try:
        function = VERDICT_RULES[rule]
    except KeyError:
        raise InputError(f"There is no verdict rule named {rule[:40]!r}.") from None
    return function(catalogue, results, plan_targets, now)


def missing_results(catalogue: Catalogue, results: Mapping[str, Result]) -> list[str]:
    return [c for c in catalogue.control_ids if c not in results]


# -- consistency between assessors ---------------------------------------------


def cohens_kappa(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Cohen's kappa for two raters' labels of the same items.

    kappa = (p_o - p_e) / (1 - p_e), where p_o is the share of items the two
    agree on and p_e the agreement expected by chance from each rater's own
    label frequencies. None when there are no items; 1.0 when both raters
    used one and the same label throughout (agreement is perfect and chance
    cannot be separated from it).
    """
    items = list(pairs)
    if not items:
        return None
    n = len(items)
    observed = sum(1 for a, b in items if a == b) / n
    first = Counter(a for a, _ in items)
    second = Counter(b for _, b in items)
    expected = sum(first[label] * second[label] for label in first) / (n * n)
    if expected >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)


@dataclass(frozen=True)
class PairedResult:
    """Two assessors' results for one control of one statement."""

    statement: str
    control: str
    first: str
    second: str


@dataclass(frozen=True)
class ControlAgreement:
    control: str
    items: int
    agreement: float
    kappa: float | None
    disagreements: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "control": self.control,
            "items": self.items,
            "agreement": round(self.agreement, 4),
            "kappa": None if self.kappa is None else round(self.kappa, 4),
            "disagreements": self.disagreements,
        }


def consistency_report(pairs: Iterable[PairedResult], *, worst: int = 10) -> dict[str, Any]:
    """Agreement per control and overall, Cohen's kappa, and where assessors split most."""
    rows = list(pairs)
    by_control: dict[str, list[PairedResult]] = defaultdict(list)
    for row in rows:
        by_control[row.control].append(row)
    per_control = []
    for control, items in sorted(by_control.items()):
        agree = sum(1 for r in items if r.first == r.second)
        splits = Counter(f"{r.first} / {r.second}" for r in items if r.first != r.second)
        per_control.append(
            ControlAgreement(
                control,
                len(items),
                agree / len(items),
                cohens_kappa((r.first, r.second) for r in items),
                dict(splits.most_common()),
            )
        )
    overall_agreement = (sum(1 for r in rows if r.first == r.second) / len(rows)) if rows else None
    overall_kappa = cohens_kappa((r.first, r.second) for r in rows)
    ranked = sorted(
        (c for c in per_control if c.agreement < 1.0), key=lambda c: (c.agreement, c.control)
    )
    return {
        "statements": len({r.statement for r in rows}),
        "paired_results": len(rows),
        "overall": {
            "agreement": None if overall_agreement is None else round(overall_agreement, 4),
            "kappa": None if overall_kappa is None else round(overall_kappa, 4),
        },
        "controls": [c.to_dict() for c in per_control],
        "most_disagreed": [c.to_dict() for c in ranked[:worst]],
    }


# -- extensions -------------------------------------------------------------------


def check_extension_request(
    requested_until: dt.datetime,
    *,
    current_expiry: dt.datetime | None,
    now: dt.datetime,
    max_days: int,
) -> None:
    """Refuse an extension that is already past or runs beyond the allowed maximum.

    The maximum counts from the current certificate's expiry if it has one
    that has not yet passed, otherwise from now.
    """
    if requested_until <= now:
        raise InputError("The extension's end date must be in the future.")
    base = current_expiry if current_expiry is not None and current_expiry > now else now
    limit = base + dt.timedelta(days=max_days)
    if requested_until > limit:
        raise ExtensionTooLong(
            f"The extension asked for runs to {requested_until.date().isoformat()}, past the "
            f"longest allowed ({max_days} days, to {limit.date().isoformat()}).",
            max_days=max_days,
            latest=limit.isoformat(),
        )


# -- reminders --------------------------------------------------------------------

REMINDER_DAYS: tuple[int, ...] = (60, 30, 7, 1)


@dataclass(frozen=True)
class ReminderDecision:
    """Which reminder to send now, and which earlier ones to mark as passed unsent."""

    send: int | None
    skip: tuple[int, ...] = ()


def due_reminder(
    expires_at: dt.datetime, now: dt.datetime, already: Iterable[int]
) -> ReminderDecision:
    """The reminder due at ``now`` for a certificate expiring at ``expires_at``.

    A reminder at N days is due once fewer than N days remain. If several are
    due at once (central was down, or a short certificate was issued) only the
    most urgent is sent and the others are marked as passed, so nobody gets a
    "60 days left" after a "7 days left".
    """
    if now >= expires_at:
        return ReminderDecision(None)
    done = set(already)
    due = [d for d in REMINDER_DAYS if now >= expires_at - dt.timedelta(days=d) and d not in done]
    if not due:
        return ReminderDecision(None)
    most_urgent = min(due)
    return ReminderDecision(most_urgent, tuple(sorted(d for d in due if d != most_urgent)))


# -- standing -----------------------------------------------------------------------


class Standing(StrEnum):
    APPROVED = "approved"  # a current certificate of compliance
    EXTENDED = "extended"  # no current certificate, but a granted extension in force
    GRACE = "grace"  # expired, inside the grace period: still connected, warned
    LAPSED = "lapsed"  # expired beyond the grace period: out of the directory
    WITHDRAWN = "withdrawn"  # withdrawn by an operator: out of the directory
    NONE = "none"  # never approved


CONNECTED = frozenset({Standing.APPROVED, Standing.EXTENDED, Standing.GRACE})
EXCLUDED = frozenset({Standing.LAPSED, Standing.WITHDRAWN})


@dataclass(frozen=True)
class CertificateFacts:
    issued_at: dt.datetime
    expires_at: dt.datetime
    withdrawn_at: dt.datetime | None = None


@dataclass(frozen=True)
class StandingReport:
    standing: Standing
    until: dt.datetime | None  # when the current standing ends, if it does by itself

    def to_dict(self) -> dict[str, Any]:
        return {
            "standing": self.standing.value,
            "until": None if self.until is None else self.until.isoformat(),
        }


def standing(
    latest: CertificateFacts | None,
    extensions_until: Iterable[dt.datetime],
    now: dt.datetime,
    grace: dt.timedelta,
) -> StandingReport:
    """Where an organisation stands now, from its latest certificate and granted extensions.

    A withdrawal ends the certificate at once and an extension does not undo
    it: an operator who withdraws and then wants the organisation back
    approves a new statement. An extension covers an organisation whose
    certificate has expired (or that has none yet) until the extension's own
    end date.
    """
    if latest is not None and latest.withdrawn_at is not None and latest.withdrawn_at <= now:
        return StandingReport(Standing.WITHDRAWN, None)
    if latest is not None and latest.issued_at <= now < latest.expires_at:
        return StandingReport(Standing.APPROVED, latest.expires_at)
    in_force = [u for u in extensions_until if u > now]
    if in_force:
        return StandingReport(Standing.EXTENDED, max(in_force))
    if latest is None:
        return StandingReport(Standing.NONE, None)
    if now < latest.expires_at + grace:
        return StandingReport(Standing.GRACE, latest.expires_at + grace)
    return StandingReport(Standing.LAPSED, None)
