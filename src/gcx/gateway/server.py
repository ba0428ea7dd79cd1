"""Running a gateway: wait for certificates, keep the directory fresh, serve both endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from gcx import crypto, listeners
from gcx.audit.checkpoint import AuditTree
from gcx.config import GatewayConfig
from gcx.errors import DirectoryError, GcxError
from gcx.gateway.app import build_local_app
from gcx.gateway.carriers import carriers_for
from gcx.gateway.central_client import CentralClient
from gcx.gateway.central_witness import CentralLogWitness
from gcx.gateway.exchange.peer_client import PeerClient, PeerFaults
from gcx.gateway.exchange.worker import ExchangeWorker
from gcx.gateway.home import client_ssl_for_central, has_certificates, pick_up_certificates
from gcx.gateway.messages.addresses import handle_addresses
from gcx.gateway.messages.api import add_message_routes
from gcx.gateway.messages.messaging import Messaging
from gcx.gateway.messages.peer_api import add_message_routes as add_peer_message_routes
from gcx.gateway.peer import build_peer_app
from gcx.gateway.refusal_log import RefusalLog
from gcx.gateway.runtime import Gateway
from gcx.gateway.services.api import LocalCalls, add_peer_service_routes, add_service_routes
from gcx.gateway.services.calls import ServiceProxy, call_peers
from gcx.gateway.tls_gate import serve_tls
from gcx.gateway.transfers.api import add_transfer_routes
from gcx.gateway.transfers.housekeeping import housekeeping
from gcx.gateway.transfers.peer_api import add_transfer_routes as add_peer_transfer_routes
from gcx.heap import freeze_startup_objects
from gcx.httpapi import run_sync
from gcx.private_files import check_private
from gcx.store.db import sqlite_files

log = logging.getLogger("gcx.gateway")


async def wait_for_certificates(config: GatewayConfig, interval: float = 2.0) -> None:
    while not has_certificates(config.home):
        try:
            status = await pick_up_certificates(config)
            if status["state"] == "active":
                log.info("enrolment approved; certificates stored")
                return
            log.info("enrolment %s is %s; waiting for an operator", status["id"], status["state"])
        except GcxError as error:
            if error.code == "state-transition-refused":
                raise
            log.warning("could not ask central about enrolment: %s", error.message)
        await asyncio.sleep(interval)


async def poll_directory(gateway: Gateway, central: CentralClient) -> None:
    """Fetch and offer the directory once; refusals are logged and audited by the keeper."""
    try:
        document = await central.directory()
        directory = await run_sync(gateway.directory.offer, document)
        log.debug("directory version %s held", directory.version)
    except DirectoryError:
        pass  # already logged and audited; the held directory stays until it expires
    except GcxError as error:
        log.warning("directory fetch failed: %s", error.message)
        with contextlib.suppress(DirectoryError):
            gateway.directory.current()
            return
        log.warning("no usable directory: this gateway refuses to exchange")


async def lodge_checkpoint(gateway: Gateway, tree: AuditTree, central: CentralClient) -> None:
    """Sign the audit log's head and lodge it with central, with its consistency proof."""
    try:
        latest = await central.latest_checkpoint(gateway.config.name)
        _, document = await run_sync(
            lambda: tree.checkpoint(
                gateway=gateway.config.name,
                previous_size=int(latest["tree_size"]),
                key=gateway.keys.identity,
                clock=gateway.clock,
            )
        )
        await central.lodge_checkpoint(document)
    except GcxError as error:
        log.warning("audit checkpoint not lodged: %s", error.message)


async def witness_central(witness: CentralLogWitness, central: CentralClient) -> None:
    """Check central's audit head extends the one held (see gcx.gateway.central_witness)."""
    try:
        since = await run_sync(witness.held_size)
        await run_sync(witness.check, await central.central_checkpoint(since))
    except GcxError as error:
        # An inconsistent head is recorded (alarm, audit, health page) inside check().
        log.warning("central's audit head not accepted: %s", error.message)


def build_peer_api(gateway: Gateway, services: ServiceProxy) -> web.Application:
    """The peer endpoint's routes, which other gateways call over mutual TLS.

    Every route is added here, so the authorisation table test
    (tests/integration/test_authorisation.py) sees each one the gateway serves.
    """
    app = build_peer_app(gateway)
    add_peer_message_routes(app)
    app.router.add_get("/peer/v1/addresses", handle_addresses)
    add_peer_transfer_routes(app)
    add_peer_service_routes(app, services)
    return app


