"""Pages: a security officer answering one control, and evidence going up and down.

Each control has a page of its own: the requirement and guidance, what an
assessor looks for beside it (the model answer and the assessor's guidance,
in a "details" component so the officer can check their answer against it),
the answer form and the evidence attached to the control. Saving moves on to
the next control still to answer, so the task list is only needed to jump.

Evidence is a multipart upload read as a stream (the form's CSRF token is in
its action's query string): the frame never buffers it, and the use case
refuses a file that is too large or not what it claims, as it does for the
API.
"""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from gcx.compliance.catalogue import Control, Level
from gcx.errors import GcxError, InputError, NotFound
from gcx.httpapi import (
    attachment_disposition,
    multipart_errors,
    part_filename,
    part_media_type,
    run_sync,
)
from gcx.web.central import principal_of
from gcx.web.central.statements_common import (
    MARKING,
    Loaded,
    choice_label,
    load_statement,
    service,
    state_words,
)
from gcx.web.site import (
    FormErrors,
    field_text,
    form_of,
    form_stream,
    needs,
    redirect,
    render,
    streamed_form,
)
from gcx.web.words import size_text

# An evidence file larger than the limit is read only this far past it before the
# rest is discarded, so a huge upload cannot keep a worker busy for long.
DRAIN_LIMIT = 64 * 1024 * 1024


def _control(loaded: Loaded, control_id: str) -> Control:
    control = loaded.catalogue.control(control_id)
    if control is None:
        raise NotFound(
            f"{control_id[:20]} is not a control of catalogue version {loaded.catalogue.version}."
        )
    return control


def control_page(
    request: web.Request,
    loaded: Loaded,
    control: Control,
    *,
    errors: FormErrors | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
) -> web.Response:
    answer = loaded.answers.get(control.id) or {}
    if values is None:
        target = str(answer.get("plan_target") or "")
        year, month, day = [*target.split("-"), "", "", ""][:3] if target else ("", "", "")
        values = {
            "choice": answer.get("choice") or "",
            "answer": answer.get("answer") or "",
            "plan": answer.get("plan") or "",
            "plan-target-day": day,
            "plan-target-month": month,
            "plan-target-year": year,
        }
    ids = list(loaded.catalogue.control_ids)
    position = ids.index(control.id)
    area = next(a for a in loaded.catalogue.areas if a.id == control.area)
    return render(
        request,
        "central/statements_control.html",
        title=f"{control.id} {control.title}",
        marking=MARKING,
        errors=errors,
        status=status,
        s=loaded.view,
        # Sent for sign-off (or beyond): shown as it stands, with no form to change it.
        read_only=not loaded.editable,
        state_words=state_words(loaded.state),
        chosen_label=choice_label(control, answer.get("choice")),
        control=control,
        area=area,
        position=position + 1,
        total=len(ids),
        answer=answer,
        values=values,
        should=control.level is Level.SHOULD,
        evidence=[
            {**e, "size_text": size_text(e["size"])} for e in loaded.evidence_for(control.id)
        ],
        change_requests=[
            c["request"] for c in loaded.change_requests() if c["control"] == control.id
        ],
        choice_items=[
            {"value": o.value, "text": o.label}
            for o in (control.choices.options if control.choices else ())
        ],
    )


@needs("security-officer")
async def show_control(request: web.Request) -> web.StreamResponse:
    loaded = await load_statement(request, request.match_info["id"])
    return control_page(request, loaded, _control(loaded, request.match_info["control"]))


def _plan_target(form: MultiDictProxy[Any]) -> str | None:
    """The date input's three fields as YYYY-MM-DD; the use case checks it is a date."""
    day, month, year = (
        field_text(form, f"plan-target-{part}", 4) for part in ("day", "month", "year")
    )
    if not (day or month or year):
        return None
    return f"{year.zfill(4)}-{month.zfill(2)}-{day.zfill(2)}"


