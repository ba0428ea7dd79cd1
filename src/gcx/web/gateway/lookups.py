"""Pages: reference service lookups for staff, through the gateway's service proxy.

Two forms: a customer record from DWP by National Insurance number, and a
free school meals eligibility check, which DWP answers yes or no without
showing the benefit record behind it.

A lookup made here is the same call an organisation's system makes through
the local API: ``ServiceProxy.call`` decides the access right, requires the
end user and purpose the service demands, signs the request, checks the
signed answer and writes the call log on both gateways. The person signed in
is the end user; the purpose they type is carried and logged on both sides.
The page adds one audit entry under the person's web actor, so "What I did"
shows the lookup (the call log's own entries are the proxy's, per batch).

The result is shown in the answer to the form's POST rather than after a
redirect: redirecting would mean keeping a person's record on the server
between two requests. Pages are sent with ``Cache-Control: no-store``, so
the record is not kept by the browser either.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from gcx.errors import NinoInvalid, PurposeRequired
from gcx.gateway.services.api import LocalCalls as ServiceProxy
from gcx.gateway.services.common import CALL_ID_HEADER, PURPOSE_HEADER
from gcx.httpapi import run_sync
from gcx.protocol import strict_json
from gcx.web.gateway import caller_of, parts_of
from gcx.web.site import FormErrors, Site, field_text, form_of, needs, render, user_of

PROVIDER = "DWP"
SERVICE = "dwp-cis"
FSM_SERVICE = "fsm"
FSM_PATH = "/eligibility-checks"
# The free school meals form's fields carry this prefix, so each form's errors
# and typed values stay with it on a page that shows both.
FSM_FORM = "fsm-"
MAX_PURPOSE = 500
# A named person's benefit record is the kind of personal information the
# OFFICIAL-SENSITIVE caveat exists for; the service's answer carries no marking.
RESULT_MARKING = "OFFICIAL-SENSITIVE"
# The format of a National Insurance number: two prefix letters (D, F, I, Q, U and V
# never appear, nor O second, nor the prefixes BG, GB, KN, NK, NT, TN, ZZ), six
# digits, and a suffix A to D.
_NINO = re.compile(r"^(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]$")


def normalise_nino(text: str) -> str:
    return re.sub(r"\s+", "", text).upper()


def _services(proxy: ServiceProxy, organisation: str) -> list[dict[str, Any]]:
    """What this organisation may call, as the services API lists it."""
    directory = proxy.gateway.directory.current()
    names = {org.code: org.name for org in directory.organisations}
    listed = []
    for service, rights in proxy.index(directory).visible_to(organisation):
        listed.append(
            {
                "provider": service.provider,
                "provider_name": names.get(service.provider, service.provider),
                "name": service.name,
                "title": service.title or service.name,
                "requires_purpose": service.requires_purpose,
                "methods": sorted({m for r in rights for m in (r.methods or ("any",))}),
                "paths": sorted({p for r in rights for p in (r.paths or ("/",))}),
            }
        )
    return listed


def _page(
    request: web.Request,
    *,
    form_id: str = "",
    nino: str = "",
    purpose: str = "",
    errors: FormErrors | None = None,
    status: int = 200,
    result: dict[str, Any] | None = None,
    fsm: dict[str, Any] | None = None,
) -> web.Response:
    """The lookups page, refusing one of its forms (``form_id``), or an answer's page."""
    proxy: ServiceProxy = parts_of(request).services
    services = _services(proxy, caller_of(request).organisation)
    if result is not None:
        template, title = "gateway/lookups_result.html", "Customer record"
    elif fsm is not None:
        template, title = "gateway/lookups_fsm_result.html", "Free school meals eligibility"
    else:
        template, title = "gateway/lookups_form.html", "Lookups"
    # What was typed goes back into the form that was refused, not into the other one.
    typed = {"nino": nino, "purpose": purpose}
    return render(
        request,
        template,
        status=status,
        errors=errors,
        title=title,
        marking=RESULT_MARKING if result is not None or fsm is not None else "OFFICIAL",
        services=services,
        customer_form=typed if form_id == "" else {},
        fsm_form=typed if form_id == FSM_FORM else {},
        nino=nino,
        purpose=purpose,
        result=result,
        fsm=fsm,
        provider=PROVIDER,
        service=SERVICE,
        fsm_service=FSM_SERVICE,
    )


@needs("staff")
async def lookups_page(request: web.Request) -> web.StreamResponse:
    return _page(request)


@dataclass(frozen=True)
class Refused:
    """A refusal by either gateway, as the proxy answers it: code, message, status."""

    code: str
    message: str
    status: int


def _body(answer: web.Response) -> Any:
    raw = answer.body
    try:
        return strict_json.loads(raw if isinstance(raw, bytes) else b"")
    except ValueError:
        return None


def _refusal(answer: web.Response) -> Refused | None:
    """The refusal in a proxy answer, if it is one (the code is in ``X-Gcx-Error``)."""
    code = answer.headers.get("X-Gcx-Error")
    if code is None:
        return None
    body = _body(answer)
    message = body.get("message") if isinstance(body, dict) else None
    return Refused(code, str(message or f"The call was refused ({answer.status})."), answer.status)


