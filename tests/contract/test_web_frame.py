"""The web frame's rules, through a real aiohttp server on both databases: roles, CSRF,
redirects after sign-in, refusals as pages, and the plain-HTTP listener check."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gcx import audit, crypto
from gcx.clock import SystemClock
from gcx.config import check_web_listener, check_web_public_url
from gcx.errors import ConfigError, InputError, SignInThrottled
from gcx.store import Database
from gcx.store.schema_web import web_sessions
from gcx.web.accounts import WebAccounts
from gcx.web.people import NewUser
from gcx.web.site import FormErrors, Site, form_of, needs, redirect, render
from gcx.web.site_app import build_site_app
from gcx.web.throttle import SignInThrottle

KEY = crypto.secret_sealing_key(b"a-test-passphrase-of-length", "web second factor")
PASSWORD = "correct horse battery staple"


@needs("admin")
async def admin_page(request: web.Request) -> web.StreamResponse:
    return render(request, "account.html", title="Admin only")


@needs("staff")
async def staff_post(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    if form.get("thing") == "bad":
        return render(
            request,
            "account.html",
            title="Refused",
            status=400,
            errors=FormErrors.of(InputError("The thing is bad."), "thing"),
        )
    raise redirect(request, "/account", flash="Done")


def _pages(app: web.Application) -> None:
    app.router.add_get("/admin-only", admin_page)
    app.router.add_post("/do", staff_post)


@contextlib.asynccontextmanager
async def _serve(
    database: Database, public_origin: str | None = None, failures_per_address: int = 20
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], NewUser]]:
    # The system clock: real TOTP codes are made for now.
    accounts = WebAccounts(database, SystemClock(), KEY, "gcx test", ("staff", "admin"))
    person = accounts.add_user(
        "sam", "Sam Staff", ["staff"], "E09000030", by="t", password=PASSWORD
    )
    site = Site(
        "gateway",
        "Test gateway",
        accounts,
        homes=[("staff", "/account")],
        public_origin=public_origin,
        sign_in_failures_per_address=failures_per_address,
    )
    server = TestServer(build_site_app(site, [_pages]), host="127.0.0.1")
    await server.start_server()
    # Secure cookies over plain HTTP on loopback, as browsers allow for 127.0.0.1.
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[str(server.make_url("/"))])
    client = TestClient(server, cookie_jar=jar)
    await client.start_server()
    try:
        yield client, person
    finally:
        await client.close()


@pytest.fixture
async def site(
    database: Database,
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], NewUser]]:
    async with _serve(database) as served:
        yield served


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has a CSRF token field"
    return match.group(1)


async def _sign_in(
    client: TestClient[web.Request, web.Application],
    person: NewUser,
    next_page: str = "",
    steps_ahead: int = 0,
) -> str:
    page = await (await client.get("/sign-in")).text()
    answer = await client.post(
        "/sign-in",
        data={
            "username": "sam",
            "password": PASSWORD,
            "csrf_token": _token(page),
            "next": next_page,
        },
        allow_redirects=False,
    )
    assert answer.status == 302
    code_page = await (await client.get(answer.headers["Location"])).text()
    import datetime as dt

    code = crypto.totp_code(
        crypto.totp_secret_from_text(person.totp_secret),
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30 * steps_ahead),
    )
    done = await client.post(
        "/sign-in/code",
        data={"code": code, "csrf_token": _token(code_page), "next": next_page},
        allow_redirects=False,
    )
    assert done.status == 302, await done.text()
    return done.headers["Location"]


async def test_roles_are_checked_and_refusals_are_pages(site) -> None:  # type: ignore[no-untyped-def]
    client, person = site
    assert (await _sign_in(client, person)) == "/account"
    refused = await client.get("/admin-only")
    assert refused.status == 403
    assert refused.headers["X-Gcx-Error"] == "role-required"
    assert "does not hold a role" in await refused.text()


async def test_posts_need_the_session_token(site) -> None:  # type: ignore[no-untyped-def]
    client, person = site
    await _sign_in(client, person)
    missing = await client.post("/do", data={"thing": "x"}, allow_redirects=False)
    assert missing.status == 403
    assert missing.headers["X-Gcx-Error"] == "csrf-refused"
    page = await (await client.get("/account")).text()
    wrong_origin = await client.post(
        "/do",
        data={"thing": "x", "csrf_token": _token(page)},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
    )
    assert wrong_origin.status == 403
    done = await client.post(
        "/do", data={"thing": "x", "csrf_token": _token(page)}, allow_redirects=False
    )
    assert done.status == 302
    shown = await (await client.get("/account")).text()
    assert "Done" in shown, "the flash is shown on the next page"


async def test_a_refused_form_shows_the_error_summary_with_its_code(site) -> None:  # type: ignore[no-untyped-def]
    client, person = site
    await _sign_in(client, person)
    page = await (await client.get("/account")).text()
    refused = await client.post("/do", data={"thing": "bad", "csrf_token": _token(page)})
    assert refused.status == 400
    assert refused.headers["X-Gcx-Error"] == "input-invalid"
    body = await refused.text()
    assert "govuk-error-summary" in body
    assert 'href="#thing"' in body
    assert "The thing is bad." in body


async def test_sign_in_returns_only_to_pages_of_this_site(site) -> None:  # type: ignore[no-untyped-def]
    client, person = site
    assert (await _sign_in(client, person, "https://evil.example/")) == "/account"
    assert (await _sign_in(client, person, "//evil.example/x", 1)) == "/account"


async def test_signed_out_visitors_are_sent_to_sign_in(site) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    answer = await client.get("/admin-only", allow_redirects=False)
    assert answer.status == 302
    assert answer.headers["Location"] == "/sign-in?next=/admin-only"


def test_the_plain_http_listener_stays_on_loopback() -> None:
    check_web_listener("127.0.0.1")
    check_web_listener("::1")
    with pytest.raises(ConfigError):
        check_web_listener("0.0.0.0")  # noqa: S104 - the address being refused


def test_download_names_cannot_break_the_header() -> None:
    from gcx.httpapi import attachment_disposition

    header = attachment_disposition('rapport "final"\r\nSet-Cookie: x=1 é.pdf')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="rapport _final___Set-Cookie: x=1 _.pdf"')
    assert header.endswith(
        "filename*=UTF-8''rapport%20%22final%22%0D%0ASet-Cookie%3A%20x%3D1%20%C3%A9.pdf"
    )
    assert attachment_disposition("").startswith('attachment; filename="file"')


async def test_an_address_with_no_page_gets_the_not_found_page(site) -> None:  # type: ignore[no-untyped-def]
    client, person = site
    await _sign_in(client, person)
    missing = await client.get("/no/such/page")
    assert missing.status == 404
    assert missing.headers["X-Gcx-Error"] == "not-found"
    body = await missing.text()
    assert "Page not found" in body and "There is no page at this address." in body


def test_only_paths_on_this_site_are_followed_after_sign_in() -> None:
    from gcx.web.sign_in import safe_next

    assert safe_next("/inbox?box=benefits") == "/inbox?box=benefits"
    for elsewhere in (
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "/inbox\r\nSet-Cookie: x=1",
        "inbox",
        "javascript:alert(1)",
    ):
        assert safe_next(elsewhere) == "", elsewhere


PROXY = "https://gcx.example.gov.uk"


async def test_behind_a_proxy_the_configured_address_is_the_origin(database: Database) -> None:
    """Forms and passkeys are checked against web_public_url, not the plain-HTTP listener."""
    async with _serve(database, public_origin=PROXY) as (client, person):
        await _sign_in(client, person)
        token = _token(await (await client.get("/account")).text())
        listener = str(client.make_url("/")).rstrip("/")
        for origin, status in ((listener, 403), ("https://gcx.example.gov.uk.evil", 403)):
            refused = await client.post(
                "/do",
                data={"thing": "x", "csrf_token": token},
                headers={"Origin": origin},
                allow_redirects=False,
            )
            assert refused.status == status, origin
            assert refused.headers["X-Gcx-Error"] == "csrf-refused"
        done = await client.post(
            "/do",
            data={"thing": "x", "csrf_token": token},
            headers={"Origin": PROXY},
            allow_redirects=False,
        )
        assert done.status == 302
        options = await client.post(
            "/account/security-keys/options",
            headers={"X-CSRF-Token": token, "Origin": PROXY},
        )
        assert options.status == 200, await options.text()
        assert json.loads(await options.text())["rp"]["id"] == "gcx.example.gov.uk"


def test_the_public_address_must_be_https_and_only_an_origin() -> None:
    assert check_web_public_url("") is None
    assert check_web_public_url("https://GCX.Example.gov.uk/") == "https://gcx.example.gov.uk"
    assert check_web_public_url("https://gcx.example.gov.uk:8443") == (
        "https://gcx.example.gov.uk:8443"
    )
    assert check_web_public_url("http://localhost:8080") == "http://localhost:8080"
    assert check_web_public_url("https://gcx.example.gov.uk:443") == PROXY, "as browsers send it"
    refusals = {
        "http://gcx.example.gov.uk": "plain HTTP",
        "ftp://gcx.example.gov.uk": "not an http or https address",
        "https://": "not an http or https address",
        "gcx.example.gov.uk": "not an http or https address",
        "https://gcx.example.gov.uk/gcx": "only a scheme, host and port",
        "https://gcx.example.gov.uk/?next=x": "only a scheme, host and port",
        "https://user@gcx.example.gov.uk": "only a scheme, host and port",
        "https://gcx.example.gov.uk:https": "port that is not a number",
    }
    for url, words in refusals.items():
        with pytest.raises(ConfigError, match=words):
            check_web_public_url(url)


async def _password_step(
    client: TestClient[web.Request, web.Application], password: str, forwarded: str
) -> aiohttp.ClientResponse:
    page = await (await client.get("/sign-in")).text()
    return await client.post(
        "/sign-in",
        data={"username": "sam", "password": password, "csrf_token": _token(page)},
        headers={"X-Forwarded-For": forwarded},
        allow_redirects=False,
    )


async def test_wrong_passwords_from_one_address_are_throttled_across_accounts(
    database: Database,
) -> None:
    """Behind the proxy, its own (rightmost) X-Forwarded-For address is the one counted."""
    async with _serve(database, public_origin=PROXY, failures_per_address=5) as (client, _):
        sprayer = "203.0.113.7"
        for n in range(5):
            # A different account each time, so no account's own lockout is reached.
            page = await (await client.get("/sign-in")).text()
            refused = await client.post(
                "/sign-in",
                data={
                    "username": f"user{n}",
                    "password": "Winter2026!",
                    "csrf_token": _token(page),
                },
                headers={"X-Forwarded-For": sprayer},
                allow_redirects=False,
            )
            assert refused.headers["X-Gcx-Error"] == "sign-in-refused"
            assert refused.status == 400
        blocked = await _password_step(client, PASSWORD, sprayer)
        assert blocked.headers["X-Gcx-Error"] == "sign-in-throttled", "even the right password"
        assert blocked.status == 429
        assert "too many failed sign-ins from your network address" in await blocked.text()
        # What the client put to the left of the proxy's own entry is not believed.
        spoofed = await _password_step(client, PASSWORD, f"198.51.100.1, {sprayer}")
        assert spoofed.headers["X-Gcx-Error"] == "sign-in-throttled"
        elsewhere = await _password_step(client, PASSWORD, "198.51.100.1")
        assert elsewhere.status == 302, "another address signs in as usual"
    with database.read() as conn:
        throttled = [e for e in audit.entries(conn) if e.action == "web.sign-in-throttled"]
    assert [(e.actor, e.subject) for e in throttled] == [("anonymous", sprayer)], "once"


def test_the_throttle_forgets_failures_after_five_minutes() -> None:
    now = [1000.0]
    throttle = SignInThrottle(5, clock=lambda: now[0])
    assert [throttle.failed("a") for _ in range(5)] == [False, False, False, False, True]
    with pytest.raises(SignInThrottled, match="try again in 5 minutes"):
        throttle.check("a")
    throttle.check("b")
    now[0] += 299.0
    with pytest.raises(SignInThrottled, match=r"try again in 1 minute\."):
        throttle.check("a")
    now[0] += 1.0
    throttle.check("a")  # the first failures have aged out
    assert throttle.failed("a") is False, "counting starts again"


def _last_seen(database: Database) -> str:
    with database.read() as conn:
        return str(
            conn.execute(
                sa.select(web_sessions.c.last_seen_at).where(web_sessions.c.stage == "signed-in")
            ).scalar_one()
        )


async def test_polling_does_not_keep_a_session_alive_but_typing_does(  # type: ignore[no-untyped-def]
    site, database: Database
) -> None:
    """Background status polls leave the idle timer alone; the typing keep-alive refreshes it."""
    client, person = site
    await _sign_in(client, person)
    token = _token(await (await client.get("/account")).text())
    seen = _last_seen(database)
    polled = await client.get("/account", headers={"X-Gcx-Background": "1"})
    assert polled.status == 200
    assert _last_seen(database) == seen, "a poll is not the person"
    refused = await client.post("/session/keep-alive", allow_redirects=False)
    assert refused.status == 403 and refused.headers["X-Gcx-Error"] == "csrf-refused"
    kept = await client.post("/session/keep-alive", headers={"X-CSRF-Token": token})
    assert kept.status == 204
    assert _last_seen(database) > seen, "typing keeps the session"
