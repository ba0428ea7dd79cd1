"""Central's network pages: the operator's dashboard, enrolment decisions with the Code of
Connection gate and its override, revoking a gateway, and extensions, in a real browser."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from gcx import audit
from gcx.config import CentralConfig
from gcx.localnet import DEMO_GATEWAYS, GatewaySpec, LocalNetwork, OrganisationSpec
from gcx.store import open_database

from .conftest import run_async
from .netutil import central_directory
from .webutil import People, error_summary, sign_in_with

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _pending_enrolment(network: LocalNetwork, gateway: str, code: str, name: str) -> str:
    """A new organisation (never through the Code of Connection) and its gateway's enrolment,
    waiting for an operator; returns the enrolment's id."""
    organisation = OrganisationSpec(code, name, "local-authority")

    async def submit() -> str:
        async with network.operator() as operator:
            await operator.add_organisation(code, name, organisation.type)
        await network.enrol(
            GatewaySpec(gateway, (organisation,), f"{gateway}.staff"), approve=False
        )
        async with network.operator() as operator:
            pending = await operator.list_enrolments("pending")
        return str(next(e["id"] for e in pending if e["gateway"] == gateway))

    return run_async(submit())


def _enrolment(network: LocalNetwork, enrolment_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        async with network.operator() as operator:
            every = await operator.list_enrolments()
        return dict(next(e for e in every if e["id"] == enrolment_id))

    return run_async(read())


def _in_days(days: int) -> dt.date:
    return dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)


def _fill_date(page: Page, date: dt.date) -> None:
    page.fill("#until-day", str(date.day))
    page.fill("#until-month", str(date.month))
    page.fill("#until-year", str(date.year))


def _long(date: dt.date) -> str:
    return f"{date.day} {date:%B %Y}"


@pytest.fixture(scope="module")
def operator_page(browser: Browser, people: People) -> Iterator[Page]:
    """The network operator, signed in once for the module's decisions."""
    context = browser.new_context()
    try:
        page = context.new_page()
        people.sign_in(page, "central", "network.operator", "/network")
        yield page
    finally:
        context.close()


def test_operator_signs_in_to_the_dashboard_of_members_and_gateways(
    page: Page, people: People
) -> None:
    people.sign_in(page, "central", "network.operator", "/")
    assert page.url.endswith("/network"), "an operator's home is the network dashboard"
    for spec in DEMO_GATEWAYS:
        organisation = spec.organisations[0]
        row = page.locator(f'#members tr[data-organisation="{organisation.code}"]').inner_text()
        assert organisation.name in row
        assert spec.name in row and "Active" in row, f"{spec.name} hosts {organisation.code}"
        assert "Approved" in row, "the demo organisations hold certificates of compliance"
        gateway_row = page.locator(f'#gateways tr[data-gateway="{spec.name}"]')
        assert "Active" in gateway_row.inner_text()
    # Each gateway lodges its audit checkpoint as it starts (within a moment of it).
    deadline = time.monotonic() + 30
    while page.locator("#gateways [data-audit]", has_text="Consistent").count() < len(
        DEMO_GATEWAYS
    ):
        assert time.monotonic() < deadline, page.inner_text("#gateways")
        page.wait_for_timeout(500)
        page.reload()
    card = page.locator(".govuk-summary-card", has_text="The directory")
    shown = int(
        card.locator(".govuk-summary-list__row", has_text="Current version")
        .locator(".govuk-summary-list__value")
        .inner_text()
    )
    _, latest = run_async(central_directory(people.network))
    # Central republishes on a timer, so the page may be a version or so behind by now.
    assert 1 <= shown <= latest.version
    assert "UTC" in card.locator(".govuk-summary-list__row", has_text="Published").inner_text()
    people.check(page, "network-dashboard")

    # Every count is a link to the list it counts: a table on the page, or a page of its own.
    counted = ["Members", "Gateways listed"]
    attention = page.locator(".govuk-summary-card", has_text="What needs attention")
    counted += [k.strip() for k in attention.locator(".govuk-summary-list__key").all_inner_texts()]
    for label in counted:
        key = page.locator(
            ".govuk-summary-list__key", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")
        )
        row = page.locator(".govuk-summary-list__row", has=key)
        link = row.locator(".govuk-summary-list__value a")
        assert link.count() == 1, f"the count of {label!r} is not a link"
        href = str(link.get_attribute("href"))
        target = href.split("#", 1)[1] if "#" in href else ""
        if href.startswith("#"):
            assert page.locator(f"[id='{target}']").count() == 1, f"{label!r} links nowhere"
        else:
            answer = page.request.get(people.url("central", href))
            assert answer.ok, f"{label!r} links to {href}, which answered {answer.status}"
            if target:
                assert f'id="{target}"' in answer.text(), f"{href} has no #{target}"


