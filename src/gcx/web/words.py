"""Times and sizes as the pages say them, in one style everywhere.

Times are shown in UTC, the clock the gateways, their logs and their receipts
keep, and say so; dates follow the GOV.UK style (``22 November 2026``).
"""

from __future__ import annotations

import datetime as dt

from gcx.store import parse_iso


def day(value: str | dt.datetime | None) -> str:
    """``2026-11-22T02:37:03Z`` as ``22 November 2026``; empty for nothing."""
    if value is None or value == "":
        return ""
    instant = parse_iso(value) if isinstance(value, str) else value
    return f"{instant.astimezone(dt.UTC):%-d %B %Y}"


def moment(value: str | dt.datetime | None) -> str:
    """A day and a time, for when something happened: ``22 November 2026 at 02:37 UTC``."""
    if value is None or value == "":
        return ""
    instant = parse_iso(value) if isinstance(value, str) else value
    return f"{instant.astimezone(dt.UTC):%-d %B %Y at %H:%M} UTC"


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
