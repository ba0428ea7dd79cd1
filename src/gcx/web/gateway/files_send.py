"""Page: sending files, as one ordinary multipart form read as a stream.

Sending works without JavaScript (with it, gcx.js shows the upload's
progress). The form is read as a stream, never whole: each file part is
written to a spool file beside the gateway's uploads as it arrives, checked
against the organisation's per-file and per-batch limits on the way, and
then becomes a tus upload through the same use cases the upload API calls
(``create_upload``, ``begin_append``, ``record_offset``) before
``create_transfer`` encrypts and queues it. A browser does not say how large
a file part is before sending it, and an upload is created with its length,
hence the spool; it is renamed into place, not copied, so a file is written
once. The frame's 30 MiB form limit applies only to forms read whole
(``request.post()``), so it does not cap what this page accepts; the
organisation's transfer quotas do.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from gcx.errors import (
    BodyNotUtf8,
    GcxError,
    InputError,
    MarkingMissing,
    MultipartInvalid,
    QuotaExceeded,
    TransferEmpty,
)
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.gateway.transfers import policy as transfer_policy
from gcx.gateway.transfers import sending as transfers
from gcx.gateway.transfers import uploads as transfer_uploads
from gcx.httpapi import multipart_errors, part_filename, part_media_type, run_sync
from gcx.private_files import open_private
from gcx.protocol.marking import parse_marking
from gcx.protocol.message import check_file_name
from gcx.protocol.transfer import MAX_NOTE_CHARS
from gcx.web.gateway import caller_of, parts_of
from gcx.web.site import FormErrors, Site, form_stream, needs, redirect, render, streamed_form
from gcx.web.words import size_text

MAX_FILES = 100
MAX_FIELD_BYTES = 10_000
CHUNK = 1 << 20


def navigation(site: Site) -> None:
    """None of its own: "Files" (gcx.web.gateway.files) links to the form."""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/files/send", send_form)
    app.router.add_post("/files/send", send)


def _recipient_choices(gateway: Gateway, own: str) -> list[dict[str, str]]:
    """Organisations a transfer can go to: listed in the directory with a gateway and a key."""
    directory = gateway.directory.current()
    choices = []
    for org in sorted(directory.organisations, key=lambda o: o.name):
        if org.code == own or not org.encryption_key:
            continue
        if directory.gateway_for_organisation(org.code) is None:
            continue
        choices.append({"code": org.code, "name": org.name})
    return choices


@dataclass
class _Spooled:
    name: str
    media_type: str
    path: Path
    size: int = 0


@dataclass
class _SendForm:
    to: list[str] = field(default_factory=list)
    marking: str = ""
    note: str = ""
    files: list[_Spooled] = field(default_factory=list)

    def discard(self) -> None:
        for spooled in self.files:
            with contextlib.suppress(FileNotFoundError):
                spooled.path.unlink()


def _send_page(
    request: web.Request,
    form: _SendForm,
    *,
    errors: FormErrors | None = None,
    status: int = 200,
) -> web.Response:
    gateway = parts_of(request).gateway
    caller = caller_of(request)
    return render(
        request,
        "gateway/files_send.html",
        status=status,
        errors=errors,
        title="Send files",
        choices=_recipient_choices(gateway, caller.organisation),
        chosen=form.to,
        chosen_marking=form.marking,
        chosen_note=form.note,
        note_limit=MAX_NOTE_CHARS,
    )


@needs("staff")
async def send_form(request: web.Request) -> web.StreamResponse:
    return _send_page(request, _SendForm())


async def _field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(4096):
        data.extend(chunk)
        if len(data) > MAX_FIELD_BYTES:
            raise InputError(f"The form field {str(part.name)[:40]!r} is too long.")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise BodyNotUtf8(f"The form field {str(part.name)[:40]!r} is not valid UTF-8.") from exc


async def _spool(
    part: BodyPartReader, target: _Spooled, limits: transfer_policy.Policy, sent: int
) -> None:
    """Write one file part to its spool file, refusing it once it passes a limit."""
    # The spool file holds the sender's plaintext: owner-only, like every file in the home.
    with open_private(target.path) as handle:
        try:
            while chunk := await part.read_chunk(CHUNK):
                target.size += len(chunk)
                if target.size > limits.max_file_bytes:
                    raise QuotaExceeded(
                        f"{target.name[:80]} is larger than your organisation's limit of "
                        f"{size_text(limits.max_file_bytes)} per file; nothing was sent."
                    )
                if sent + target.size > limits.max_batch_bytes:
                    raise QuotaExceeded(
                        f"These files come to more than your organisation's limit of "
                        f"{size_text(limits.max_batch_bytes)} per transfer; nothing was sent."
                    )
                # A write into the page cache is short; the fsync below is the slow part.
                handle.write(chunk)
        finally:
            handle.flush()
            await run_sync(os.fsync, handle.fileno())


def _limits(gateway: Gateway, caller: Caller, declared: int | None) -> transfer_policy.Policy:
    with gateway.db.read() as conn:
        policy = transfer_policy.policy_for(conn, gateway, caller.organisation)
    if declared is not None:
        # The whole form is at most this size; refuse at once if it cannot fit on disk.
        transfer_policy.check_space(gateway, transfer_policy.transfer_files(gateway), 2 * declared)
    return policy


async def _read_send_form(
    request: web.Request, gateway: Gateway, caller: Caller, form: _SendForm
) -> None:
    reader = await form_stream(request)
    limits = await run_sync(_limits, gateway, caller, request.content_length)
    spool_dir = transfer_policy.transfer_files(gateway).spool_dir()
    with multipart_errors():
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise MultipartInvalid(
                    "The form holds a nested multipart part; send files one by one."
                )
            filename = part_filename(part)
            if part.name == "files" and filename is not None:
                if not filename:
                    await part.release()  # the file input was left empty
                    continue
                if len(form.files) >= MAX_FILES:
                    raise InputError(f"Send at most {MAX_FILES} files at once.")
                spooled = _Spooled(
                    name=filename,
                    media_type=part_media_type(part),
                    # A dot name never matches an upload identifier, so nothing mistakes it
                    # for one.
                    path=spool_dir / f".web-{secrets.token_hex(16)}",
                )
                form.files.append(spooled)
                await _spool(part, spooled, limits, sum(f.size for f in form.files[:-1]))
            elif part.name == "to":
                form.to.append(await _field(part))
            elif part.name == "marking":
                form.marking = await _field(part)
            elif part.name == "note":
                # Browsers send a text area's line breaks as CRLF; the note keeps plain ones.
                form.note = (await _field(part)).replace("\r\n", "\n")
            else:
                await part.release()


def _check_send_form(form: _SendForm) -> FormErrors | None:
    """What the person can put right on the form, all at once, before any upload is made."""
    problems: list[tuple[str, str, str]] = []
    if not [code for code in form.to if code]:
        problems.append(
            ("to", "Choose at least one organisation to send the files to.", "transfer-refused")
        )
    try:
        parse_marking(form.marking)
    except MarkingMissing as exc:
        problems.append(("marking", "Choose the protective marking of the files.", exc.code))
    except GcxError as exc:
        problems.append(("marking", exc.message, exc.code))
    if not form.files:
        problems.append(("files", "Choose one or more files to send.", TransferEmpty.code))
    if len(form.note) > MAX_NOTE_CHARS:
        problems.append(
            (
                "note",
                f"The covering note must be {MAX_NOTE_CHARS:,} characters or fewer.",
                "input-invalid",
            )
        )
    names = [spooled.name for spooled in form.files]
    if len(set(names)) != len(names):
        problems.append(
            ("files", "Two of the files have the same name; rename one.", "transfer-refused")
        )
    for spooled in form.files:
        try:
            check_file_name(spooled.name)
        except GcxError as exc:
            problems.append(("files", exc.message, exc.code))
    return FormErrors(problems) if problems else None


def _into_upload(gateway: Gateway, caller: Caller, spooled: _Spooled) -> str:
    """A spooled file becomes a complete tus upload, as the upload API would leave it."""
    metadata = {"filename": spooled.name, "filetype": spooled.media_type}
    upload_id = transfer_uploads.create_upload(gateway, caller, spooled.size, metadata)
    transfer_uploads.begin_append(gateway, caller, upload_id, 0)
    target = transfer_policy.transfer_files(gateway).upload_path(upload_id)
    os.replace(spooled.path, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)
    transfer_uploads.record_offset(gateway, upload_id, spooled.size)
    return upload_id


def _send(gateway: Gateway, caller: Caller, form: _SendForm) -> dict[str, Any]:
    to = [code for code in form.to if code]
    transfers.preflight(gateway, caller, to, form.marking, [(f.name, f.size) for f in form.files])
    upload_ids: list[str] = []
    try:
        for spooled in form.files:
            upload_ids.append(_into_upload(gateway, caller, spooled))
        return transfers.create_transfer(
            gateway, caller, to=to, marking=form.marking, upload_ids=upload_ids, note=form.note
        )
    except BaseException:
        for upload_id in upload_ids:
            with contextlib.suppress(GcxError):
                transfer_uploads.delete_upload(gateway, caller, upload_id)
        raise


_FIELD_OF = {
    "marking-missing": "marking",
    "marking-unknown": "marking",
    "marking-not-allowed": "marking",
    "transfer-refused": "to",
}


# The CSRF token is the form's first field, read alone by the frame before any file.
@needs("staff")
@streamed_form
async def send(request: web.Request) -> web.StreamResponse:
    parts = parts_of(request)
    caller = caller_of(request)
    form = _SendForm()
    try:
        try:
            await _read_send_form(request, parts.gateway, caller, form)
            errors = _check_send_form(form)
            if errors is not None:
                return _send_page(request, form, errors=errors, status=400)
            result = await run_sync(_send, parts.gateway, caller, form)
        except GcxError as exc:
            field_id = _FIELD_OF.get(exc.code, "files")
            return _send_page(request, form, errors=FormErrors.of(exc, field_id), status=exc.status)
    finally:
        form.discard()
    parts.exchange.wake()
    count = len(result["files"])
    raise redirect(
        request,
        f"/files/{result['id']}",
        flash=f"{count} {'file is' if count == 1 else 'files are'} encrypted and on the way.",
    )
