"""The peer route of service calls: ``POST /peer/v1/calls``, and service-call refusals as HTTP.

The route sits behind the peer endpoint's mutual-TLS and directory check
(:func:`gcx.gateway.peer.peer_check`), which leaves the peer's directory entry
and the directory it was checked against on the request. This module only
translates: the request into an :class:`~gcx.gateway.services.model.IncomingCall`
for :class:`~gcx.gateway.services.provider.ServiceProviding`, and its answer or
refusal back into a response.

:func:`call_refusal` is how both the local and the peer API answer a refused
call, so the two sides give a refusal the same shape.
"""

from __future__ import annotations

from aiohttp import web

from gcx.errors import GcxError, ProviderGatewayRefusal, RateLimited
from gcx.gateway.services.calls import ServiceProxy
from gcx.gateway.services.common import REQUEST_HEADER, RESPONSE_HEADER
from gcx.gateway.services.model import IncomingCall
from gcx.httpapi import read_body, refusal

PEER_SERVICES = web.AppKey("peer-services", ServiceProxy)


def call_refusal(error: GcxError) -> web.Response:
    """A refused service call as the caller sees it: gcx's refusal, with what it adds.

    A rate limit says when to try again (``Retry-After``). A refusal by the
    provider's gateway keeps that gateway's status (502 if it refused with a
    success status) and its ``Retry-After``.
    """
    response = refusal(error)
    if isinstance(error, ProviderGatewayRefusal):
        response.set_status(error.answer_status)
        if error.retry_after is not None:
            response.headers["Retry-After"] = error.retry_after
    elif isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


async def handle_call(request: web.Request) -> web.StreamResponse:
    provider = request.app[PEER_SERVICES].provider
    incoming = IncomingCall(
        signed=request.headers.get(REQUEST_HEADER, "").encode(),
        peer=request["peer"],
        directory=request["directory"],
        read_body=lambda limit: read_body(request, limit),
    )
    # A request document that does not verify is refused unlogged (the
    # error middleware answers it); anything after is logged by the use case.
    call = provider.verified(incoming.directory, incoming.signed)
    try:
        answer = await provider.answer(incoming, call)
    except GcxError as error:
        return call_refusal(error)
    return web.Response(
        status=200,
        body=answer.body,
        headers={
            RESPONSE_HEADER: answer.document.decode(),
            "Content-Type": "application/octet-stream",
        },
    )


def add_peer_service_routes(app: web.Application, proxy: ServiceProxy) -> None:
    app[PEER_SERVICES] = proxy
    app.router.add_post("/peer/v1/calls", handle_call)
