"""The demo's Code of Connection helpers, over the real API in process, with a fixed clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from gcx.central.app import build_app
from gcx.errors import RemoteRefusal
from gcx.reference.demo_path import admit_all, admit_through_coco, lapse_by_expiry

from .compliance_support import ORG, OTHER, Network, network

__all__ = ["network"]


class ApiClient:
    """The OperatorClient surface the helpers use, over an in-process test client."""

    def __init__(self, client: TestClient[Any, Any], token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def compliance(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.client.request(
            method, "/api/v1/compliance" + path, json=body, headers=self.headers
        )
        data = await response.json()
        if response.status >= 400:
            raise RemoteRefusal(response.status, data["code"], data["message"])
        return data


async def test_demo_admits_lapses_and_readmits(network: Network) -> None:
    """admit_all approves every organisation; lapse_by_expiry removes one; re-admission restores."""
    from gcx.reference.demo_path import write_demo_settings

    write_demo_settings(network.home)
    client: TestClient[Any, Any] = TestClient(
        TestServer(build_app(network.central, republish=False))
    )
    await client.start_server()
    try:
        operator = ApiClient(client, network.central.add_operator("demo-operator"))

        def client_for(token: str) -> ApiClient:
            return ApiClient(client, token)

        tokens = await admit_all(operator, client_for, [ORG, OTHER])
        for code in (ORG, OTHER):
            enrolment = network.enrol(code.lower(), [code])
            network.central.approve_enrolment("olivia", enrolment["id"], "CoCo met")
        assert network.directory().gateway_named("e09000030") is not None

        async def pass_time(seconds: float) -> None:
            network.clock.advance(dt.timedelta(seconds=seconds))

        await lapse_by_expiry(operator, client_for, ORG, tokens=tokens, wait=pass_time)
        assert network.directory().gateway_named("e09000030") is None
        assert network.directory().gateway_named("dwp") is not None

        await admit_through_coco(operator, client_for, ORG, tokens=tokens)
        assert network.directory().gateway_named("e09000030") is not None
    finally:
        await client.close()
