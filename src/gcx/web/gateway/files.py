"""Pages: bulk files for staff: transfers sent and received, sending, status, download.

Sending is one ordinary multipart form, so it works without JavaScript (with
it, gcx.js shows the upload's progress). The form is read as a stream, never
whole: each file part is written to a spool file beside the gateway's uploads
as it arrives, checked against the organisation's per-file and per-batch
limits on the way, and then becomes a tus upload through the same use cases
the upload API calls (``create_upload``, ``begin_append``, ``record_offset``)
before ``create_transfer`` encrypts and queues it. A browser does not say how
large a file part is before sending it, and an upload is created with its
length, hence the spool; it is renamed into place, not copied, so a file is
written once. The frame's 30 MiB form limit applies only to forms read whole
(``request.post()``), so it does not cap what this page accepts; the
organisation's transfer quotas do.

Downloads decrypt segment by segment as the download API does, and record
the download in the audit log before the first byte is sent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import BodyPartReader, web
from multidict import MultiDict

from gcx.errors import (
    BodyNotUtf8,
    GcxError,
    InputError,
    MarkingMissing,
    MultipartInvalid,
    QuotaExceeded,
    TransferEmpty,
)
from gcx.gateway.messages.finding import MailFilter
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.gateway.transfers import policy as transfer_policy
from gcx.gateway.transfers import reading as transfer_reading
from gcx.gateway.transfers import sending as transfers
from gcx.gateway.transfers import uploads as transfer_uploads
from gcx.gateway.transfers.api import stream_incoming_file
from gcx.gateway.transfers.downloads import downloaded
from gcx.gateway.transfers.listing import list_transfers
from gcx.httpapi import multipart_errors, part_filename, part_media_type, run_sync
from gcx.private_files import open_private
from gcx.protocol.marking import Marking, highest, parse_marking
from gcx.protocol.message import check_file_name
from gcx.protocol.transfer import MAX_NOTE_CHARS
from gcx.store.schema_lists import transfer_downloads
from gcx.store.schema_transfers import transfers as transfer_rows
from gcx.web.gateway import caller_of, parts_of
from gcx.web.gateway.evidence_pages import TRANSFER_RECEIPT_WORDS
from gcx.web.gateway.files_received import day_start, received_details, sender_text
from gcx.web.gateway.mail_lists import page_link, read_filter
from gcx.web.site import (
    FormErrors,
    Site,
    form_stream,
    needs,
    redirect,
    render,
    streamed_form,
)
from gcx.web.words import moment

MAX_FILES = 100
# Transfers listed a page at a time (sent and received together, newest first).
PAGE_SIZE = 50
MAX_FIELD_BYTES = 10_000
CHUNK = 1 << 20

DELIVERY_WORDS = {
    "queued": "Waiting to send",
    "sending": "Sending",
    "retrying": "Trying again",
    "delivered": "Delivered",
    "failed": "Failed",
    "expired": "Expired",
}
TRANSFER_WORDS = {
    "sending": "Sending",
    "receiving": "Arriving",
    "complete": "Complete",
    "failed": "Failed",
}


# -- presentation -----------------------------------------------------------------------


def size_text(size: int | None) -> str:
    if size is None:
        return ""
    for unit, scale in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return "1 byte" if size == 1 else f"{size} bytes"


def _organisation_names(gateway: Gateway) -> dict[str, str]:
    directory = gateway.directory.current()
    return {org.code: org.name for org in directory.organisations}


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


def _page_marking(markings: list[str]) -> str:
    if not markings:
        return Marking.OFFICIAL.value
    return highest(Marking(m) for m in markings).value


# -- the list ---------------------------------------------------------------------------


def _conditions(caller: Caller, wanted: MailFilter) -> list[sa.ColumnElement[bool]]:
    """The Files page's filters as SQL on the transfers table (see mail_lists)."""
    conditions: list[sa.ColumnElement[bool]] = []
    if wanted.marking:
        conditions.append(transfer_rows.c.marking == wanted.marking)
    if wanted.organisation:
        # Sent to it or received from it. Recipients are a JSON list of codes
        # (letters, digits, hyphens), so the quoted code matches one element.
        conditions.append(
            sa.or_(
                sa.and_(
                    transfer_rows.c.direction == "in",
                    transfer_rows.c.sender_org == wanted.organisation,
                ),
                sa.and_(
                    transfer_rows.c.direction == "out",
                    sa.cast(transfer_rows.c.recipients, sa.Text).like(f'%"{wanted.organisation}"%'),
                ),
            )
        )
    if wanted.since:
        conditions.append(transfer_rows.c.created_at >= day_start(wanted.since))
    if wanted.until:
        conditions.append(
            transfer_rows.c.created_at < day_start(wanted.until + dt.timedelta(days=1))
        )
    if wanted.unread:
        conditions.append(transfer_rows.c.direction == "in")
        conditions.append(
            ~sa.exists().where(
                transfer_downloads.c.transfer_id == transfer_rows.c.id,
                transfer_downloads.c.organisation == caller.organisation,
            )
        )
    return conditions


