"""The browser interface's frame: pages, sessions, CSRF, security headers and errors.

Central and every gateway serve their pages through one of these sites; each
brings its own pages (small modules that add routes) and its own navigation.
The frame does what every page needs, so no page can forget it:

* a page is for signed-in people unless its handler is marked ``@public``,
  and for the roles its handler names with ``@needs``; the default is no;
* every POST must carry the session's CSRF token (form field ``csrf_token``,
  or the ``X-CSRF-Token`` header from our own scripts), and must come from our
  own origin when the browser says where it came from; a streamed upload
  carries it as the first field of its multipart body, read without reading
  the files after it (never in the URL, where logs and Referer keep it);
* pages are sent with a strict Content Security Policy (scripts only from
  our own origin, or inline with the page's nonce), no framing, no caching,
  and no referrer to other sites;
* a refusal that escapes a page is shown in the Design System's pattern for
  errors, with the same stable code the API uses.

Pages work without JavaScript: every action is a form that posts and
redirects (post/redirect/get), and scripts only add progress and live status.
"""

from __future__ import annotations

import hmac
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jinja2
from aiohttp import BodyPartReader, MultipartReader, web
from markupsafe import Markup
from multidict import MultiDictProxy

from gcx.errors import (
    AuthError,
    CsrfRefused,
    GcxError,
    NotFound,
    RoleRequired,
    SessionExpired,
)
from gcx.httpapi import multipart_errors, multipart_reader, run_sync
from gcx.web.accounts import WebAccounts, WebSession, WebUser
from gcx.web.keys import SecurityKeys
from gcx.web.throttle import SignInThrottle

COOKIE = "__Host-gcx-session"
PENDING_COOKIE = "__Host-gcx-sign-in"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TEMPLATES_KEY = web.AppKey("gcx_web_templates", jinja2.Environment)
NONCE_KEY = web.RequestKey("gcx_nonce", str)
SESSION_KEY = web.RequestKey("gcx_session", WebSession)
FORM_KEY = web.RequestKey("gcx_form", MultiDictProxy)
# A streamed form's body, positioned after the CSRF token the frame read from it.
STREAM_KEY = web.RequestKey("gcx_form_stream", MultipartReader)
_MAX_TOKEN_BYTES = 256
# The sign-in forms' token, before there is a session to hold one.
PENDING_CSRF_KEY = web.RequestKey("gcx_pending_csrf", str)
# Counts shown beside navigation links, by href: (count, what it counts), set by
# a service's middleware (the gateway's unread messages) before the page renders.
NAV_COUNTS_KEY = web.RequestKey("gcx_nav_counts", dict)


@dataclass(frozen=True)
class NavItem:
    text: str
    href: str
    roles: frozenset[str]


@dataclass(frozen=True)
class ServiceDesk:
    """Who people contact for help: on every page's footer and the sign-in help page.

    From configuration (``service_desk_*``); any part may be empty, and with
    no name the pages say "your IT service desk".
    """

    name: str = ""
    phone: str = ""
    email: str = ""
    hours: str = ""

    @classmethod
    def from_config(cls, config: Any) -> ServiceDesk:
        return cls(
            name=str(getattr(config, "service_desk_name", "")).strip()[:200],
            phone=str(getattr(config, "service_desk_phone", "")).strip()[:50],
            email=str(getattr(config, "service_desk_email", "")).strip()[:200],
            hours=str(getattr(config, "service_desk_hours", "")).strip()[:200],
        )


