"""Pages: registering security keys, and the second sign-in step with one.

The ceremonies need the browser's WebAuthn API, so these pages use a script
(``gcx-webauthn.js``); the JSON endpoints it calls carry the CSRF token in a
header. Without JavaScript, or without a key, the TOTP code works as before.

The relying party ID is the host name of the site's origin (the configured
``web_public_url`` behind a proxy, else the address the request came to), and
answers are checked against that origin. Browsers do not allow WebAuthn on a
bare IP address, so keys are used at ``localhost`` or a proper host name.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from aiohttp import web

from gcx.errors import GcxError, InputError, NotFound
from gcx.httpapi import json_body, refusal, require_str, run_sync
from gcx.web.keys import SecurityKeys
from gcx.web.sign_in import SECOND_FACTOR_COOKIE, safe_next
from gcx.web.site import (
    COOKIE,
    KEYS_KEY,
    SITE_KEY,
    FormErrors,
    origin_of,
    public,
    redirect,
    render,
    set_session_cookie,
    site_of,
    user_of,
)
from gcx.web.words import moment


def _keys(request: web.Request) -> SecurityKeys:
    return request.app[KEYS_KEY]


def _rp_id(request: web.Request) -> str:
    return urllib.parse.urlsplit(origin_of(request)).hostname or ""


def _origin(request: web.Request) -> str:
    return origin_of(request)


def _json_page(handler: Any) -> Any:
    """JSON endpoints answer a refusal in JSON with its code, for the script to show."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except GcxError as error:
            return refusal(error)
        return response

    for attribute in ("gcx_public", "gcx_roles"):
        if hasattr(handler, attribute):
            setattr(wrapped, attribute, getattr(handler, attribute))
    return wrapped


# -- your keys --------------------------------------------------------------------


async def keys_page(request: web.Request, errors: FormErrors | None = None) -> web.Response:
    listed = await run_sync(_keys(request).keys, user_of(request))
    for key in listed:
        key["added"] = moment(key["created_at"])
        key["used"] = moment(key["last_used_at"]) or "Not used yet"
    return render(
        request,
        "security_keys.html",
        title="Your security keys",
        marking=None,
        keys=listed,
        errors=errors,
        status=400 if errors else 200,
    )


async def list_keys(request: web.Request) -> web.StreamResponse:
    return await keys_page(request)


@_json_page
async def registration_options(request: web.Request) -> web.StreamResponse:
    options = await run_sync(
        _keys(request).registration_options,
        request.cookies[COOKIE],
        user_of(request),
        _rp_id(request),
    )
    return web.Response(text=options, content_type="application/json")


@_json_page
async def register(request: web.Request) -> web.StreamResponse:
    body = await json_body(request, 64 * 1024)
    credential = body.get("credential")
    if not isinstance(credential, dict):
        raise InputError("The security key's answer is missing.")
    await run_sync(
        _keys(request).register,
        request.cookies[COOKIE],
        user_of(request),
        json.dumps(credential),
        require_str(body, "name", max_len=200),
        _rp_id(request),
        _origin(request),
    )
    await run_sync(
        site_of(request).accounts.flash,
        request.cookies[COOKIE],
        "Your security key has been added.",
    )
    return web.json_response({"redirect": "/account/security-keys"})


async def remove(request: web.Request) -> web.StreamResponse:
    try:
        key_id = int(request.match_info["id"])
    except ValueError as exc:
        raise NotFound("You have no such security key.") from exc
    await run_sync(_keys(request).remove, user_of(request), key_id)
    raise redirect(request, "/account/security-keys", flash="The security key was removed.")


# -- signing in with a key ------------------------------------------------------------


@public
@_json_page
async def sign_in_options(request: web.Request) -> web.StreamResponse:
    pending = request.cookies.get(SECOND_FACTOR_COOKIE, "")
    options = await run_sync(_keys(request).sign_in_options, pending, _rp_id(request))
    if options is None:
        raise NotFound("You have no security key; enter the code from your authenticator app.")
    return web.Response(text=options, content_type="application/json")


@public
@_json_page
async def sign_in(request: web.Request) -> web.StreamResponse:
    body = await json_body(request, 64 * 1024)
    credential = body.get("credential")
    if not isinstance(credential, dict):
        raise InputError("The security key's answer is missing.")
    pending = request.cookies.get(SECOND_FACTOR_COOKIE, "")
    accounts = site_of(request).accounts
    cookie = await run_sync(
        _keys(request).sign_in, pending, json.dumps(credential), _rp_id(request), _origin(request)
    )
    session = await run_sync(accounts.session, cookie)
    next_page = safe_next(str(body.get("next") or ""))
    response = web.json_response({"redirect": next_page or site_of(request).home_for(session.user)})
    set_session_cookie(response, cookie)
    response.del_cookie(
        SECOND_FACTOR_COOKIE, path="/", secure=True, httponly=True, samesite="Strict"
    )
    return response


def add_routes(app: web.Application) -> None:
    site = app[SITE_KEY]
    app[KEYS_KEY] = SecurityKeys(site.accounts, site.service_name)
    app.router.add_get("/account/security-keys", list_keys)
    app.router.add_post("/account/security-keys/options", registration_options)
    app.router.add_post("/account/security-keys", register)
    app.router.add_post("/account/security-keys/{id}/remove", remove)
    app.router.add_post("/sign-in/key/options", sign_in_options)
    app.router.add_post("/sign-in/key", sign_in)
