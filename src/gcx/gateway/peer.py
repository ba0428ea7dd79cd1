"""The peer side of a gateway: the mutual-TLS endpoint other gateways call, and its client.

Every request on the peer endpoint passes :func:`peer_check` first: the TLS
layer has already proved the certificate chains to the network root; here the
certificate's fingerprint must belong to a gateway the current directory
lists and has not revoked. A gateway with no usable directory refuses
everything.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gcx import crypto
from gcx.errors import (
    CryptoError,
    DirectoryError,
    GcxError,
    InputError,
    PeerRefused,
    PeerRevoked,
    PeerUnknown,
    PeerUnreachable,
    SignatureInvalid,
    UnknownOrganisation,
)
from gcx.gateway.directory_keys import signing_keys_by_id, verify_key_with_id
from gcx.gateway.exchange.peer_client import PeerClient, Timeouts, pinned_context, refusal_of
from gcx.gateway.runtime import Gateway
from gcx.httpapi import Handler, error_middleware, read_body, refusal, run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol.ping import PING_TYPE, PONG_TYPE, Ping, Pong, check_ping

GATEWAY = web.AppKey("gateway", Gateway)
PEER_REQUEST_LIMIT = 1 << 20
# A ping is a quick check that the peer is there and is who the directory says.
PING_TIMEOUTS = Timeouts(total=15, connect=5)


def _peer_fingerprint(request: web.Request) -> str | None:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport else None
    return crypto.peer_certificate_fingerprint(ssl_object)


def _refuse(
    gateway: Gateway, request: web.Request, error: GcxError, fingerprint: str | None
) -> web.Response:
    peer = request.remote or "unknown"
    gateway.record(
        actor=f"peer:{peer}",
        action="connection.refused",
        subject="peer-endpoint",
        details={
            "code": error.code,
            "message": error.message,
            "certificate_fingerprint": fingerprint,
        },
    )
    return refusal(error)


@web.middleware
async def peer_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    fingerprint = _peer_fingerprint(request)
    refusal_error: GcxError | None = None
    entry: dirproto.GatewayEntry | None = None
    try:
        directory = gateway.directory.current()
    except DirectoryError as error:
        return await run_sync(_refuse, gateway, request, error, fingerprint)
    if fingerprint is None:
        refusal_error = PeerRefused("The peer presented no certificate.")
    elif directory.is_revoked(fingerprint):
        refusal_error = PeerRevoked(
            f"The peer's certificate has been revoked (directory version {directory.version})."
        )
    else:
        entry = directory.gateway_by_fingerprint(fingerprint)
        if entry is None:
            refusal_error = PeerUnknown(
                f"The peer's certificate is not one the directory (version {directory.version}) "
                "lists for an active gateway."
            )
    if refusal_error is not None or entry is None:
        return await run_sync(
            _refuse, gateway, request, refusal_error or PeerUnknown(), fingerprint
        )
    request["peer"] = entry
    request["directory"] = directory
    return await handler(request)


async def handle_ping(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    directory: dirproto.Directory = request["directory"]
    peer: dirproto.GatewayEntry = request["peer"]
    document = await read_body(request, PEER_REQUEST_LIMIT)
    ping = Ping.from_bytes(verify_signed_by_org(directory, document, PING_TYPE, claimed=None))
    check_ping(
        ping,
        peer_organisations=peer.organisations,
        hosted=list(gateway.config.organisations),
        now=gateway.clock.now(),
    )
    # The signature must be by the organisation the ping claims to be from.
    verify_signed_by_org(directory, document, PING_TYPE, claimed=ping.from_org)
    pong = Pong(ping.to_org, gateway.config.name, ping.nonce, directory.version)
    keys = gateway.keys.organisations[ping.to_org]
    signed = crypto.sign_document(
        PONG_TYPE, pong.to_bytes(), keys.signing, crypto.key_id(keys.signing.public)
    )
    await run_sync(
        gateway.record,
        actor=f"gateway:{peer.name}",
        action="ping.answered",
        subject=ping.to_org,
        details={"from": ping.from_org, "nonce": ping.nonce},
    )
    return web.Response(body=signed, content_type="application/json")


def verify_signed_by_org(
    directory: dirproto.Directory, document: bytes, payload_type: str, *, claimed: str | None
) -> bytes:
    """Verify against the claimed organisation's key, or any listed key if not yet known."""
    trusted: Mapping[str, crypto.VerifyKey]
    if claimed is None:
        trusted = signing_keys_by_id(directory)
    else:
        org = directory.organisation(claimed)
        trusted = dict([verify_key_with_id(org.signing_key)]) if org and org.signing_key else {}
    try:
        return crypto.verify_document(document, payload_type, trusted)
    except CryptoError as exc:
        raise SignatureInvalid(
            "The signature does not verify against the key the directory lists for "
            "its organisation."
        ) from exc