@dataclass
class Site:
    """One service's web pages: who it is, its sign-in rules and its navigation."""

    kind: str  # "gateway" or "central"
    service_name: str
    accounts: WebAccounts
    navigation: list[NavItem] = field(default_factory=list)
    # Where people land after signing in, by their first matching role.
    homes: list[tuple[str, str]] = field(default_factory=list)
    max_form_bytes: int = 30 * 1024 * 1024
    # The name of the organisation's identity provider when OpenID Connect sign-in is on.
    federated_sign_in: str | None = None
    # The origin browsers use when the pages sit behind a proxy (config web_public_url).
    public_origin: str | None = None
    # Failed password steps allowed per client address in five minutes (see gcx.web.throttle).
    sign_in_failures_per_address: int = 20
    # Who to contact for help (footer of every page, sign-in help page).
    service_desk: ServiceDesk = field(default_factory=ServiceDesk)
    throttle: SignInThrottle = field(init=False)

    def __post_init__(self) -> None:
        self.throttle = SignInThrottle(self.sign_in_failures_per_address)

    def nav(self, *, text: str, href: str, roles: Iterable[str]) -> None:
        self.navigation.append(NavItem(text, href, frozenset(roles)))

    def home_for(self, user: WebUser) -> str:
        for role, href in self.homes:
            if role in user.roles:
                return href
        return "/account"


SITE_KEY = web.AppKey("gcx_web_site", Site)
# The security keys of the site's people: gcx.web.security_keys sets it up, and the
# sign-in pages ask it whether a waiting person has a key to offer.
KEYS_KEY = web.AppKey("gcx_web_security_keys", SecurityKeys)


# -- marking handlers -------------------------------------------------------------


def public(handler: Handler) -> Handler:
    """Mark a page anyone may see without signing in (the sign-in pages, assets)."""
    handler.gcx_public = True  # type: ignore[attr-defined]
    return handler


def needs(*roles: str) -> Callable[[Handler], Handler]:
    """Mark a page for people holding at least one of ``roles``."""

    def mark(handler: Handler) -> Handler:
        handler.gcx_roles = frozenset(roles)  # type: ignore[attr-defined]
        return handler

    return mark


def streamed_form(handler: Handler) -> Handler:
    """Mark a page that reads its multipart form as a stream (uploads of any size).

    The frame cannot read such a form whole without buffering every file, so
    the form's first field must be ``csrf_token``: the frame reads that part
    alone and leaves the reader, positioned after it, for the page to take with
    :func:`form_stream`.
    """
    handler.gcx_streamed_form = True  # type: ignore[attr-defined]
    return handler


def _handler_of(request: web.Request) -> Any:
    return request.match_info.route.handler


# -- request helpers ----------------------------------------------------------------


def user_of(request: web.Request) -> WebUser:
    session: WebSession = request[SESSION_KEY]
    return session.user


def site_of(request: web.Request) -> Site:
    return request.app[SITE_KEY]


async def form_of(request: web.Request) -> MultiDictProxy[Any]:
    """The posted form (already read by the CSRF check)."""
    form: MultiDictProxy[Any] | None = request.get(FORM_KEY)
    if form is None:
        with multipart_errors():
            form = await request.post()
        request[FORM_KEY] = form
    return form


async def form_stream(request: web.Request) -> MultipartReader:
    """A :func:`streamed_form` page's multipart body, after the CSRF token the frame read."""
    reader: MultipartReader | None = request.get(STREAM_KEY)
    if reader is None:
        # The token came in the X-CSRF-Token header; the body is still whole.
        reader = await multipart_reader(request)
        request[STREAM_KEY] = reader
    return reader


def field_text(form: MultiDictProxy[Any], name: str, limit: int = 10_000) -> str:
    value = form.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


@dataclass(frozen=True)
class FormErrors:
    """Refusals to show in the error summary and beside the fields they are about."""

    items: list[tuple[str, str, str]]  # (field id, message, code)

    @classmethod
    def of(cls, exc: GcxError, field_id: str) -> FormErrors:
        return cls([(field_id, exc.message, exc.code)])

    def summary(self) -> list[dict[str, str]]:
        # A field id that is a path links to another page (a control still to answer).
        return [
            {"text": message, "href": fid if fid.startswith("/") else f"#{fid}"}
            for fid, message, _ in self.items
        ]

    def for_field(self, field_id: str) -> dict[str, str] | None:
        for fid, message, _ in self.items:
            if fid == field_id:
                return {"text": message}
        return None

    @property
    def codes(self) -> list[str]:
        return [code for _, _, code in self.items]


