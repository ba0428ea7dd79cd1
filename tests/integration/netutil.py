"""Helpers for the integration suite: HTTP against real processes, polling, audit logs, CLI.

Nothing here simulates a part of gcx: central and gateways are the real
processes :class:`gcx.localnet.LocalNetwork` starts, reached over real sockets
with real TLS. Waiting is always a polling loop with a deadline that fails
with a sentence saying what was not seen.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import psycopg

from gcx import audit, crypto
from gcx.config import GatewayConfig
from gcx.localnet import GatewayProcess, GatewaySpec, LocalNetwork
from gcx.protocol import directory as dirproto
from gcx.reference.demo_path import admit_through_coco
from gcx.store import open_database

T = TypeVar("T")

POSTGRES_ADMIN_URL = os.environ.get(
    "GCX_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
POLL_SECONDS = 0.5  # the gateways' directory poll interval in these tests
PROBE_INTERVAL = 0.15  # how often a test looks again at an observable condition
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30)


# -- waiting ------------------------------------------------------------------


async def eventually(probe: Callable[[], Awaitable[T]], *, timeout: float, what: str) -> T:
    """Run ``probe`` until it stops raising AssertionError; fail at the deadline.

    The probe asserts the condition (its assertion message says what it saw);
    the last one is reported if the deadline passes.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await probe()
        except AssertionError as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{what}: not seen within {timeout:.0f} s; last observation: {exc}"
                ) from None
        await asyncio.sleep(PROBE_INTERVAL)


def eventually_sync(probe: Callable[[], T], *, timeout: float, what: str) -> T:
    """The blocking form of :func:`eventually`, for tests that are not async."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except AssertionError as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{what}: not seen within {timeout:.0f} s; last observation: {exc}"
                ) from None
        time.sleep(PROBE_INTERVAL)


# -- databases ------------------------------------------------------------------


class DatabaseUrls:
    """Fresh database URLs on one backend, unique per call, for networks that outlive a test.

    The function-scoped ``database_url_factory`` of ``tests/conftest.py`` is the
    one to use for a network made inside one test; a module-scoped network
    needs a factory that lives as long as it does, which this is.
    """

    def __init__(self, backend: str, directory: Path) -> None:
        self.backend = backend
        self.directory = directory
        self.prefix = f"gcx_it_{secrets.token_hex(4)}"
        self.created: list[str] = []

    def __call__(self, name: str) -> str:
        label = f"{len(self.created) + 1}_{name.replace('-', '_')}"
        if self.backend == "sqlite":
            self.created.append(label)
            return f"sqlite:///{self.directory / (label + '.db')}"
        database = f"{self.prefix}_{label}"
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        self.created.append(database)
        return f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{database}"

    def drop_all(self) -> None:
        if self.backend != "sqlite" and self.created:
            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
                for database in self.created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        self.created.clear()


class AuditLog:
    """Read access to a running service's audit log, through gcx's own store."""

    def __init__(self, url: str) -> None:
        self.database = open_database(url)

    def entries(self, action: str | None = None, *, after: int = 0) -> list[audit.AuditEntry]:
        with self.database.transaction() as conn:
            return [e for e in audit.entries(conn, action=action) if e.seq > after]

    def head(self) -> int:
        with self.database.transaction() as conn:
            found = list(audit.entries(conn))
        return found[-1].seq if found else 0

    def close(self) -> None:
        self.database.dispose()


@contextmanager
def audit_log(url: str) -> Iterator[AuditLog]:
    log = AuditLog(url)
    try:
        yield log
    finally:
        log.close()


def refusals_with_code(
    log: AuditLog, action: str, code: str, *, after: int = 0, actor: str | None = None
) -> list[audit.AuditEntry]:
    return [
        e
        for e in log.entries(action, after=after)
        if e.details_dict.get("code") == code and (actor is None or e.actor == actor)
    ]


async def wait_for_audit(
    url: str,
    action: str,
    code: str,
    *,
    after: int,
    actor: str | None = None,
    timeout: float = 60.0,
) -> audit.AuditEntry:
    """The first ``action`` entry after seq ``after`` whose details carry ``code``."""
    with audit_log(url) as log:

        async def probe() -> audit.AuditEntry:
            found = refusals_with_code(log, action, code, after=after, actor=actor)
            seen = [
                (e.action, e.actor, e.details_dict.get("code")) for e in log.entries(after=after)
            ][-5:]
            assert found, f"latest entries after seq {after}: {seen}"
            return found[0]

        return await eventually(
            probe, timeout=timeout, what=f"audit entry {action} [{code}] in {url}"
        )


# -- HTTP ---------------------------------------------------------------------------


async def http(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    ssl: Any = None,
) -> tuple[int, Any, dict[str, str]]:
    """One request; returns status, JSON body (or text if not JSON) and headers."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    connector = aiohttp.TCPConnector(ssl=ssl if ssl is not None else False)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=HTTP_TIMEOUT) as session,
        session.request(method, url, json=body, headers=headers) as response,
    ):
        raw = await response.read()
        try:
            data: Any = json.loads(raw)
        except ValueError:
            data = raw.decode(errors="replace")
        return response.status, data, dict(response.headers)