def _field_for(exc: GcxError) -> str:
    """Which field of the answer form a refusal is about, so its message sits beside it."""
    message = exc.message.lower()
    if "choices" in exc.details or "choice" in message:
        return "choice"
    if "plan" in message or "target" in message:
        return "plan"
    return "answer"


@needs("security-officer")
async def save_answer(request: web.Request) -> web.StreamResponse:
    statement_id, control_id = request.match_info["id"], request.match_info["control"]
    form = await form_of(request)
    values = {
        name: field_text(form, name, 20_000)
        for name in (
            "choice",
            "answer",
            "plan",
            "plan-target-day",
            "plan-target-month",
            "plan-target-year",
        )
    }
    plan = values["plan"] or None
    attached = form.get("evidence")
    try:
        if isinstance(attached, FileField) and attached.filename:
            # A file chosen and "Save and continue" pressed: the person meant both.
            await run_sync(
                service(request).add_evidence,
                principal_of(request),
                statement_id,
                filename=attached.filename,
                media_type=attached.content_type or "",
                data=attached.file.read(service(request).settings.evidence_max_bytes + 1),
                controls=[control_id],
            )
    except GcxError as exc:
        loaded = await load_statement(request, statement_id)
        return control_page(
            request,
            loaded,
            _control(loaded, control_id),
            errors=FormErrors.of(exc, "evidence"),
            status=exc.status,
            values=values,
        )
    try:
        await run_sync(
            service(request).answer,
            principal_of(request),
            statement_id,
            control_id,
            answer=values["answer"],
            choice=values["choice"] or None,
            plan=plan,
            plan_target=_plan_target(form),
        )
    except GcxError as exc:
        loaded = await load_statement(request, statement_id)
        return control_page(
            request,
            loaded,
            _control(loaded, control_id),
            errors=FormErrors.of(exc, _field_for(exc)),
            status=exc.status,
            values=values,
        )
    loaded = await load_statement(request, statement_id)
    if _control(loaded, control_id).unchosen(loaded.answers.get(control_id)):
        raise redirect(
            request,
            f"/statements/{statement_id}/controls/{control_id}",
            flash=f"{control_id} saved, but not answered yet: choose an answer to its question.",
        )
    following = loaded.next_to_answer(control_id)
    if following is None:
        raise redirect(
            request,
            f"/statements/{statement_id}",
            flash=f"{control_id} saved. Every control is answered: you can submit the statement "
            "for sign-off.",
        )
    raise redirect(
        request, f"/statements/{statement_id}/controls/{following}", flash=f"{control_id} saved."
    )


ANSWER_FIELDS = (
    "choice",
    "answer",
    "plan",
    "plan-target-day",
    "plan-target-month",
    "plan-target-year",
)
# The answer's fields are text of at most 20,000 characters; a part larger than
# this is not an answer typed in the form, and is read no further.
_MAX_FIELD_BYTES = 4 * 20_000 + 1024


async def _read_upload(
    request: web.Request, limit: int, typed: dict[str, str]
) -> tuple[str, str, bytes]:
    """The file in the multipart body (its name, declared type and bytes), and the answer typed.

    The answer's fields come before the file in the form; they are put in
    ``typed`` so the answer typed and not yet saved is saved with the upload.
    A file past ``limit`` comes back as ``limit + 1`` bytes, so the use case
    refuses it as too large with its own code, as the API does.
    """
    reader = await form_stream(request)
    with multipart_errors():
        while True:
            part = await reader.next()
            if part is None:
                return "", "", b""
            if isinstance(part, BodyPartReader) and part.name == "evidence":
                break
            if isinstance(part, BodyPartReader) and part.name in ANSWER_FIELDS:
                value = bytearray()
                while len(value) <= _MAX_FIELD_BYTES and (chunk := await part.read_chunk(8192)):
                    value += chunk
                typed[part.name] = value.decode("utf-8", errors="replace").strip()[:20_000]
            if isinstance(part, BodyPartReader):
                await part.release()
        filename = part_filename(part) or ""
        media_type = part_media_type(part) if part.headers.get(hdrs.CONTENT_TYPE) else ""
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk(256 * 1024):
            size += len(chunk)
            if size > limit:
                while size < DRAIN_LIMIT and (chunk := await part.read_chunk(256 * 1024)):
                    size += len(chunk)
                return filename, media_type, b"\0" * (limit + 1)
            chunks.append(chunk)
    return filename, media_type, b"".join(chunks)