def render(
    request: web.Request,
    template: str,
    *,
    status: int = 200,
    marking: str | None = "OFFICIAL",
    errors: FormErrors | None = None,
    **context: Any,
) -> web.Response:
    """A page from ``template``; ``marking`` is the highest marking of what it shows."""
    site = site_of(request)
    session: WebSession | None = request.get(SESSION_KEY)
    user = session.user if session else None
    nav = []
    if user is not None:
        shown = [item for item in site.navigation if item.roles & user.roles]
        # The most specific link containing this page is the current one (so /network/x
        # marks "Enrolments" at /network/enrolments, not also "Network" at /network).
        matching = [
            item.href
            for item in shown
            if request.path == item.href or request.path.startswith(item.href + "/")
        ]
        current = max(matching, key=len) if matching else None
        counts = request.get(NAV_COUNTS_KEY, {})
        nav = [
            {"text": item.text, "href": item.href, "active": item.href == current} for item in shown
        ]
        for entry in nav:
            count, what = counts.get(entry["href"], (0, ""))
            if count:
                entry["html"] = Markup(
                    '{} <span class="gcx-nav-count">{}<span class="govuk-visually-hidden"> {}'
                    "</span></span>"
                ).format(entry.pop("text"), count, what)
    page = (
        request.app[TEMPLATES_KEY]
        .get_template(template)
        .render(
            site=site,
            user=user,
            csrf_token=session.csrf_token if session else request.get(PENDING_CSRF_KEY, ""),
            flash=session.flash if session else None,
            nav=nav,
            marking=marking if user is not None else None,
            errors=errors,
            cspNonce=request[NONCE_KEY],
            request_path=request.path,
            **context,
        )
    )
    response = web.Response(text=page, status=status, content_type="text/html")
    if errors is not None:
        # The codes a program (or a test) can match, as the API gives them.
        response.headers["X-Gcx-Error"] = ",".join(errors.codes)
    return response


def redirect(request: web.Request, location: str, *, flash: str | None = None) -> web.HTTPFound:
    """Post/redirect/get, with an optional notification for the next page."""
    if flash is not None and COOKIE in request.cookies:
        site_of(request).accounts.flash(request.cookies[COOKIE], flash)
    return web.HTTPFound(location)


# -- middleware ---------------------------------------------------------------------


def _content_security_policy(nonce: str) -> str:
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[NONCE_KEY] = secrets.token_urlsafe(16)
    response = await handler(request)
    headers = response.headers
    headers.setdefault("Content-Security-Policy", _content_security_policy(request[NONCE_KEY]))
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if not request.path.startswith("/assets/"):
        headers["Cache-Control"] = "no-store"
    return response


def origin_of(request: web.Request) -> str:
    """This site's origin as people's browsers see it: configured, or the request's own."""
    return site_of(request).public_origin or f"{request.scheme}://{request.host}"


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        # No Origin header: old browsers and some same-origin navigations. The CSRF
        # token still has to match, which is the real check.
        return origin is None
    if site_of(request).public_origin is not None:
        return origin.lower() == origin_of(request)
    parsed = urllib.parse.urlsplit(origin)
    return parsed.netloc == request.host


async def _check_csrf(request: web.Request, expected: str, handler: Any) -> None:
    if not _same_origin(request):
        raise CsrfRefused()
    given = request.headers.get("X-CSRF-Token")
    if given is None and getattr(handler, "gcx_streamed_form", False):
        given = await _token_from_stream(request)
    if given is None:
        form = await form_of(request)
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else None
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRefused()