def test_the_compliance_gate_refuses_an_approval_until_the_operator_overrides_it(
    operator_page: Page, people: People, web_network: LocalNetwork
) -> None:
    page = operator_page
    enrolment_id = _pending_enrolment(web_network, "hackney", "E09000012", "Hackney Council")
    page.goto(people.url("central", "/network/enrolments"))
    row = page.locator('#pending tr[data-gateway="hackney"]')
    assert "Never approved" in row.inner_text(), "the pending list shows the compliance state"
    people.check(page, "network-enrolments")
    row.get_by_role("link").click()
    assert page.url.endswith(f"/network/enrolments/{enrolment_id}")
    assert page.locator("#override").count() == 0, "no override is offered before the gate"

    page.fill("#reason", "New council joining the network")
    with page.expect_navigation() as refused:
        page.click("button:has-text('Approve')")
    assert refused.value is not None and refused.value.status == 409
    assert refused.value.headers["x-gcx-error"] == "compliance-required"
    assert "E09000012 has no current certificate of compliance" in error_summary(page)
    assert page.input_value("#reason") == "New council joining the network"
    people.check(page, "network-enrolment-gate")

    # The override needs a reason of its own.
    page.check("#override")
    page.click("button:has-text('Approve')")
    assert "An override of the Code of Connection needs a reason" in error_summary(page)
    assert _enrolment(web_network, enrolment_id)["state"] == "pending"

    page.fill("#override-reason", "Statement under assessment; approved by the board")
    page.click("button:has-text('Approve')")
    assert page.url.endswith("/network/enrolments")
    assert "Gateway hackney was approved" in page.inner_text(".govuk-notification-banner")
    assert page.locator('#active tr[data-gateway="hackney"]').count() == 1
    assert _enrolment(web_network, enrolment_id)["state"] == "active"
    page.goto(people.url("central", "/network"))
    overrides = page.locator("#overrides").inner_text()
    assert "E09000012" in overrides and "approved by the board" in overrides


def test_an_enrolment_is_rejected_with_a_reason(
    operator_page: Page, people: People, web_network: LocalNetwork
) -> None:
    page = operator_page
    enrolment_id = _pending_enrolment(web_network, "camden", "E09000007", "Camden Council")
    page.goto(people.url("central", f"/network/enrolments/{enrolment_id}"))
    page.click("button:has-text('Reject')")
    assert "A reason is required" in error_summary(page)
    page.fill("#reason", "Not a member of this network")
    page.click("button:has-text('Reject')")
    assert "was rejected" in page.inner_text(".govuk-notification-banner")
    assert "Rejected" in page.locator('#decided tr[data-gateway="camden"]').inner_text()
    assert _enrolment(web_network, enrolment_id)["state"] == "rejected"