@streamed_form
@needs("security-officer")
async def upload_evidence(request: web.Request) -> web.StreamResponse:
    statement_id, control_id = request.match_info["id"], request.match_info["control"]
    svc = service(request)
    typed: dict[str, str] = {}
    try:
        limit = svc.settings.evidence_max_bytes
        filename, media_type, data = await _read_upload(request, limit, typed)
        if not filename:
            raise InputError("Choose a file to upload as evidence.")
        await run_sync(
            svc.add_evidence,
            principal_of(request),
            statement_id,
            filename=filename,
            media_type=media_type,
            data=data,
            controls=[control_id],
        )
    except GcxError as exc:
        # The answer typed is shown again as typed, so a refused file loses nothing.
        loaded = await load_statement(request, statement_id)
        return control_page(
            request,
            loaded,
            _control(loaded, control_id),
            errors=FormErrors.of(exc, "evidence"),
            status=exc.status,
            values=_typed_values(typed) if typed else None,
        )
    note = ""
    loaded = await load_statement(request, statement_id)
    if typed and _typed_differs(loaded, control_id, typed):
        try:
            await _save_typed(request, statement_id, control_id, typed)
            note = " Your answer was saved too."
        except GcxError as exc:
            return control_page(
                request,
                loaded,
                _control(loaded, control_id),
                errors=FormErrors.of(exc, _field_for(exc)),
                status=exc.status,
                values=_typed_values(typed),
            )
    raise redirect(
        request,
        f"/statements/{statement_id}/controls/{control_id}",
        flash=f"{filename} uploaded as evidence for {control_id}.{note}",
    )


def _typed_values(typed: dict[str, str]) -> dict[str, str]:
    return {name: typed.get(name, "") for name in ANSWER_FIELDS}


def _typed_differs(loaded: Loaded, control_id: str, typed: dict[str, str]) -> bool:
    """Whether the answer posted with an upload is not the one saved (so it must be kept)."""
    saved = loaded.answers.get(control_id) or {}
    if not typed.get("answer"):
        return False  # nothing typed to keep; an empty answer is not saved over a real one
    return (
        typed.get("answer", "") != (saved.get("answer") or "")
        or (typed.get("choice") or None) != saved.get("choice")
        or (typed.get("plan") or None) != saved.get("plan")
    )


async def _save_typed(
    request: web.Request, statement_id: str, control_id: str, typed: dict[str, str]
) -> None:
    day, month, year = (typed.get(f"plan-target-{p}", "") for p in ("day", "month", "year"))
    target = f"{year.zfill(4)}-{month.zfill(2)}-{day.zfill(2)}" if (day or month or year) else None
    await run_sync(
        service(request).answer,
        principal_of(request),
        statement_id,
        control_id,
        answer=typed.get("answer", ""),
        choice=typed.get("choice") or None,
        plan=typed.get("plan") or None,
        plan_target=target,
    )


@needs("security-officer", "sign-off", "assessor", "operator")
async def download_evidence(request: web.Request) -> web.StreamResponse:
    meta, data = await run_sync(
        service(request).evidence_content, principal_of(request), request.match_info["id"]
    )
    return web.Response(
        body=data,
        content_type=meta["media_type"],
        headers={
            "Content-Disposition": attachment_disposition(meta["filename"]),
            "X-Content-SHA256": meta["sha256"],
        },
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/statements/{id}/controls/{control}", show_control)
    app.router.add_post("/statements/{id}/controls/{control}", save_answer)
    app.router.add_post("/statements/{id}/controls/{control}/evidence", upload_evidence)
    app.router.add_get("/evidence/{id}", download_evidence)
