"""Signing in to the web pages: password, second factor, lockout, sign-out, CSRF, headers."""

from __future__ import annotations

import urllib.request

import pytest
from playwright.sync_api import Browser, Page

from gcx.localnet import LocalNetwork

from .webutil import People, error_summary, http_post

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_sign_in_with_password_and_code_then_sign_out(page: Page, people: People) -> None:
    page.goto(people.url("tower-hamlets", "/account"))
    assert "/sign-in?next=" in page.url, "a page for signed-in people sends others to sign in"
    people.check(page, "sign-in")
    person = people.person("tower-hamlets", "benefits.officer")
    page.fill("#username", "benefits.officer")
    page.fill("#password", person["password"])
    page.click("button:has-text('Continue')")
    assert "/sign-in/code" in page.url
    people.check(page, "sign-in-code")
    page.fill("#code", people.code("tower-hamlets", "benefits.officer"))
    page.click("button:has-text('Sign in')")
    assert page.url.endswith("/account"), "after signing in, the page asked for is shown"
    assert "Benefits Officer" in page.inner_text("main")
    page.click("button:has-text('Sign out')")
    assert "/signed-out" in page.url
    page.goto(people.url("tower-hamlets", "/account"))
    assert "/sign-in" in page.url, "after signing out, the session no longer works"


def test_wrong_password_shows_the_error_summary(page: Page, people: People) -> None:
    page.goto(people.url("dwp", "/sign-in"))
    page.fill("#username", "claims.processor")
    page.fill("#password", "not-the-password-at-all")
    page.click("button:has-text('Continue')")
    assert "The user name, password or security code is not right." in error_summary(page)
    assert page.title().startswith("Error:")
    people.check(page, "sign-in-refused")
    # The refusal is the password's: shown beside it, and the summary's link goes there.
    assert page.locator("#password-error").count() == 1
    assert page.locator("#username-error").count() == 0
    assert page.input_value("#username") == "claims.processor", "the name typed is kept"
    page.click(".govuk-error-summary a")
    assert page.evaluate("document.activeElement.id") == "password"


def test_empty_fields_are_each_asked_for_and_not_counted(
    page: Page, people: People, web_network: LocalNetwork
) -> None:
    page.goto(people.url("dwp", "/sign-in"))
    page.click("button:has-text('Continue')")
    summary = error_summary(page)
    assert "Enter your user name." in summary and "Enter your password." in summary
    assert page.locator("#username-error").count() == 1
    assert page.locator("#password-error").count() == 1
    people.check(page, "sign-in-empty")
    page.fill("#username", "claims.processor")
    page.click("button:has-text('Continue')")
    assert "Enter your password." in error_summary(page)
    assert "Enter your user name." not in error_summary(page)


def _fail_once(page: Page, people: People, where: str, username: str) -> str:
    page.goto(people.url(where, "/sign-in"))
    page.fill("#username", username)
    page.fill("#password", "certainly-not-the-password")
    page.click("button:has-text('Continue')")
    return error_summary(page)


def test_a_warning_comes_before_the_lockout_and_tells_nothing_about_names(
    page: Page, people: People, web_network: LocalNetwork
) -> None:
    web_network.add_web_user("dwp", "warn.me", "Warn Me", ("staff",), "DWP")
    real = [_fail_once(page, people, "dwp", "warn.me") for _ in range(4)]
    unknown = [_fail_once(page, people, "dwp", "no.such.person") for _ in range(4)]
    assert "more time" not in real[0], "one slip needs no warning"
    assert "You can try 3 more times before sign-in is locked for 15 minutes." in real[1]
    assert "You can try 1 more time before sign-in is locked" in real[3]
    people.check(page, "sign-in-warning")
    assert real == unknown, "a name that is no account is warned, and locked, the same way"
    assert "locked" in _fail_once(page, people, "dwp", "warn.me")
    assert "locked" in _fail_once(page, people, "dwp", "no.such.person")


def test_help_for_a_forgotten_password_or_lost_authenticator(
    browser: Browser, people: People
) -> None:
    """The help page is reached from both sign-in steps, with JavaScript off."""
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(people.url("tower-hamlets", "/sign-in"))
        page.click("a:has-text('Forgotten your password or lost your authenticator app?')")
        assert page.url.endswith("/sign-in/help")
        text = page.inner_text("main")
        assert "If you have forgotten your password" in text
        assert "If you have lost your phone or authenticator app" in text
        assert "your organisation's gcx administrator" in text
        assert "Contact " in page.inner_text("#service-desk")
        people.check_without_javascript(page, "sign-in-help")
        page.goto(people.url("central", "/sign-in/help"))
        assert "the network operator" in page.inner_text("main")
        people.check_without_javascript(page, "sign-in-help-central")
        # The code step links to it too.
        person = people.person("tower-hamlets", "benefits.officer")
        page.goto(people.url("tower-hamlets", "/sign-in"))
        page.fill("#username", "benefits.officer")
        page.fill("#password", person["password"])
        page.click("button:has-text('Continue')")
        assert "/sign-in/code" in page.url
        page.click("button:has-text('Sign in')")
        assert "Enter the 6-digit code" in error_summary(page), "an empty code is asked for"
        page.click("a:has-text('Lost your phone or authenticator app?')")
        assert "/sign-in/help" in page.url
    finally:
        context.close()


