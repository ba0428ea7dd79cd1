"""Secure messages: addresses, the composed message, and the rules it must meet.

A message rides in an envelope of kind ``message``. Part 0 is the message
itself (JSON, below); parts 1..n are its attachments, in order. Everything a
person wrote (subject, body, handling instructions, attachment names) is
inside the encrypted parts: the envelope header shows only organisations,
the marking and sizes.

Addresses: ``person@ORG`` or ``mailbox@ORG`` (resolved by the receiving
gateway, which alone knows its people and shared mailboxes), or ``ORG`` for
the whole organisation. The directory lists organisations, never people.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from gcx.errors import (
    AddressInvalid,
    AttachmentRefused,
    AttachmentTooLarge,
    BodyNotUtf8,
    InputError,
)
from gcx.protocol import strict_json
from gcx.protocol.identifiers import check_account_name, check_organisation_code

MESSAGE_MEDIA_TYPE = "application/vnd.gcx.message+json"
FORMAT = "gcx.message/1"

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
MAX_TOTAL_ATTACHMENT_BYTES = 100 * 1024 * 1024
MAX_BODY_CHARS = 1_000_000
MAX_SUBJECT_CHARS = 255
MAX_RECIPIENTS = 100
MAX_ATTACHMENTS = 100

# Names Windows reserves for devices; a file saved under one of them on a
# council desktop misbehaves, so we refuse them whatever the extension.
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Address:
    organisation: str
    local: str | None = None  # None: the whole organisation

    def __str__(self) -> str:
        return f"{self.local}@{self.organisation}" if self.local else self.organisation


def parse_address(text: str) -> Address:
    text = text.strip()
    if "@" in text:
        local, _, org = text.rpartition("@")
        try:
            return Address(check_organisation_code(org), check_account_name(local.lower()))
        except InputError as exc:
            raise AddressInvalid(
                f"{text[:80]!r} is not an address: use person@ORG, mailbox@ORG or ORG."
            ) from exc
    try:
        return Address(check_organisation_code(text))
    except InputError as exc:
        raise AddressInvalid(
            f"{text[:80]!r} is not an address: use person@ORG, mailbox@ORG or ORG."
        ) from exc


def check_file_name(name: str) -> str:
    """A safe attachment or file name: no path, no control characters, no device name."""
    if not name or len(name) > 255:
        raise AttachmentRefused("An attachment name must be 1 to 255 characters.")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise AttachmentRefused(f"The attachment name {name[:80]!r} contains a path.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise AttachmentRefused("The attachment name contains a control character.")
    if _RESERVED.match(name.strip()):
        raise AttachmentRefused(f"{name[:80]!r} is a reserved device name on Windows.")
    return name


def check_text(value: str, *, what: str) -> str:
    """Text must be encodable as UTF-8 (no lone surrogates from a broken client)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BodyNotUtf8(f"The {what} is not valid UTF-8 text.") from exc
    return value


@dataclass(frozen=True)
class AttachmentInfo:
    index: int
    name: str
    media_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class MessageContent:
    """Part 0 of a message envelope."""

    sender: str
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    body: str
    marking: str
    handling: str | None = None
    read_receipt: bool = False
    attachments: tuple[AttachmentInfo, ...] = field(default=())

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc

    @property
    def organisations(self) -> list[str]:
        return sorted({a.organisation for a in self.recipients})

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "from": self.sender,
                "to": [str(a) for a in self.to],
                "cc": [str(a) for a in self.cc],
                "subject": self.subject,
                "body": self.body,
                "marking": self.marking,
                "handling": self.handling,
                "read_receipt": self.read_receipt,
                "attachments": [a.__dict__ for a in self.attachments],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageContent:
        try:
            raw: dict[str, Any] = strict_json.loads_object(data)
            if raw.get("format") != FORMAT:
                raise ValueError("format")
            return cls(
                sender=str(raw["from"]),
                to=_addresses(raw["to"]),
                cc=_addresses(raw["cc"]),
                subject=str(raw["subject"]),
                body=str(raw["body"]),
                marking=str(raw["marking"]),
                handling=raw.get("handling"),
                read_receipt=bool(raw.get("read_receipt")),
                attachments=tuple(AttachmentInfo(**a) for a in raw["attachments"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError("The message part is not in the gcx.message/1 format.") from exc


def _addresses(value: Any) -> tuple[Address, ...]:
    # parse_address takes text; anything else in the list would fail inside it
    # with an AttributeError that no caller catches.
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise TypeError("addresses must be an array of strings")
    return tuple(parse_address(a) for a in value)


MAX_HANDLING_CHARS = 2000


def check_composition(
    to: list[str], cc: list[str], subject: str, body: str, attachment_sizes: list[int]
) -> tuple[tuple[Address, ...], tuple[Address, ...]]:
    """Check what a person composed; return the parsed addresses or raise saying what is wrong.

    The checks run in this order and stop at the first refusal; a form that
    wants every problem at once calls the single-field checks below itself.
    """
    parsed = check_recipients(to, cc)
    check_subject(subject)
    check_body(body)
    check_attachment_sizes(attachment_sizes)
    return parsed


def check_recipients(
    to: list[str], cc: list[str]
) -> tuple[tuple[Address, ...], tuple[Address, ...]]:
    if not to:
        raise AddressInvalid("A message needs at least one address in To.")
    if len(to) + len(cc) > MAX_RECIPIENTS:
        raise AddressInvalid(f"A message may have at most {MAX_RECIPIENTS} addresses.")
    return tuple(parse_address(a) for a in to), tuple(parse_address(a) for a in cc)


def check_subject(subject: str) -> None:
    check_text(subject, what="subject")
    if not subject.strip():
        raise InputError("A message needs a subject.")
    if len(subject) > MAX_SUBJECT_CHARS or any(ch in subject for ch in "\r\n\x00"):
        raise InputError(f"The subject must be one line of at most {MAX_SUBJECT_CHARS} characters.")


def check_body(body: str) -> None:
    check_text(body, what="body")
    if len(body) > MAX_BODY_CHARS:
        raise InputError(f"The body is longer than {MAX_BODY_CHARS} characters.")


def check_handling(handling: str | None) -> None:
    if handling is not None and len(handling) > MAX_HANDLING_CHARS:
        raise InputError("Handling instructions must be at most 2,000 characters.")


def check_attachment_sizes(attachment_sizes: list[int]) -> None:
    if len(attachment_sizes) > MAX_ATTACHMENTS:
        raise AttachmentRefused(f"A message may carry at most {MAX_ATTACHMENTS} attachments.")
    for size in attachment_sizes:
        if size > MAX_ATTACHMENT_BYTES:
            raise AttachmentTooLarge(
                "An attachment is larger than 25 MiB; send large files as a bulk file transfer."
            )
    if sum(attachment_sizes) > MAX_TOTAL_ATTACHMENT_BYTES:
        raise AttachmentTooLarge(
            "The attachments add up to more than 100 MiB; send them as a bulk file transfer."
        )
