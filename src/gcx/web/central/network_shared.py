"""What the network operator's pages share: dates as people read them, state tags, the end
date of an extension as a form gives it, and the page renderer that brings those along.

Dates are stored as ISO 8601 instants in UTC; pages show the day (and, where the
moment matters, the time) in UTC, because the operators and the gateways they
speak of are in different places and the audit log is in UTC too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from gcx.errors import InputError
from gcx.store import parse_iso
from gcx.web.site import FormErrors, field_text, render
from gcx.web.words import day, moment

# Longest reason a form keeps; the use cases refuse more than they allow with their own
# message, so the page must not cut it short silently first.
REASON_LIMIT = 20_000

# (text, Design System tag colour) for each state the pages show.
STANDING_TAGS = {
    "approved": ("Approved", "govuk-tag--green"),
    "extended": ("Extended", "govuk-tag--turquoise"),
    "grace": ("In grace period", "govuk-tag--yellow"),
    "lapsed": ("Lapsed", "govuk-tag--red"),
    "withdrawn": ("Withdrawn", "govuk-tag--red"),
    "none": ("Never approved", "govuk-tag--grey"),
}
ENROLMENT_TAGS = {
    "pending": ("Waiting for a decision", "govuk-tag--blue"),
    "active": ("Active", "govuk-tag--green"),
    "rejected": ("Rejected", "govuk-tag--orange"),
    "revoked": ("Revoked", "govuk-tag--red"),
}
EXTENSION_TAGS = {
    "requested": ("Requested", "govuk-tag--blue"),
    "granted": ("Granted", "govuk-tag--green"),
    "refused": ("Refused", "govuk-tag--red"),
}


def tag(kind: dict[str, tuple[str, str]], state: str | None) -> tuple[str, str]:
    return kind.get(state or "", (state or "Unknown", "govuk-tag--grey"))


def page(
    request: web.Request,
    template: str,
    *,
    status: int = 200,
    errors: FormErrors | None = None,
    **context: Any,
) -> web.Response:
    """:func:`render` with the date and tag helpers every network template uses.

    None of these pages shows protective content (they describe the network,
    not what flows through it), so each keeps the default marking.
    """
    return render(
        request,
        template,
        status=status,
        errors=errors,
        day=day,
        moment=moment,
        standing_tag=lambda s: tag(STANDING_TAGS, s),
        enrolment_tag=lambda s: tag(ENROLMENT_TAGS, s),
        extension_tag=lambda s: tag(EXTENSION_TAGS, s),
        **context,
    )


def reason_of(form: MultiDictProxy[Any], name: str = "reason") -> str:
    return field_text(form, name, REASON_LIMIT)


def date_fields(form: MultiDictProxy[Any] | None, prefix: str) -> dict[str, str]:
    """What the person typed in a date input, to show it again."""
    if form is None:
        return {"day": "", "month": "", "year": ""}
    return {part: field_text(form, f"{prefix}-{part}", 8) for part in ("day", "month", "year")}


def date_fields_of(value: str | None) -> dict[str, str]:
    """A stored instant, as the date input's three fields."""
    if not value:
        return {"day": "", "month": "", "year": ""}
    instant = parse_iso(value).astimezone(dt.UTC)
    return {"day": str(instant.day), "month": str(instant.month), "year": str(instant.year)}


def end_of_day(fields: dict[str, str]) -> dt.datetime | None:
    """The end (23:59:59 UTC) of the day typed, as the API reads a bare date; None if blank.

    The API's ``until`` takes ``YYYY-MM-DD`` as the end of that day, so the
    same date typed here and sent there means the same instant.
    """
    if not any(fields.values()):
        return None
    try:
        date = dt.date(int(fields["year"]), int(fields["month"]), int(fields["day"]))
    except ValueError:
        raise InputError(
            "Enter the end date as a real date, with a day, month and year, for example 31 3 2027."
        ) from None
    return dt.datetime.combine(date, dt.time(23, 59, 59), tzinfo=dt.UTC)
