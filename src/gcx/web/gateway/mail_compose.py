"""Pages: composing and sending a secure message.

Attachments are read from a streamed multipart body (the CSRF token is its
first field, which the frame reads alone) so that a file over the limit is refused in the
form's own words, with what the person typed kept, rather than cut off by
the frame's request size limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

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
from gcx.httpapi import multipart_errors, part_filename, part_media_type, run_sync
from gcx.protocol.marking import Marking, parse_marking
from gcx.protocol.message import (
    MAX_ATTACHMENT_BYTES,
    MAX_TOTAL_ATTACHMENT_BYTES,
    check_body,
    check_handling,
    check_recipients,
    check_subject,
    parse_address,
)
from gcx.web.gateway import parts_of
from gcx.web.gateway.mail_common import (
    MAIL_ROLES,
    MARKING_HINTS,
    MAX_FIELD_BYTES,
    MAX_UPLOAD_BYTES,
    mail_caller,
    organisation_name,
    organisation_names,
)
from gcx.web.site import (
    FormErrors,
    form_stream,
    needs,
    redirect,
    render,
    streamed_form,
    user_of,
)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/compose", compose_form)
    app.router.add_post("/compose", send)


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

    def to_address(self) -> list[str]:
        person = self.to_person.strip()
        if "@" in person:
            # Typed as a whole address: take it as it is.
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


async def _read_compose(request: web.Request) -> tuple[ComposeForm, GcxError | None]:
    """The posted form, and an attachment refusal found while reading it.

    Files over the limit are read to their end without being kept, so the
    fields after them are still there to show again.
    """
    form = ComposeForm()
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
            _set_field(form, part.name, value)
    return form, refusal


def _set_field(form: ComposeForm, name: str, value: str) -> None:
    if name == "read_receipt":
        form.read_receipt = True
    elif name in ("to_org", "to_person", "cc", "subject", "marking"):
        setattr(form, name, value.strip())
    elif name in ("handling", "body"):
        # Line endings as people see them; browsers send CRLF.
        setattr(form, name, value.replace("\r\n", "\n"))


def _problems(form: ComposeForm) -> list[tuple[str, GcxError]]:
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


def _field_for(error: GcxError, form: ComposeForm) -> str:
    """The field a refusal from the send use case itself is about.

    What the form alone can show wrong is found by :func:`_problems` first, so
    what is left is the directory's answer about an organisation, which names
    it first, and attachment limits.
    """
    if error.code.startswith("attachment-"):
        return "attachments"
    if isinstance(error, RecipientUnknown):
        org = error.message.split(" ", 1)[0]
        return "cc" if org != form.to_org and org in form.cc.upper() else "to_org"
    return "body"


def _compose_page(
    request: web.Request,
    form: ComposeForm,
    errors: FormErrors | None = None,
    status: int = 200,
) -> web.Response:
    names = organisation_names(request)
    try:
        directory = parts_of(request).gateway.directory.current()
        connected = {o.code for o in directory.organisations if o.gateway and o.encryption_key}
    except GcxError:
        connected = set()
    organisations = sorted(
        ({"code": code, "name": names[code]} for code in connected),
        key=lambda o: o["name"],
    )
    return render(
        request,
        "gateway/mail_compose.html",
        status=status,
        errors=errors,
        title="New message",
        form=form,
        organisations=organisations,
        marking_hints=MARKING_HINTS,
        markings=[m.value for m in Marking],
        own_name=organisation_name(user_of(request).organisation or "", names),
    )


@needs(*MAIL_ROLES)
async def compose_form(request: web.Request) -> web.StreamResponse:
    mail_caller(request)
    return _compose_page(request, ComposeForm())


@needs(*MAIL_ROLES)
@streamed_form
async def send(request: web.Request) -> web.StreamResponse:
    caller = mail_caller(request)
    form, attachment_refusal = await _read_compose(request)
    problems = _problems(form)
    if attachment_refusal is not None:
        problems.append(("attachments", attachment_refusal))
    if not problems:
        parts = parts_of(request)
        try:
            result = await run_sync(parts.messaging.send, caller, form.compose())
        except GcxError as error:
            problems = [(_field_for(error, form), error)]
        else:
            parts.delivery.wake()
            raise redirect(
                request,
                f"/messages/{result['id']}",
                flash="Your message was sent. Its delivery status below updates as the "
                "receiving gateway answers.",
            )
    errors = FormErrors([(field_id, error.message, error.code) for field_id, error in problems])
    return _compose_page(request, form, errors, problems[0][1].status)
