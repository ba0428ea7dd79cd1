"""A person's own API tokens, on their account page: the only way a person's token is made.

A token for a person is issued to that person and to nobody else: here, after
they signed in with their password and second factor (or through their
organisation's identity provider), for their own account, with the roles they
hold. An administrator cannot reach this for someone else; the
administration pages add only systems' tokens (:mod:`gcx.web.gateway.admin`).
The token is shown once, in the answer to the form that made it; the person
may revoke any of their own tokens here, and an administrator may revoke them
on the administration pages.
"""

from __future__ import annotations

from aiohttp import web

from gcx.errors import Forbidden, InputError, NotFound
from gcx.httpapi import run_sync
from gcx.web.gateway import parts_of
from gcx.web.site import Site, field_text, form_of, redirect, render, user_of
from gcx.web.words import moment


def navigation(site: Site) -> None:
    """No navigation entry: the pages are reached from "Your account"."""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/account/tokens", own_tokens)
    app.router.add_post("/account/tokens", issue_token)
    app.router.add_get("/account/tokens/{id:[0-9]{1,18}}/revoke", revoke_confirm)
    app.router.add_post("/account/tokens/revoke", revoke_token)


def _person(request: web.Request) -> tuple[int, str]:
    user = user_of(request)
    if not user.organisation:
        raise Forbidden("Your account is not an organisation's; API tokens need one.")
    return user.id, user.actor


async def own_tokens(request: web.Request) -> web.StreamResponse:
    person_id, _ = _person(request)
    listed = await run_sync(parts_of(request).gateway.tokens.list_own, person_id)
    for token in listed:
        for key in ("created_at", "last_used_at", "revoked_at"):
            token[key + "_text"] = moment(token[key])
    return render(request, "gateway/own_tokens.html", title="Your API tokens", tokens=listed)


async def issue_token(request: web.Request) -> web.StreamResponse:
    person_id, actor = _person(request)
    await form_of(request)  # the frame has checked its CSRF token; nothing else is asked
    token = await run_sync(parts_of(request).gateway.tokens.issue_to_person, person_id, by=actor)
    return render(request, "gateway/own_token_added.html", title="Your new API token", token=token)


async def revoke_confirm(request: web.Request) -> web.StreamResponse:
    """Ask before revoking: a revoked token never works again, so it never takes one click."""
    person_id, _ = _person(request)
    token_id = int(request.match_info["id"])
    listed = await run_sync(parts_of(request).gateway.tokens.list_own, person_id)
    token = next((t for t in listed if t["id"] == token_id and not t["revoked_at"]), None)
    if token is None:
        raise NotFound("You have no active token like that; it may have been revoked already.")
    for key in ("created_at", "last_used_at"):
        token[key + "_text"] = moment(token[key])
    return render(
        request,
        "gateway/own_token_revoke.html",
        title="Are you sure you want to revoke this token?",
        token=token,
    )


async def revoke_token(request: web.Request) -> web.StreamResponse:
    person_id, actor = _person(request)
    form = await form_of(request)
    text = field_text(form, "token", 20)
    if not text.isdigit():
        raise InputError("Choose one of your tokens to revoke.")
    await run_sync(parts_of(request).gateway.tokens.revoke_own, person_id, int(text), by=actor)
    raise redirect(request, "/account/tokens", flash="Your token has been revoked.")
