"""The frame's own pages: sign in (password, then code), sign out, your account."""

from __future__ import annotations

import urllib.parse

from aiohttp import web

from gcx.errors import (
    AccountLocked,
    GcxError,
    InputError,
    SessionExpired,
    SignInRefused,
    SignInThrottled,
)
from gcx.httpapi import run_sync
from gcx.web.accounts import LOCKOUT, MAX_FAILURES
from gcx.web.site import (
    COOKIE,
    KEYS_KEY,
    PENDING_COOKIE,
    PENDING_CSRF_KEY,
    FormErrors,
    clear_session_cookie,
    field_text,
    form_of,
    pending_csrf,
    public,
    redirect,
    render,
    set_session_cookie,
    site_of,
    user_of,
)
from gcx.web.throttle import client_address

SECOND_FACTOR_COOKIE = "__Host-gcx-second-factor"


def safe_next(value: str) -> str:
    """Only a path on this site: a sign-in link must not send people elsewhere.

    Browsers read a backslash as a slash, so ``/\\evil.example`` would leave the site
    as surely as ``//evil.example``; neither, nor any control character, is let through.
    """
    parsed = urllib.parse.urlsplit(value)
    if (
        parsed.scheme
        or parsed.netloc
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in value)
    ):
        return ""
    return value


def _sign_in_page(
    request: web.Request, *, username: str = "", next_page: str = "", errors: FormErrors | None
) -> web.Response:
    response = web.Response()
    request[PENDING_CSRF_KEY] = pending_csrf(request, response)
    page = render(
        request,
        "sign_in.html",
        title="Sign in",
        username=username,
        next_page=next_page,
        errors=errors,
        status=errors_status(errors),
    )
    page.cookies.update(response.cookies)
    return page


def sign_in_refused_page(request: web.Request, exc: GcxError) -> web.Response:
    """The sign-in page again, with why the last attempt was refused."""
    return _sign_in_page(request, errors=refusal_errors(exc, "username"))


# Warn once this few tries are left: earlier, a slip of the finger needs no warning.
WARN_AT_TRIES_LEFT = 3