# Where a refusal belongs on the form, so the error summary's link reaches it.
_FIELD_OF = {"purpose-required": "purpose", "input-invalid": "purpose"}
_PLAIN_MESSAGES = {
    "purpose-required": "Enter why you need this record; it is logged by both organisations.",
}


async def _checked_form(
    request: web.Request, form_id: str
) -> tuple[str, str, str, web.Response | None]:
    """The typed and normalised number and the purpose, or the page refusing them."""
    form = await form_of(request)
    typed_nino = field_text(form, "nino", 40)
    purpose = field_text(form, "purpose", MAX_PURPOSE + 1)
    nino = normalise_nino(typed_nino)
    if _NINO.match(nino):
        return typed_nino, nino, purpose, None
    problems = [(f"{form_id}nino", NinoInvalid.default_message, NinoInvalid.code)]
    if not purpose:
        problems.append(
            (f"{form_id}purpose", _PLAIN_MESSAGES["purpose-required"], PurposeRequired.code)
        )
    refused = _page(
        request,
        form_id=form_id,
        nino=typed_nino,
        purpose=purpose,
        errors=FormErrors(problems),
        status=400,
    )
    return typed_nino, nino, purpose, refused


async def _call(
    request: web.Request, service: str, path: str, method: str, purpose: str, body: bytes
) -> tuple[web.Response, Refused | None]:
    """One call through the proxy as the person signed in, with its "What I did" entry."""
    proxy: ServiceProxy = parts_of(request).services
    headers = CIMultiDict({"Accept": "application/json"})
    if body:
        headers["Content-Type"] = "application/json"
    if purpose:
        headers[PURPOSE_HEADER] = purpose

    async def read_body(_: int) -> bytes:
        return body

    answer = await proxy.call(
        caller_of(request),
        PROVIDER,
        service,
        path,
        method=method,
        headers=headers,
        query="",
        body_reader=read_body,
    )
    refused = _refusal(answer)
    await run_sync(
        parts_of(request).gateway.record,
        actor=user_of(request).actor,
        action="web.service-called",
        subject=f"{PROVIDER}/{service}",
        details={
            "call": answer.headers.get(CALL_ID_HEADER),
            "outcome": refused.code if refused else "answered",
            "status": answer.status,
        },
    )
    return answer, refused


def _refused_page(
    request: web.Request, form_id: str, typed_nino: str, purpose: str, refused: Refused
) -> web.Response:
    message = _PLAIN_MESSAGES.get(refused.code, refused.message)
    field = _FIELD_OF.get(refused.code, "nino")
    errors = FormErrors([(f"{form_id}{field}", message, refused.code)])
    return _page(
        request,
        form_id=form_id,
        nino=typed_nino,
        purpose=purpose,
        errors=errors,
        status=refused.status,
    )


@needs("staff")
async def look_up(request: web.Request) -> web.StreamResponse:
    typed_nino, nino, purpose, refusal_page = await _checked_form(request, "")
    if refusal_page is not None:
        return refusal_page
    answer, refused = await _call(request, SERVICE, f"/customers/{nino}", "GET", purpose, b"")
    if refused is not None:
        return _refused_page(request, "", typed_nino, purpose, refused)
    return _page(request, nino=nino, purpose=purpose, result=_result(answer, nino))


@needs("staff")
async def check_fsm(request: web.Request) -> web.StreamResponse:
    typed_nino, nino, purpose, refusal_page = await _checked_form(request, FSM_FORM)
    if refusal_page is not None:
        return refusal_page
    body = json.dumps({"nino": nino}).encode()
    answer, refused = await _call(request, FSM_SERVICE, FSM_PATH, "POST", purpose, body)
    if refused is not None:
        return _refused_page(request, FSM_FORM, typed_nino, purpose, refused)
    return _page(request, nino=nino, purpose=purpose, fsm=_fsm_result(answer, nino))


def _fsm_result(answer: web.Response, nino: str) -> dict[str, Any]:
    body = _body(answer)
    if not isinstance(body, dict):
        body = {}
    eligible = body.get("eligible")
    return {
        "status": answer.status,
        "label": str(body.get("data_label", "")),
        "eligible": eligible if isinstance(eligible, bool) else None,
        "reason": str(body.get("reason") or body.get("error") or ""),
        "nino": nino,
        "call_id": answer.headers.get(CALL_ID_HEADER, ""),
    }


def _date_text(value: Any) -> str:
    try:
        return dt.date.fromisoformat(str(value)).strftime("%-d %B %Y")
    except ValueError:
        return str(value or "")


def _result(answer: web.Response, nino: str) -> dict[str, Any]:
    """What the provider answered, ready for the summary list."""
    body = _body(answer)
    if not isinstance(body, dict):
        body = {}
    customer = body.get("customer")
    if isinstance(customer, dict):
        customer = {**customer, "born": _date_text(customer.get("date_of_birth"))}
    return {
        "status": answer.status,
        "label": str(body.get("data_label", "")),
        "customer": customer if isinstance(customer, dict) else None,
        "error": str(body.get("error", "")),
        "nino": nino,
        "call_id": answer.headers.get(CALL_ID_HEADER, ""),
    }


def navigation(site: Site) -> None:
    site.nav(text="Lookups", href="/lookups", roles=("staff",))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/lookups", lookups_page)
    app.router.add_post("/lookups", look_up)
    app.router.add_post("/lookups/free-school-meals", check_fsm)
