"""Protective markings: which ones gcx carries, and how older ones are read.

Since 2014 the UK Government Security Classifications have three levels,
OFFICIAL, SECRET and TOP SECRET, and OFFICIAL-SENSITIVE is a handling caveat
within OFFICIAL. gcx, like GCSX before it, is accredited for OFFICIAL only, so:

* OFFICIAL and OFFICIAL-SENSITIVE are accepted as they are;
* the older PROTECT and RESTRICTED are still typed by people and written by
  back-office systems, so they are accepted and mapped (PROTECT to OFFICIAL,
  RESTRICTED to OFFICIAL-SENSITIVE, since RESTRICTED material needs the
  extra care) and the mapping is reported, so it can be shown and audited;
* SECRET, TOP SECRET and the retired CONFIDENTIAL (whose material went to
  SECRET) are refused: such material belongs on a network accredited for it;
* anything else is refused as unknown, naming the accepted values. Guessing
  at a marking would be worse than asking the sender to choose one.

Matching ignores case, surrounding white space and the separator between
words (``official sensitive``, ``Official_Sensitive``), because those are the
variants people actually type; it never ignores letters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from gcx.errors import MarkingMissing, MarkingNotAllowed, MarkingUnknown

# -- markings ---------------------------------------------------------------------


class Marking(StrEnum):
    """The markings gcx carries, lowest first (``highest`` relies on this order)."""

    OFFICIAL = "OFFICIAL"
    OFFICIAL_SENSITIVE = "OFFICIAL-SENSITIVE"


_RANK = {marking: rank for rank, marking in enumerate(Marking)}

_ACCEPTED: dict[str, Marking] = {m.value: m for m in Marking}
_MAPPED: dict[str, Marking] = {
    "PROTECT": Marking.OFFICIAL,
    "RESTRICTED": Marking.OFFICIAL_SENSITIVE,
}
# Refused by their first words, so that "SECRET UK EYES ONLY" or
# "TOP SECRET STRAP1" get the sentence that explains why, not "unknown".
_REFUSED_PREFIXES: tuple[tuple[str, ...], ...] = (
    ("SECRET",),
    ("TOP", "SECRET"),
    ("CONFIDENTIAL",),
)
_SEPARATORS = re.compile(r"[\s_\-\u2010-\u2015:]+")
_SUBJECT_TAG = re.compile(r"^\s*\[([^\[\]]{1,40})\]\s*")


@dataclass(frozen=True)
class MarkingDecision:
    """A parsed marking, and the older marking it was mapped from, if any."""

    marking: Marking
    mapped_from: str | None = None

    @property
    def mapped(self) -> bool:
        return self.mapped_from is not None


def _words(text: str) -> tuple[str, ...]:
    return tuple(word for word in _SEPARATORS.split(text.strip().upper()) if word)


def _known(words: tuple[str, ...]) -> MarkingDecision | None:
    canonical = "-".join(words)
    if canonical in _ACCEPTED:
        return MarkingDecision(_ACCEPTED[canonical])
    if canonical in _MAPPED:
        return MarkingDecision(_MAPPED[canonical], mapped_from=canonical)
    return None


def parse_marking(text: str | None) -> MarkingDecision:
    """Read a marking as a person or system gave it; raise if gcx may not carry it."""
    if text is None or not text.strip():
        raise MarkingMissing()
    words = _words(text)
    decision = _known(words)
    if decision is not None:
        return decision
    if any(words[: len(prefix)] == prefix for prefix in _REFUSED_PREFIXES):
        shown = " ".join(words)[:40]
        raise MarkingNotAllowed(
            f"{shown} material must not be sent through gcx, which is accredited for OFFICIAL "
            "and OFFICIAL-SENSITIVE only; it belongs on a network accredited for that "
            "classification."
        )
    raise MarkingUnknown(
        f"{text.strip()[:40]!r} is not a protective marking gcx accepts: use OFFICIAL or "
        "OFFICIAL-SENSITIVE (PROTECT and RESTRICTED are also accepted and mapped)."
    )


def highest(markings: Iterable[Marking]) -> Marking:
    """The most restrictive of several markings, e.g. for a reply carrying attachments.

    An empty collection has no highest marking; it raises :class:`MarkingMissing`
    rather than defaulting to OFFICIAL, because a default would under-mark.
    """
    found = list(markings)
    if not found:
        raise MarkingMissing()
    return max(found, key=_RANK.__getitem__)


def subject_with_marking(subject: str, marking: Marking) -> str:
    """``[OFFICIAL-SENSITIVE] subject``: the marking first, as mail clients show it.

    A leading tag that already names a marking (``[official]``, ``[RESTRICTED]``)
    is replaced, not doubled: after a reply or a re-marking it would otherwise
    show a stale or contradictory marking. Tags that are not markings
    (``[EXTERNAL]``) are kept.
    """
    rest = subject
    match = _SUBJECT_TAG.match(rest)
    if match is not None and _known(_words(match.group(1))) is not None:
        rest = rest[match.end() :]
    rest = rest.strip()
    tag = f"[{marking.value}]"
    return f"{tag} {rest}" if rest else tag