def test_revoking_a_gateway_asks_first_then_the_dashboard_shows_it_revoked(
    operator_page: Page, people: People, web_network: LocalNetwork
) -> None:
    page = operator_page
    enrolment_id = _pending_enrolment(web_network, "islington", "E09000019", "Islington Council")

    async def approve() -> None:
        async with web_network.operator() as operator:
            await operator.approve(
                enrolment_id, "throwaway", override=True, override_reason="test gateway"
            )

    run_async(approve())
    page.goto(people.url("central", "/network"))
    page.locator('#gateways tr[data-gateway="islington"]').get_by_role("link").click()
    assert page.url.endswith("/network/gateways/islington/revoke")
    assert page.inner_text("h1") == "Are you sure you want to revoke gateway islington?"
    assert "This cannot be undone" in page.inner_text(".govuk-warning-text")
    fingerprint = _enrolment(web_network, enrolment_id)["certificate_fingerprint"]
    assert fingerprint not in page.inner_text("main"), "a digest is shown only when asked for"
    page.click("summary:has-text('Certificate details')")
    assert fingerprint in page.inner_text("main") and "<p" not in page.inner_text("main")
    people.check(page, "network-revoke")

    page.click("button:has-text('Revoke gateway')")
    assert "A reason is required" in error_summary(page)
    assert _enrolment(web_network, enrolment_id)["state"] == "active", "nothing was done"

    page.fill("#reason", "Keys reported lost")
    page.click("button:has-text('Revoke gateway')")
    assert page.url.endswith("/network")
    assert "Gateway islington was revoked" in page.inner_text(".govuk-notification-banner")
    row = page.locator('#gateways tr[data-gateway="islington"]').inner_text()
    assert "Revoked" in row and "Keys reported lost" in row
    assert page.locator('#gateways tr[data-gateway="islington"] a').count() == 0
    _, directory = run_async(central_directory(web_network))
    assert "islington" in {r.gateway for r in directory.revocations}
    assert "islington" not in {g.name for g in directory.gateways}


def test_extensions_are_asked_for_then_granted_or_refused(
    page: Page, operator_page: Page, people: People, web_network: LocalNetwork
) -> None:
    # The council's security officer asks, first for longer than the network allows.
    people.sign_in(page, "central", "iso.e09000030", "/network/extension-request")
    people.check(page, "network-extension-request")
    _fill_date(page, _in_days(3 * 365))
    page.fill("#reason", "Renewal delayed by the supplier's audit")
    with page.expect_navigation() as refused:
        page.click("button:has-text('Send request')")
    assert refused.value is not None and refused.value.status == 422
    assert refused.value.headers["x-gcx-error"] == "extension-too-long"
    assert "past the longest allowed (90 days" in error_summary(page)
    assert page.input_value("#reason") == "Renewal delayed by the supplier's audit"
    people.check(page, "network-extension-too-long")
    asked = _in_days(400)
    _fill_date(page, asked)
    page.click("button:has-text('Send request')")
    assert "Your request for an extension" in page.inner_text(".govuk-notification-banner")

    # DWP's officer asks through the API (the same use case).
    async def dwp_asks() -> None:
        token = web_network.compliance_tokens["security-officer:DWP"]
        async with web_network.client_for(token) as officer:
            await officer.compliance(
                "POST",
                "/extensions",
                {"organisation": "DWP", "until": _in_days(390).isoformat(), "reason": "Audit"},
            )

    run_async(dwp_asks())

    operator = operator_page
    operator.goto(people.url("central", "/network/extensions"))
    assert operator.locator("#requested tr[data-extension]").count() == 2
    people.check(operator, "network-extensions")
    operator.locator("#requested tr", has_text="E09000030").get_by_role("link").click()
    assert operator.input_value("#until-day") == str(asked.day), "the date asked is offered"
    people.check(operator, "network-extension")
    _fill_date(operator, asked + dt.timedelta(days=10))
    operator.fill("#reason", "Supplier audit booked")
    operator.click("button:has-text('Grant extension')")
    assert "no later than the one asked" in error_summary(operator)
    granted = asked - dt.timedelta(days=5)
    _fill_date(operator, granted)
    operator.click("button:has-text('Grant extension')")
    assert "The extension for E09000030 was granted" in operator.inner_text(
        ".govuk-notification-banner"
    )
    row = operator.locator("#decided tr", has_text="E09000030").inner_text()
    assert "Granted" in row and _long(granted) in row

    operator.locator("#requested tr", has_text="DWP").get_by_role("link").click()
    operator.click("button:has-text('Refuse extension')")
    assert "A written reason is required" in error_summary(operator)
    operator.fill("#reason", "Renew on time: the audit is not a reason")
    operator.click("button:has-text('Refuse extension')")
    assert "The extension for DWP was refused" in operator.inner_text(".govuk-notification-banner")
    assert "Refused" in operator.locator("#decided tr", has_text="DWP").inner_text()


