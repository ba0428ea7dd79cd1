"""The service-access steps of ``gcx demo``: a council officer's DWP lookup, and a refusal."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import sqlalchemy as sa

from gcx.protocol import strict_json
from gcx.reference._data import sample_ninos
from gcx.reference.showcase import Showcase

if TYPE_CHECKING:
    from gcx.localnet import GatewayProcess, LocalNetwork

PURPOSE = "housing benefit review, case HB-2291"


async def _lookup(
    gateway: GatewayProcess, nino: str, user: str
) -> tuple[int, dict[str, object], dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{gateway.config.api_url}/services/DWP/dwp-cis/customers/{nino}",
            headers={
                "Authorization": f"Bearer {gateway.token}",
                "X-Gcx-User": user,
                "X-Gcx-Purpose": PURPOSE,
            },
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response,
    ):
        return response.status, strict_json.loads(await response.read()), dict(response.headers)


def _logged_purpose(gateway: GatewayProcess, call_id: str) -> str | None:
    from gcx.store import open_database
    from gcx.store.schema_services import service_calls

    database = open_database(gateway.config.db_url)
    try:
        with database.read() as conn:
            return conn.execute(
                sa.select(service_calls.c.purpose).where(service_calls.c.id == call_id)
            ).scalar()
    finally:
        database.dispose()


async def service_steps(network: LocalNetwork, show: Showcase) -> None:
    council = network.gateways["tower-hamlets"]
    dwp = network.gateways["dwp"]
    police = network.gateways.get("met-police")
    nino = sample_ninos(1)[0]

    async def lookup() -> str:
        status, body, headers = await _lookup(council, nino, "benefits.officer")
        assert status == 200, body
        assert body["data_label"] == "SYNTHETIC", body
        call_id = headers["X-Gcx-Call-Id"]
        for gateway in (council, dwp):
            logged = _logged_purpose(gateway, call_id)
            assert logged == PURPOSE, f"{gateway.spec.name} logged purpose {logged!r}"
        customer = body["customer"]
        assert isinstance(customer, dict)
        return (
            f"DWP answered {nino} ({customer['given_name']} {customer['family_name']}, "
            f"SYNTHETIC); request and answer signed and checked; purpose {PURPOSE!r} logged by "
            f"both gateways (call {call_id})"
        )

    await show.step(
        "a council officer looks up a claimant in DWP's customer information service", lookup
    )

    async def refused() -> str:
        assert police is not None, "the demo network has no police gateway"
        status, body, headers = await _lookup(police, nino, police.spec.account)
        assert status == 403 and headers.get("X-Gcx-Error") == "service-forbidden", body
        return f"the police force holds no access right: refused with {status} [{body['code']}]"

    await show.step("a lookup by an organisation without access is refused", refused)
