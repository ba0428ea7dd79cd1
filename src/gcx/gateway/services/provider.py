"""The provider side of service calls, and what the consumer side shares with it.

:class:`ServiceProxy` (``gcx.gateway.services.calls``) extends this with its lifecycle
and the consumer side; see that module for the per-call budget both keep to.
"""

from __future__ import annotations

import base64
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web

from gcx import crypto
from gcx.errors import (
    BackendAnswerTooLarge,
    BackendTimeout,
    BackendUnreachable,
    BodyNotUtf8,
    CallReplayed,
    CryptoError,
    GcxError,
    InputError,
    JsonInvalid,
    RateLimited,
    SignatureInvalid,
)
from gcx.gateway.runtime import Gateway
from gcx.gateway.services.call_log import CallLog, new_row
from gcx.gateway.services.common import (
    REPLAY_WINDOW,
    REQUEST_HEADER,
    RESPONSE_HEADER,
    Backend,
    read_capped,
)
from gcx.httpapi import read_body, refusal
from gcx.protocol import directory as dirproto
from gcx.protocol import strict_json
from gcx.protocol.services import (
    FORWARDED_REQUEST_HEADERS,
    FORWARDED_RESPONSE_HEADERS,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    CallRequest,
    CallResponse,
    RateLimiter,
    RightsIndex,
    ServiceEntry,
    check_request_received,
    normalise_path,
    require_caller_facts,
)
from gcx.store import iso

log = logging.getLogger("gcx.gateway.services.calls")