@pytest.mark.parametrize(
    ("username", "pages"),
    [
        ("lead.assessor", ["/network/enrolments", "/network/extensions", "/network/people"]),
        ("iso.dwp", ["/network", "/network/enrolments", "/network/gateways/dwp/revoke"]),
    ],
)
def test_people_without_the_operator_role_are_refused(
    page: Page, people: People, username: str, pages: list[str]
) -> None:
    people.sign_in(page, "central", username, "/account")
    for path in pages:
        response = page.goto(people.url("central", path))
        assert response is not None and response.status == 403, path
        assert response.headers["x-gcx-error"] == "role-required"


def test_the_operator_adds_an_officer_for_an_organisation_and_resets_them(
    operator_page: Page, browser: Browser, people: People
) -> None:
    page = operator_page
    page.goto(people.url("central", "/network/people"))
    listed = page.inner_text("#people")
    for username in ("network.operator", "lead.assessor", "iso.dwp", "siro.mps"):
        assert username in listed
    people.check(page, "network-people")

    page.click("a:has-text('Add a person')")
    page.fill("#username", "deputy.iso")
    page.fill("#display_name", "Deputy Security Officer")
    assert not page.is_checked("input[name=roles][value=operator]"), "no role is ticked for you"
    page.check("input[name=roles][value=security-officer]")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("button:has-text('Add person')")
    assert posted.value.status == 400
    assert "act for an organisation; choose it" in error_summary(page)
    assert page.locator("#organisation-error").count() == 1
    assert page.input_value("#username") == "deputy.iso", "what was typed is kept"
    people.check(page, "network-person-add-refused")
    page.select_option("#organisation", "DWP")
    page.click("button:has-text('Add person')")
    assert page.locator(".govuk-panel").inner_text().startswith("Person added")
    password = page.inner_text("#new-password").strip()
    secret = page.inner_text("#new-totp-secret").strip()

    context = browser.new_context()
    try:
        newcomer = context.new_page()
        sign_in_with(newcomer, people.url("central", "/"), "deputy.iso", password, secret)
        assert newcomer.url.endswith("/statements"), "an officer's home is the statements"
    finally:
        context.close()

    page.goto(people.url("central", "/network/people/deputy.iso"))
    assert "DWP" in page.inner_text(".govuk-summary-list")
    page.click("button:has-text('Reset sign-in details')")
    assert page.locator(".govuk-panel").inner_text().startswith("Sign-in details reset")
    assert page.inner_text("#new-password").strip() != password
    central_db = open_database(CentralConfig.load(people.network.central_home).db_url)
    try:
        with central_db.read() as conn:
            actors = {
                (e.action, e.actor)
                for e in audit.entries(conn)
                if e.subject == "deputy.iso" and e.action.startswith("web.")
            }
    finally:
        central_db.dispose()
    assert ("web.user-added", "web:network.operator") in actors
    assert ("web.sign-in-reset", "web:network.operator") in actors

    page.goto(people.url("central", "/network/people/network.operator"))
    assert "another operator can" in page.inner_text("main")
    assert page.locator("button:has-text('Disable')").count() == 0


def test_an_assessor_reads_the_dashboard_without_the_operator_actions(
    page: Page, people: People
) -> None:
    people.sign_in(page, "central", "lead.assessor", "/network")
    assert page.locator("#members tr[data-organisation]").count() >= 3
    assert page.locator("#gateways a").count() == 0, "no revoke links for an assessor"
    assert "Enrolments waiting" not in page.inner_text("main")
