"""Times, sizes and states as the pages say them, in one style everywhere.

Every page that shows a date, a time, a size or a state in words takes it from
here, so staff read one style on every page (GOV.UK's: ``6 December 2026``,
``6 December 2026 at 2:05pm``, ``1.5 MB``). Times are shown in UTC, the clock
the gateways, their logs and their receipts keep, and say so, so a time on a
page can be matched with the one in a receipt.

Nothing here reads a clock or a database: values in, words out.
"""

from __future__ import annotations

import datetime as dt

from gcx.store import parse_iso

_UNITS = ("KB", "MB", "GB", "TB")


def _instant(value: str | dt.datetime) -> dt.datetime:
    instant = parse_iso(value) if isinstance(value, str) else value
    if instant.tzinfo is None:
        # Stored times without a zone are UTC (gcx writes every time in UTC).
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(dt.UTC)


def day(value: str | dt.datetime | dt.date | None) -> str:
    """``2026-11-22T02:37:03Z`` (or a date) as ``22 November 2026``; empty for nothing."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return f"{value:%-d %B %Y}"
    if isinstance(value, str) and len(value) == 10:
        return f"{dt.date.fromisoformat(value):%-d %B %Y}"
    return f"{_instant(value):%-d %B %Y}"


def clock_time(instant: dt.datetime) -> str:
    """GOV.UK's time style: ``2:05pm``, ``9am``, ``midday``, ``midnight``."""
    if instant.hour == 12 and instant.minute == 0:
        return "midday"
    if instant.hour == 0 and instant.minute == 0:
        return "midnight"
    hour = instant.hour % 12 or 12
    half = "am" if instant.hour < 12 else "pm"
    minutes = f":{instant.minute:02d}" if instant.minute else ""
    return f"{hour}{minutes}{half}"


def moment(value: str | dt.datetime | None) -> str:
    """A day and a time: ``6 December 2026 at 2:05pm UTC``; empty for nothing."""
    if value is None or value == "":
        return ""
    instant = _instant(value)
    return f"{instant:%-d %B %Y} at {clock_time(instant)} UTC"


def size_text(size: int | None) -> str:
    """A number of bytes as people read it: ``512 bytes``, ``12 KB``, ``1.5 MB``, ``2 GB``.

    Units are of 1,024, as file managers on the desktops staff use show them,
    so a size here matches the one on their own computer. One decimal place
    below 10 of a unit and none above, without a trailing ``.0``.
    """
    if size is None:
        return ""
    if size < 0:
        raise ValueError("a size cannot be negative")
    if size == 1:
        return "1 byte"
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    index = 0
    while value >= 1024 and index < len(_UNITS) - 1:
        value /= 1024
        index += 1
    unit = _UNITS[index]
    text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    if text.endswith(".0"):
        text = text[:-2]
    if text == "1024" and unit != _UNITS[-1]:
        # Rounding 1,023.6 KB up reads better as the next unit.
        text, unit = "1", _UNITS[_UNITS.index(unit) + 1]
    return f"{text} {unit}"


def count_text(count: int, one: str, many: str | None = None) -> str:
    """``1 file``, ``3 files``: a count with its noun agreeing."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


_READING = frozenset({"GET", "HEAD"})


def access_words(methods: list[str], paths: list[str]) -> str:
    """An access right to a service in words: what staff may do, not methods and paths.

    ``methods`` are HTTP methods (``any`` for all of them) and ``paths`` the parts
    of the service the right covers (``/`` for all of it), as the services list gives them.
    """
    named = {m.upper() for m in methods}
    if named and named <= _READING:
        what = "Look up records"
    elif "ANY" in named or named & _READING:
        what = "Look up records and send requests"
    else:
        what = "Send checks and requests"
    return what if "/" in paths else f"{what} (some parts of the service only)"
