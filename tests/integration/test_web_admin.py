"""An organisation's administrator in the browser: health, people and API tokens."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page

from gcx.localnet import LocalNetwork
from gcx.store import open_database
from gcx.store.schema import audit_entries, outbox

from .webutil import People, error_summary, sign_in_with

pytestmark = [pytest.mark.integration, pytest.mark.browser]

WHERE = "tower-hamlets"
ORG = "E09000030"
ADMIN_ACTOR = f"web:{WHERE}.admin@{ORG}"


@pytest.fixture(scope="module")
def admin(browser: Browser, people: People) -> Iterator[Page]:
    """The council's administrator, signed in once for the whole module.

    A second-factor code is accepted once, so signing the same person in for
    every test would mostly wait for the next code.
    """
    context = browser.new_context()
    try:
        page = context.new_page()
        people.sign_in(page, WHERE, f"{WHERE}.admin", "/admin")
        yield page
    finally:
        context.close()


def api_status(network: LocalNetwork, token: str) -> int:
    """The local API's answer to GET /api/v1/status with ``token``."""
    url = network.gateways[WHERE].config.api_url + "/api/v1/status"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def audited(network: LocalNetwork, action: str, subject: str) -> list[str]:
    """The actors of the gateway's audit entries for ``action`` on ``subject``."""
    db = open_database(network.gateways[WHERE].config.db_url)
    try:
        with db.read() as conn:
            rows = conn.execute(
                sa.select(audit_entries.c.actor).where(
                    audit_entries.c.action == action, audit_entries.c.subject == subject
                )
            ).all()
    finally:
        db.dispose()
    return [r.actor for r in rows]


def field_value(page: Page, label: str) -> str:
    """The value beside ``label`` in a summary list."""
    row = page.locator(".govuk-summary-list__row", has=page.locator(f"dt:text-is('{label}')"))
    return row.locator(".govuk-summary-list__value").inner_text().strip()


def test_the_overview_shows_the_gateways_health(
    admin: Page, people: People, web_network: LocalNetwork
) -> None:
    admin.goto(people.url(WHERE, "/admin"))
    assert admin.locator("h1").inner_text() == "Administration"
    assert admin.locator(".govuk-service-navigation__list a[href='/admin']").count() == 1
    url = web_network.gateways[WHERE].config.api_url + "/api/v1/health"
    with urllib.request.urlopen(url) as response:
        version = json.loads(response.read())["directory_version"]
    directory = admin.locator("[data-gcx-health=directory]")
    assert "Usable" in directory.inner_text()
    assert field_value(admin, "Version") == str(version), "the directory version held is shown"
    days = int(field_value(admin, "Days left"))
    assert days > 30, "a fresh demo certificate has years left"
    assert "Valid" in admin.locator("[data-gcx-health=certificate]").inner_text()
    witnessed = admin.locator("[data-gcx-health=central-log]").inner_text()
    assert "Consistent" in witnessed, "the gateway checked central's audit head at start"
    assert int(field_value(admin, "Entries witnessed")) > 0
    peers = admin.locator("table", has=admin.locator("caption:has-text('Gateways in')"))
    assert "dwp" in peers.inner_text() and "met-police" in peers.inner_text()
    assert WHERE not in peers.locator("tbody th").all_inner_texts()
    people.check(admin, "admin-overview")


