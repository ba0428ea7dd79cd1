"""Central's refusals over real HTTPS: enrolment requests it must not accept, and operator
tokens it must not honour, each with its stable code and an audit entry. Also what the tests
need of LocalNetwork on a running central: admitting organisations after the start."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from gcx.central.server import open_service
from gcx.config import CentralConfig
from gcx.gateway.home import create_gateway_home
from gcx.localnet import DEMO_GATEWAYS, GatewaySpec, LocalNetwork, OrganisationSpec

from .conftest import NetworkFactory, run_async
from .netutil import audit_log, central_call, wait_for_audit

pytestmark = pytest.mark.integration

SPARE_ORGANISATION = ("E09000012", "London Borough of Hackney", "local-authority")


async def _register_spare(network: LocalNetwork) -> None:
    async with network.operator() as operator:
        await operator.add_organisation(*SPARE_ORGANISATION)


@pytest.fixture(scope="module")
def network(network_factory: NetworkFactory) -> LocalNetwork:
    network = network_factory(DEMO_GATEWAYS[:1])
    run_async(_register_spare(network))  # registered, hosted by no gateway yet
    return network


def central_db(network: LocalNetwork) -> str:
    return CentralConfig.load(network.central_home).db_url


def enrolment_request(
    network: LocalNetwork, home: Path, name: str, organisations: list[str]
) -> dict[str, Any]:
    """A well-formed enrolment request, made the way `gcx gateway init` makes it."""
    _, request = create_gateway_home(
        home,
        name=name,
        organisations=organisations,
        central_url=network.central_url,
        anchor=network.anchor,
    )
    return request


def assert_refusal(
    answer: tuple[int, Any, dict[str, str]], status: int, code: str
) -> dict[str, Any]:
    got_status, body, headers = answer
    assert (got_status, body.get("code") if isinstance(body, dict) else body) == (status, code)
    assert isinstance(body["message"], str) and body["message"].strip()
    assert headers.get("X-Gcx-Error") == code
    return dict(body)


@pytest.mark.parametrize(
    "csr",
    [
        "this is not a certificate request",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ],
    ids=["not-pem", "truncated-pem"],
)
async def test_malformed_csr_is_refused(network: LocalNetwork, csr: str) -> None:
    """An enrolment whose PKCS#10 does not parse is refused with 400 [csr-invalid]."""
    answer = await central_call(
        network,
        "POST",
        "/api/v1/enrolments",
        body={
            "csr": csr,
            "peer_address": "127.0.0.1:9443",
            "organisation_keys": {},
        },
    )
    assert_refusal(answer, 400, "csr-invalid")


async def test_csr_with_a_broken_signature_is_refused(
    network: LocalNetwork, tmp_path: Path
) -> None:
    """A PKCS#10 whose self-signature fails is refused with 400 [csr-invalid]."""
    request = enrolment_request(network, tmp_path / "gw", "broken-signature", ["E09000012"])
    der = bytearray(base64.b64decode("".join(request["csr"].splitlines()[1:-1])))
    der[-10] ^= 0x01  # the request ends with its 64-byte Ed25519 signature
    encoded = base64.encodebytes(bytes(der)).decode()
    request["csr"] = (
        f"-----BEGIN CERTIFICATE REQUEST-----\n{encoded}-----END CERTIFICATE REQUEST-----\n"
    )
    answer = await central_call(network, "POST", "/api/v1/enrolments", body=request)
    body = assert_refusal(answer, 400, "csr-invalid")
    assert "signature" in body["message"]


async def test_unknown_organisation_is_refused(network: LocalNetwork, tmp_path: Path) -> None:
    """An unregistered organisation gets 422 [organisation-unknown], audited."""
    with audit_log(central_db(network)) as log:
        after = log.head()
    request = enrolment_request(network, tmp_path / "gw", "not-registered", ["E09999999"])

    answer = await central_call(network, "POST", "/api/v1/enrolments", body=request)

    body = assert_refusal(answer, 422, "organisation-unknown")
    assert body["details"]["organisations"] == ["E09999999"]
    entry = await wait_for_audit(
        central_db(network), "enrolment.refused", "organisation-unknown", after=after
    )
    assert entry.subject == "not-registered"


