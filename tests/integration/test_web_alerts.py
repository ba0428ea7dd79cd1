"""Email alerts in the browser: a person turns them on for their own address, and a message
sent to them brings an email with no content through the organisation's real SMTP relay.

The relay is aiosmtpd in this process (STARTTLS and sign-in required, its
own certificate authority, which DWP's gateway is told to trust); DWP's
gateway is restarted with the relay in its settings, as an administrator
would configure it. The journey runs with JavaScript off: the setting is a
plain form.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from gcx.config import GatewayConfig, write_secret_file
from gcx.localnet import DEMO_GATEWAYS, LocalNetwork
from gcx.private_files import write_private

from .conftest import NetworkFactory, run_async
from .smtp_relay import PASSWORD, USERNAME, Relay, running_relay
from .webutil import People, error_summary

pytestmark = [pytest.mark.integration, pytest.mark.browser]

COUNCIL, DWP = "tower-hamlets", "dwp"
DELIVERY_SECONDS = 60.0


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    with running_relay(tmp_path_factory.mktemp("relay")) as running:
        yield running


@pytest.fixture(scope="module")
def web_network(network_factory: NetworkFactory, relay: Relay) -> LocalNetwork:
    """The council and DWP, with DWP's gateway sending alerts through ``relay``."""
    network = network_factory(DEMO_GATEWAYS[:2], name="web", web=True)
    gateway = network.gateways[DWP]
    network.stop_process(gateway.process)
    write_secret_file(gateway.home / "secrets" / "smtp-password", PASSWORD)
    # Every file in a home is private to its account, or the gateway will not start.
    write_private(gateway.home / "relay-ca.pem", relay.anchor.read_bytes())
    config = dataclasses.replace(
        GatewayConfig.load(gateway.home),
        smtp_host="127.0.0.1",
        smtp_port=relay.port,
        smtp_username=USERNAME,
        smtp_password_file="secrets/smtp-password",
        smtp_ca_file="relay-ca.pem",
        smtp_from="gcx-alerts@dwp.example.gov.uk",
    )
    config.save()
    network.start_gateway(DWP)
    run_async(network.wait_for_gateway(DWP))
    return network


@pytest.fixture
def plain_context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(90_000)
    try:
        yield context
    finally:
        context.close()


def _send(network: LocalNetwork, token: str, to: str, subject: str) -> None:
    api = network.gateways[COUNCIL].config.api_url + "/api/v1/messages"
    body = {"to": [to], "subject": subject, "body": "[synthetic] alerts", "marking": "OFFICIAL"}
    request = urllib.request.Request(
        api,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 202


def test_a_person_turns_alerts_on_and_is_emailed_without_the_message(
    plain_context: BrowserContext, people: People, web_network: LocalNetwork, relay: Relay
) -> None:
    """Off by default; a bad address is refused beside its field; once on, a message to the
    person brings one email naming the marking and the sender, with a link and no content."""
    web_network.add_web_user(DWP, "alert.reader", "Alert Reader", ("staff",), "DWP")
    web_network.add_web_user(DWP, "no.alerts", "No Alerts", ("staff",), "DWP")
    token = web_network.add_token(COUNCIL, "alert.sender")
    page = plain_context.new_page()
    people.sign_in(page, DWP, "alert.reader", "/account")
    page.click("a:has-text('Email alerts')")
    assert page.locator("#alerts-2").is_checked(), "alerts are off until chosen"
    people.check_without_javascript(page, "alerts-off")

    page.check("#alerts")
    page.fill("#address", "alert reader at home")
    page.click("#save-alerts")
    assert "correct format" in error_summary(page)
    assert page.locator("#address-error").count() == 1, "the error is beside its field"
    people.check_without_javascript(page, "alerts-refused", people.url(DWP, "/account/alerts"))

    page.check("#alerts")
    page.fill("#address", "alert.reader@home.example.org")
    page.click("#save-alerts")
    assert page.url.endswith("/account")
    assert "You will get an email when a message arrives for you." in page.content()

    _send(web_network, token, "alert.reader@DWP", "Housing benefit change")
    _send(web_network, token, "no.alerts@DWP", "Not for alerts")
    deadline = time.monotonic() + DELIVERY_SECONDS
    while not relay.messages():
        assert time.monotonic() < deadline, f"no alert within {DELIVERY_SECONDS}s"
        time.sleep(0.25)
    [email] = relay.messages()
    assert email["To"] == "alert.reader@home.example.org"
    body = email.get_content()
    assert "You have a new OFFICIAL message from London Borough of Tower Hamlets." in body
    assert f":{web_network.gateways[DWP].config.web_port}/inbox" in body
    assert "Housing benefit change" not in body and "[synthetic]" not in body
    assert "Housing benefit change" not in str(email["Subject"])

    page.goto(people.url(DWP, "/account/alerts"))
    assert page.locator("#address").input_value() == "alert.reader@home.example.org"
    page.check("#alerts-2")
    page.click("#save-alerts")
    assert "You will not get email alerts." in page.content()
    people.check_without_javascript(page, "alerts-turned-off")


def _tab_to(page: Page, element_id: str) -> None:
    for _ in range(80):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} is not reachable with the Tab key")


def test_alerts_are_turned_on_by_keyboard_alone(
    page: Page, people: People, web_network: LocalNetwork
) -> None:
    """From the top of the page: Tab to the choice (on "No", as chosen now), an arrow key
    to "Yes", Tab to the address, type it, Enter."""
    web_network.add_web_user(DWP, "keyboard.reader", "Keyboard Reader", ("staff",), "DWP")
    people.sign_in(page, DWP, "keyboard.reader", "/account/alerts")
    _tab_to(page, "alerts-2")
    page.keyboard.press("ArrowUp")
    assert page.locator("#alerts").is_checked()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "address", "the address comes next"
    page.keyboard.type("keyboard.reader@home.example.org")
    page.keyboard.press("Enter")
    page.wait_for_url("**/account")
    assert "You will get an email when a message arrives for you." in page.content()
    page.goto(people.url(DWP, "/account/alerts"))
    assert page.locator("#alerts").is_checked()
    people.check(page, "alerts-on-by-keyboard")
