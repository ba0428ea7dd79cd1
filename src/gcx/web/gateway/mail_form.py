"""The compose form: what a person typed, how it is read from the post, and its checks.

Shared by the compose page (:mod:`gcx.web.gateway.mail_compose`), drafts
(:mod:`gcx.web.gateway.mail_drafts`), the "Check your message" page
(:mod:`gcx.web.gateway.mail_check`) and reply and forward
(:mod:`gcx.web.gateway.mail_reply`), so that each checks a message by the
same rules, and none of them imports another.

Attachments are read from a streamed multipart body (the CSRF token is its
first field, which the frame reads alone) so that a file over the limit is
refused in the form's own words, with what the person typed kept, rather
than cut off by the frame's request size limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from gcx.errors import (
    AttachmentTooLarge,
    BodyNotUtf8,
    BodyTooLarge,
    GcxError,
    MultipartInvalid,
    RecipientUnknown,
)
from gcx.gateway.messages.messaging import Compose
from gcx.httpapi import multipart_errors, part_filename, part_media_type
from gcx.protocol.marking import parse_marking
from gcx.protocol.message import (
    MAX_ATTACHMENT_BYTES,
    MAX_TOTAL_ATTACHMENT_BYTES,
    check_body,
    check_handling,
    check_recipients,
    check_subject,
    parse_address,
)
from gcx.web.gateway.mail_common import MAX_FIELD_BYTES, MAX_UPLOAD_BYTES
from gcx.web.site import FormErrors, form_stream

# The label each field has on the form: the error summary names the field as
# the person sees it, not as the program calls it.
LABELS = {
    "to_org": "To",
    "to_person": "Person or shared mailbox",
    "cc": "Copy to",
    "subject": "Subject",
    "marking": "Protective marking",
    "handling": "Handling instructions",
    "body": "Message",
    "attachments": "Attachments",
}
_ID = re.compile(r"[0-9a-f]{32}")
SOURCE_KINDS = ("reply", "forward")


@dataclass
class ComposeForm:
    """What the person typed, kept to show again when something is refused."""

    to_org: str = ""
    to_person: str = ""
    cc: str = ""
    subject: str = ""
    marking: str = ""
    handling: str = ""
    body: str = ""
    read_receipt: bool = False
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)
    # The message replied to or forwarded (its envelope id), and which.
    source: str = ""
    source_kind: str = ""
    # Draft attachment positions the person ticked to remove.
    remove: list[int] = field(default_factory=list)
    action: str = "check"

    def to_address(self) -> list[str]:
        person = self.to_person.strip()
        if "@" in person:
            # Typed (or picked from the address book) as a whole address: take it as it is.
            return [person]
        if person and self.to_org:
            return [f"{person.lower()}@{self.to_org}"]
        if person:
            return [person]
        return [self.to_org] if self.to_org else []

    def cc_addresses(self) -> list[str]:
        return [a.strip() for a in re.split(r"[,;\s]+", self.cc) if a.strip()]

    def compose(self) -> Compose:
        return Compose(
            to=self.to_address(),
            cc=self.cc_addresses(),
            subject=self.subject,
            body=self.body,
            marking=self.marking or None,
            handling=self.handling.strip() or None,
            read_receipt=self.read_receipt,
            attachments=self.attachments,
        )

    def fields(self) -> dict[str, Any]:
        """What a draft keeps, besides its attachments."""
        return {
            "to_org": self.to_org,
            "to_person": self.to_person,
            "cc": self.cc,
            "subject": self.subject,
            "marking": self.marking,
            "handling": self.handling,
            "body": self.body,
            "read_receipt": self.read_receipt,
            "source": self.source,
            "source_kind": self.source_kind,
        }

    @classmethod
    def from_fields(cls, raw: dict[str, Any]) -> ComposeForm:
        form = cls()
        for name, value in raw.items():
            if name == "read_receipt":
                form.read_receipt = value is True
            elif name in form.fields() and isinstance(value, str):
                setattr(form, name, value)
        return form

    def prefill(self, to: str) -> None:
        """Put an address chosen in the address book in To."""
        to = to.strip()[:200]
        if "@" in to:
            self.to_org = to.rpartition("@")[2]
            self.to_person = to.rpartition("@")[0]
        else:
            self.to_org = to


async def read_compose(
    request: web.Request,
) -> tuple[ComposeForm, str, GcxError | None]:
    """The posted form, the draft it edits (if any), and an attachment refusal found.

    Files over the limit are read to their end without being kept, so the
    fields after them are still there to show again.
    """
    form = ComposeForm()
    draft_id = ""
    refusal: GcxError | None = None
    kept = seen = 0
    reader = await form_stream(request)
    with multipart_errors():
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                raise MultipartInvalid("Nested or unnamed multipart parts are not accepted.")
            filename = part_filename(part)
            if filename is not None:
                data = bytearray()
                size = 0
                while chunk := await part.read_chunk(1 << 16):
                    size += len(chunk)
                    seen += len(chunk)
                    if seen > MAX_UPLOAD_BYTES:
                        raise BodyTooLarge(
                            "The attachments add up to far more than 100 MiB; send large files "
                            "as a bulk file transfer."
                        )
                    if size <= MAX_ATTACHMENT_BYTES and kept + size <= MAX_TOTAL_ATTACHMENT_BYTES:
                        data += chunk
                if not filename and not size:
                    continue  # the file field, left empty
                if size > MAX_ATTACHMENT_BYTES:
                    refusal = refusal or AttachmentTooLarge(
                        f"{filename[:80]} is larger than 25 MiB; send large files as a bulk "
                        "file transfer."
                    )
                    continue
                if kept + size > MAX_TOTAL_ATTACHMENT_BYTES:
                    refusal = refusal or AttachmentTooLarge(
                        "The attachments add up to more than 100 MiB; send them as a bulk file "
                        "transfer."
                    )
                    continue
                kept += size
                form.attachments.append((filename, part_media_type(part), bytes(data)))
                continue
            raw = await part.read()
            if len(raw) > MAX_FIELD_BYTES:
                raise BodyTooLarge(f"The field {part.name[:40]!r} is too long.")
            try:
                value = bytes(raw).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BodyNotUtf8(f"The field {part.name[:40]!r} is not valid UTF-8.") from exc
            if part.name == "draft":
                draft_id = value.strip() if _ID.fullmatch(value.strip()) else ""
            else:
                _set_field(form, part.name, value)
    return form, draft_id, refusal


def _set_field(form: ComposeForm, name: str, value: str) -> None:
    if name == "read_receipt":
        form.read_receipt = True
    elif name in ("to_org", "to_person", "cc", "subject", "marking", "action"):
        setattr(form, name, value.strip())
    elif name in ("handling", "body"):
        # Line endings as people see them; browsers send CRLF.
        setattr(form, name, value.replace("\r\n", "\n"))
    elif name == "source" and _ID.fullmatch(value.strip()):
        form.source = value.strip()
    elif name == "source_kind" and value in SOURCE_KINDS:
        form.source_kind = value
    elif name == "remove_attachment" and value.isdigit() and len(value) < 6:
        form.remove.append(int(value))


def problems(form: ComposeForm) -> list[tuple[str, GcxError]]:
    """Every field the person must put right, in the order the form shows them.

    The send use case checks the same rules and stops at the first; running
    each field's check here lets the error summary list them all at once, as
    the Design System's pattern asks.
    """
    found: list[tuple[str, GcxError]] = []

    def check(field_id: str, rule: Callable[[], object]) -> None:
        try:
            rule()
        except GcxError as error:
            found.append((field_id, error))

    to, cc = form.to_address(), form.cc_addresses()
    check("to_person" if form.to_person else "to_org", lambda: check_recipients(to, []))
    if found:
        check("cc", lambda: [parse_address(address) for address in cc])
    else:
        # To is sound, so anything check_recipients now refuses is about the copies.
        check("cc", lambda: check_recipients(to, cc))
    check("subject", lambda: check_subject(form.subject))
    check("marking", lambda: parse_marking(form.marking or None))
    check("handling", lambda: check_handling(form.handling.strip() or None))
    check("body", lambda: check_body(form.body))
    return found


def field_for(error: GcxError, form: ComposeForm) -> str:
    """The field a refusal from the send use case itself is about.

    What the form alone can show wrong is found by :func:`problems` first, so
    what is left is the directory's answer about an organisation, which names
    it first, and attachment limits.
    """
    if error.code.startswith("attachment-"):
        return "attachments"
    if error.code == "marking-lowered":
        return "marking"
    if isinstance(error, RecipientUnknown):
        org = error.message.split(" ", 1)[0]
        return "cc" if org != form.to_org and org in form.cc.upper() else "to_org"
    return "body"


def form_errors(found: list[tuple[str, GcxError]]) -> FormErrors:
    """The refusals, each introduced by the label of its field as the form shows it."""
    return FormErrors(
        [
            (field_id, f"{LABELS.get(field_id, 'Message')}: {error.message}", error.code)
            for field_id, error in found
        ]
    )
