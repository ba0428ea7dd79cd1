"""Protective markings: parsing, mapping of older markings, refusals, subjects, highest."""

from __future__ import annotations

import pytest

from gcx.errors import (
    MarkingMissing,
    MarkingNotAllowed,
    MarkingUnknown,
)
from gcx.protocol.marking import (
    Marking,
    MarkingDecision,
    highest,
    parse_marking,
    subject_with_marking,
)

OFFICIAL = Marking.OFFICIAL
SENSITIVE = Marking.OFFICIAL_SENSITIVE


@pytest.mark.parametrize(
    ("text", "marking", "mapped_from"),
    [
        ("OFFICIAL", OFFICIAL, None),
        ("official", OFFICIAL, None),
        ("  Official \n", OFFICIAL, None),
        ("OFFICIAL-SENSITIVE", SENSITIVE, None),
        ("official-sensitive", SENSITIVE, None),
        ("Official Sensitive", SENSITIVE, None),
        ("OFFICIAL_SENSITIVE", SENSITIVE, None),
        ("\tofficial - sensitive ", SENSITIVE, None),
        ("OFFICIAL\u2013SENSITIVE", SENSITIVE, None),
        ("PROTECT", OFFICIAL, "PROTECT"),
        (" protect ", OFFICIAL, "PROTECT"),
        ("RESTRICTED", SENSITIVE, "RESTRICTED"),
        ("Restricted", SENSITIVE, "RESTRICTED"),
    ],
)
def test_markings_accepted_and_mapped(text: str, marking: Marking, mapped_from: str | None) -> None:
    """Accepted markings parse whatever their case and spacing; older ones map and say so."""
    decision = parse_marking(text)
    assert decision == MarkingDecision(marking, mapped_from)
    assert decision.mapped is (mapped_from is not None)


@pytest.mark.parametrize(
    "text",
    [
        "SECRET",
        "secret",
        " Secret ",
        "TOP SECRET",
        "top-secret",
        "Top_Secret",
        "SECRET UK EYES ONLY",
        "TOP SECRET STRAP1",
        "CONFIDENTIAL",
    ],
)
def test_secret_and_above_refused(text: str) -> None:
    """SECRET, TOP SECRET (with any caveat) and CONFIDENTIAL are refused as not allowed."""
    with pytest.raises(MarkingNotAllowed) as caught:
        parse_marking(text)
    assert caught.value.code == "marking-not-allowed"
    assert "network accredited" in caught.value.message
    assert caught.value.status == 422


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_missing_marking_refused(text: str | None) -> None:
    """No marking, or only white space, is refused as missing."""
    with pytest.raises(MarkingMissing) as caught:
        parse_marking(text)
    assert caught.value.code == "marking-missing"


@pytest.mark.parametrize(
    "text",
    [
        "UNCLASSIFIED",
        "OFFICIALSENSITIVE",
        "SECRETARY",
        "OFFICIAL SENSITIVE PERSONAL",
        "NOT PROTECTIVELY MARKED",
        "[OFFICIAL]",
    ],
)
def test_unknown_marking_refused_with_choices(text: str) -> None:
    """Anything else is unknown, and the refusal names the accepted markings."""
    with pytest.raises(MarkingUnknown) as caught:
        parse_marking(text)
    assert caught.value.code == "marking-unknown"
    assert "OFFICIAL or OFFICIAL-SENSITIVE" in caught.value.message


def test_marking_values_are_the_published_spellings() -> None:
    """The values written into envelopes are the official spellings, lowest first."""
    assert [m.value for m in Marking] == ["OFFICIAL", "OFFICIAL-SENSITIVE"]


@pytest.mark.parametrize(
    ("markings", "expected"),
    [
        ([OFFICIAL], OFFICIAL),
        ([OFFICIAL, OFFICIAL], OFFICIAL),
        ([OFFICIAL, SENSITIVE, OFFICIAL], SENSITIVE),
        ([SENSITIVE, OFFICIAL], SENSITIVE),
    ],
)
def test_highest_marking(markings: list[Marking], expected: Marking) -> None:
    """highest() picks the most restrictive marking, wherever it is in the list."""
    assert highest(markings) is expected


def test_highest_of_nothing_is_refused() -> None:
    """An empty list has no highest marking; defaulting would under-mark."""
    with pytest.raises(MarkingMissing):
        highest([])


@pytest.mark.parametrize(
    ("subject", "marking", "expected"),
    [
        ("Referral", SENSITIVE, "[OFFICIAL-SENSITIVE] Referral"),
        ("  Referral  ", OFFICIAL, "[OFFICIAL] Referral"),
        ("[OFFICIAL-SENSITIVE] Referral", SENSITIVE, "[OFFICIAL-SENSITIVE] Referral"),
        ("[official-sensitive] Referral", SENSITIVE, "[OFFICIAL-SENSITIVE] Referral"),
        ("[OFFICIAL] Referral", SENSITIVE, "[OFFICIAL-SENSITIVE] Referral"),
        ("[RESTRICTED] Referral", SENSITIVE, "[OFFICIAL-SENSITIVE] Referral"),
        ("[EXTERNAL] Referral", OFFICIAL, "[OFFICIAL] [EXTERNAL] Referral"),
        ("Re: [OFFICIAL] Referral", OFFICIAL, "[OFFICIAL] Re: [OFFICIAL] Referral"),
        ("", OFFICIAL, "[OFFICIAL]"),
        ("[OFFICIAL]", OFFICIAL, "[OFFICIAL]"),
    ],
)
def test_subject_with_marking(subject: str, marking: Marking, expected: str) -> None:
    """The marking leads the subject once; a stale marking tag is replaced, others kept."""
    assert subject_with_marking(subject, marking) == expected


def test_subject_with_marking_is_idempotent() -> None:
    """Marking an already marked subject again changes nothing."""
    once = subject_with_marking("Benefit notice", SENSITIVE)
    assert subject_with_marking(once, SENSITIVE) == once
