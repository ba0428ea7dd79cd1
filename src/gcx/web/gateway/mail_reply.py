"""Pages: reply, reply all and forward, from a message's page.

Each opens the compose form filled in from the message (who to, subject,
the original quoted below) with ``source`` naming the message, so that the
rules of :mod:`gcx.protocol.forwarding` follow it through drafts, the check
page and sending: the new message keeps at least the original's marking, and
a forward is refused with the reason when the handling instructions forbid
passing the message on. A forward also carries the original's attachments
(taken into the draft on its first save) and its handling instructions.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from gcx.errors import ForwardForbidden, NotFound
from gcx.httpapi import run_sync
from gcx.protocol.forwarding import check_forward_allowed
from gcx.web.gateway.mail_common import MAIL_ROLES, mail_caller
from gcx.web.gateway.mail_compose import carried_marking, compose_page, source_message
from gcx.web.gateway.mail_form import ComposeForm
from gcx.web.site import Site, needs, render, user_of
from gcx.web.words import moment

_ENVELOPE_ID = re.compile(r"[0-9a-f]{32}")
_PREFIX = re.compile(r"^\s*((re|fw|fwd)\s*:\s*)+", re.IGNORECASE)


def navigation(site: Site) -> None:
    """No entry: reached from a message's page."""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/messages/{id}/reply", reply)
    app.router.add_get("/messages/{id}/reply-all", reply_all)
    app.router.add_get("/messages/{id}/forward", forward)


def _subject(prefix: str, subject: str) -> str:
    return f"{prefix}: {_PREFIX.sub('', subject)}"[:255]


def _quoted(message: dict[str, Any]) -> str:
    lines = "\n".join(f"> {line}" for line in message["body"].split("\n"))
    return f"\n\nOn {moment(message['created_at'])}, {message['from']} wrote:\n{lines}"


async def _source(request: web.Request, kind: str) -> tuple[ComposeForm, dict[str, Any]]:
    caller = mail_caller(request)
    envelope_id = request.match_info["id"]
    if not _ENVELOPE_ID.fullmatch(envelope_id):
        raise NotFound("There is no such message.")
    form = ComposeForm(source=envelope_id, source_kind=kind)
    message = await run_sync(source_message, request, caller, form)
    assert message is not None  # a source was named
    form.marking = message["marking"]
    return form, message


def _me(request: web.Request) -> str:
    user = user_of(request)
    return f"{user.username}@{user.organisation}"


def _to(form: ComposeForm, addresses: list[str]) -> None:
    """Put the first address in To's fields and any others in Copy to."""
    if addresses:
        form.prefill(addresses[0])
    if len(addresses) > 1:
        form.cc = ", ".join(addresses[1:])


@needs(*MAIL_ROLES)
async def reply(request: web.Request) -> web.StreamResponse:
    form, message = await _source(request, "reply")
    me = _me(request)
    # Replying to one's own sent message writes again to the people it went to.
    _to(form, message["to"] if message["from"] == me else [message["from"]])
    form.subject = _subject("Re", message["subject"])
    form.body = _quoted(message)
    return await compose_page(
        request, form, floor=carried_marking(message), title="Reply to this message"
    )


@needs(*MAIL_ROLES)
async def reply_all(request: web.Request) -> web.StreamResponse:
    form, message = await _source(request, "reply")
    me = _me(request)
    everyone = [message["from"], *message["to"]]
    to = [a for i, a in enumerate(everyone) if a != me and a not in everyone[:i]]
    _to(form, to[:1])
    cc = [a for a in to[1:] + message["cc"] if a != me]
    form.cc = ", ".join(dict.fromkeys(cc))
    form.subject = _subject("Re", message["subject"])
    form.body = _quoted(message)
    return await compose_page(
        request, form, floor=carried_marking(message), title="Reply to everyone"
    )


@needs(*MAIL_ROLES)
async def forward(request: web.Request) -> web.StreamResponse:
    form, message = await _source(request, "forward")
    try:
        check_forward_allowed(message.get("handling"))
    except ForwardForbidden as refused:
        return render(
            request,
            "gateway/mail_forward_refused.html",
            status=refused.status,
            title="You cannot forward this message",
            marking=message["marking"],
            message=message,
            reason=refused.message,
            code=refused.code,
        )
    form.subject = _subject("Fwd", message["subject"])
    form.handling = message.get("handling") or ""
    attached = ", ".join(a["name"] for a in message["attachments"])
    form.body = (
        "\n\n---------- Forwarded message ----------\n"
        f"From: {message['from']}\nSent: {moment(message['created_at'])}\n"
        f"To: {', '.join(message['to'])}\nSubject: {message['subject']}\n"
        + (f"Attachments (sent with this message): {attached}\n" if attached else "")
        + f"\n{message['body']}"
    )
    return await compose_page(
        request, form, floor=carried_marking(message), title="Forward this message"
    )
