"""Central's Code of Connection HTTP API, in process: routes, roles, refusals and the override."""

from __future__ import annotations

import io
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from gcx.central.app import build_app

from .compliance_support import ORG, OTHER, Network, network

__all__ = ["network"]


async def _client(net: Network) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(TestServer(build_app(net.central, republish=False)))
    await client.start_server()
    return client


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_api_drives_the_workflow_and_refuses_with_stable_codes(network: Network) -> None:
    """Accounts, a statement, refusals by role and type, exports and the dashboard over HTTP."""
    operator_token = network.central.add_operator("oscar")
    client = await _client(network)
    try:
        spec = await (await client.get("/api/v1/compliance/openapi.json")).json()
        assert "/api/v1/compliance/statements/{id}/approve" in spec["paths"]

        made = await client.post(
            "/api/v1/compliance/accounts",
            json={"name": "ivy", "roles": ["security-officer"], "organisation": ORG},
            headers=_auth(operator_token),
        )
        assert made.status == 201
        officer = _auth((await made.json())["token"])

        created = await client.post(
            "/api/v1/compliance/statements", json={"organisation": ORG}, headers=officer
        )
        assert created.status == 201
        sid = (await created.json())["id"]

        wrong = await client.put(
            f"/api/v1/compliance/statements/{sid}/answers/NOPE-01",
            json={"answer": "yes"},
            headers=officer,
        )
        assert wrong.status == 422
        assert wrong.headers["X-Gcx-Error"] == "control-not-in-catalogue"

        exe = await client.post(
            f"/api/v1/compliance/statements/{sid}/evidence?filename=x.exe&controls=GOV-01",
            data=b"MZ\x90\x00",
            headers={**officer, "Content-Type": "application/x-msdownload"},
        )
        assert (exe.status, (await exe.json())["code"]) == (415, "evidence-type-refused")

        limit = network.coco.settings.evidence_max_bytes
        big = await client.post(
            f"/api/v1/compliance/statements/{sid}/evidence?filename=big.pdf&controls=GOV-01",
            data=io.BytesIO(b"%PDF-" + b"x" * limit),
            headers={**officer, "Content-Type": "application/pdf"},
        )
        assert (big.status, (await big.json())["code"]) == (413, "evidence-too-large")

        approve = await client.post(
            f"/api/v1/compliance/statements/{sid}/approve",
            json={"reason": "self-approval"},
            headers=officer,
        )
        assert (await approve.json())["code"] in ("role-required", "forbidden")

        forged = await client.post("/api/v1/compliance/selfchecks", data=b'{"payload": "e30="}')
        assert (forged.status, (await forged.json())["code"]) == (
            400,
            "selfcheck-signature-invalid",
        )

        anonymous = await client.get("/api/v1/compliance/dashboard")
        assert anonymous.status == 401

        enrolment = network.enrol("dwp", [OTHER])
        refused = await client.post(
            f"/api/v1/enrolments/{enrolment['id']}/approve",
            json={"reason": "please"},
            headers=_auth(operator_token),
        )
        assert (refused.status, (await refused.json())["code"]) == (409, "compliance-required")
        overridden = await client.post(
            f"/api/v1/enrolments/{enrolment['id']}/approve",
            json={"reason": "please", "override": True, "override_reason": "Pilot agreed."},
            headers=_auth(operator_token),
        )
        assert overridden.status == 200
        dashboard = await (
            await client.get("/api/v1/compliance/dashboard", headers=_auth(operator_token))
        ).json()
        assert dashboard["manual_overrides"] == 1 and dashboard["pending"] == 1

        report = await client.get(
            "/api/v1/compliance/report?format=csv", headers=_auth(operator_token)
        )
        assert report.content_type == "text/csv"
        assert (await report.text()).startswith("organisation,name,type,standing")
    finally:
        await client.close()
