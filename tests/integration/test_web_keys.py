"""Security keys (WebAuthn) as a second factor, with Chromium's virtual authenticator.

The authenticator is Chromium's own (the DevTools WebAuthn domain), so the real
browser API, the real ceremonies and the server's real checks all run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, CDPSession, Page

from gcx.localnet import LocalNetwork

from .webutil import People, error_summary

pytestmark = [pytest.mark.integration, pytest.mark.browser]

WHERE = "tower-hamlets"


@pytest.fixture
def key_page(browser: Browser) -> Iterator[tuple[Page, CDPSession]]:
    """A page whose browser has one virtual security key plugged in."""
    context = browser.new_context()
    page = context.new_page()
    devtools = context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": False,
                "hasUserVerification": False,
                "automaticPresenceSimulation": True,
            }
        },
    )
    try:
        yield page, devtools
    finally:
        context.close()


def _password_step(page: Page, people: People, username: str) -> None:
    page.goto(people.url(WHERE, "/sign-in"))
    page.fill("#username", username)
    page.fill("#password", people.person(WHERE, username)["password"])
    page.click("button:has-text('Continue')")
    page.wait_for_url("**/sign-in/code**")


def _add_key(page: Page, people: People, username: str, name: str) -> None:
    people.sign_in(page, WHERE, username, "/account/security-keys")
    assert "You have not added a security key." in page.inner_text("main")
    people.check(page, "security-keys")
    page.fill("#key-name", name)
    page.click("#add-key")
    page.wait_for_selector("#keys")
    assert name in page.inner_text("#keys")
    assert "Your security key has been added." in page.inner_text("main")


def test_a_person_adds_a_key_and_signs_in_with_it(
    key_page: tuple[Page, Any], people: People, web_network: LocalNetwork
) -> None:
    page, _ = key_page
    web_network.add_web_user(WHERE, "key.holder", "Key Holder", ("staff",), "E09000030")
    _add_key(page, people, "key.holder", "Blue key")
    page.click("button:has-text('Sign out')")

    _password_step(page, people, "key.holder")
    people.check(page, "sign-in-code-with-key")
    page.click("#use-key")
    page.wait_for_url(lambda url: "/sign-in" not in url)
    assert "Key Holder" in page.inner_text("body")
    page.goto(people.url(WHERE, "/activity"))
    assert "Added a security key" in page.inner_text("main")


def test_a_key_that_is_not_registered_is_refused(
    key_page: tuple[Page, Any], browser: Browser, people: People, web_network: LocalNetwork
) -> None:
    page, _ = key_page
    web_network.add_web_user(WHERE, "key.loser", "Key Loser", ("staff",), "E09000030")
    _add_key(page, people, "key.loser", "Lost key")
    page.click("button:has-text('Sign out')")

    # Another browser with a different key: the server asks for the registered one,
    # which this authenticator does not hold, so no key answers.
    other = browser.new_context()
    try:
        stranger = other.new_page()
        devtools = other.new_cdp_session(stranger)
        devtools.send("WebAuthn.enable")
        devtools.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "usb",
                    "automaticPresenceSimulation": True,
                }
            },
        )
        _password_step(stranger, people, "key.loser")
        stranger.click("#use-key")
        stranger.wait_for_selector("#key-error:not([hidden])")
        assert "was not used, or it timed out" in error_summary(stranger)
        assert "/sign-in/code" in stranger.url, "no session was made"
    finally:
        other.close()


def test_a_removed_key_no_longer_signs_in(
    key_page: tuple[Page, Any], people: People, web_network: LocalNetwork
) -> None:
    page, _ = key_page
    web_network.add_web_user(WHERE, "key.remover", "Key Remover", ("staff",), "E09000030")
    _add_key(page, people, "key.remover", "Old key")
    page.click("button:has-text('Remove')")
    assert "The security key was removed." in page.inner_text("main")
    assert "You have not added a security key." in page.inner_text("main")
    page.click("button:has-text('Sign out')")
    _password_step(page, people, "key.remover")
    assert page.locator("#use-key").count() == 0, "no key is offered once none is registered"
