"""The service proxy: both sides of signed, access-controlled service calls, composed.

:class:`ServiceProxy` holds one gateway process's parts for service calls and
starts and stops them: the consumer side (:class:`~gcx.gateway.services.consumer.ServiceCalls`),
the provider side (:class:`~gcx.gateway.services.provider.ServiceProviding`),
the directory caches and call log they share, and the backends. The use cases
take and return plain values (:mod:`gcx.gateway.services.model`); only the api
modules (:mod:`~gcx.gateway.services.api`, :mod:`~gcx.gateway.services.peer_api`)
see HTTP requests and responses.

Per-call path, kept lean on purpose (the benchmark target is a quarter of
direct throughput):

* no database read: the caller's token is cached for a few seconds (in the
  api module), rights are indexed once per directory version, keys are parsed
  once per directory version (:class:`~gcx.gateway.services.common.CallDirectory`),
  backends are held in memory (reloaded periodically so replicas converge);
* one database write per gateway: the call log row and its audit entry go
  in one transaction, and concurrent calls share transactions (group commit,
  :class:`gcx.gateway.services.call_log.CallLog`); a call is answered only once its row
  is committed;
* kept-alive connections: pinned mutual-TLS sessions to peers (the one
  peer client, :func:`call_peers`, with a larger pool) and one client for
  backends (the gateway's :class:`~gcx.gateway.services.backend.BackendClient`).

Rate limits are token buckets held per gateway process (see
``docs/services.md``: with N replicas a consumer may get up to N times the
rate; the provider sets rates with that in mind).
"""

from __future__ import annotations

import logging

from gcx.gateway.exchange.peer_client import PeerClient
from gcx.gateway.runtime import Gateway
from gcx.gateway.services.backend import BackendRegistry
from gcx.gateway.services.call_log import CallLog
from gcx.gateway.services.common import BatchSigner, CallDirectory
from gcx.gateway.services.consumer import ServiceCalls
from gcx.gateway.services.provider import ServiceProviding
from gcx.protocol import directory as dirproto
from gcx.protocol.services import RightsIndex

log = logging.getLogger("gcx.gateway.services.calls")

PEER_POOL = 64


def call_peers(gateway: Gateway) -> PeerClient:
    """The peer client for synchronous calls: one request each, so more on the wire at once."""
    return PeerClient.for_gateway(gateway, pool_size=PEER_POOL)


class ServiceProxy:
    """Both sides of service calls for one gateway process, and their lifecycle."""

    def __init__(self, gateway: Gateway, peers: PeerClient) -> None:
        self.gateway = gateway
        self.peers = peers
        self.log = CallLog(gateway)
        self.facts = CallDirectory()
        self.backends = BackendRegistry(gateway.db)
        self.client = gateway.service_backend
        # One signer for both sides: a gateway that both calls and answers
        # signs its requests and its answers of one moment under one signature.
        self.signer = BatchSigner(gateway.keys)
        self.consumer = ServiceCalls(gateway, peers, self.facts, self.log, self.signer)
        self.provider = ServiceProviding(
            gateway, self.facts, self.log, self.backends, self.client, self.signer
        )

    async def start(self) -> None:
        await self.client.start()
        await self.backends.start()
        self.log.start()

    async def stop(self) -> None:
        log.info(
            "service calls: %d documents signed under %d batch signatures",
            self.signer.documents,
            self.signer.signatures,
        )
        await self.backends.stop()
        await self.log.stop()
        await self.client.close()

    def reload_backends(self) -> None:
        """Read this gateway's backends now (after publishing one, say)."""
        self.backends.reload()

    def index(self, directory: dirproto.Directory) -> RightsIndex:
        """The rights of ``directory``, indexed (built once per directory version)."""
        return self.facts.index(directory)
