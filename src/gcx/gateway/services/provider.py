"""The provider side of a service call: check the signed call, ask the backend, sign the answer.

A call arrives from a peer gateway that passed the mutual-TLS and directory
check (:mod:`gcx.gateway.services.peer_api` turns it into an
:class:`~gcx.gateway.services.model.IncomingCall`). It is handled in two steps
so that what is logged stays as it was:

1. :meth:`ServiceProviding.verified`: the request document must verify
   against the consumer organisation's key. A document that does not is not a
   call this gateway can put its name to, so it is refused without a log row.
2. :meth:`ServiceProviding.answer`: everything after is logged, answered or
   refused, in the call log with its audit entry (a refusal is logged, then
   raised for the api module to answer). The body is read within the
   service's limit, checked against the signed digest, replays and rights and
   the rate are checked, and the backend is asked through the
   :class:`~gcx.gateway.services.backend.BackendClient` port.

See :mod:`gcx.gateway.services.calls` for the per-call budget both sides keep to.
"""

from __future__ import annotations

import base64
import time
from collections import OrderedDict

from gcx import crypto
from gcx.errors import (
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
from gcx.gateway.services.backend import BackendClient, BackendRegistry
from gcx.gateway.services.call_log import CallLog, new_row
from gcx.gateway.services.common import (
    REPLAY_WINDOW,
    REQUEST_HEADER,
    BatchSigner,
    CallDirectory,
    elapsed_ms,
    log_refused,
    seal_bodies,
)
from gcx.gateway.services.model import IncomingCall, ProvidedAnswer
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
    ServiceEntry,
    check_request_received,
    normalise_path,
    require_caller_facts,
)
from gcx.store import iso


class ServiceProviding:
    """Calls to the services this gateway's organisations provide."""

    def __init__(
        self,
        gateway: Gateway,
        facts: CallDirectory,
        call_log: CallLog,
        backends: BackendRegistry,
        client: BackendClient,
        signer: BatchSigner,
    ) -> None:
        self.gateway = gateway
        self.facts = facts
        self.log = call_log
        self.backends = backends
        self.client = client
        self.limiter = RateLimiter()
        # Call ids seen lately, oldest first: a call is answered once.
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.signer = signer

    def verified(self, directory: dirproto.Directory, signed: bytes) -> CallRequest:
        """The call ``signed`` makes, if it verifies against its consumer's key.

        Raises (and nothing is logged) if it is missing, not a signed document,
        or not signed by the organisation it names.
        """
        if not signed:
            raise InputError(f"A call needs its signed request document in {REQUEST_HEADER}.")
        try:
            payload = base64.b64decode(strict_json.loads(signed)["payload"], validate=True)
        except (JsonInvalid, BodyNotUtf8):
            raise  # refused as what they are: the JSON itself is bad
        except (ValueError, KeyError, TypeError) as exc:
            raise SignatureInvalid("The call request is not a signed document.") from exc
        call = CallRequest.from_bytes(payload)
        key_id, key = self.facts.org_key(directory, call.consumer)
        try:
            crypto.verify_signed(signed, REQUEST_TYPE, {key_id: key}, roots=self.facts.roots)
        except CryptoError as exc:
            raise SignatureInvalid(
                f"The call request does not verify against {call.consumer}'s key in the directory."
            ) from exc
        return call

    async def answer(self, incoming: IncomingCall, call: CallRequest) -> ProvidedAnswer:
        """Answer a verified call; a refusal is logged and then raised as a GcxError."""
        started = time.perf_counter()
        gateway = self.gateway
        directory = incoming.directory
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
            request_document=incoming.signed,
        )
        try:
            index = self.facts.index(directory)
            service = index.service(call.provider, call.service)
            body = await incoming.read_body(service.max_body_bytes)
            check_request_received(
                call,
                peer_organisations=incoming.peer.organisations,
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
                request_sha256=crypto.sha256_hex(incoming.signed),
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
            document = await self.signer.sign(call.provider, RESPONSE_TYPE, response.to_bytes())
            row.update(
                status=status,
                outcome="answered",
                response_size=len(answer),
                response_sha256=response.body_sha256,
                response_document=document,
            )
            if service.logging == "full":
                row["sealed_bodies"] = seal_bodies(
                    gateway.keys,
                    gateway.clock,
                    call.provider,
                    call.id,
                    call.headers,
                    body,
                    headers,
                    answer,
                )
        except GcxError as error:
            await log_refused(self.log, row, started, error)
            raise
        row["duration_ms"] = elapsed_ms(started)
        await self.log.write(row)
        return ProvidedAnswer(document=document, body=answer)

    async def _backend(
        self, call: CallRequest, service: ServiceEntry, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        name = f"{call.provider}/{call.service}"
        backend = self.backends.get(call.provider, call.service)
        if backend is None:
            raise BackendUnreachable(f"{name} has no backend configured on this gateway.")
        # Only the headers gcx carries reach the backend, whatever a consumer signed.
        headers = {k: v for k, v in call.headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
        path = normalise_path(call.path)
        url = backend.url.rstrip("/") + path + (f"?{call.query}" if call.query else "")
        answer = await self.client.call(
            call.method,
            url,
            headers=headers,
            body=body,
            timeout_seconds=service.timeout_seconds,
            limit=service.max_body_bytes,
            name=name,
        )
        kept = {h: answer.headers[h] for h in FORWARDED_RESPONSE_HEADERS if h in answer.headers}
        return answer.status, kept, answer.body