def build_local_api(
    gateway: Gateway,
    messaging: Messaging,
    worker: ExchangeWorker,
    peers: PeerClient,
    services: ServiceProxy,
) -> web.Application:
    """The local API's routes, for the hosted organisations' people and systems (see above)."""
    app = build_local_app(gateway)
    add_message_routes(app, messaging, worker, peers)
    add_transfer_routes(app, worker)
    add_service_routes(app, services)
    return app


async def serve(
    config: GatewayConfig,
    *,
    stop: asyncio.Event | None = None,
    faults: PeerFaults | None = None,
) -> None:
    """Run the gateway until ``stop`` is set or it is signalled.

    ``faults`` is for tests only (tests/integration/fault_gateway.py): it lets them change
    what the delivery and transfer workers send. ``gcx gateway serve`` never sets it.
    """
    # Before anything else: a home other users can read exposes its keys and
    # data, and the operator must hear of it now rather than keep serving.
    check_private(config.home, also=sqlite_files(config.db_url))
    await wait_for_certificates(config)
    gateway = await run_sync(Gateway.open, config)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    passphrase = config.passphrase()
    home = config.home
    peer_context = crypto.server_context(
        home / "anchor.pem",
        home / "tls.pem",
        home / "tls.key",
        passphrase,
        require_client_cert=True,
    )
    peers = PeerClient.for_gateway(gateway, faults=faults)
    worker = ExchangeWorker(gateway, carriers_for(gateway, peers))
    services = ServiceProxy(gateway, call_peers(gateway))
    peer_app = build_peer_api(gateway, services)
    peer_runner = web.AppRunner(peer_app, access_log=None)
    await peer_runner.setup()

    refusals = RefusalLog(gateway.db, gateway.clock)

    def on_refused(address: str, code: str, sentence: str) -> None:
        log.warning("refused TLS connection from %s: %s", address, code)
        refusals.add(address, code, sentence)

    http_protocol_factory = peer_runner.server
    assert http_protocol_factory is not None  # made by setup()
    peer_server = await serve_tls(
        http_protocol_factory,
        peer_context,
        config.peer_host,
        config.peer_port,
        on_refused,
        sock=listeners.inherited("peer", config.peer_port),
    )
    messaging = Messaging(gateway)
    local_app = build_local_api(gateway, messaging, worker, peers, services)
    local_runner = web.AppRunner(local_app, access_log=None)
    await local_runner.setup()
    await listeners.site(local_runner, "api", config.api_host, config.api_port).start()
    web_runner = None
    if config.web_port:
        from gcx.config import check_web_listener
        from gcx.web.gateway import GatewayParts, build_gateway_web

        check_web_listener(config.web_host)
        parts = GatewayParts(gateway, messaging, worker, peers, LocalCalls(services))
        web_runner = web.AppRunner(build_gateway_web(parts), access_log=None)
        await web_runner.setup()
        await listeners.site(web_runner, "web", config.web_host, config.web_port).start()
        log.info(
            "gateway %s: web pages http://%s:%d", config.name, config.web_host, config.web_port
        )
    log.info(
        "gateway %s: peer endpoint https://%s, local API %s",
        config.name,
        config.peer_address,
        config.api_url,
    )

    async with CentralClient(config.central_url, client_ssl_for_central(config)) as central:

        async def poller() -> None:
            while True:
                await poll_directory(gateway, central)
                await asyncio.sleep(config.directory_poll_seconds)

        central_log = CentralLogWitness(gateway.db, gateway.keys.anchor.public_key(), gateway.clock)
        audit_tree = AuditTree(gateway.db)

        async def checkpointer() -> None:
            while True:
                try:
                    await lodge_checkpoint(gateway, audit_tree, central)
                    await witness_central(central_log, central)
                except Exception:
                    # Refusals are logged inside; anything else (the database
                    # away for a moment) must not end checkpointing for good.
                    log.exception("audit checkpointing failed; trying again next interval")
                await asyncio.sleep(config.checkpoint_interval_seconds)

        # Everything made to serve is made by now and kept for the gateway's life.
        log.info("gateway %s: %d start-up objects frozen", config.name, freeze_startup_objects())
        tasks = [
            asyncio.create_task(poller()),
            asyncio.create_task(checkpointer()),
            asyncio.create_task(worker.run()),
            asyncio.create_task(housekeeping(gateway)),
            asyncio.create_task(refusals.run()),
        ]
        await stop.wait()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    peer_server.close()
    await peer_server.wait_closed()
    await peer_runner.cleanup()
    await local_runner.cleanup()
    if web_runner is not None:
        await web_runner.cleanup()
    await peers.close()
    await services.peers.close()
    gateway.close()
