"""Service-call use cases without a socket or a web framework: both sides, in one process.

The consumer's use case (:class:`ServiceCalls`) and the provider's
(:class:`ServiceProviding`) run with real keys, real signed documents and a
real directory. What they reach outside is replaced at the ports: the peer hop
by :class:`PeerHop`, which hands the signed call straight to the provider's
use case and answers as the peer route does, the backend by
:class:`RecordingBackend`, and the call log by :class:`Rows`. The HTTP side
(routes, TLS, the group-committed log) is covered by
``tests/integration/test_services.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from gcx import crypto
from gcx.clock import FixedClock
from gcx.errors import (
    BackendTimeout,
    BodyTooLarge,
    CallReplayed,
    GcxError,
    HeaderInvalid,
    InputError,
    ProviderGatewayRefusal,
    ServiceForbidden,
    SignatureInvalid,
    UserMismatch,
)
from gcx.gateway.exchange.peer_client import ERROR_HEADER, PeerAnswer
from gcx.gateway.home import OrganisationKeys
from gcx.gateway.services.backend import BackendAnswer, BackendRegistry
from gcx.gateway.services.common import (
    CALL_ID_HEADER,
    PURPOSE_HEADER,
    REQUEST_HEADER,
    RESPONSE_HEADER,
    USER_HEADER,
    Backend,
    BatchSigner,
    CallDirectory,
)
from gcx.gateway.services.consumer import ServiceCalls, check_lengths, title_case
from gcx.gateway.services.model import (
    IncomingCall,
    ServiceCallRequest,
    fixed_body,
)
from gcx.gateway.services.provider import ServiceProviding
from gcx.gateway.tokens import Caller
from gcx.protocol.directory import Directory, GatewayEntry, OrganisationEntry
from gcx.protocol.services import REQUEST_TYPE, AccessRight, CallRequest, ServiceEntry

NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
COUNCIL, DWP = "E09000030", "DWP"
SERVICE = ServiceEntry(provider=DWP, name="dwp-cis", version="1", max_body_bytes=1000)
SYSTEM = Caller(organisation=COUNCIL, account="benefits-system", kind="system", roles=())
PERSON = Caller(organisation=COUNCIL, account="asha", kind="user", roles=("staff",))


def _keys(code: str) -> OrganisationKeys:
    return OrganisationKeys(code, crypto.SigningKey.generate(), crypto.EncryptionKey.generate())


def _gateway_entry(name: str, organisation: str) -> GatewayEntry:
    return GatewayEntry(
        name=name,
        peer_address="127.0.0.1:1",
        certificate_fingerprint="0" * 64,
        certificate_serial="1",
        certificate_not_after=NOW + dt.timedelta(days=300),
        organisations=(organisation,),
    )


@dataclass
class Rows:
    """The call log, as a list: what each side would have committed."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    async def write(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))


@dataclass
class RecordingBackend:
    """A backend client that answers as told and remembers what it was asked."""

    answer: BackendAnswer | GcxError = field(
        default_factory=lambda: BackendAnswer(
            200, {"content-type": "application/json", "x-internal": "kept back"}, b'{"ok":true}'
        )
    )
    asked: list[dict[str, Any]] = field(default_factory=list)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def call(self, method: str, url: str, **options: Any) -> BackendAnswer:
        self.asked.append({"method": method, "url": url, **options})
        if isinstance(self.answer, GcxError):
            raise self.answer
        return self.answer


class PeerHop:
    """The peer client's place: the signed call goes to the provider's use case in-process.

    It answers as ``POST /peer/v1/calls`` does: the signed answer, or a gcx
    refusal whose code ``X-Gcx-Error`` repeats.
    """

    def __init__(self, provider: ServiceProviding, directory: Directory) -> None:
        self.provider = provider
        self.directory = directory
        self.sent: list[bytes] = []

    async def request(
        self, method: str, peer: GatewayEntry, path: str, body: bytes, **options: Any
    ) -> PeerAnswer:
        signed = options["headers"][REQUEST_HEADER].encode()
        self.sent.append(signed)
        incoming = IncomingCall(
            signed=signed,
            peer=self.directory.gateway_named("council-gw") or peer,
            directory=self.directory,
            read_body=fixed_body(body),
        )
        try:
            call = self.provider.verified(self.directory, signed)
            answer = await self.provider.answer(incoming, call)
        except GcxError as error:
            refusal = error.to_dict()
            headers = {ERROR_HEADER: str(refusal["code"])}
            return PeerAnswer(error.status, headers, json.dumps(refusal).encode())
        return PeerAnswer(200, {RESPONSE_HEADER: answer.document.decode()}, answer.body)


