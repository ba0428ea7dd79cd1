"""A real gateway refuses directories it must not trust, keeps the one it holds, and a gateway
without a usable directory refuses to exchange.

The gateway under test fetches its directory from a small HTTPS "fake central" run here, with
central's own certificate and key, so the test decides exactly which document it is offered:
a genuine one, one with a byte changed, an older one, or an expired one signed with the root key.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gcx import crypto, listeners
from gcx.central.server import open_service
from gcx.config import CentralConfig, GatewayConfig
from gcx.gateway.home import pick_up_certificates
from gcx.localnet import (
    DEMO_GATEWAYS,
    GatewayProcess,
    GatewaySpec,
    LocalNetwork,
    OrganisationSpec,
)
from gcx.protocol import directory as dirproto

from .conftest import NetworkFactory, run_async
from .netutil import (
    admit_more,
    audit_log,
    central_directory,
    eventually,
    gateway_status,
    gcx,
    http,
    wait_for_audit,
    wait_for_directory,
)

pytestmark = pytest.mark.integration

FED_BY_FAKE = GatewaySpec(
    "fed-by-fake",
    (OrganisationSpec("E09000001", "City of London", "local-authority"),),
    "directory.tester",
)
NO_DIRECTORY = GatewaySpec(
    "no-directory",
    (OrganisationSpec("E09000002", "London Borough of Barking and Dagenham", "local-authority"),),
    "directory.tester",
)


class FakeCentral:
    """An HTTPS server on central's certificate that serves whatever directory it is given."""

    def __init__(self, central_home: Path) -> None:
        config = CentralConfig.load(central_home)
        self.context = crypto.server_context(
            central_home / "anchor.pem",
            central_home / "tls.pem",
            central_home / "tls.key",
            config.passphrase(),
            require_client_cert=False,
        )
        # Bound here, so the port is known before the server starts and no one else's.
        self._socket = listeners.bind()
        self.port = listeners.port_of(self._socket)
        self.document = b""
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _directory(self, _: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(body=self.document, content_type="application/json")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/directory", self._directory)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket, ssl_context=self.context).start()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)

    def stop(self) -> None:
        if self._thread.is_alive():
            if self._runner is not None:
                cleanup = self._runner.cleanup()
                asyncio.run_coroutine_threadsafe(cleanup, self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop.close()
        self._socket.close()


@dataclasses.dataclass
class Rig:
    network: LocalNetwork
    fake: FakeCentral
    older: bytes  # a genuine directory, older than the one the fed gateway holds
    newer: bytes  # the genuine directory the fed gateway holds
    newer_version: int

    @property
    def fed(self) -> GatewayProcess:
        return self.network.gateways[FED_BY_FAKE.name]

    @property
    def starved(self) -> GatewayProcess:
        return self.network.gateways[NO_DIRECTORY.name]


async def _enrol_with_central_url(
    network: LocalNetwork, spec: GatewaySpec, central_url: str
) -> None:
    """Enrol (approved) and pick up certificates from the real central, then point the
    gateway at another central before it first starts."""
    await admit_more(network, (spec,))
    gateway = await network.enrol(spec)
    await pick_up_certificates(gateway.config)
    dataclasses.replace(gateway.config, central_url=central_url).save()
    gateway.config = GatewayConfig.load(gateway.home)


async def _wait_for_local_api(gateway: GatewayProcess) -> None:
    async def probe() -> None:
        assert gateway.process is not None and gateway.process.poll() is None, "exited"
        try:
            status, _, _ = await http("GET", f"{gateway.config.api_url}/api/v1/health")
        except OSError as exc:
            raise AssertionError(f"not answering: {exc}") from exc
        assert status in (200, 503), status

    await eventually(probe, timeout=90, what=f"{gateway.spec.name}'s local API")


async def _build_rig(network: LocalNetwork, fake: FakeCentral, nowhere: str) -> Rig:
    await _enrol_with_central_url(network, FED_BY_FAKE, fake.url)
    # Nothing listens at this address: this gateway never gets a directory.
    await _enrol_with_central_url(network, NO_DIRECTORY, nowhere)
    older, _ = await central_directory(network)
    service = open_service(network.central_home)
    try:
        service.publish_directory("integration test: a version newer than the captured one")
    finally:
        service.db.dispose()
    newer, newer_directory = await central_directory(network)
    fake.document = newer
    for spec in (FED_BY_FAKE, NO_DIRECTORY):
        network.gateways[spec.name].token = network.add_token(
            spec.name, spec.account, ("staff", "admin")
        )
        network.start_gateway(spec.name)
    await network.wait_for_gateway(FED_BY_FAKE.name)
    await _wait_for_local_api(network.gateways[NO_DIRECTORY.name])
    await wait_for_directory(network, newer_directory.version, ["tower-hamlets", FED_BY_FAKE.name])
    return Rig(network, fake, older, newer, newer_directory.version)


@pytest.fixture(scope="module")
def rig(network_factory: NetworkFactory) -> Iterator[Rig]:
    network = network_factory(DEMO_GATEWAYS[:1])
    fake = FakeCentral(network.central_home)
    # Bound and never listened on while the module runs, so connections to it are refused.
    nowhere = listeners.bind()
    try:
        fake.start()
        yield run_async(
            _build_rig(network, fake, f"https://127.0.0.1:{listeners.port_of(nowhere)}")
        )
    finally:
        nowhere.close()
        network.stop()
        fake.stop()


@pytest.fixture
def genuine(rig: Rig) -> Iterator[Rig]:
    """Each test starts and ends with the fake central serving the genuine, newer directory."""
    rig.fake.document = rig.newer
    yield rig
    rig.fake.document = rig.newer


def _envelope(document: bytes) -> tuple[dict[str, Any], bytes]:
    envelope = json.loads(document)
    return envelope, base64.b64decode(envelope["payload"])


def _with_payload(envelope: dict[str, Any], payload: bytes) -> bytes:
    return json.dumps({**envelope, "payload": base64.b64encode(payload).decode()}).encode()


async def _refused_and_kept(rig: Rig, offered: bytes, code: str) -> None:
    """Offer ``offered``; the gateway audits directory.refused [code] and keeps its directory."""
    with audit_log(rig.fed.config.db_url) as log:
        after = log.head()
    served_before = rig.fake.requests
    rig.fake.document = offered
    entry = await wait_for_audit(rig.fed.config.db_url, "directory.refused", code, after=after)
    assert entry.details_dict["message"]
    assert rig.fake.requests > served_before
    status = await gateway_status(rig.fed)
    assert status["directory"]["version"] == rig.newer_version
    assert status["exchanging"] is True
    assert status["directory"]["last_refusal"]["code"] == code
    with audit_log(rig.fed.config.db_url) as log:
        accepted = [e.subject for e in log.entries("directory.accepted", after=after)]
    assert accepted == [], f"a refused directory was accepted: {accepted}"


async def test_directory_with_one_byte_changed_is_refused(genuine: Rig) -> None:
    """One changed payload byte: [directory-signature-invalid], held version kept."""
    envelope, payload = _envelope(genuine.newer)
    marker = b'"peer_address":"127.0.0.1'
    assert marker in payload
    tampered = payload.replace(marker, b'"peer_address":"127.0.0.2', 1)
    assert len(tampered) == len(payload)
    assert sum(a != b for a, b in zip(tampered, payload, strict=True)) == 1

    await _refused_and_kept(
        genuine, _with_payload(envelope, tampered), "directory-signature-invalid"
    )


async def test_older_directory_is_refused_as_rollback(genuine: Rig) -> None:
    """An older genuine directory: [directory-rollback], held version kept."""
    _, older = _envelope(genuine.older)
    assert dirproto.Directory.from_bytes(older).version < genuine.newer_version
    await _refused_and_kept(genuine, genuine.older, "directory-rollback")


async def test_expired_directory_is_refused(genuine: Rig) -> None:
    """An expired root-signed directory: [directory-expired], its version not taken."""
    central = CentralConfig.load(genuine.network.central_home)
    root_key = crypto.load_signing_key(central.home / "root.key", central.passphrase())
    _, payload = _envelope(genuine.newer)
    now = dt.datetime.now(dt.UTC)
    expired = dirproto.Directory.from_bytes(payload).model_copy(
        update={
            "version": genuine.newer_version + 1000,
            "issued_at": now - dt.timedelta(hours=2),
            "expires_at": now - dt.timedelta(hours=1),
        }
    )
    document = crypto.sign_document(
        dirproto.PAYLOAD_TYPE, expired.to_bytes(), root_key, crypto.key_id(root_key.public)
    )

    await _refused_and_kept(genuine, document, "directory-expired")
    result = gcx("gateway", "status", "--home", str(genuine.fed.home), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["directory"]["version"] == genuine.newer_version


async def test_gateway_without_directory_reports_unhealthy(genuine: Rig) -> None:
    """Without a directory, /api/v1/health is 503 and status says why."""
    status, body, _ = await http("GET", f"{genuine.starved.config.api_url}/api/v1/health")
    assert status == 503, body
    assert body["exchanging"] is False and body["directory_version"] is None
    detail = await gateway_status(genuine.starved)
    assert detail["exchanging"] is False
    assert detail["directory"]["version"] is None
    assert "no directory" in detail["directory"]["reason"]


async def test_gateway_without_directory_refuses_peer_requests(genuine: Rig) -> None:
    """Without a directory, peer requests get 503 [directory-unavailable], audited."""
    member = genuine.network.gateways["tower-hamlets"]
    starved = genuine.starved
    context = crypto.client_context(
        genuine.network.anchor,
        member.home / "tls.pem",
        member.home / "tls.key",
        member.config.passphrase(),
    )
    with audit_log(starved.config.db_url) as log:
        after = log.head()

    status, body, headers = await http(
        "GET", f"https://{starved.config.peer_address}/peer/v1/health", ssl=context
    )

    assert status == 503, body
    assert body["code"] == "directory-unavailable" and body["message"]
    assert headers.get("X-Gcx-Error") == "directory-unavailable"
    entry = await wait_for_audit(
        starved.config.db_url, "connection.refused", "directory-unavailable", after=after
    )
    assert (
        entry.details_dict["certificate_fingerprint"]
        == crypto.Certificate.from_pem((member.home / "tls.pem").read_bytes()).fingerprint
    )

    status, body, _ = await http(
        "POST",
        f"{member.config.api_url}/api/v1/ping",
        token=member.token,
        body={"to": starved.codes[0]},
    )
    assert status != 200, body
    assert body["code"] == "directory-unavailable", body
    assert body["details"]["remote_status"] == 503
