"""The consumer side of a service call: admit it, sign it, carry it, check the signed answer.

:meth:`ServiceCalls.call` takes a :class:`~gcx.gateway.services.model.ServiceCallRequest`
from the local API or a web page and returns a
:class:`~gcx.gateway.services.model.ServiceCallAnswer`. Every call is logged,
answered or refused, in the call log with its audit entry; a refusal is
logged and then raised as a :class:`~gcx.errors.GcxError`, which the api
module answers. A refusal by the provider's gateway is raised as
:class:`~gcx.errors.ProviderGatewayRefusal`, carrying that gateway's code.

The hop to the provider's gateway goes through the one peer client
(:class:`~gcx.gateway.exchange.peer_client.PeerClient`) and its one refusal
parser (:func:`~gcx.gateway.exchange.peer_client.refusal_of`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gcx import crypto
from gcx.errors import (
    BackendAnswerTooLarge,
    BackendTimeout,
    CallResponseInvalid,
    CryptoError,
    GcxError,
    InputError,
    PeerAnswerTooLarge,
    PeerTimeout,
    PeerUnreachable,
    ProviderGatewayRefusal,
    UserMismatch,
)
from gcx.gateway.exchange.peer_client import (
    PeerAnswer,
    PeerClient,
    Timeouts,
    refusal_code,
    refusal_of,
)
from gcx.gateway.runtime import Gateway
from gcx.gateway.services.call_log import CallLog, new_row
from gcx.gateway.services.common import (
    CALL_ID_HEADER,
    PURPOSE_HEADER,
    REQUEST_HEADER,
    RESPONSE_HEADER,
    USER_HEADER,
    BatchSigner,
    CallDirectory,
    elapsed_ms,
    log_refused,
    seal_bodies,
)
from gcx.gateway.services.model import ServiceCallAnswer, ServiceCallRequest
from gcx.protocol import directory as dirproto
from gcx.protocol.services import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    CallRequest,
    CallResponse,
    ServiceEntry,
    check_response_matches,
    normalise_path,
    require_caller_facts,
)
from gcx.store import iso


class ServiceCalls:
    """Calls this gateway's organisations make to services elsewhere (or hosted here)."""

    def __init__(
        self,
        gateway: Gateway,
        peers: PeerClient,
        facts: CallDirectory,
        call_log: CallLog,
        signer: BatchSigner,
    ) -> None:
        self.gateway = gateway
        self.peers = peers
        self.facts = facts
        self.log = call_log
        self.signer = signer

    async def call(self, request: ServiceCallRequest) -> ServiceCallAnswer:
        """One call on the consumer side; the body is read only once the call is admitted."""
        started = time.perf_counter()
        gateway = self.gateway
        caller = request.caller
        method = request.method.upper()
        stated, purpose, query = request.user, request.purpose, request.query
        # A person calls as themselves, whatever the header says; only a system
        # states an end user, and then both are signed and logged on both sides.
        user, system = (caller.account, None) if caller.is_person else (stated, caller.account)
        row = new_row(
            at=iso(gateway.clock.now()),
            side="consumer",
            consumer=caller.organisation,
            user=user,
            system=system,
            purpose=purpose,
            provider=request.provider,
            service=request.service,
            method=method,
            path=request.path[:2000],
            query=query,
        )
        refused: ProviderGatewayRefusal | None = None
        try:
            directory = gateway.directory.current()
            row["directory_version"] = directory.version
            path = normalise_path(request.path)
            row["path"] = path
            if caller.is_person and stated is not None and stated != caller.account:
                raise UserMismatch(
                    f"Your token calls services as {caller.account} only; leave {USER_HEADER} "
                    "out or give your own account name."
                )
            check_lengths(user, purpose, query)
            decision = self.facts.index(directory).decide(
                caller.organisation, request.provider, request.service, method, path
            )
            service = decision.service
            require_caller_facts(service, user, purpose)
            body = await request.read_body(service.max_body_bytes)
            peer = directory.gateway_for_organisation(request.provider)
            if peer is None:
                raise PeerUnreachable(f"{request.provider} has no active gateway in the directory.")
            forwarded = dict(request.headers)
            call = CallRequest(
                id=crypto.random_id(16),
                consumer=caller.organisation,
                consumer_gateway=gateway.config.name,
                user=user,
                system=system,
                purpose=purpose,
                provider=request.provider,
                service=request.service,
                method=method,
                path=path,
                query=query,
                headers=forwarded,
                body_sha256=crypto.sha256_hex(body),
                body_size=len(body),
                created_at=gateway.clock.now(),
                directory_version=directory.version,
            )
            row.update(id=call.id, request_size=len(body), request_sha256=call.body_sha256)
            signed = await self.signer.sign(caller.organisation, REQUEST_TYPE, call.to_bytes())
            row["request_document"] = signed
            answer = await self._forward(peer, signed, body, service)
            if answer.status != 200 or RESPONSE_HEADER not in answer.headers:
                refused = await self._passed_on(row, started, answer)
            else:
                response_document = answer.headers[RESPONSE_HEADER].encode()
                response = self._verified_response(
                    directory, call, signed, response_document, answer.body
                )
                row.update(
                    status=response.status,
                    outcome="answered",
                    response_size=len(answer.body),
                    response_sha256=response.body_sha256,
                    response_document=response_document,
                )
                if service.logging == "full":
                    row["sealed_bodies"] = seal_bodies(
                        gateway.keys,
                        gateway.clock,
                        caller.organisation,
                        call.id,
                        forwarded,
                        body,
                        response.headers,
                        answer.body,
                    )
        except GcxError as error:
            await log_refused(self.log, row, started, error)
            raise
        if refused is not None:
            # Logged already, under the provider gateway's code; raised outside
            # the block above so that it is not logged a second time as ours.
            raise refused
        row["duration_ms"] = elapsed_ms(started)
        await self.log.write(row)
        return ServiceCallAnswer(
            call_id=call.id,
            status=response.status,
            headers={CALL_ID_HEADER: call.id, **title_case(response.headers)},
            body=answer.body,
        )

    async def _forward(
        self, peer: dirproto.GatewayEntry, signed: bytes, body: bytes, service: ServiceEntry
    ) -> PeerAnswer:
        """Carry the signed call to the provider's gateway, within the service's limits.

        The consumer's API has always named a provider gateway that is too slow
        or answers too much by the backend codes (504 ``backend-timeout``, 502
        ``backend-answer-too-large``), since to the caller the service failed.
        """
        try:
            return await self.peers.request(
                "POST",
                peer,
                "/peer/v1/calls",
                body,
                content_type="application/octet-stream",
                headers={REQUEST_HEADER: signed.decode()},
                timeouts=Timeouts(total=service.timeout_seconds + 5, connect=5),
                limit=service.max_body_bytes + 64 * 1024,
            )
        except PeerTimeout as error:
            raise BackendTimeout("The provider's gateway did not answer in time.") from error
        except PeerAnswerTooLarge as error:
            raise BackendAnswerTooLarge(error.message) from error

    def _verified_response(
        self,
        directory: dirproto.Directory,
        call: CallRequest,
        signed_request: bytes,
        document: bytes,
        body: bytes,
    ) -> CallResponse:
        key_id, key = self.facts.org_key(directory, call.provider)
        try:
            payload = crypto.verify_signed(
                document, RESPONSE_TYPE, {key_id: key}, roots=self.facts.roots
            )
            response = CallResponse.from_bytes(payload)
        except (CryptoError, InputError) as exc:
            raise CallResponseInvalid(
                f"The answer is not signed by {call.provider}'s key in the directory."
            ) from exc
        check_response_matches(
            response,
            call,
            request_sha256=crypto.sha256_hex(signed_request),
            body_sha256=crypto.sha256_hex(body),
            body_size=len(body),
        )
        return response

    async def _passed_on(
        self, row: dict[str, Any], started: float, answer: PeerAnswer
    ) -> ProviderGatewayRefusal:
        """The provider gateway refused: log it under its code, and give the refusal to raise."""
        refusal = refusal_of(answer, "The provider's gateway")
        code = refusal_code(refusal)
        row.update(status=answer.status, outcome=code)
        row["duration_ms"] = elapsed_ms(started)
        await self.log.write(row)
        return ProviderGatewayRefusal(
            answer.status, code, refusal.message, retry_after=answer.headers.get("Retry-After")
        )


def check_lengths(user: str | None, purpose: str | None, query: str) -> None:
    """Refuse caller facts and a query longer than the call log keeps."""
    if user is not None and len(user) > 200:
        raise InputError(f"{USER_HEADER} may be at most 200 characters.")
    if purpose is not None and len(purpose) > 500:
        raise InputError(f"{PURPOSE_HEADER} may be at most 500 characters.")
    if len(query) > 4000:
        raise InputError("The query string may be at most 4,000 characters.")


def title_case(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names as callers usually write them (``content-type`` → ``Content-Type``)."""
    return {"-".join(p.capitalize() for p in k.split("-")): v for k, v in headers.items()}
