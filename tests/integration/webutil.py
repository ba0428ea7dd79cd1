"""Driving the web pages in a real browser: Debian's Chromium through Playwright.

Every page a test visits can be checked with axe-core (WCAG 2.2 A and AA
rules) and saved as a screenshot under ``test-artifacts/screenshots``. People
sign in as a person would: user name and password, then the code an
authenticator app would show for their second-factor secret.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from gcx import crypto
from gcx.localnet import LocalNetwork

REPOSITORY = Path(__file__).resolve().parents[2]
AXE = REPOSITORY / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPOSITORY / "test-artifacts" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def chromium_path() -> str | None:
    return os.environ.get("GCX_CHROMIUM") or shutil.which("chromium")


def require_browser() -> str:
    """The Chromium to drive; skips with a notice without one, but fails under CI."""
    path = chromium_path()
    missing = []
    if not path:
        missing.append("Debian's chromium")
    if not AXE.is_file():
        missing.append("axe-core (npm ci)")
    if not missing:
        assert path is not None
        return path
    reason = f"browser tests need {' and '.join(missing)}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true requires them)")
    pytest.skip(f"NOTICE: {reason}")


def launch() -> Iterator[Browser]:
    executable = require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in_with(page: Page, url: str, username: str, password: str, totp_secret: str) -> None:
    """Sign in at ``url`` with details just handed over (a new or reset person's)."""
    page.goto(url)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button:has-text('Continue')")
    code = crypto.totp_code(crypto.totp_secret_from_text(totp_secret), dt.datetime.now(dt.UTC))
    page.fill("#code", code)
    page.click("button:has-text('Sign in')")


class People:
    """The demo people of a network started with ``web=True``, and their sign-ins."""

    # The last TOTP step used per person: a code is accepted once, so a second
    # sign-in within the same 30 seconds uses the next step's code (the server
    # allows one step of drift) or waits for it.
    _last_step: dict[tuple[str, str, str], int] = {}

    def __init__(self, network: LocalNetwork, label: str) -> None:
        self.network = network
        self.label = label

    def person(self, where: str, username: str) -> dict[str, Any]:
        for person in self.network.web_users[where]:
            if person["username"] == username:
                return person
        raise KeyError(f"no demo person {username} at {where}")

    def url(self, where: str, path: str = "/") -> str:
        return self.network.web_url(where) + path

    def code(self, where: str, username: str) -> str:
        key = (str(self.network.root), where, username)
        now_step = int(time.time()) // 30
        step = max(now_step, self._last_step.get(key, 0) + 1)
        while step > int(time.time()) // 30 + 1:
            time.sleep(1)
        self._last_step[key] = step
        secret = crypto.totp_secret_from_text(self.person(where, username)["totp_secret"])
        return crypto.totp_code(secret, dt.datetime.fromtimestamp(step * 30, dt.UTC))

    def sign_in(self, page: Page, where: str, username: str, path: str = "/") -> None:
        person = self.person(where, username)
        page.goto(self.url(where, path))
        page.fill("#username", username)
        page.fill("#password", person["password"])
        page.click("button:has-text('Continue')")
        page.fill("#code", self.code(where, username))
        page.click("button:has-text('Sign in')")
        assert "/sign-in" not in page.url, f"sign-in failed: {page.url}\n{page.content()[:2000]}"

    def check(self, page: Page, name: str) -> None:
        """axe-core finds no WCAG 2.2 A/AA violation; save the page as a screenshot."""
        assert_accessible(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{self.label}-{name}.png"), full_page=True)

    def check_without_javascript(self, page: Page, name: str, address: str | None = None) -> None:
        """:meth:`check` for a page in a context with JavaScript off.

        axe is JavaScript, and evaluating it where scripts are off never returns,
        so the page as shown is saved as a screenshot, and axe checks the same
        address in a twin context with scripts on and the same cookies (a page
        that answered a POST is checked at ``address``, the page it shows again).
        """
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{self.label}-{name}.png"), full_page=True)
        browser = page.context.browser
        assert browser is not None
        twin = browser.new_context(storage_state=page.context.storage_state())
        try:
            copy = twin.new_page()
            copy.goto(address or page.url)
            assert_accessible(copy)
        finally:
            twin.close()


def assert_accessible(page: Page) -> None:
    # Evaluated through the DevTools protocol, which the page's Content Security
    # Policy (rightly) does not let a <script> tag do.
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;0")
    violations = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return result.violations.map(v => ({
                id: v.id, help: v.help, nodes: v.nodes.map(n => n.html).slice(0, 3)
            }));
        }""",
        WCAG_22_AA,
    )
    assert violations == [], f"axe-core found violations on {page.url}: {violations}"


def http_post(
    url: str, form: dict[str, str], headers: dict[str, str]
) -> tuple[int, dict[str, str], str]:
    """A plain form post outside any browser (as another site or a script would make)."""
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read().decode()


def error_summary(page: Page) -> str:
    """The text of the Design System error summary on the page (it must be there)."""
    summary = page.locator(".govuk-error-summary")
    assert summary.count() == 1, f"no error summary on {page.url}"
    return summary.inner_text()


def marking_banner(page: Page) -> str:
    banner = page.locator(".gcx-marking--top")
    assert banner.count() == 1, f"no marking banner on {page.url}"
    return str(banner.get_attribute("data-marking"))