class Pair:
    """A council's gateway calling DWP's, with a directory that lists both."""

    def __init__(self, *, rights: tuple[AccessRight, ...] | None = None) -> None:
        council, dwp = _keys(COUNCIL), _keys(DWP)
        right = AccessRight(
            id=crypto.random_id(16),
            provider=DWP,
            service="dwp-cis",
            grantee=f"org:{COUNCIL}",
            paths=("/customers",),
            granted_at=NOW,
        )
        self.directory = Directory(
            network="test",
            version=3,
            issued_at=NOW,
            expires_at=NOW + dt.timedelta(days=1),
            organisations=tuple(
                OrganisationEntry(
                    code=keys.code,
                    name=keys.code,
                    type="council",
                    gateway=gateway,
                    signing_key=keys.signing.public.b64(),
                )
                for keys, gateway in ((council, "council-gw"), (dwp, "dwp-gw"))
            ),
            gateways=(_gateway_entry("council-gw", COUNCIL), _gateway_entry("dwp-gw", DWP)),
            services=(SERVICE,),
            service_rights=(right,) if rights is None else rights,
        )
        self.consumer_rows, self.provider_rows = Rows(), Rows()
        self.backend = RecordingBackend()
        registry = BackendRegistry(db=None)  # type: ignore[arg-type]  # never reloaded here
        registry.backends = {(DWP, "dwp-cis"): Backend(DWP, "dwp-cis", "http://backend/api/")}
        provider_gateway = self._gateway("dwp-gw", dwp)
        self.provider = ServiceProviding(
            provider_gateway,
            CallDirectory(),
            self.provider_rows,  # type: ignore[arg-type]
            registry,
            self.backend,
            BatchSigner(provider_gateway.keys),
        )
        self.hop = PeerHop(self.provider, self.directory)
        consumer_gateway = self._gateway("council-gw", council)
        self.consumer = ServiceCalls(
            consumer_gateway,
            self.hop,  # type: ignore[arg-type]
            CallDirectory(),
            self.consumer_rows,  # type: ignore[arg-type]
            BatchSigner(consumer_gateway.keys),
        )

    def _gateway(self, name: str, keys: OrganisationKeys) -> Any:
        return SimpleNamespace(
            config=SimpleNamespace(name=name, organisations=[keys.code]),
            keys=SimpleNamespace(organisations={keys.code: keys}),
            clock=FixedClock(NOW),
            directory=SimpleNamespace(current=lambda: self.directory),
        )


