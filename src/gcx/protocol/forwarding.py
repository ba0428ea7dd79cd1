"""What a reply or a forward may do with the message it carries.

Two rules, both about not letting material slip out of the care its sender
asked for:

* **The marking is a floor.** A reply quotes the message, a forward carries
  it and its attachments: either holds the original material, so it keeps at
  least the original's marking. Raising it is allowed; lowering it raises
  :class:`~gcx.errors.MarkingLowered`.
* **Handling instructions can forbid passing it on.** Handling instructions
  are free text written by the sender ("Do not forward outside the
  safeguarding team"); gcx cannot tell who is in a team, so any instruction
  that restricts forwarding, sharing or onward disclosure blocks forwarding
  in gcx, and says why, quoting the instruction. Replying to the sender is
  not passing it on, so replies are never blocked.
"""

from __future__ import annotations

import re

from gcx.errors import ForwardForbidden, MarkingLowered
from gcx.protocol.marking import Marking, highest

# Phrases people use to restrict onward sharing, matched on lower-case text
# with white space collapsed. A false positive costs a person a reason to read
# and a new message to write; a false negative could leak safeguarding data.
_ONWARD = re.compile(
    r"\b("
    r"(do not|don't|dont|must not|should not|never|not to) "
    r"(be )?(forward|share|pass|disclose|distribute|circulate|send|copy|onward)"
    r"|not (to be|for) (forwarded|shared|passed|disclosed|distributed|circulated|onward)"
    r"|no (onward|further) (sharing|distribution|disclosure|transmission|forwarding)"
    r"|(addressee|recipient|named recipients?)s? only"
    r")"
)


def onward_restriction(handling: str | None) -> str | None:
    """The handling instruction that forbids passing the message on, or ``None``."""
    if not handling:
        return None
    text = " ".join(handling.lower().replace("\u2019", "'").split())
    return handling.strip() if _ONWARD.search(text) else None


def check_forward_allowed(handling: str | None) -> None:
    restriction = onward_restriction(handling)
    if restriction is not None:
        raise ForwardForbidden(
            "You cannot forward this message: its handling instructions say "
            f"\u201c{restriction[:300]}\u201d. Ask the sender if it may be shared."
        )


def check_marking_floor(chosen: Marking, carried: Marking) -> None:
    """A message carrying ``carried`` material is marked at least as high."""
    if highest([chosen, carried]) != chosen:
        raise MarkingLowered(
            f"This message carries an earlier {carried.value} message, so it must be marked "
            f"{carried.value}; the marking cannot be lowered."
        )