def test_signing_in_works_with_javascript_off(browser: Browser, people: People) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        _fail_once(page, people, "met-police", "safeguarding.officer")
        assert page.locator("#password-error").count() == 1
        people.sign_in(page, "met-police", "safeguarding.officer", "/account")
        assert page.url.endswith("/account")
        people.check_without_javascript(page, "sign-in-no-js")
    finally:
        context.close()


def test_wrong_code_is_refused_and_the_same_code_never_works_twice(
    page: Page, people: People
) -> None:
    person = people.person("dwp", "dwp.admin")
    page.goto(people.url("dwp", "/sign-in"))
    page.fill("#username", "dwp.admin")
    page.fill("#password", person["password"])
    page.click("button:has-text('Continue')")
    page.fill("#code", "000000" if people.code("dwp", "dwp.admin") != "000000" else "111111")
    page.click("button:has-text('Sign in')")
    assert "security code is not right" in error_summary(page)
    assert page.locator("#code-error").count() == 1, "the field shows its own error message"


def test_five_failures_lock_the_account(
    page: Page, people: People, web_network: LocalNetwork
) -> None:
    web_network.add_web_user("met-police", "lock.me", "Lock Me", ("staff",), "MPS")
    for _ in range(4):
        page.goto(people.url("met-police", "/sign-in"))
        page.fill("#username", "lock.me")
        page.fill("#password", "a-wrong-password-here")
        page.click("button:has-text('Continue')")
        assert "is not right" in error_summary(page)
    page.fill("#password", "a-wrong-password-here")
    page.click("button:has-text('Continue')")
    assert "locked" in error_summary(page)
    # Now even the right password is refused until the lock ends.
    page.fill("#password", people.person("met-police", "lock.me")["password"])
    page.click("button:has-text('Continue')")
    assert "locked" in error_summary(page)


def test_a_form_posted_from_elsewhere_is_refused(people: People) -> None:
    """No sign-in cookie and another site's origin: refused with its code, nothing done."""
    status, headers, body = http_post(
        people.url("tower-hamlets", "/sign-in"),
        {"username": "benefits.officer", "password": "x"},
        {"Origin": "https://attacker.example"},
    )
    assert status == 403
    assert headers["X-Gcx-Error"] == "csrf-refused"
    assert "did not send back the sign-in form" in body


def test_pages_carry_the_security_headers(people: People) -> None:
    with urllib.request.urlopen(people.url("central", "/sign-in")) as response:
        assert response.status == 200
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self' 'nonce-" in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"
        cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-gcx-sign-in=")
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert attribute in cookie


def test_a_person_changes_their_password(
    page: Page, people: People, web_network: LocalNetwork
) -> None:
    web_network.add_web_user("dwp", "pat.change", "Pat Change", ("staff",), "DWP")
    people.sign_in(page, "dwp", "pat.change", "/account/password")
    old = people.person("dwp", "pat.change")["password"]
    page.fill("#current", old)
    page.fill("#new", "short")
    page.fill("#again", "short")
    page.click("button:has-text('Change password')")
    assert "at least 12 characters" in error_summary(page)
    people.check(page, "change-password-refused")
    page.fill("#current", old)
    page.fill("#new", "four random words together")
    page.fill("#again", "four random words apart")
    page.click("button:has-text('Change password')")
    assert "The two new passwords are not the same." in error_summary(page)
    assert page.locator("#again-error").count() == 1
    page.fill("#current", old)
    page.fill("#new", "four random words together")
    page.fill("#again", "four random words together")
    page.click("button:has-text('Change password')")
    assert page.url.endswith("/account")
    assert "Your password has been changed." in page.inner_text("main")


def test_signing_in_works_with_the_keyboard_alone(page: Page, people: People) -> None:
    """Skip link, fields and buttons are reached with Tab and used with the keyboard."""
    person = people.person("met-police", "met-police.admin")
    page.goto(people.url("met-police", "/sign-in"))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to main content"
    page.keyboard.press("Enter")
    while page.evaluate("document.activeElement.id") != "username":
        page.keyboard.press("Tab")
    page.keyboard.type("met-police.admin")
    page.keyboard.press("Tab")
    page.keyboard.type(person["password"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/sign-in/code**")
    while page.evaluate("document.activeElement.id") != "code":
        page.keyboard.press("Tab")
    page.keyboard.type(people.code("met-police", "met-police.admin"))
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/sign-in" not in url)
    assert "Signed in as met-police administrator" in " ".join(page.inner_text("body").split())


def test_a_gateway_security_officer_is_pointed_to_central(
    page: Page, people: People, web_network: LocalNetwork
) -> None:
    web_network.add_web_user("dwp", "dwp.iso", "DWP Security Officer", ("security-officer",), "DWP")
    people.sign_in(page, "dwp", "dwp.iso")
    assert page.url.endswith("/account")
    assert "on the network's central service" in page.inner_text("main")
    people.check(page, "account-security-officer")
