"""Central's Code of Connection API, under ``/api/v1/compliance``.

Authentication is ``Authorization: Bearer`` with an operator token (``gcxo_``)
or a compliance account token (``gcxc_``); the roles on the account decide
what it may do, and the use cases in :mod:`gcx.central.compliance` enforce
them; a handler that reads a body checks the role before it, so a caller
without the role is refused 403 whatever it sends, not 400 for the body.
Gateways submit signed self-check reports without a token: the
signature by the organisation's registered key is the authentication.

The API is shaped for the browser interface to come: every resource has a
GET that returns everything a page needs (a statement comes with its
catalogue's controls, model answers and assessor guidance beside the
answers), and every refusal is the usual ``{"code", "message"}``.

The module passes 400 lines on purpose: it is one route table (:data:`ROUTES`,
which the OpenAPI document and its tests read) over some forty handlers of a
few lines each, and splitting the table from its handlers would not make
either easier to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gcx.central.api_keys import COMPLIANCE, SERVICE
from gcx.central.compliance import ComplianceService, Principal, require_officer, require_role
from gcx.compliance.catalogue import to_oscal_catalog
from gcx.compliance.openapi import openapi_document
from gcx.compliance.statement import Role, StatementEvent, require_step_role
from gcx.errors import InputError, RoleRequired
from gcx.httpapi import bearer_token, json_body, read_body, require_str, run_sync
from gcx.store import parse_iso

log = logging.getLogger("gcx.central.compliance")
PREFIX = "/api/v1/compliance"
SELFCHECK_LIMIT = 256 * 1024


def _svc(request: web.Request) -> ComplianceService:
    return request.app[COMPLIANCE]


async def _who(request: web.Request) -> Principal:
    return await run_sync(
        _svc(request).authenticate,
        bearer_token(request),
        request=f"{request.method} {request.path}",
    )


def _optional_str(body: dict[str, Any], key: str, max_len: int = 20_000) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise InputError(f"The field {key!r} must be a string of at most {max_len} characters.")
    return value


def _instant(text: str, key: str) -> dt.datetime:
    try:
        value = parse_iso(text) if "T" in text else parse_iso(f"{text}T23:59:59Z")
    except ValueError as exc:
        raise InputError(f"{key} must be a date (YYYY-MM-DD) or an ISO 8601 instant.") from exc
    if value.tzinfo is None:
        raise InputError(f"{key} must carry a time zone (end it with Z).")
    return value


# -- handlers ---------------------------------------------------------------------


async def me(request: web.Request) -> web.Response:
    return web.json_response((await _who(request)).to_dict())


async def list_catalogues(request: web.Request) -> web.Response:
    await _who(request)
    return web.json_response(await run_sync(_svc(request).list_catalogues))


async def get_catalogue(request: web.Request) -> web.Response:
    await _who(request)
    catalogue = await run_sync(_svc(request).catalogue, request.match_info["version"])
    if request.query.get("format") == "oscal":
        return web.json_response(to_oscal_catalog(catalogue, uuid_namespace="urn:gcx:coco"))
    return web.json_response(catalogue.model_dump(mode="json", exclude_none=True))


async def publish_catalogue(request: web.Request) -> web.Response:
    who = await _who(request)
    text = (await read_body(request, 4 << 20)).decode("utf-8", errors="replace")
    return web.json_response(await run_sync(_svc(request).publish_catalogue, who, text), status=201)


async def add_account(request: web.Request) -> web.Response:
    who = await _who(request)
    require_role(who, Role.OPERATOR)
    body = await json_body(request)
    roles = body.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InputError("The field 'roles' must be a list of role names.")
    token = await run_sync(
        _svc(request).add_account,
        who,
        require_str(body, "name", max_len=64),
        roles,
        _optional_str(body, "organisation", 16),
    )
    return web.json_response({"name": body["name"], "token": token}, status=201)


async def list_accounts(request: web.Request) -> web.Response:
    who = await _who(request)
    return web.json_response(await run_sync(_svc(request).list_accounts, who))


async def revoke_account(request: web.Request) -> web.Response:
    who = await _who(request)
    await run_sync(_svc(request).revoke_account, who, request.match_info["name"])
    return web.json_response({"revoked": request.match_info["name"]})


async def create_statement(request: web.Request) -> web.Response:
    who = await _who(request)
    require_role(who, Role.SECURITY_OFFICER)
    body = await json_body(request)
    result = await run_sync(
        _svc(request).create_statement, who, require_str(body, "organisation", max_len=16)
    )
    return web.json_response(result, status=201)


async def list_statements(request: web.Request) -> web.Response:
    who = await _who(request)
    return web.json_response(
        await run_sync(
            _svc(request).list_statements,
            who,
            organisation=request.query.get("organisation"),
            state=request.query.get("state"),
        )
    )


async def get_statement(request: web.Request) -> web.Response:
    who = await _who(request)
    return web.json_response(await run_sync(_svc(request).statement, who, request.match_info["id"]))


async def put_answer(request: web.Request) -> web.Response:
    who = await _who(request)
    require_role(who, Role.SECURITY_OFFICER)
    body = await json_body(request)
    result = await run_sync(
        _svc(request).answer,
        who,
        request.match_info["id"],
        request.match_info["control"],
        answer=require_str(body, "answer", max_len=20_000),
        choice=_optional_str(body, "choice", 40),
        plan=_optional_str(body, "plan"),
        plan_target=_optional_str(body, "plan_target", 10),
    )
    return web.json_response(result)


async def post_evidence(request: web.Request) -> web.Response:
    who = await _who(request)
    service = _svc(request)
    limit = service.settings.evidence_max_bytes
    # Read one byte past the limit, so that an oversized file is refused by the
    # use case with its own code rather than by the transport.
    try:
        data = await read_body(request, limit + 1)
    except InputError:
        data = b"\0" * (limit + 1)
    controls = [c for c in request.query.get("controls", "").split(",") if c]
    expires = request.query.get("expires_at")
    result = await run_sync(
        service.add_evidence,
        who,
        request.match_info["id"],
        filename=request.query.get("filename", ""),
        media_type=request.content_type or "",
        data=data,
        controls=controls,
        expires_at=_instant(expires, "expires_at") if expires else None,
    )
    return web.json_response(result, status=201)


async def get_evidence(request: web.Request) -> web.Response:
    who = await _who(request)
    meta, data = await run_sync(_svc(request).evidence_content, who, request.match_info["id"])
    return web.Response(
        body=data,
        content_type=meta["media_type"],
        headers={
            "Content-Disposition": f'attachment; filename="{meta["filename"]}"',
            "X-Content-SHA256": meta["sha256"],
        },
    )


# The workflow step each route takes, so its role is checked before the body is read.
_STEP_EVENTS = {
    "request-sign-off": StatementEvent.REQUEST_SIGN_OFF,
    "sign-off": StatementEvent.SIGN_OFF,
    "decline-sign-off": StatementEvent.DECLINE_SIGN_OFF,
    "abandon": StatementEvent.ABANDON,
    "assessments": StatementEvent.START_ASSESSMENT,
    "return": StatementEvent.RETURN,
    "approve": StatementEvent.APPROVE,
    "reject": StatementEvent.REJECT,
}


async def _statement_step(request: web.Request, step: str) -> web.Response:
    who = await _who(request)
    if step in _STEP_EVENTS:
        require_step_role(_STEP_EVENTS[step], who.roles)
    service = _svc(request)
    statement_id = request.match_info["id"]
    body = await json_body(request) if request.can_read_body else {}
    reason = _optional_str(body, "reason") or ""
    calls: dict[str, Any] = {
        "request-sign-off": lambda: service.request_sign_off(who, statement_id),
        "sign-off": lambda: service.sign_off(who, statement_id),
        "decline-sign-off": lambda: service.decline_sign_off(who, statement_id, reason),
        "abandon": lambda: service.abandon(who, statement_id, reason),
        "assessments": lambda: service.start_assessment(who, statement_id),
        "second-assessment": lambda: service.start_second_assessment(who, statement_id),
        "return": lambda: service.return_for_changes(
            who, statement_id, _change_requests(body.get("change_requests"))
        ),
        "approve": lambda: service.approve(
            who, statement_id, reason, valid_for_days=_optional_number(body, "valid_for_days")
        ),
        "reject": lambda: service.reject(who, statement_id, reason),
    }
    return web.json_response(await run_sync(calls[step]))


def _change_requests(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InputError("'change_requests' must be a list of {control, request} objects.")
    return value


def _optional_number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"The field {key!r} must be a number.")
    return float(value)


def _step_handler(step: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return await _statement_step(request, step)

    return handler


async def get_assessment(request: web.Request) -> web.Response:
    who = await _who(request)
    return web.json_response(
        await run_sync(_svc(request).assessment, who, request.match_info["id"])
    )


async def put_result(request: web.Request) -> web.Response:
    who = await _who(request)
    require_role(who, Role.ASSESSOR)
    body = await json_body(request)
    return web.json_response(
        await run_sync(
            _svc(request).record_result,
            who,
            request.match_info["id"],
            request.match_info["control"],
            require_str(body, "result", max_len=24),
            _optional_str(body, "reason") or "",
        )
    )


async def complete_assessment(request: web.Request) -> web.Response:
    who = await _who(request)
    body = await json_body(request) if request.can_read_body else {}
    return web.json_response(
        await run_sync(
            _svc(request).complete_assessment,
            who,
            request.match_info["id"],
            override_outcome=_optional_str(body, "override_outcome", 24),
            justification=_optional_str(body, "justification"),
        )
    )


async def export_statement(request: web.Request) -> web.Response:
    who = await _who(request)
    fmt = request.query.get("format", "json")
    content_type, data = await run_sync(
        _svc(request).export_statement, who, request.match_info["id"], fmt
    )
    return web.Response(body=data, content_type=content_type)


async def withdraw(request: web.Request) -> web.Response:
    who = await _who(request)
    body = await json_body(request)
    return web.json_response(
        await run_sync(
            _svc(request).withdraw,
            who,
            request.match_info["code"],
            _optional_str(body, "reason") or "",
        )
    )


async def get_standing(request: web.Request) -> web.Response:
    who = await _who(request)
    return web.json_response(
        await run_sync(_svc(request).standing_of, who, request.match_info["code"])
    )


async def request_extension(request: web.Request) -> web.Response:
    who = await _who(request)
    require_officer(who)
    body = await json_body(request)
    result = await run_sync(
        _svc(request).request_extension,
        who,
        require_str(body, "organisation", max_len=16),
        _instant(require_str(body, "until", max_len=40), "until"),
        _optional_str(body, "reason") or "",
    )
    return web.json_response(result, status=201)


async def _decide_extension(request: web.Request, grant: bool) -> web.Response:
    who = await _who(request)
    body = await json_body(request)
    until = _optional_str(body, "until", 40)
    return web.json_response(
        await run_sync(
            _svc(request).decide_extension,
            who,
            request.match_info["id"],
            grant=grant,
            reason=_optional_str(body, "reason") or "",
            until=_instant(until, "until") if until else None,
        )
    )


async def grant_extension(request: web.Request) -> web.Response:
    return await _decide_extension(request, True)


async def refuse_extension(request: web.Request) -> web.Response:
    return await _decide_extension(request, False)


async def get_extension(request: web.Request) -> web.Response:
    who = await _who(request)
    return web.json_response(await run_sync(_svc(request).extension, who, request.match_info["id"]))


async def register(request: web.Request) -> web.Response:
    who = await _who(request)
    return web.json_response(await run_sync(_svc(request).register, who))


async def notifications(request: web.Request) -> web.Response:
    who = await _who(request)
    return web.json_response(
        await run_sync(_svc(request).notifications, who, request.query.get("organisation"))
    )


async def dashboard(request: web.Request) -> web.Response:
    who = await _who(request)
    return web.json_response(await run_sync(_svc(request).dashboard, who))


async def report(request: web.Request) -> web.Response:
    who = await _who(request)
    content_type, data = await run_sync(
        _svc(request).export_network, who, request.query.get("format", "json")
    )
    return web.Response(body=data, content_type=content_type)


async def consistency(request: web.Request) -> web.Response:
    who = await _who(request)
    return web.json_response(await run_sync(_svc(request).consistency, who))


async def sweep(request: web.Request) -> web.Response:
    who = await _who(request)
    if not who.has(Role.OPERATOR):
        raise RoleRequired("Running the sweep needs the operator role.", role="operator")
    return web.json_response(await run_sync(_svc(request).sweep))


async def post_selfcheck(request: web.Request) -> web.Response:
    document = await read_body(request, SELFCHECK_LIMIT)
    return web.json_response(await run_sync(_svc(request).submit_selfcheck, document), status=201)


async def openapi(_: web.Request) -> web.Response:
    return web.json_response(openapi_document(PREFIX, [(m, p) for m, p, _ in ROUTES]))


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/openapi.json", openapi),
    ("GET", "/me", me),
    ("GET", "/catalogues", list_catalogues),
    ("POST", "/catalogues", publish_catalogue),
    ("GET", "/catalogues/{version}", get_catalogue),
    ("GET", "/accounts", list_accounts),
    ("POST", "/accounts", add_account),
    ("POST", "/accounts/{name}/revoke", revoke_account),
    ("GET", "/statements", list_statements),
    ("POST", "/statements", create_statement),
    ("GET", "/statements/{id}", get_statement),
    ("PUT", "/statements/{id}/answers/{control}", put_answer),
    ("POST", "/statements/{id}/evidence", post_evidence),
    ("GET", "/statements/{id}/export", export_statement),
    *[
        ("POST", f"/statements/{{id}}/{step}", _step_handler(step))
        for step in (
            "request-sign-off",
            "sign-off",
            "decline-sign-off",
            "abandon",
            "assessments",
            "second-assessment",
            "return",
            "approve",
            "reject",
        )
    ],
    ("GET", "/evidence/{id}", get_evidence),
    ("GET", "/assessments/{id}", get_assessment),
    ("PUT", "/assessments/{id}/results/{control}", put_result),
    ("POST", "/assessments/{id}/complete", complete_assessment),
    ("GET", "/organisations/{code}/standing", get_standing),
    ("POST", "/organisations/{code}/withdraw", withdraw),
    ("POST", "/extensions", request_extension),
    ("GET", "/extensions/{id}", get_extension),
    ("POST", "/extensions/{id}/grant", grant_extension),
    ("POST", "/extensions/{id}/refuse", refuse_extension),
    ("GET", "/register", register),
    ("GET", "/notifications", notifications),
    ("GET", "/dashboard", dashboard),
    ("GET", "/report", report),
    ("GET", "/consistency", consistency),
    ("POST", "/sweep", sweep),
    ("POST", "/selfchecks", post_selfcheck),
]


def add_compliance_routes(
    app: web.Application,
    *,
    service: ComplianceService | None = None,
    sweep_seconds: float | None = 300.0,
) -> None:
    """Add the Code of Connection API to central's app.

    The compliance service is built at start-up from the central service the
    app holds (or given, for tests); with ``sweep_seconds`` a background task
    records reminders and lapses and republishes the directory when someone
    lapses. Lapses take effect in every directory built after them anyway:
    the sweep only makes the change prompt and the notifications exist.
    """
    for method, path, handler in ROUTES:
        app.router.add_route(method, PREFIX + path, handler)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        if COMPLIANCE not in app:
            app[COMPLIANCE] = ComplianceService(app[SERVICE])
        task = None
        if sweep_seconds:
            task = asyncio.create_task(_sweep_forever(app[COMPLIANCE], sweep_seconds))
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    if service is not None:
        app[COMPLIANCE] = service
    app.cleanup_ctx.append(lifecycle)


async def _sweep_forever(service: ComplianceService, interval: float) -> None:
    while True:
        try:
            await run_sync(service.sweep)
        except Exception:
            # The next tick tries again; lapses still apply at every publication.
            log.exception("compliance sweep failed")
        await asyncio.sleep(interval)