@pytest.mark.parametrize(
    ("name", "organisation", "clash"),
    [
        ("tower-hamlets", "E09000012", "gateway tower-hamlets"),
        ("second-tower-hamlets", "E09000030", "organisation E09000030"),
        ("tower-hamlets", "E09000030", "gateway tower-hamlets"),
    ],
    ids=["same-gateway-name", "same-organisation", "same-name-and-organisation"],
)
async def test_duplicate_enrolment_is_refused(
    network: LocalNetwork, tmp_path: Path, name: str, organisation: str, clash: str
) -> None:
    """Re-enrolling a taken gateway name or organisation gets 409 [enrolment-duplicate]."""
    existing = json.loads((network.gateways["tower-hamlets"].home / "enrolment.json").read_text())
    before = (
        await central_call(network, "GET", "/api/v1/enrolments", token=network.operator_token)
    )[1]
    with audit_log(central_db(network)) as log:
        after = log.head()
    request = enrolment_request(network, tmp_path / "gw", name, [organisation])

    answer = await central_call(network, "POST", "/api/v1/enrolments", body=request)

    body = assert_refusal(answer, 409, "enrolment-duplicate")
    assert body["details"]["existing"] == existing["id"]
    assert clash in body["message"]
    await wait_for_audit(
        central_db(network), "enrolment.refused", "enrolment-duplicate", after=after
    )
    enrolments = (
        await central_call(network, "GET", "/api/v1/enrolments", token=network.operator_token)
    )[1]
    assert enrolments == before, "the refused request left an enrolment behind"


@pytest.mark.parametrize(
    "token",
    ["gcxo_not-a-real-token", "", "gcxt_a-gateway-style-token"],
    ids=["unknown", "missing", "wrong-kind"],
)
async def test_unknown_operator_token_is_refused(network: LocalNetwork, token: str) -> None:
    """An unknown or missing operator token gets 401 [token-invalid], audited."""
    with audit_log(central_db(network)) as log:
        after = log.head()
        answer = await central_call(network, "GET", "/api/v1/organisations", token=token or None)
        assert_refusal(answer, 401, "token-invalid")
        refused = log.entries("token.refused", after=after)
    assert [(e.subject, e.details_dict.get("request")) for e in refused] == [
        ("operator", "GET /api/v1/organisations")
    ]


async def test_revoked_operator_token_is_refused(network: LocalNetwork) -> None:
    """A revoked operator's token gets 401 [token-invalid], audited."""
    service = open_service(network.central_home)
    try:
        token = service.add_operator("temporary-operator")
        status, body, _ = await central_call(network, "GET", "/api/v1/organisations", token=token)
        assert status == 200, body
        service.revoke_operator("temporary-operator")
    finally:
        service.db.dispose()
    with audit_log(central_db(network)) as log:
        after = log.head()
        answer = await central_call(
            network,
            "POST",
            "/api/v1/organisations",
            token=token,
            body={"code": "E09000013", "name": "x", "type": "other"},
        )
        assert_refusal(answer, 401, "token-invalid")
        assert [
            e.details_dict.get("request") for e in log.entries("token.refused", after=after)
        ] == ["POST /api/v1/organisations"]
        revoked = [e.subject for e in log.entries("operator.revoked")]
    assert "temporary-operator" in revoked
    organisations = (
        await central_call(network, "GET", "/api/v1/organisations", token=network.operator_token)
    )[1]
    assert "E09000013" not in [o["code"] for o in organisations]


async def test_local_network_admits_a_second_batch_of_organisations(
    network: LocalNetwork,
) -> None:
    """LocalNetwork.register can admit more organisations on a started network."""
    spec = GatewaySpec(
        "second-batch",
        (OrganisationSpec("E09000014", "London Borough of Haringey", "local-authority"),),
        "second.batch",
    )
    await network.register((spec,))
    organisations = (
        await central_call(network, "GET", "/api/v1/organisations", token=network.operator_token)
    )[1]
    assert "E09000014" in [o["code"] for o in organisations]
    gateway = await network.enrol(spec)
    assert json.loads((gateway.home / "enrolment.json").read_text())["state"] == "pending"
    status = await central_call(
        network, "GET", "/api/v1/enrolments?state=active", token=network.operator_token
    )
    assert "second-batch" in [e["gateway"] for e in status[1]]


def test_cli_approval_needs_the_code_of_connection_or_a_recorded_override(
    network: LocalNetwork, tmp_path: Path
) -> None:
    """`gcx central enrolment approve` refuses an organisation with no Code of Connection
    approval (compliance-required); with --override-reason it approves and records why."""
    from .netutil import gcx

    request = enrolment_request(network, tmp_path / "hackney", "hackney", ["E09000012"])
    status, body, _ = run_async(central_call(network, "POST", "/api/v1/enrolments", body=request))
    assert status == 202, body
    home = ["--home", str(network.central_home), "--token", network.operator_token]

    refused = gcx("central", "enrolment", "approve", *home, body["id"], "--reason", "try")
    assert refused.returncode == 2
    assert "[compliance-required]" in refused.stderr

    approved = gcx(
        "central",
        "enrolment",
        "approve",
        *home,
        body["id"],
        "--reason",
        "pilot",
        "--override-reason",
        "pilot connection agreed by the SIRO pending assessment",
    )
    assert approved.returncode == 0, approved.stderr
    assert "approved hackney" in approved.stdout
    with audit_log(central_db(network)) as log:
        approval = [
            e for e in log.entries() if e.action == "enrolment.approved" and e.subject == body["id"]
        ]
    assert approval and "pilot connection agreed" in json.dumps(approval[0].details_dict)
