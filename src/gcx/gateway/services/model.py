"""What the service-call use cases take and give: plain values, no HTTP framework objects.

The api modules (:mod:`gcx.gateway.services.api`, :mod:`gcx.gateway.services.peer_api`)
turn an aiohttp request into one of these and a result back into a response;
the use cases (:mod:`gcx.gateway.services.consumer`,
:mod:`gcx.gateway.services.provider`) see only these, so they can be called
from a web page, a test or another front end alike.

A body is not bytes here but a :data:`BodyReader`: the use case reads it only
once the call is admitted, within the service's own limit. Reading first would
let a caller with no access right make the gateway hold a body of any size,
and would change which refusal a refused call gets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from gcx.errors import BodyTooLarge, HeaderInvalid
from gcx.gateway.services.common import PURPOSE_HEADER, USER_HEADER
from gcx.gateway.tokens import Caller
from gcx.protocol import directory as dirproto
from gcx.protocol.services import FORWARDED_REQUEST_HEADERS

# Reads the whole body, refusing it (BodyTooLarge) past the limit it is given.
BodyReader = Callable[[int], Awaitable[bytes]]


def fixed_body(data: bytes) -> BodyReader:
    """A reader for a body already in memory, held to the same limit as one from a socket."""

    async def read(limit: int) -> bytes:
        if len(data) > limit:
            raise BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        return data

    return read


@dataclass(frozen=True)
class ServiceCallRequest:
    """One call on the consumer side: who calls what, with which facts and body.

    ``user`` and ``purpose`` are what the caller stated (for a person's token,
    the use case calls as that person whatever ``user`` says, and refuses a
    different one); ``headers`` are only the ones gcx carries to the backend
    (:data:`~gcx.protocol.services.FORWARDED_REQUEST_HEADERS`), lower-case.
    """

    caller: Caller
    provider: str
    service: str
    method: str
    path: str
    query: str
    user: str | None
    purpose: str | None
    headers: Mapping[str, str]
    read_body: BodyReader

    @classmethod
    def from_headers(
        cls,
        caller: Caller,
        provider: str,
        service: str,
        path: str,
        *,
        method: str,
        query: str,
        headers: Mapping[str, str],
        read_body: BodyReader,
    ) -> ServiceCallRequest:
        """The call a request with these (case-insensitive) headers makes.

        Raises :class:`~gcx.errors.HeaderInvalid` for a user or purpose that is
        not UTF-8 text: it could be neither signed nor logged, so it is refused
        before anything is.
        """
        return cls(
            caller=caller,
            provider=provider,
            service=service,
            method=method,
            path=path,
            query=query,
            user=caller_fact(headers, USER_HEADER),
            purpose=caller_fact(headers, PURPOSE_HEADER),
            headers={h: headers[h] for h in FORWARDED_REQUEST_HEADERS if h in headers},
            read_body=read_body,
        )


@dataclass(frozen=True)
class ServiceCallAnswer:
    """The provider's answer, checked: its status, the headers to give the caller, its body.

    ``headers`` carry the call's id (``X-Gcx-Call-Id``) and the backend's
    headers gcx carries, in the caller's usual capitalisation.
    """

    call_id: str
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class IncomingCall:
    """A call as the provider's gateway receives it from a peer that passed the TLS check.

    ``signed`` is the consumer organisation's signed request document;
    ``directory`` is the one the peer was checked against.
    """

    signed: bytes
    peer: dirproto.GatewayEntry
    directory: dirproto.Directory
    read_body: BodyReader = field(repr=False)


@dataclass(frozen=True)
class ProvidedAnswer:
    """What the provider's gateway sends back: the signed response document and the body."""

    document: bytes
    body: bytes


def caller_fact(headers: Mapping[str, str], name: str) -> str | None:
    """A caller-fact header as text, or None if absent or empty.

    Header bytes that are not UTF-8 reach us as lone surrogates; they could be
    neither signed nor logged, so they are refused here, before anything is.
    """
    value = headers.get(name) or None
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise HeaderInvalid(f"The {name} header is not valid UTF-8 text.") from exc
    return value