class ServiceProviding:
    """The provider side, and the per-directory caches and refusals both sides use."""

    # Set by ServiceProxy.__init__.
    gateway: Gateway
    log: CallLog
    limiter: RateLimiter
    backends: dict[tuple[str, str], Backend]
    _index: RightsIndex | None
    _keys: tuple[int, dict[str, tuple[str, crypto.VerifyKey]]]
    _seen: OrderedDict[str, None]
    _client: aiohttp.ClientSession | None
    _signing: dict[str, tuple[crypto.SigningKey, str]]

    # -- per-directory caches -------------------------------------------------------

    def index(self, directory: dirproto.Directory) -> RightsIndex:
        index = self._index
        if index is None or index.version != directory.version:
            index = RightsIndex.build(
                directory.version,
                directory.services,
                directory.service_rights,
                directory.service_groups,
            )
            self._index = index
        return index

    def org_key(self, directory: dirproto.Directory, code: str) -> tuple[str, crypto.VerifyKey]:
        version, keys = self._keys
        if version != directory.version:
            keys = {}
            self._keys = (directory.version, keys)
        found = keys.get(code)
        if found is None:
            org = directory.organisation(code)
            if org is None or not org.signing_key or not org.gateway:
                raise SignatureInvalid(
                    f"The directory lists no signing key for {code[:16]}; the call was refused."
                )
            key = crypto.VerifyKey.from_b64(org.signing_key)
            found = keys[code] = (crypto.key_id(key), key)
        return found

    async def _refused(self, row: dict[str, Any], started: float, error: GcxError) -> web.Response:
        # A call refused before its request document was made still gets an id.
        row["id"] = row["id"] or crypto.random_id(16)
        row.update(status=error.status, outcome=error.code)
        row["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        try:
            await self.log.write(row)
        except GcxError:
            log.warning("a refused call could not be logged")
        response = refusal(error)
        if isinstance(error, RateLimited):
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    # -- the provider side ------------------------------------------------------------

    async def provide(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        gateway = self.gateway
        directory: dirproto.Directory = request["directory"]
        peer: dirproto.GatewayEntry = request["peer"]
        signed = request.headers.get(REQUEST_HEADER, "").encode()
        call = self._verified_request(directory, signed)
        row = new_row(
            at=iso(gateway.clock.now()),
            side="provider",
            consumer=call.consumer,
            user=call.user,
            system=call.system,
            purpose=call.purpose,
            provider=call.provider,
            service=call.service,
            method=call.method,
            path=call.path,
            query=call.query,
        )
        row.update(
            id=call.id,
            directory_version=directory.version,
            request_sha256=call.body_sha256,
            request_size=call.body_size,
            request_document=signed,
        )
        try:
            index = self.index(directory)
            service = index.service(call.provider, call.service)
            body = await read_body(request, service.max_body_bytes)
            check_request_received(
                call,
                peer_organisations=peer.organisations,
                hosted=gateway.config.organisations,
                body_sha256=crypto.sha256_hex(body),
                body_size=len(body),
                now=gateway.clock.now(),
            )
            if call.id in self._seen:
                raise CallReplayed()
            self._seen[call.id] = None
            if len(self._seen) > REPLAY_WINDOW:
                self._seen.popitem(last=False)
            decision = index.decide(
                call.consumer, call.provider, call.service, call.method, normalise_path(call.path)
            )
            require_caller_facts(service, call.user, call.purpose)
            rate, burst = decision.rate
            wait = self.limiter.take(
                (call.provider, call.service, call.consumer), rate, burst, time.monotonic()
            )
            if wait is not None:
                raise RateLimited(
                    f"{call.consumer} is over its rate of {rate:g} calls a second for "
                    f"{call.provider}/{call.service}.",
                    retry_after=wait,
                )
            status, headers, answer = await self._backend(call, service, body)
            response = CallResponse(
                call_id=call.id,
                request_sha256=crypto.sha256_hex(signed),
                provider=call.provider,
                provider_gateway=gateway.config.name,
                service=call.service,
                status=status,
                headers=headers,
                body_sha256=crypto.sha256_hex(answer),
                body_size=len(answer),
                created_at=gateway.clock.now(),
                directory_version=directory.version,
            )
            key, key_id = self._signing[call.provider]
            document = crypto.sign_document(RESPONSE_TYPE, response.to_bytes(), key, key_id)
            row.update(
                status=status,
                outcome="answered",
                response_size=len(answer),
                response_sha256=response.body_sha256,
                response_document=document,
            )
            if service.logging == "full":
                row["sealed_bodies"] = self._seal(
                    call.provider, call.id, call.headers, body, headers, answer
                )
        except GcxError as error:
            return await self._refused(row, started, error)
        row["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        await self.log.write(row)
        return web.Response(
            status=200,
            body=answer,
            headers={
                RESPONSE_HEADER: document.decode(),
                "Content-Type": "application/octet-stream",
            },
        )

    def _verified_request(self, directory: dirproto.Directory, signed: bytes) -> CallRequest:
        if not signed:
            raise InputError(f"A call needs its signed request document in {REQUEST_HEADER}.")
        try:
            payload = base64.b64decode(strict_json.loads(signed)["payload"], validate=True)
        except (JsonInvalid, BodyNotUtf8):
            raise  # refused as what they are: the JSON itself is bad
        except (ValueError, KeyError, TypeError) as exc:
            raise SignatureInvalid("The call request is not a signed document.") from exc
        call = CallRequest.from_bytes(payload)
        key_id, key = self.org_key(directory, call.consumer)
        try:
            crypto.verify_document(signed, REQUEST_TYPE, {key_id: key})
        except CryptoError as exc:
            raise SignatureInvalid(
                f"The call request does not verify against {call.consumer}'s key in the directory."
            ) from exc
        return call

    async def _backend(
        self, call: CallRequest, service: ServiceEntry, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        backend = self.backends.get((call.provider, call.service))
        if backend is None or self._client is None:
            raise BackendUnreachable(
                f"{call.provider}/{call.service} has no backend configured on this gateway."
            )
        # Only the headers gcx carries reach the backend, whatever a consumer signed.
        headers = {k: v for k, v in call.headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
        path = normalise_path(call.path)
        url = backend.url.rstrip("/") + path + (f"?{call.query}" if call.query else "")
        try:
            async with self._client.request(
                call.method,
                url,
                data=body if body else None,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=service.timeout_seconds),
                allow_redirects=False,
            ) as answer:
                data = await read_capped(answer, service.max_body_bytes, BackendAnswerTooLarge)
                headers = {
                    h: answer.headers[h] for h in FORWARDED_RESPONSE_HEADERS if h in answer.headers
                }
                return answer.status, headers, data
        except TimeoutError as exc:
            raise BackendTimeout(
                f"The backend of {call.provider}/{call.service} did not answer within "
                f"{service.timeout_seconds:g} s."
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise BackendUnreachable(
                f"The backend of {call.provider}/{call.service} could not be reached: "
                f"{type(exc).__name__}."
            ) from exc

    # -- bodies at rest -------------------------------------------------------------------

    def _seal(
        self,
        organisation: str,
        call_id: str,
        request_headers: Mapping[str, str],
        request_body: bytes,
        response_headers: Mapping[str, str],
        response_body: bytes,
    ) -> bytes:
        """Both bodies sealed to this organisation's own key (a gcx.envelope/1 frame)."""
        keys = self.gateway.keys.organisations[organisation]
        sealed = crypto.seal_envelope(
            kind="document",
            sender_org=organisation,
            sender_user="service-proxy",
            sender_key=keys.signing,
            recipients={organisation: keys.encryption.public},
            marking="OFFICIAL-SENSITIVE",
            parts=[
                (
                    "request",
                    request_headers.get("content-type", "application/octet-stream"),
                    request_body,
                ),
                (
                    "response",
                    response_headers.get("content-type", "application/octet-stream"),
                    response_body,
                ),
            ],
            now=self.gateway.clock.now(),
            envelope_id=call_id,
        )
        return sealed.framed()
