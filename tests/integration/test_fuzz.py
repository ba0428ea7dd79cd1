"""Schemathesis against every OpenAPI document a running network serves: no 5xx, and
every answer the documents promise (status, content type, body schema).

One network is started for this module only, because fuzzed operations may change
its state (a revocation, a withdrawal, a published service). It runs on SQLite alone:
the databases are covered on both backends by the contract and other integration
tests, and fuzzing both would double the longest module of the suite for inputs that
reach the same handlers.

The documents are the ones the processes serve, fetched from them, so a route added
to a document is fuzzed without changing this file. Each operation gets a bounded
number of generated requests (valid and invalid ones) as a staff member, an
administrator and with no token; Hypothesis is derandomised so every run sends the
same requests, and nothing is shrunk, so a failure costs one example, not a search.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gcx.localnet import DEMO_GATEWAYS, LocalNetwork
from gcx.openapi import REFUSED, with_shared_components

from .conftest import _Networks
from .netutil import DatabaseUrls

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

# Requests per operation, per role and generation mode. With ~85 operations, three
# roles and two modes this is a few thousand requests: a few minutes on two cores.
EXAMPLES = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The accounts the gateway tokens are made for; a call names its own account as its user.
ACCOUNTS = {"staff": "fuzz.staff", "admin": "fuzz.admin", "none": "fuzz.staff"}
# Statuses the gateway adds to a provider's own when it relays a call (see the call
# route in the gateway's document), each a gcx refusal.
RELAY_REFUSALS = ("401", "403", "413", "429", "502", "503", "504")

# A tus PATCH body is raw bytes, sent as they are.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@dataclass(frozen=True)
class Target:
    """One served document and where and how to send its operations."""

    name: str
    document: dict[str, Any]
    base_url: str
    verify: bool | str
    tokens: dict[str, str | None]
    relayed: bool = False


@pytest.fixture(scope="module")
def fuzz_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    """The council and DWP with the reference services, on SQLite, for this module alone."""
    urls = DatabaseUrls("sqlite", tmp_path_factory.mktemp("fuzz-databases"))
    networks = _Networks(tmp_path_factory.mktemp, urls)
    try:
        yield networks(DEMO_GATEWAYS[:2], name="fuzz", reference_services=True)
    finally:
        networks.stop_all()


def _get(url: str, verify: bool | str, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.get(url, headers=headers, verify=verify, timeout=30)
    assert response.status_code == 200, f"{url} answered {response.status_code}"
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(scope="module")
def targets(fuzz_network: LocalNetwork) -> list[Target]:
    """Every document the network serves, with a staff, an administrator's and no token."""
    network = fuzz_network
    council = network.gateways["tower-hamlets"]
    gateway_tokens: dict[str, str | None] = {
        "staff": network.add_token("tower-hamlets", ACCOUNTS["staff"], ("staff",)),
        "admin": network.add_token("tower-hamlets", ACCOUNTS["admin"], ("admin",)),
        "none": None,
    }
    api = council.config.api_url
    anchor = str(network.anchor)
    # Central's equivalents: an organisation's security officer, the operator, nobody.
    officer = next(t for k, t in network.compliance_tokens.items() if "security" in k)
    central_tokens: dict[str, str | None] = {
        "staff": officer,
        "admin": network.operator_token,
        "none": None,
    }
    found = [
        Target("gateway", _get(api + "/api/v1/openapi.json", False), api, False, gateway_tokens),
        Target(
            "central",
            _get(network.central_url + "/api/v1/openapi.json", anchor),
            network.central_url,
            anchor,
            central_tokens,
        ),
        Target(
            "compliance",
            _get(network.central_url + "/api/v1/compliance/openapi.json", anchor),
            network.central_url,
            anchor,
            central_tokens,
        ),
    ]
    # The reference services, called as the council calls them: through its gateway.
    listed = _get(api + "/api/v1/services", False, gateway_tokens["staff"])["services"]
    for service in listed:
        found.append(
            Target(
                f"service {service['provider']}/{service['name']}",
                _relayed(_get(api + service["openapi_url"], False, gateway_tokens["staff"])),
                f"{api}/services/{service['provider']}/{service['name']}",
                False,
                gateway_tokens,
                relayed=True,
            )
        )
    assert len(listed) >= 2, f"the reference services are not callable: {listed}"
    return found


def _relayed(document: dict[str, Any]) -> dict[str, Any]:
    """A provider's document as its callers see it through a gateway: with the relay's refusals."""
    for item in document["paths"].values():
        for operation in item.values():
            for status in RELAY_REFUSALS:
                operation["responses"].setdefault(status, REFUSED)
    return with_shared_components(document)


def _fuzz_operation(target: Target, operation: Any, role: str) -> str | None:
    """Send the operation's generated requests; the first failure's report, or None."""
    token = target.tokens[role]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if target.relayed:
        headers |= {"X-Gcx-User": ACCOUNTS[role], "X-Gcx-Purpose": "schemathesis run in CI"}
    strategy = st.one_of(
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES * 2,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        case.call_and_validate(
            base_url=target.base_url,
            headers=headers,
            checks=CHECKS,
            verify=target.verify,
            timeout=30,
        )

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis's FailureGroup is the latter
        # Every failure is collected, so one run reports them all.
        return f"{operation.method.upper()} {operation.path} as {role}: {exc}"[:3000]
    return None


def test_every_served_openapi_survives_fuzzing(targets: list[Target]) -> None:
    """No 5xx, and every status, content type and body as documented, for every role."""
    failures = []
    operations = 0
    for target in targets:
        schema = schemathesis.openapi.from_dict(target.document)
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            for role in target.tokens:
                failure = _fuzz_operation(target, operation, role)
                if failure is not None:
                    failures.append(f"[{target.name}] {failure}")
    assert operations > 60, f"only {operations} operations found in {len(targets)} documents"
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures)