async def tus_upload(process: GatewayProcess, data: bytes, metadata: str = "") -> str:
    """A complete tus upload of ``data`` to ``process``'s gateway in one PATCH; its id."""
    api = process.config.api_url
    auth = {"Authorization": f"Bearer {process.token}", "Tus-Resumable": "1.0.0"}
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        async with session.post(
            f"{api}/api/v1/uploads",
            headers={**auth, "Upload-Length": str(len(data)), "Upload-Metadata": metadata},
        ) as response:
            assert response.status == 201, await response.text()
            location = response.headers["Location"]
        async with session.patch(
            api + location,
            data=io.BytesIO(data),
            headers={
                **auth,
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": "0",
            },
        ) as response:
            assert response.status == 204, await response.text()
    return location.rsplit("/", 1)[-1]


async def central_call(
    network: LocalNetwork,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
) -> tuple[int, Any, dict[str, str]]:
    """A request to the real central over HTTPS, trusting only the network anchor."""
    return await http(
        method,
        network.central_url + path,
        token=token,
        body=body,
        ssl=crypto.client_context(network.anchor),
    )


def verify_directory(document: bytes, anchor: Path) -> dirproto.Directory:
    root = crypto.Certificate.from_pem(anchor.read_bytes()).public_key()
    payload = crypto.verify_document(document, dirproto.PAYLOAD_TYPE, {crypto.key_id(root): root})
    return dirproto.Directory.from_bytes(payload)


async def central_directory(network: LocalNetwork) -> tuple[bytes, dirproto.Directory]:
    """Central's latest signed directory document and its verified content."""
    connector = aiohttp.TCPConnector(ssl=crypto.client_context(network.anchor))
    async with (
        aiohttp.ClientSession(connector=connector, timeout=HTTP_TIMEOUT) as session,
        session.get(network.central_url + "/api/v1/directory") as response,
    ):
        assert response.status == 200, f"central answered {response.status} for the directory"
        document = await response.read()
    return document, verify_directory(document, network.anchor)


async def gateway_status(gateway: GatewayProcess) -> dict[str, Any]:
    status, body, _ = await http(
        "GET", f"{gateway.config.api_url}/api/v1/status", token=gateway.token
    )
    assert status == 200, f"status of {gateway.spec.name} answered {status}: {body}"
    return dict(body)


async def api_ping(source: GatewayProcess, to_org: str) -> tuple[int, Any, dict[str, str]]:
    return await http(
        "POST", f"{source.config.api_url}/api/v1/ping", token=source.token, body={"to": to_org}
    )


async def wait_for_directory(
    network: LocalNetwork, version: int, names: list[str] | None = None, timeout: float = 90.0
) -> None:
    """Wait until the named gateways (default: all) hold directory ``version`` or later."""
    for name in names or list(network.gateways):
        gateway = network.gateways[name]

        async def probe(gateway: GatewayProcess = gateway) -> None:
            held = (await gateway_status(gateway))["directory"]["version"]
            assert held is not None and held >= version, (
                f"{gateway.spec.name} holds directory version {held}, waiting for {version}"
            )

        await eventually(probe, timeout=timeout, what=f"{name} holding directory v{version}")


# -- processes ---------------------------------------------------------------------


def gcx(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real ``gcx`` command (as ``python -m gcx.cli.main``)."""
    return subprocess.run(
        [sys.executable, "-m", "gcx.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def log_tails(network: LocalNetwork, lines: int = 15) -> str:
    """The end of every process log of a network, for failure messages."""
    parts = []
    for log in sorted((network.root / "logs").glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {log.name}\n" + "\n".join(tail))
    return "\n".join(parts)


async def start_network(network: LocalNetwork, specs: tuple[GatewaySpec, ...]) -> None:
    """Start a network and wait until every gateway holds the directory naming all of them."""
    try:
        await network.start(specs)
        _, directory = await central_directory(network)
        await wait_for_directory(network, directory.version)
    except Exception as exc:
        raise AssertionError(
            f"the local network did not start: {exc}\n{log_tails(network)}"
        ) from exc


async def admit_more(network: LocalNetwork, specs: tuple[GatewaySpec, ...]) -> None:
    """Register further organisations on a started network and take them through the Code of
    Connection with the accounts its start made (what a second ``LocalNetwork.register``
    should do; ``test_central_refusals`` pins that it does)."""
    async with network.operator() as operator:
        for spec in specs:
            for org in spec.organisations:
                await operator.add_organisation(org.code, org.name, org.type)
                admitted = await admit_through_coco(
                    operator, network.client_for, org.code, tokens=network.compliance_tokens
                )
                network.compliance_tokens = admitted["tokens"]


def peer_context(source: GatewayProcess, fingerprint: str) -> ssl.SSLContext:
    """A client context that speaks as ``source``'s gateway (its network certificate) to
    the gateway whose certificate has ``fingerprint``, as another gateway's peer would."""
    config = GatewayConfig.load(source.home)
    return crypto.pinned_client_context(
        config.home / "anchor.pem",
        config.home / "tls.pem",
        config.home / "tls.key",
        config.passphrase(),
        frozenset({fingerprint}),
    )


def certificate_fingerprint(path: Path) -> str:
    return crypto.Certificate.from_pem(path.read_bytes()).fingerprint