async def _token_from_stream(request: web.Request) -> str:
    """The CSRF token from the first part of a streamed form, reading nothing after it."""
    reader = await multipart_reader(request)
    with multipart_errors():
        part = await reader.next()
        if not isinstance(part, BodyPartReader) or part.name != "csrf_token" or part.filename:
            raise CsrfRefused()
        value = bytearray()
        while chunk := await part.read_chunk(256):
            value += chunk
            if len(value) > _MAX_TOKEN_BYTES:
                raise CsrfRefused()
    request[STREAM_KEY] = reader
    return value.decode("ascii", errors="replace")


@web.middleware
async def sessions_and_roles(request: web.Request, handler: Handler) -> web.StreamResponse:
    site = site_of(request)
    page = _handler_of(request)
    try:
        if getattr(page, "gcx_public", False) or (
            request.method == "GET" and request.path.startswith("/assets/")
        ):
            if request.method == "POST":
                await _check_public_csrf(request)
            return await handler(request)
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            raise SessionExpired("Sign in to see this page.")
        # A page fetched by gcx.js on the way to the next one leaves its notice for that page.
        take_flash = request.headers.get("X-Gcx-Progress") != "1"
        # gcx.js polling for live status is not the person at the keyboard: it must
        # not keep a page left open signed in past the idle timeout. (Sending the
        # header on purpose only makes one's own session end sooner.)
        touch = not (request.method == "GET" and request.headers.get("X-Gcx-Background") == "1")
        session = await run_sync(site.accounts.session, cookie, take_flash=take_flash, touch=touch)
        request[SESSION_KEY] = session
        allowed: frozenset[str] | None = getattr(page, "gcx_roles", None)
        if allowed is not None and not (allowed & session.user.roles):
            raise RoleRequired("Your account does not hold a role that can see this page.")
        if request.method == "POST":
            await _check_csrf(request, session.csrf_token, page)
        return await handler(request)
    except SessionExpired as exc:
        if request.method == "GET":
            target = urllib.parse.quote(request.path_qs, safe="")
            raise web.HTTPFound(f"/sign-in?next={target}") from exc
        return _error_page(request, exc)
    except web.HTTPNotFound:
        # An address with no page: said in the Design System's words, like any refusal.
        return _error_page(request, NotFound("There is no page at this address."))
    except web.HTTPException:
        raise
    except GcxError as exc:
        return _error_page(request, exc)


async def _check_public_csrf(request: web.Request) -> None:
    """Sign-in forms: a double-submit token in a short-lived cookie, and our own origin."""
    expected = request.cookies.get(PENDING_COOKIE)
    if not expected:
        raise CsrfRefused(
            "Your browser did not send back the sign-in form's cookie; allow cookies for "
            "this site and try again."
        )
    await _check_csrf(request, expected, None)


def _error_page(request: web.Request, exc: GcxError) -> web.Response:
    if isinstance(exc, NotFound):
        title = "Page not found"
    elif isinstance(exc, AuthError):
        title = "You need to sign in again"
    else:
        title = "Sorry, this could not be done"
    response = render(
        request,
        "error.html",
        status=exc.status,
        title=title,
        message=exc.message,
        code=exc.code,
        marking=None,
    )
    response.headers["X-Gcx-Error"] = exc.code
    return response


def pending_csrf(request: web.Request, response: web.StreamResponse) -> str:
    """Issue (or reuse) the sign-in form's double-submit token."""
    token = request.cookies.get(PENDING_COOKIE) or secrets.token_urlsafe(32)
    response.set_cookie(
        PENDING_COOKIE,
        token,
        secure=True,
        httponly=True,
        samesite="Strict",
        path="/",
        max_age=3600,
    )
    return token


def set_session_cookie(response: web.StreamResponse, value: str) -> None:
    # No max-age: the cookie lives as long as the browser session at most, and the
    # server ends the session itself after its idle and absolute timeouts.
    response.set_cookie(COOKIE, value, secure=True, httponly=True, samesite="Strict", path="/")


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
