"""What the secure mail pages share: who may use them, form limits, marking hints,
the signed-in caller and the directory's organisation names.

:mod:`gcx.web.gateway.mail` (reading) and :mod:`gcx.web.gateway.mail_compose`
(composing) both build on these; keeping them here lets the reading module
add the compose pages without the two importing each other.
"""

from __future__ import annotations

from aiohttp import web

from gcx.errors import Forbidden, GcxError
from gcx.gateway.tokens import Caller
from gcx.protocol.marking import Marking
from gcx.protocol.message import MAX_ATTACHMENT_BYTES, MAX_TOTAL_ATTACHMENT_BYTES
from gcx.web.gateway import caller_of, parts_of
from gcx.web.site import user_of

MAIL_ROLES = ("staff", "admin")
# Text fields are small; a body of a million characters is at most 4 MiB of UTF-8.
MAX_FIELD_BYTES = 4 * 1024 * 1024
# Past this the upload is not read any further: the form cannot be kept for a
# body this large, and reading it would only let one person tie up the gateway.
MAX_UPLOAD_BYTES = MAX_TOTAL_ATTACHMENT_BYTES + MAX_ATTACHMENT_BYTES + 8 * 1024 * 1024

MARKING_HINTS = {
    Marking.OFFICIAL.value: (
        "Routine public-sector business, such as most letters, reports and case "
        "updates. Handle with ordinary care."
    ),
    Marking.OFFICIAL_SENSITIVE.value: (
        "Personal or sensitive information whose loss or misuse could harm someone, "
        "such as a person's benefits, health or safeguarding details. It needs extra "
        "care, and only people who need to know should see it."
    ),
}


def mail_caller(request: web.Request) -> Caller:
    # A gateway's people act for an organisation; without one, there is no key to
    # read or seal with, so the pages refuse rather than fail later.
    if not user_of(request).organisation:
        raise Forbidden("Your account is not an organisation's; mail needs one.")
    return caller_of(request)


def organisation_names(request: web.Request) -> dict[str, str]:
    try:
        directory = parts_of(request).gateway.directory.current()
    except GcxError:
        return {}
    return {o.code: o.name for o in directory.organisations}


def organisation_name(code: str, names: dict[str, str]) -> str:
    return f"{names[code]} ({code})" if code in names else code
