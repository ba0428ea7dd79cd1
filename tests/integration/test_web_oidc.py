"""Signing in to a gateway through the organisation's own identity provider (OpenID Connect).

The provider is a real HTTP server on loopback (tests/integration/oidc_provider.py);
the gateway is a real process configured to trust it; the browser is Chromium.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from gcx.config import GatewayConfig, write_secret_file
from gcx.localnet import DEMO_GATEWAYS, LocalNetwork

from .conftest import NetworkFactory, run_async
from .oidc_provider import StandInProvider
from .webutil import People, error_summary

pytestmark = [pytest.mark.integration, pytest.mark.browser]

POLICE = DEMO_GATEWAYS[2]


@pytest.fixture(scope="module")
def provider() -> Iterator[StandInProvider]:
    idp = StandInProvider()
    idp.start()
    try:
        yield idp
    finally:
        idp.stop()


@pytest.fixture(scope="module")
def oidc_network(
    network_factory: NetworkFactory, provider: StandInProvider, network_backend: str
) -> LocalNetwork:
    """The police gateway, restarted with sign-in through the provider turned on."""
    network = network_factory((POLICE,), name="oidc", web=True)
    gateway = network.gateways[POLICE.name]
    network.stop_process(gateway.process)
    write_secret_file(gateway.home / "secrets" / "oidc-client-secret", provider.client_secret)
    config = dataclasses.replace(
        GatewayConfig.load(gateway.home),
        oidc_issuer=provider.issuer,
        oidc_client_id=provider.client_id,
        oidc_client_secret_file="secrets/oidc-client-secret",
        oidc_provider_name="Met Police sign-in",
    )
    config.save()
    gateway.config = config
    network.start_gateway(POLICE.name)
    run_async(network.wait_for_gateway(POLICE.name))
    return network


@pytest.fixture
def police(oidc_network: LocalNetwork, network_backend: str) -> People:
    return People(oidc_network, f"{network_backend}-oidc")


def _through_provider(page: Page, people: People, who: str) -> None:
    page.goto(people.url(POLICE.name, "/account"))
    page.click("text=Sign in with Met Police sign-in")
    assert page.title() == "Council sign-in", "the browser is at the provider"
    page.fill("#who", who)
    page.click("button:has-text('Sign in')")
    page.wait_for_load_state()


def test_a_known_person_signs_in_through_the_provider(
    page: Page, police: People, provider: StandInProvider
) -> None:
    provider.tamper = None
    page.goto(police.url(POLICE.name, "/sign-in"))
    police.check(page, "sign-in-with-provider")
    _through_provider(page, police, "safeguarding.officer")
    page.wait_for_url("**/account")
    assert "Safeguarding Officer" in page.inner_text("main")


def test_a_person_the_gateway_does_not_know_is_refused(
    page: Page, police: People, provider: StandInProvider
) -> None:
    provider.tamper = None
    _through_provider(page, police, "stranger")
    assert "no account on this gateway" in error_summary(page)


@pytest.mark.parametrize(
    ("tamper", "sentence"),
    [
        ("audience", "token did not verify"),
        ("signature", "token did not verify"),
        ("expired", "token did not verify"),
        ("nonce", "token was not issued for this sign-in"),
        ("hs256", "uses an algorithm gcx refuses"),
    ],
)
def test_tokens_that_do_not_verify_are_refused(
    page: Page, police: People, provider: StandInProvider, tamper: str, sentence: str
) -> None:
    provider.tamper = tamper
    try:
        _through_provider(page, police, "safeguarding.officer")
        assert sentence in error_summary(page)
        page.goto(police.url(POLICE.name, "/account"))
        assert "/sign-in" in page.url, "no session was made"
    finally:
        provider.tamper = None


def test_a_callback_not_started_in_this_browser_is_refused(page: Page, police: People) -> None:
    page.goto(police.url(POLICE.name, "/sign-in/oidc/callback?state=forged&code=stolen"))
    assert "not started from this browser" in error_summary(page)