def refusal_errors(exc: GcxError, field_id: str) -> FormErrors:
    """A sign-in refusal beside the field it is about, warning before a lockout.

    A wrong password or code counts towards the lockout whether or not the name
    is an account's (see :mod:`gcx.web.accounts`), so saying how many tries are
    left tells nothing about which names exist.
    """
    message = exc.message
    tries_left = exc.details.get("tries_left")
    if isinstance(tries_left, int) and 0 < tries_left <= WARN_AT_TRIES_LEFT:
        minutes = int(LOCKOUT.total_seconds() // 60)
        times = "1 more time" if tries_left == 1 else f"{tries_left} more times"
        message += (
            f" You can try {times} before sign-in is locked for {minutes} minutes. "
            "If you have forgotten your password or lost your authenticator, get help "
            "instead of trying again."
        )
    return FormErrors([(field_id, message, exc.code)])


def errors_status(errors: FormErrors | None) -> int:
    """200 for a fresh form; 429 when an account is locked or an address throttled; else 400.

    429 tells a client to slow down. A wrong name, password or code is 400, like any
    refused form, rather than 401: a 401 must carry a WWW-Authenticate challenge
    (RFC 9110, 15.5.2), and a sign-in form has none to offer.
    """
    if errors is None:
        return 200
    return 429 if {AccountLocked.code, SignInThrottled.code} & set(errors.codes) else 400


@public
async def sign_in_form(request: web.Request) -> web.StreamResponse:
    return _sign_in_page(request, next_page=safe_next(request.query.get("next", "")), errors=None)


@public
async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    username = field_text(form, "username", 64).lower()
    password = form.get("password", "")
    next_page = safe_next(field_text(form, "next", 2000))
    missing = [
        (field_id, words, "input-invalid")
        for field_id, given, words in (
            ("username", username, "Enter your user name."),
            ("password", password, "Enter your password."),
        )
        if not given
    ]
    if missing:
        # Nothing was tried, so nothing counts towards a lockout.
        return _sign_in_page(
            request, username=username, next_page=next_page, errors=FormErrors(missing)
        )
    site = site_of(request)
    address = client_address(request, behind_proxy=site.public_origin is not None)
    try:
        site.throttle.check(address)
        cookie = await run_sync(site.accounts.check_password, username, str(password))
    except (SignInRefused, AccountLocked, SignInThrottled) as exc:
        if not isinstance(exc, SignInThrottled) and site.throttle.failed(address):
            await run_sync(site.accounts.record_throttled, address, site.throttle.limit)
        # A wrong password is the password's error; a lock is the account's (its name's).
        field_id = "password" if isinstance(exc, SignInRefused) else "username"
        return _sign_in_page(
            request, username=username, next_page=next_page, errors=refusal_errors(exc, field_id)
        )
    response = web.HTTPFound(
        "/sign-in/code" + (f"?next={urllib.parse.quote(next_page)}" if next_page else "")
    )
    response.set_cookie(
        SECOND_FACTOR_COOKIE,
        cookie,
        secure=True,
        httponly=True,
        samesite="Strict",
        path="/",
        max_age=300,
    )
    raise response


def _code_page(
    request: web.Request,
    csrf: str,
    next_page: str,
    errors: FormErrors | None,
    *,
    has_keys: bool = False,
) -> web.Response:
    request[PENDING_CSRF_KEY] = csrf
    return render(
        request,
        "sign_in_code.html",
        title="Enter your security code",
        next_page=next_page,
        errors=errors,
        status=errors_status(errors),
        has_keys=has_keys,
    )


@public
async def code_form(request: web.Request) -> web.StreamResponse:
    pending = request.cookies.get(SECOND_FACTOR_COOKIE, "")
    csrf = (
        await run_sync(site_of(request).accounts.second_factor_csrf, pending) if pending else None
    )
    if csrf is None:
        raise web.HTTPFound("/sign-in")
    # The code form's token is the waiting session's own, so it is checked like the sign-in one.
    has_keys = await run_sync(request.app[KEYS_KEY].waiting_has_keys, pending)
    response = _code_page(
        request, csrf, safe_next(request.query.get("next", "")), None, has_keys=has_keys
    )
    response.set_cookie(
        PENDING_COOKIE, csrf, secure=True, httponly=True, samesite="Strict", path="/", max_age=300
    )
    return response


@public
async def check_code(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    pending = request.cookies.get(SECOND_FACTOR_COOKIE, "")
    next_page = safe_next(field_text(form, "next", 2000))
    accounts = site_of(request).accounts
    code = field_text(form, "code", 20)
    if not code:
        # Nothing was tried, so nothing counts towards a lockout.
        missing = FormErrors(
            [("code", "Enter the 6-digit code your authenticator app shows.", "input-invalid")]
        )
        return _code_page(request, request.cookies.get(PENDING_COOKIE, ""), next_page, missing)
    try:
        cookie = await run_sync(accounts.check_code, pending, code)
    except SessionExpired as exc:
        return _sign_in_page(request, next_page=next_page, errors=FormErrors.of(exc, "username"))
    except AccountLocked as exc:
        return _sign_in_page(request, next_page=next_page, errors=FormErrors.of(exc, "username"))
    except GcxError as exc:
        csrf = request.cookies.get(PENDING_COOKIE, "")
        return _code_page(request, csrf, next_page, refusal_errors(exc, "code"))
    session = await run_sync(accounts.session, cookie)
    response = web.HTTPFound(next_page or site_of(request).home_for(session.user))
    set_session_cookie(response, cookie)
    response.del_cookie(
        SECOND_FACTOR_COOKIE, path="/", secure=True, httponly=True, samesite="Strict"
    )
    response.del_cookie(PENDING_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    raise response


async def sign_out(request: web.Request) -> web.StreamResponse:
    await run_sync(site_of(request).accounts.sign_out, request.cookies[COOKIE])
    response = web.HTTPFound("/signed-out")
    clear_session_cookie(response)
    raise response


@public
async def sign_in_help(request: web.Request) -> web.StreamResponse:
    """What to do about a forgotten password, a lost authenticator or a locked account."""
    if site_of(request).kind == "central":
        who = "the network operator"
        detail = (
            "Central's accounts (for operators, assessors and each organisation's security and "
            "sign-off officers) are managed by the network operator."
        )
    else:
        who = "your organisation's gcx administrator"
        detail = (
            "Your organisation's gcx administrators manage the accounts on this gateway. If you "
            "do not know who they are, ask your manager or your IT service desk."
        )
    return render(
        request,
        "sign_in_help.html",
        title="If you cannot sign in",
        who=who,
        who_detail=detail,
        max_failures=MAX_FAILURES,
        lockout_minutes=int(LOCKOUT.total_seconds() // 60),
        marking=None,
    )


@public
async def signed_out(request: web.Request) -> web.StreamResponse:
    return render(request, "signed_out.html", title="You have signed out")


async def home(request: web.Request) -> web.StreamResponse:
    raise redirect(request, site_of(request).home_for(user_of(request)))


async def account(request: web.Request) -> web.StreamResponse:
    return render(request, "account.html", title="Your account", marking=None)


async def password_form(request: web.Request) -> web.StreamResponse:
    return render(request, "password.html", title="Change your password", marking=None)


async def change_password(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    current = str(form.get("current", ""))
    new = str(form.get("new", ""))
    try:
        if new != str(form.get("again", "")):
            raise InputError("The two new passwords are not the same.", field="again")
        await run_sync(site_of(request).accounts.change_password, user_of(request), current, new)
    except SignInRefused as exc:
        errors = FormErrors([("current", "Your current password is not right.", exc.code)])
    except GcxError as exc:
        errors = FormErrors.of(exc, exc.details.get("field", "new"))
    else:
        raise redirect(request, "/account", flash="Your password has been changed.")
    return render(
        request,
        "password.html",
        title="Change your password",
        marking=None,
        errors=errors,
        status=400,
    )


async def keep_alive(_request: web.Request) -> web.StreamResponse:
    """Someone is typing into a form: the frame's session lookup has refreshed the idle timer.

    gcx.js calls this at most every few minutes while a person types, so a long
    message written without a request in between is not lost to the idle
    timeout at the moment it is sent. The absolute limit still applies.
    """
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/session/keep-alive", keep_alive)
    app.router.add_get("/account/password", password_form)
    app.router.add_post("/account/password", change_password)
    app.router.add_get("/sign-in", sign_in_form)
    app.router.add_post("/sign-in", sign_in)
    app.router.add_get("/sign-in/help", sign_in_help)
    app.router.add_get("/sign-in/code", code_form)
    app.router.add_post("/sign-in/code", check_code)
    app.router.add_post("/sign-out", sign_out)
    app.router.add_get("/signed-out", signed_out)
    app.router.add_get("/", home)
    app.router.add_get("/account", account)
