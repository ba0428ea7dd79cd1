"""The words pages use for times and sizes: one style, GOV.UK's, everywhere."""

from __future__ import annotations

import datetime as dt

import pytest

from gcx.web.words import access_words, clock_time, count_text, day, moment, size_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-06T14:05:00Z", "6 December 2026 at 2:05pm UTC"),
        ("2026-12-06T09:00:00Z", "6 December 2026 at 9am UTC"),
        ("2026-12-06T12:00:00Z", "6 December 2026 at midday UTC"),
        ("2026-12-06T00:00:00Z", "6 December 2026 at midnight UTC"),
        ("2026-12-06T00:30:00Z", "6 December 2026 at 12:30am UTC"),
        ("2026-12-06T12:01:59Z", "6 December 2026 at 12:01pm UTC"),
        ("2026-12-06T23:59:00+01:00", "6 December 2026 at 10:59pm UTC"),
        (None, ""),
        ("", ""),
    ],
)
def test_moment_is_govuk_style_in_utc(value: str | None, expected: str) -> None:
    assert moment(value) == expected


def test_moment_takes_datetimes_and_treats_naive_ones_as_utc() -> None:
    assert moment(dt.datetime(2026, 1, 2, 15, 4, tzinfo=dt.UTC)) == "2 January 2026 at 3:04pm UTC"
    assert moment(dt.datetime(2026, 1, 2, 15, 4)) == "2 January 2026 at 3:04pm UTC"


def test_day_takes_instants_dates_and_iso_dates() -> None:
    assert day("2026-11-22T02:37:03Z") == "22 November 2026"
    assert day("2026-11-22") == "22 November 2026"
    assert day(dt.date(2026, 3, 1)) == "1 March 2026"
    assert day(None) == ""


def test_clock_time_never_shows_a_24_hour_clock() -> None:
    assert clock_time(dt.datetime(2026, 1, 1, 13, 0)) == "1pm"
    assert clock_time(dt.datetime(2026, 1, 1, 11, 45)) == "11:45am"


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1023 bytes"),
        (1024, "1 KB"),
        (1536, "1.5 KB"),
        (12 * 1024 + 300, "12 KB"),
        (1024 * 1024 - 1, "1 MB"),
        (5 * 1024 * 1024, "5 MB"),
        (int(2.25 * 1024**3), "2.2 GB"),
        (700 * 1024**3, "700 GB"),
        (3 * 1024**4, "3 TB"),
        (None, ""),
    ],
)
def test_size_text_uses_kb_mb_gb(size: int | None, expected: str) -> None:
    assert size_text(size) == expected


def test_a_negative_size_is_a_mistake() -> None:
    with pytest.raises(ValueError):
        size_text(-1)


def test_count_text_agrees() -> None:
    assert count_text(1, "file") == "1 file"
    assert count_text(2, "file") == "2 files"
    assert count_text(0, "reply", "replies") == "0 replies"


def test_access_rights_are_said_in_words_not_methods() -> None:
    assert access_words(["GET"], ["/"]) == "Look up records"
    assert access_words(["POST"], ["/"]) == "Send checks and requests"
    assert access_words(["any"], ["/"]) == "Look up records and send requests"
    assert access_words(["GET"], ["/customers"]) == (
        "Look up records (some parts of the service only)"
    )