@needs("staff")
async def files_page(request: web.Request) -> web.StreamResponse:
    gateway = parts_of(request).gateway
    caller = caller_of(request)
    before = request.query.get("before")
    form = read_filter(
        MultiDict((k, v) for k, v in request.query.items() if k not in ("before", "after"))
    )
    items: list[dict[str, Any]] = []
    older = None
    if form.errors is None:
        page = await run_sync(
            list_transfers,
            gateway,
            caller,
            PAGE_SIZE,
            before,
            _conditions(caller, form.wanted),
        )
        items, older = page.items, page.older
    names = await run_sync(_organisation_names, gateway)
    seen = await run_sync(
        downloaded, gateway, caller.organisation, [i["id"] for i in items if i["direction"] == "in"]
    )
    for item in items:
        item["when"] = moment(item["created_at"])
        item["size"] = size_text(item["bytes"])
        item["state_words"] = TRANSFER_WORDS.get(item["state"], item["state"])
        item["to_names"] = ", ".join(names.get(o, o) for o in item["recipients"])
        user, _, org = item["sender"].partition("@")
        item["from_text"] = sender_text(user, org, names)
        item["new"] = item["direction"] == "in" and item["id"] not in seen
    return render(
        request,
        "gateway/files_list.html",
        status=400 if form.errors else 200,
        errors=form.errors,
        title="Files",
        sent=[i for i in items if i["direction"] == "out"],
        received=[i for i in items if i["direction"] == "in"],
        marking=_page_marking([i["marking"] for i in items]),
        form=form,
        organisations=[
            {"code": code, "name": name}
            for code, name in sorted(names.items(), key=lambda item: item[1])
            if code != caller.organisation
        ],
        path="/files",
        paging={
            "first": page_link("/files", form.values) if before else None,
            "first_text": "Newest files",
            "next": page_link("/files", form.values, before=older) if older else None,
            "next_text": "Older files",
        },
    )


# -- sending ----------------------------------------------------------------------------


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


# -- status -------------------------------------------------------------------------------


def _status(gateway: Gateway, caller: Caller, transfer_id: str) -> dict[str, Any]:
    """The API's status of a transfer, with what the page shows worked out."""
    status = transfer_reading.transfer_status(gateway, caller, transfer_id)
    names = _organisation_names(gateway)
    receipts = {r["organisation"]: r for r in status["receipts"]}
    recipients = []
    for org in status["recipients"]:
        delivery = next(
            (d for d in status.get("deliveries", []) if org in d["organisations"]), None
        )
        receipt = receipts.get(org)
        recipients.append(
            {
                "code": org,
                "name": names.get(org, org),
                "state": delivery["state"] if delivery else "",
                "state_words": DELIVERY_WORDS.get(delivery["state"], delivery["state"])
                if delivery
                else "",
                "attempts": delivery["attempts"] if delivery else 0,
                "last_error": (delivery["last_error"] or {}).get("message") if delivery else None,
                "receipt_at": moment(receipt["received_at"]) if receipt else "",
            }
        )
    status["recipient_rows"] = recipients
    for receipt in status.get("receipts") or []:
        receipt["organisation_name"] = names.get(receipt["organisation"], receipt["organisation"])
    # Nothing changes once a transfer is complete or failed, so the page stops asking.
    status["final"] = status["state"] in ("complete", "failed")
    status["state_words"] = TRANSFER_WORDS.get(status["state"], status["state"])
    status["when"] = moment(status["created_at"])
    status["completed"] = moment(status.get("completed_at"))
    status["kept_until"] = moment(status.get("retain_until"))
    status["size"] = size_text(status["bytes"])
    status.update(received_details(gateway, caller, status))
    for described in status.get("files") or []:
        described["size_text"] = size_text(described["size"])
    return status


def _transfer_id(request: web.Request) -> str:
    return request.match_info["id"]


@needs("staff")
async def status_page(request: web.Request) -> web.StreamResponse:
    status = await run_sync(
        _status, parts_of(request).gateway, caller_of(request), _transfer_id(request)
    )
    return render(
        request,
        "gateway/files_status.html",
        title="Files sent" if status["direction"] == "out" else "Files received",
        transfer=status,
        marking=status["marking"],
        receipt_words=TRANSFER_RECEIPT_WORDS,
    )


@needs("staff")
async def status_fragment(request: web.Request) -> web.StreamResponse:
    """The changing part of the status page, for gcx.js to refresh in place."""
    status = await run_sync(
        _status, parts_of(request).gateway, caller_of(request), _transfer_id(request)
    )
    return render(request, "gateway/files_status_live.html", transfer=status, marking=None)


# -- download -----------------------------------------------------------------------------


@needs("staff")
async def download(request: web.Request) -> web.StreamResponse:
    gateway = parts_of(request).gateway
    caller = caller_of(request)
    transfer_id = _transfer_id(request)
    text = request.match_info["n"]
    if not text.isdigit():
        raise InputError("The file number must be a whole number.")
    index = int(text)
    return await stream_incoming_file(request, gateway, caller, transfer_id, index)


def navigation(site: Site) -> None:
    site.nav(text="Files", href="/files", roles=("staff",))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/files", files_page)
    app.router.add_get("/files/send", send_form)
    app.router.add_post("/files/send", send)
    app.router.add_get("/files/{id:[0-9a-f]{32}}", status_page)
    app.router.add_get("/files/{id:[0-9a-f]{32}}/live", status_fragment)
    app.router.add_get("/files/{id:[0-9a-f]{32}}/files/{n:[0-9]{1,6}}", download)
