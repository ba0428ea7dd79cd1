"""Putting the reference services on a local network: start, publish, grant, wait.

Used by ``gcx demo`` (through :class:`gcx.localnet.LocalNetwork`), the
integration tests and the benchmark, so all three exercise the same path a
provider's administrator takes: the local API of its own gateway.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp

from gcx import listeners
from gcx.config import GatewayConfig
from gcx.errors import PeerUnreachable, RemoteRefusal
from gcx.protocol import strict_json
from gcx.reference._data import REFERENCE_SERVICES
from gcx.reference.app import openapi_for

# What these steps need of a local network and its gateways, which
# gcx.localnet.LocalNetwork and GatewayProcess have. They are named here, not
# imported, because LocalNetwork.start() runs these steps: importing it back
# would make the two modules need each other.


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class RunningGateway(Protocol):
    """A started gateway: its configuration, its name, and the demo's two API tokens."""

    @property
    def spec(self) -> _Named: ...

    @property
    def config(self) -> GatewayConfig: ...

    @property
    def token(self) -> str: ...

    @property
    def admin_token(self) -> str: ...


class RunningNetwork(Protocol):
    """A started local network: its gateways, and starting a process it stops with the rest."""

    @property
    def gateways(self) -> Mapping[str, RunningGateway]: ...

    @property
    def extra_processes(self) -> list[subprocess.Popen[bytes]]: ...

    def spawn(
        self, args: list[str], log_name: str, sockets: dict[str, socket.socket] | None = None
    ) -> subprocess.Popen[bytes]: ...


def start_backend(network: RunningNetwork, name: str) -> str:
    """Start a reference backend as its own process, which the network stops with the rest,
    on a socket bound here (gcx.listeners); the backend's URL."""
    sock = listeners.bind(listen=True)
    port = listeners.port_of(sock)
    process = network.spawn(
        ["service", "reference", name, "--port", str(port)], f"reference-{name}", {"http": sock}
    )
    network.extra_processes.append(process)
    return f"http://127.0.0.1:{port}"


async def wait_for_backend(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url + "/openapi.json") as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.1)
    raise PeerUnreachable(f"The reference backend at {url} did not start.")


async def local_api(
    gateway: RunningGateway,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    admin: bool = False,
) -> Any:
    """One local API request, as the demo person or (``admin``) as the administering system."""
    token = gateway.admin_token if admin else gateway.token
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            gateway.config.api_url + path,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response,
    ):
        data = strict_json.loads(await response.read())
        if response.status >= 400:
            raise RemoteRefusal(response.status, str(data.get("code")), str(data.get("message")))
        return data


async def publish(
    provider: RunningGateway,
    name: str,
    backend_url: str,
    *,
    logging: str = "metadata",
    **settings: Any,
) -> Any:
    openapi: dict[str, Any] = (
        openapi_for(name)
        if name in REFERENCE_SERVICES
        else {"openapi": "3.1.0", "info": {"title": name, "version": "1"}, "paths": {}}
    )
    description = {
        "name": name,
        "version": "1",
        "title": openapi["info"]["title"],
        "openapi": openapi,
        "backend_url": backend_url,
        "timeout_seconds": 5.0,
        "max_body_bytes": 256 * 1024,
        "logging": logging,
        "requires_user": True,
        "requires_purpose": True,
        "rate_per_second": 5000.0,
        "burst": 5000,
        **settings,
    }
    return await local_api(provider, "POST", "/api/v1/services/published", description, admin=True)


async def grant(
    provider: RunningGateway,
    name: str,
    to: str,
    *,
    methods: list[str],
    paths: list[str],
    **rate: Any,
) -> Any:
    body = {"to": to, "methods": methods, "paths": paths, **rate}
    path = f"/api/v1/services/published/{name}/grants"
    return await local_api(provider, "POST", path, body, admin=True)


async def wait_until_callable(
    consumer: RunningGateway, provider: str, name: str, *, present: bool = True, timeout: float = 30
) -> None:
    """Wait until the consumer's gateway lists (or no longer lists) the service."""
    deadline = time.monotonic() + timeout
    while True:
        listed = await local_api(consumer, "GET", "/api/v1/services")
        found = any(s["provider"] == provider and s["name"] == name for s in listed["services"])
        if found == present:
            return
        if time.monotonic() > deadline:
            raise PeerUnreachable(
                f"{provider}/{name} did not become {'callable' if present else 'uncallable'}."
            )
        await asyncio.sleep(0.2)


async def wait_for_version(
    gateways: list[RunningGateway], version: int, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        for gateway in gateways:
            while True:
                async with session.get(gateway.config.api_url + "/api/v1/health") as response:
                    held = strict_json.loads(await response.read()).get("directory_version") or 0
                if held >= version:
                    break
                if time.monotonic() > deadline:
                    raise PeerUnreachable(f"{gateway.spec.name} did not reach directory {version}.")
                await asyncio.sleep(0.1)


async def set_up_dwp_lookup(
    network: RunningNetwork, *, logging: str = "full", **settings: Any
) -> str:
    """Start the DWP reference backend, publish it from DWP's gateway, grant the council."""
    url = start_backend(network, "dwp-cis")
    await wait_for_backend(url)
    dwp = network.gateways["dwp"]
    await publish(dwp, "dwp-cis", url, logging=logging, **settings)
    result = await grant(dwp, "dwp-cis", "E09000030", methods=["GET"], paths=["/customers"])
    council = network.gateways["tower-hamlets"]
    await wait_for_version([council, dwp], int(result["directory"]))
    return url


async def set_up_fsm_check(network: RunningNetwork) -> str:
    """Start the free school meals reference backend, publish it from DWP, grant the council.

    DWP answers eligibility from the benefit records it holds, as the checking
    service councils use does; the council may only post eligibility checks.
    """
    url = start_backend(network, "fsm")
    await wait_for_backend(url)
    dwp = network.gateways["dwp"]
    await publish(dwp, "fsm", url, logging="metadata")
    result = await grant(dwp, "fsm", "E09000030", methods=["POST"], paths=["/eligibility-checks"])
    council = network.gateways["tower-hamlets"]
    await wait_for_version([council, dwp], int(result["directory"]))
    return url
