"""Identifiers of organisations, gateways and users, and their validation."""

from __future__ import annotations

import re
from enum import StrEnum

from gcx.errors import InputError, OrganisationCodeInvalid

# GSS codes are a letter for the nation, two digits for the entity type and six
# digits (E09000030 is Tower Hamlets). Other members use short upper-case codes
# such as DWP, HMRC or MPS.
# Patterns are applied with fullmatch: "$" would also accept a trailing newline.
_GSS = re.compile(r"[EWSN]\d{8}")
_GSS_LOOKALIKE = re.compile(r"[EWSN]\d+")
_SHORT = re.compile(r"[A-Z][A-Z0-9-]{1,15}")
_GATEWAY = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_ACCOUNT = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class OrganisationType(StrEnum):
    LOCAL_AUTHORITY = "local-authority"
    CENTRAL_GOVERNMENT = "central-government"
    POLICE = "police"
    HEALTH = "health"
    FIRE_AND_RESCUE = "fire-and-rescue"
    SUPPLIER = "supplier"
    OTHER = "other"


def check_organisation_code(code: str) -> str:
    """Return ``code`` if it is a GSS code or a short code; raise otherwise."""
    if _GSS.fullmatch(code):
        return code
    # A letter and digits only is a GSS code with the wrong length, not a short code.
    if _SHORT.fullmatch(code) and not _GSS_LOOKALIKE.fullmatch(code):
        return code
    raise OrganisationCodeInvalid(
        f"{code[:40]!r} is not an organisation code: use a GSS code such as E09000030 "
        "or a short upper-case code such as DWP."
    )


def check_gateway_name(name: str) -> str:
    if _GATEWAY.fullmatch(name):
        return name
    raise InputError(
        f"{name[:70]!r} is not a gateway name: use lower-case letters, digits and hyphens.",
    )


def check_account_name(name: str) -> str:
    if _ACCOUNT.fullmatch(name):
        return name
    raise InputError(
        f"{name[:70]!r} is not an account name: use lower-case letters, digits, '.', '_' or '-'.",
    )


def parse_organisation_type(value: str) -> OrganisationType:
    try:
        return OrganisationType(value)
    except ValueError as exc:
        choices = ", ".join(t.value for t in OrganisationType)
        raise InputError(
            f"{value[:40]!r} is not an organisation type; use one of: {choices}."
        ) from exc