async def handle_health(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    return web.json_response(
        {"gateway": gateway.config.name, "directory_version": request["directory"].version}
    )


def build_peer_app(gateway: Gateway) -> web.Application:
    app = web.Application(middlewares=[error_middleware, peer_check])
    app[GATEWAY] = gateway
    app.router.add_post("/peer/v1/ping", handle_ping)
    app.router.add_get("/peer/v1/health", handle_health)
    return app


# -- the client side --------------------------------------------------------


@dataclass(frozen=True)
class PingResult:
    organisation: str
    gateway: str
    peer_address: str
    certificate_fingerprint: str
    directory_version: int
    round_trip_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "organisation": self.organisation,
            "gateway": self.gateway,
            "peer_address": self.peer_address,
            "certificate_fingerprint": self.certificate_fingerprint,
            "directory_version": self.directory_version,
            "round_trip_ms": self.round_trip_ms,
        }


async def ping(gateway: Gateway, to_org: str, *, from_org: str | None = None) -> PingResult:
    """Send a signed ping to the gateway hosting ``to_org`` and check its signed answer.

    Each ping makes a new connection (a client of its own, closed after), so the
    round trip includes the TLS handshake in which the peer's certificate is checked.
    """
    directory = gateway.directory.current()
    from_org = from_org or gateway.config.organisations[0]
    if from_org not in gateway.config.organisations:
        raise InputError(f"This gateway does not host {from_org[:16]}.")
    target = directory.organisation(to_org)
    if target is None:
        raise UnknownOrganisation(f"{to_org[:16]} is not a member of the network.")
    entry = directory.gateway_for_organisation(to_org)
    if entry is None:
        raise PeerUnreachable(f"{to_org} has no active gateway in the directory.")
    keys = gateway.keys.organisations[from_org]
    body = Ping(from_org, to_org, secrets.token_hex(16), gateway.clock.now())
    document = crypto.sign_document(
        PING_TYPE, body.to_bytes(), keys.signing, crypto.key_id(keys.signing.public)
    )
    # The key is loaded before the clock starts: the round trip is the network's.
    context = await run_sync(pinned_context, gateway, entry)
    started = time.perf_counter()
    async with PeerClient(lambda _: context, pool_size=1, timeouts=PING_TIMEOUTS) as client:
        answer = await client.request(
            "POST", entry, "/peer/v1/ping", document, limit=PEER_REQUEST_LIMIT
        )
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status != 200:
        raise refusal_of(answer, f"The gateway for {to_org}")
    pong = Pong.from_bytes(verify_signed_by_org(directory, answer.body, PONG_TYPE, claimed=to_org))
    if pong.nonce != body.nonce or pong.org != to_org:
        raise PeerRefused("The peer's answer does not match the ping sent.")
    await run_sync(
        gateway.record,
        actor=f"organisation:{from_org}",
        action="ping.sent",
        subject=to_org,
        details={"gateway": entry.name, "round_trip_ms": round(elapsed, 2)},
    )
    # The pinned TLS context has already required exactly this certificate.
    return PingResult(
        to_org,
        entry.name,
        entry.peer_address,
        entry.certificate_fingerprint,
        pong.directory_version,
        round(elapsed, 2),
    )
