"""What each protective marking means, in one place, for every page that shows one.

The marking banner, the compose and check pages, the lists and the help page
on markings all take their words from :data:`MARKINGS`, so a marking is
described the same way wherever staff meet it. The markings themselves (which
exist, their order, how older ones map) are :mod:`gcx.protocol.marking`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from gcx.protocol.marking import Marking


@dataclass(frozen=True)
class MarkingWords:
    marking: str
    anchor: str  # its section of the help page, /help/markings#<anchor>
    summary: str  # one sentence, for the banner and beside choices
    handling: tuple[str, ...]  # what to do with something so marked


MARKINGS: dict[str, MarkingWords] = {
    Marking.OFFICIAL.value: MarkingWords(
        marking=Marking.OFFICIAL.value,
        anchor="official",
        summary="Routine public sector information: share it only with people who need it "
        "for their work.",
        handling=(
            "Send it only to the people and organisations who need it for their work.",
            "Keep it on work systems; do not send it to a personal email address.",
        ),
    ),
    Marking.OFFICIAL_SENSITIVE.value: MarkingWords(
        marking=Marking.OFFICIAL_SENSITIVE.value,
        anchor="official-sensitive",
        summary="Personal or sensitive information that could cause harm if it reached the "
        "wrong person: share it only with named people who need to know.",
        handling=(
            "Send it only to named people who need to know, never to a whole organisation "
            "unless that is what your work requires.",
            "Do not print it or save it outside gcx unless your work needs you to, and then "
            "keep it locked away.",
            "Never forward it outside gcx or to a personal email address.",
            "Follow any handling instructions the sender added, such as not forwarding it.",
        ),
    ),
}


def marking_words(marking: str | None) -> MarkingWords | None:
    """The description of ``marking``; None for no marking or one gcx does not carry."""
    return MARKINGS.get(marking or "")