def _request(
    caller: Caller = SYSTEM,
    path: str = "/customers/AB123456C",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> ServiceCallRequest:
    given = {USER_HEADER: "asha", PURPOSE_HEADER: "housing benefit claim 42"}
    return ServiceCallRequest.from_headers(
        caller,
        DWP,
        "dwp-cis",
        path,
        method="get",
        query="full=1",
        headers={**given, "accept": "application/json", **(headers or {})},
        read_body=fixed_body(body),
    )


async def test_a_call_is_answered_signed_and_logged_on_both_sides() -> None:
    """An admitted call reaches the backend and comes back checked, with one row per side."""
    pair = Pair()
    answer = await pair.consumer.call(_request())
    assert (answer.status, answer.body) == (200, b'{"ok":true}')
    assert answer.headers == {CALL_ID_HEADER: answer.call_id, "Content-Type": "application/json"}
    [asked] = pair.backend.asked
    assert asked["url"] == "http://backend/api/customers/AB123456C?full=1"
    assert (asked["method"], asked["headers"]) == ("GET", {"accept": "application/json"})
    [mine], [theirs] = pair.consumer_rows.rows, pair.provider_rows.rows
    assert mine["id"] == theirs["id"] == answer.call_id
    assert (mine["side"], theirs["side"]) == ("consumer", "provider")
    assert mine["outcome"] == theirs["outcome"] == "answered"
    assert (mine["consumer_user"], mine["consumer_system"]) == ("asha", "benefits-system")
    assert mine["response_document"] == theirs["response_document"]


async def test_no_right_is_refused_before_the_body_is_read() -> None:
    """A call no right admits is refused and logged, and its body is never read."""
    pair = Pair(rights=())

    async def must_not_read(limit: int) -> bytes:
        raise AssertionError("the body of a refused call was read")

    refused = dataclasses.replace(_request(), read_body=must_not_read)
    with pytest.raises(ServiceForbidden):
        await pair.consumer.call(refused)
    [row] = pair.consumer_rows.rows
    assert (row["status"], row["outcome"]) == (403, "service-forbidden")
    assert row["id"] and not pair.provider_rows.rows


async def test_a_person_calls_as_themselves_only() -> None:
    """A person's token naming another end user is refused as user-mismatch."""
    pair = Pair()
    with pytest.raises(UserMismatch):
        await pair.consumer.call(_request(PERSON, headers={USER_HEADER: "someone-else"}))
    answer = await pair.consumer.call(_request(PERSON, headers={USER_HEADER: ""}))
    assert answer.status == 200
    assert pair.consumer_rows.rows[-1]["consumer_user"] == "asha"


async def test_a_provider_refusal_is_passed_on_with_its_code() -> None:
    """The provider gateway's refusal reaches the caller with its code, logged on both sides."""
    pair = Pair()
    pair.backend.answer = BackendTimeout("The backend of DWP/dwp-cis did not answer within 10 s.")
    with pytest.raises(ProviderGatewayRefusal) as refused:
        await pair.consumer.call(_request())
    error = refused.value
    assert (error.remote_code, error.answer_status) == ("backend-timeout", 504)
    assert error.to_dict()["details"] == {"from": "provider-gateway"}
    assert [r["outcome"] for r in pair.consumer_rows.rows] == ["backend-timeout"]
    assert [r["outcome"] for r in pair.provider_rows.rows] == ["backend-timeout"]


async def test_a_body_over_the_service_limit_is_refused() -> None:
    """The body is read within the service's own limit."""
    pair = Pair()
    with pytest.raises(BodyTooLarge):
        await pair.consumer.call(_request(body=b"x" * 1001))
    assert pair.consumer_rows.rows[0]["outcome"] == "body-too-large"


async def test_the_provider_answers_a_call_once() -> None:
    """The same signed call offered twice is refused the second time, and logged."""
    pair = Pair()
    await pair.consumer.call(_request())
    [signed] = pair.hop.sent
    incoming = IncomingCall(
        signed=signed,
        peer=pair.directory.gateways[0],
        directory=pair.directory,
        read_body=fixed_body(b""),
    )
    call = pair.provider.verified(pair.directory, signed)
    with pytest.raises(CallReplayed):
        await pair.provider.answer(incoming, call)
    assert pair.provider_rows.rows[-1]["outcome"] == "call-replayed"


def test_a_call_that_does_not_verify_is_refused_unlogged() -> None:
    """A missing or forged request document is refused before anything is logged."""
    pair = Pair()
    with pytest.raises(InputError):
        pair.provider.verified(pair.directory, b"")
    call = CallRequest(
        id=crypto.random_id(16),
        consumer=COUNCIL,
        consumer_gateway="council-gw",
        user="asha",
        purpose="review",
        provider=DWP,
        service="dwp-cis",
        method="GET",
        path="/customers/AB123456C",
        body_sha256=crypto.sha256_hex(b""),
        body_size=0,
        created_at=NOW,
        directory_version=3,
    )
    someone_else = crypto.SigningKey.generate()
    forged = crypto.sign_document(
        REQUEST_TYPE, call.to_bytes(), someone_else, crypto.key_id(someone_else.public)
    )
    with pytest.raises(SignatureInvalid):
        pair.provider.verified(pair.directory, forged)
    assert not pair.provider_rows.rows


def test_request_takes_caller_facts_and_only_the_carried_headers() -> None:
    """User and purpose come from their headers; only the carried headers go on."""
    call = _request(headers={"authorization": "Bearer secret", "x-other": "1"})
    assert (call.user, call.purpose) == ("asha", "housing benefit claim 42")
    assert dict(call.headers) == {"accept": "application/json"}


def test_a_caller_fact_that_is_not_utf8_is_refused() -> None:
    """Header bytes that are not UTF-8 (lone surrogates) are refused as header-invalid."""
    with pytest.raises(HeaderInvalid):
        _request(headers={PURPOSE_HEADER: "claim \udcff"})


async def test_a_body_in_memory_keeps_the_limit() -> None:
    """fixed_body gives the body within the limit and refuses it past the limit."""
    assert await fixed_body(b"abc")(3) == b"abc"
    with pytest.raises(BodyTooLarge):
        await fixed_body(b"abcd")(3)


def test_lengths_and_header_names() -> None:
    """Overlong facts are refused; header names come back in the usual capitalisation."""
    with pytest.raises(InputError):
        check_lengths("u" * 201, None, "")
    with pytest.raises(InputError):
        check_lengths(None, None, "q" * 4001)
    assert title_case({"content-type": "a", "x-gcx-call-id": "b"}) == {
        "Content-Type": "a",
        "X-Gcx-Call-Id": "b",
    }


def test_a_provider_refusal_with_a_success_status_is_a_bad_gateway() -> None:
    """A refusal that came with a 2xx or 3xx status is answered 502, keeping its code."""
    error = ProviderGatewayRefusal(200, "peer-unreachable", "It answered oddly.")
    assert error.answer_status == 502
    assert ProviderGatewayRefusal(429, "rate-limited", "Slow down.").answer_status == 429