def api_call(network: LocalNetwork, method: str, path: str, body: object = None) -> object:
    """A call to the council's local API with its demo token."""
    gateway = network.gateways[WHERE]
    request = urllib.request.Request(
        gateway.config.api_url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {gateway.token}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def test_the_overview_shows_the_last_delivery_to_each_peer(
    admin: Page, people: People, web_network: LocalNetwork
) -> None:
    sent = api_call(
        web_network,
        "POST",
        "/api/v1/messages",
        {
            "to": ["safeguarding.officer@MPS"],
            "subject": "Synthetic referral",
            "body": "Synthetic test referral.",
            "marking": "OFFICIAL",
        },
    )
    assert isinstance(sent, dict)
    deadline = time.monotonic() + 30
    while True:
        status = api_call(web_network, "GET", f"/api/v1/messages/{sent['id']}/status")
        assert isinstance(status, dict)
        if status["state"] == "delivered":
            break
        assert time.monotonic() < deadline, f"not delivered: {status}"
        time.sleep(0.2)
    admin.goto(people.url(WHERE, "/admin"))
    row = admin.locator("tr", has=admin.locator("th:text-is('met-police')"))
    cells = row.locator("td").all_inner_texts()
    assert cells[2].endswith("UTC"), f"the delivery to met-police is shown: {cells}"
    assert cells[3] == "Never"

    # A delivery that gave up, made by hand: failing one for real needs a peer
    # down for the message's whole lifetime. The page only reads these rows.
    db = open_database(web_network.gateways[WHERE].config.db_url)
    try:
        with db.transaction() as conn:
            conn.execute(
                outbox.update()
                .where(outbox.c.subject_id == sent["id"])
                .values(state="expired", last_error_code="peer-unreachable", last_error="test")
            )
    finally:
        db.dispose()
    admin.goto(people.url(WHERE, "/admin"))
    assert row.locator("td").all_inner_texts()[3].endswith("UTC"), "the failure is shown"
    failures = admin.locator("table", has=admin.locator("caption:has-text('could not be')"))
    assert sent["id"] in failures.inner_text()
    assert "peer-unreachable: test" in failures.inner_text()


def test_a_person_added_signs_in_with_what_is_shown_once(
    admin: Page, people: People, browser: Browser, web_network: LocalNetwork
) -> None:
    admin.goto(people.url(WHERE, "/admin/people"))
    assert "benefits.officer" in admin.locator("#people").inner_text()
    people.check(admin, "admin-people")
    admin.click("a:has-text('Add a person')")
    people.check(admin, "admin-person-add")
    admin.fill("#username", "new.caseworker")
    admin.fill("#display_name", "New Caseworker")
    admin.check("input[name=roles][value=staff]")
    # (sign-off is central's to give, so a gateway's form does not offer it)
    admin.check("input[name=roles][value=security-officer]")
    admin.click("button:has-text('Add person')")
    assert admin.locator(".govuk-panel").inner_text().startswith("Person added")
    assert "will not be shown again" in admin.locator(".govuk-warning-text").inner_text()
    password = admin.inner_text("#new-password").strip()
    secret = admin.inner_text("#new-totp-secret").strip()
    assert admin.inner_text("#new-totp-uri").startswith("otpauth://totp/")
    people.check(admin, "admin-person-added")
    assert audited(web_network, "web.user-added", "new.caseworker") == [ADMIN_ACTOR]

    context = browser.new_context()
    try:
        newcomer = context.new_page()
        sign_in_with(newcomer, people.url(WHERE, "/account"), "new.caseworker", password, secret)
        assert newcomer.url.endswith("/account"), "the shown password and secret work"
        assert "New Caseworker" in newcomer.inner_text("main")
        assert "security-officer, staff" in newcomer.inner_text("main")
    finally:
        context.close()

    admin.goto(people.url(WHERE, "/admin/people"))
    assert "New Caseworker" in admin.locator("#people").inner_text()
    assert password not in admin.content(), "the first password is never shown again"


def test_refused_inputs_show_the_error_summary_and_keep_what_was_typed(
    admin: Page, people: People
) -> None:
    admin.goto(people.url(WHERE, "/admin/people/add"))
    admin.fill("#username", "Not A Name")
    admin.fill("#display_name", "Someone")
    with admin.expect_response(lambda r: r.request.method == "POST") as posted:
        admin.click("button:has-text('Add person')")
    assert posted.value.status == 400
    assert posted.value.headers["x-gcx-error"] == "input-invalid"
    assert "is not an account name" in error_summary(admin)
    assert admin.input_value("#display_name") == "Someone"
    assert admin.locator("#username-error").count() == 1
    people.check(admin, "admin-person-refused")

    admin.fill("#username", "benefits.officer")
    admin.click("button:has-text('Add person')")
    assert "There is already a person called 'benefits.officer'" in error_summary(admin)

    admin.fill("#username", "no.roles")
    for box in admin.locator("input[name=roles]").all():
        box.uncheck()
    admin.click("button:has-text('Add person')")
    assert "Give one or more roles" in error_summary(admin)
    assert admin.locator("#roles-error").count() == 1

    admin.goto(people.url(WHERE, "/admin/tokens/add"))
    admin.fill("#account", "Bad Account")
    admin.click("button:has-text('Add token')")
    assert "is not an account name" in error_summary(admin)
    assert admin.input_value("#account") == "Bad Account"
    people.check(admin, "admin-token-refused")


def test_roles_change_and_a_locked_person_is_unlocked(
    admin: Page, page: Page, people: People, web_network: LocalNetwork
) -> None:
    web_network.add_web_user(WHERE, "locked.out", "Locked Out", ("staff",), ORG)
    for _ in range(5):
        page.goto(people.url(WHERE, "/sign-in"))
        page.fill("#username", "locked.out")
        page.fill("#password", "a-wrong-password-here")
        page.click("button:has-text('Continue')")
    assert "locked" in error_summary(page)

    admin.goto(people.url(WHERE, "/admin/people/locked.out"))
    assert field_value(admin, "State") == "Locked"
    people.check(admin, "admin-person-locked")
    admin.check("input[name=roles][value=security-officer]")
    admin.click("button:has-text('Save roles')")
    assert "now has the roles: security-officer, staff" in admin.inner_text(
        ".govuk-notification-banner"
    )
    assert field_value(admin, "Roles") == "security-officer, staff"
    admin.click("button:has-text('Unlock')")
    assert "can sign in again" in admin.inner_text(".govuk-notification-banner")
    assert field_value(admin, "State") == "Active"
    assert audited(web_network, "web.roles-changed", "locked.out") == [ADMIN_ACTOR]
    assert audited(web_network, "web.user-unlocked", "locked.out") == [ADMIN_ACTOR]

    people.sign_in(page, WHERE, "locked.out", "/account")
    assert "security-officer, staff" in page.inner_text("main")


def test_a_disabled_person_can_no_longer_sign_in(
    admin: Page, page: Page, people: People, web_network: LocalNetwork
) -> None:
    leaving = web_network.add_web_user(WHERE, "leaving.person", "Leaving Person", ("staff",), ORG)
    people.sign_in(page, WHERE, "leaving.person", "/account")

    admin.goto(people.url(WHERE, "/admin/people/leaving.person"))
    admin.click("button:has-text('Disable Leaving Person')")
    assert admin.url.endswith("/admin/people")
    assert "is disabled and signed out" in admin.inner_text(".govuk-notification-banner")
    row = admin.locator("#people tr", has=admin.locator("td:text-is('leaving.person')"))
    assert "Disabled" in row.inner_text()
    assert audited(web_network, "web.user-disabled", "leaving.person") == [ADMIN_ACTOR]

    page.goto(people.url(WHERE, "/account"))
    assert "/sign-in" in page.url, "the disabled person's session has ended"
    page.fill("#username", "leaving.person")
    page.fill("#password", leaving["password"])
    page.click("button:has-text('Continue')")
    assert "is not right" in error_summary(page)


def test_a_reset_gives_new_details_and_ends_the_old_ones(
    admin: Page, page: Page, people: People, browser: Browser, web_network: LocalNetwork
) -> None:
    lost = web_network.add_web_user(WHERE, "lost.phone", "Lost Phone", ("staff",), ORG)
    people.sign_in(page, WHERE, "lost.phone", "/account")

    admin.goto(people.url(WHERE, "/admin/people/lost.phone"))
    admin.click("button:has-text('Reset sign-in details')")
    assert admin.locator(".govuk-panel").inner_text().startswith("Sign-in details reset")
    password = admin.inner_text("#new-password").strip()
    secret = admin.inner_text("#new-totp-secret").strip()
    assert password != lost["password"]
    people.check(admin, "admin-person-reset")
    assert audited(web_network, "web.sign-in-reset", "lost.phone") == [ADMIN_ACTOR]

    page.goto(people.url(WHERE, "/account"))
    assert "/sign-in" in page.url, "the session on the lost device has ended"
    page.fill("#username", "lost.phone")
    page.fill("#password", lost["password"])
    page.click("button:has-text('Continue')")
    assert "is not right" in error_summary(page), "the old password no longer works"

    context = browser.new_context()
    try:
        found = context.new_page()
        sign_in_with(found, people.url(WHERE, "/account"), "lost.phone", password, secret)
        assert found.url.endswith("/account"), "the new password and secret work"
    finally:
        context.close()

    admin.goto(people.url(WHERE, f"/admin/people/{WHERE}.admin"))
    assert admin.locator("button:has-text('Reset sign-in details')").count() == 0
    csrf = admin.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    refused = admin.request.post(
        people.url(WHERE, f"/admin/people/{WHERE}.admin/reset"), form={"csrf_token": csrf}
    )
    assert refused.status == 403
    assert refused.headers["x-gcx-error"] == "forbidden"
    assert audited(web_network, "web.sign-in-reset", f"{WHERE}.admin") == []


def test_an_administrator_cannot_disable_themselves_nor_reach_other_organisations(
    admin: Page, people: People, web_network: LocalNetwork
) -> None:
    admin.goto(people.url(WHERE, f"/admin/people/{WHERE}.admin"))
    assert admin.locator("button:has-text('Disable')").count() == 0
    assert "cannot disable your own account" in admin.inner_text("main")
    csrf = admin.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    refused = admin.request.post(
        people.url(WHERE, f"/admin/people/{WHERE}.admin/disable"), form={"csrf_token": csrf}
    )
    assert refused.status == 403
    assert refused.headers["x-gcx-error"] == "forbidden"
    assert "cannot disable your own account" in refused.text()

    # The gateway may host several organisations; another's people are invisible.
    web_network.add_web_user(WHERE, "someone.else", "Someone Else", ("staff",), "OTHER")
    admin.goto(people.url(WHERE, "/admin/people"))
    assert "someone.else" not in admin.locator("#people").inner_text()
    response = admin.goto(people.url(WHERE, "/admin/people/someone.else"))
    assert response is not None and response.status == 404
    refused = admin.request.post(
        people.url(WHERE, "/admin/people/someone.else/disable"), form={"csrf_token": csrf}
    )
    assert refused.status == 404
    assert audited(web_network, "web.user-disabled", "someone.else") == []


def test_a_token_is_shown_once_and_refused_once_revoked(
    admin: Page, people: People, web_network: LocalNetwork
) -> None:
    admin.goto(people.url(WHERE, "/admin/tokens"))
    people.check(admin, "admin-tokens")
    admin.click("a:has-text('Add a token')")
    people.check(admin, "admin-token-add")
    admin.fill("#account", "case-system")
    admin.click("button:has-text('Add token')")
    assert "will not be shown again" in admin.locator(".govuk-warning-text").inner_text()
    token = admin.inner_text("#new-token").strip()
    assert token.startswith("gcxt")
    people.check(admin, "admin-token-added")
    assert api_status(web_network, token) == 200
    assert audited(web_network, "token.added", f"case-system@{ORG}") == [ADMIN_ACTOR]

    admin.goto(people.url(WHERE, "/admin/tokens"))
    row = admin.locator("#tokens tbody tr", has=admin.locator("th:text-is('case-system')"))
    assert "Active" in row.inner_text()
    assert token not in admin.content()
    row.locator("a:has-text('Revoke')").click()
    assert "Are you sure you want to revoke these tokens?" in admin.inner_text("h1")
    assert f"case-system@{ORG}" in admin.inner_text("main")
    assert api_status(web_network, token) == 200, "nothing is revoked before the confirmation"
    people.check(admin, "admin-token-revoke")
    admin.click("#confirm-revoke")
    assert f"Revoked 1 token of case-system@{ORG}" in admin.inner_text(".govuk-notification-banner")
    assert "Revoked" in row.inner_text()
    assert api_status(web_network, token) == 401, "a revoked token is refused at once"
    assert audited(web_network, "token.revoked", f"case-system@{ORG}") == [ADMIN_ACTOR]


def test_staff_are_refused_the_administration_pages(page: Page, people: People) -> None:
    people.sign_in(page, WHERE, "benefits.officer", "/account")
    assert page.locator(".govuk-service-navigation__list a[href='/admin']").count() == 0
    response = page.goto(people.url(WHERE, "/admin"))
    assert response is not None and response.status == 403
    assert response.headers["x-gcx-error"] == "role-required"
    assert "role-required" in page.inner_text("main")
    people.check(page, "admin-refused")


def test_an_administrator_cannot_make_a_token_in_a_persons_or_mailboxs_name(
    admin: Page, people: People, web_network: LocalNetwork
) -> None:
    """The add-token form makes systems' tokens only: a person's or mailbox's name is refused."""
    for name in ("benefits.officer", "benefits"):
        admin.goto(people.url(WHERE, "/admin/tokens/add"))
        assert admin.locator("input[name=kind]").count() == 0, "no person's token to choose"
        admin.fill("#account", name)
        admin.click("button:has-text('Add token')")
        assert admin.locator("#new-token").count() == 0
        assert admin.locator("#account-error").count() == 1
        assert ADMIN_ACTOR not in audited(web_network, "token.added", f"{name}@{ORG}")


def test_a_person_makes_their_own_token_which_acts_as_them(
    page: Page, people: People, web_network: LocalNetwork
) -> None:
    """On "Your account" a person makes a token; it calls the API as them, and they revoke it."""
    people.sign_in(page, WHERE, "benefits.officer", "/account")
    page.click("a:has-text('Your API tokens')")
    people.check(page, "own-tokens")
    page.click("button:has-text('Make a new token')")
    token = page.inner_text("#new-token").strip()
    assert token.startswith("gcxt")
    people.check(page, "own-token-added")
    url = web_network.gateways[WHERE].config.api_url + "/api/v1/status"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request) as response:
        caller = json.loads(response.read())["caller"]
    assert (caller["account"], caller["kind"], caller["roles"]) == (
        "benefits.officer",
        "user",
        ["staff"],
    )
    # Every token of benefits.officer was made by benefits.officer, none by an administrator.
    assert set(audited(web_network, "token.added", f"benefits.officer@{ORG}")) == {
        f"web:benefits.officer@{ORG}"
    }
    page.goto(people.url(WHERE, "/account/tokens"))
    page.locator("#tokens a:has-text('Revoke')").first.click()
    assert "Are you sure you want to revoke this token?" in page.inner_text("h1")
    people.check(page, "own-token-revoke")
    page.click("#cancel-revoke")
    assert api_status(web_network, token) == 200, "cancelling revokes nothing"
    page.locator("#tokens a:has-text('Revoke')").first.click()
    page.click("#confirm-revoke")
    assert api_status(web_network, token) == 401
