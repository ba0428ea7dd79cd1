"""What evidence central accepts: types, sizes and the check that a file is what it claims.

A declared media type is not trusted on its own: the first bytes must agree
with it (a PDF starts ``%PDF-``, office documents are ZIP containers, text
must be UTF-8 without NUL bytes), so an executable renamed ``policy.pdf`` is
refused. Evidence is stored by its SHA-256 and carries an expiry date, after
which it no longer counts.
"""

from __future__ import annotations

from collections.abc import Callable

from gcx.errors import EvidenceTooLarge, EvidenceTypeRefused, InputError
from gcx.protocol import strict_json

SELFCHECK_MEDIA_TYPE = "application/vnd.gcx.selfcheck+json"


def _starts(prefix: bytes) -> Callable[[bytes], bool]:
    return lambda data: data.startswith(prefix)


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_json(data: bytes) -> bool:
    try:
        strict_json.loads(data)
    except ValueError:
        return False
    return True


_ZIP = _starts(b"PK\x03\x04")

# Media type -> how to recognise its content.
ALLOWED_TYPES: dict[str, Callable[[bytes], bool]] = {
    "application/pdf": _starts(b"%PDF-"),
    "image/png": _starts(b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": _starts(b"\xff\xd8\xff"),
    "text/plain": _is_text,
    "text/csv": _is_text,
    "application/json": _is_json,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _ZIP,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _ZIP,
    "application/vnd.oasis.opendocument.text": _ZIP,
    "application/vnd.oasis.opendocument.spreadsheet": _ZIP,
}


def check_evidence(filename: str, media_type: str, data: bytes, *, max_bytes: int) -> None:
    """Refuse evidence that is too large, of a type not allowed, or not what it claims."""
    name = filename.strip()
    if not name or len(name) > 200 or "/" in name or "\\" in name:
        raise InputError("The evidence needs a file name of 1 to 200 characters with no path.")
    if len(data) > max_bytes:
        raise EvidenceTooLarge(
            f"The evidence is {len(data):,} bytes; the limit is {max_bytes:,} bytes.",
            size=len(data),
            limit=max_bytes,
        )
    if not data:
        raise InputError("The evidence file is empty.")
    media = media_type.split(";", 1)[0].strip().lower()
    recognise = ALLOWED_TYPES.get(media)
    if recognise is None:
        raise EvidenceTypeRefused(
            f"Evidence of type {media[:80]!r} is not accepted.",
            allowed=sorted(ALLOWED_TYPES),
        )
    if not recognise(data):
        raise EvidenceTypeRefused(
            f"The file's content is not {media}, the type it was declared as.",
            declared=media,
        )


def normalise_media_type(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()
