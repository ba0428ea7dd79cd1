"""Service access, sans-IO: service descriptions, access rights, call documents, rate limits.

A provider organisation publishes a service and grants access rights to it;
central carries both in the directory. Every gateway decides from that
directory, and from nothing else, whether a call may pass (deny by default).

Theory of operation for one call (``docs/services.md`` has the wire format):

1. The consumer gateway builds a :class:`CallRequest` (method, path, query,
   a few headers, the body's SHA-256, caller organisation, user, purpose,
   time, id) and signs it as the consumer organisation.
2. The provider gateway checks the signature, the freshness, the digest of
   the body it received, the caller's rights and rate, then calls its backend.
3. It signs a :class:`CallResponse` naming the SHA-256 of the signed request
   document, so the answer cannot be replayed for another request.
4. The consumer gateway checks both before answering the calling system.

Everything here is pure: it takes ``now`` (or a monotonic reading) and data,
and returns decisions or raises gcx errors.

This module is over 400 lines because the call document, the access rights and
the rate limits are judged together for every call; they are the one sans-IO
decision about a service call and are kept side by side.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gcx.errors import (
    CallDigestMismatch,
    CallResponseInvalid,
    InputError,
    PeerRefused,
    PurposeRequired,
    ServiceForbidden,
    ServiceUnknown,
    UserRequired,
)
from gcx.protocol import strict_json
from gcx.protocol.documents import Time, load_model

CHANGE_TYPE = "application/vnd.gcx.service-change+json"
REQUEST_TYPE = "application/vnd.gcx.call-request+json"
RESPONSE_TYPE = "application/vnd.gcx.call-response+json"
CHANGE_FORMAT = "gcx.service-change/1"
REQUEST_FORMAT = "gcx.call-request/1"
RESPONSE_FORMAT = "gcx.call-response/1"

# How far a signed call or change may be from the receiver's clock.
MAX_SKEW = dt.timedelta(minutes=5)
MAX_OPENAPI_BYTES = 256 * 1024
MAX_BODY_CEILING = 64 * 1024 * 1024
# Request headers carried (and signed) from the calling system to the backend;
# everything else (cookies, the caller's token) stays on the consumer side.
FORWARDED_REQUEST_HEADERS = ("accept", "content-type")
FORWARDED_RESPONSE_HEADERS = ("content-type",)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
_GROUP = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
_ORG = re.compile(r"^(?:[EWSN][0-9]{8}|[A-Z][A-Z0-9]{1,15})$")
_ID = re.compile(r"^[0-9a-f]{32}$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


LoggingPolicy = Literal["full", "metadata"]


class ServiceEntry(_Model):
    """A published service as the directory carries it (the backend URL stays private)."""

    provider: str
    name: str = Field(pattern=_NAME.pattern)
    version: str = Field(min_length=1, max_length=40)
    title: str = Field(default="", max_length=200)
    openapi: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_body_bytes: int = Field(default=1 << 20, ge=0, le=MAX_BODY_CEILING)
    logging: LoggingPolicy = "metadata"
    requires_user: bool = True
    requires_purpose: bool = True
    rate_per_second: float = Field(default=50.0, gt=0, le=100_000)
    burst: int = Field(default=100, ge=1, le=1_000_000)
    updated_at: Time | None = None


class AccessRight(_Model):
    """A right granted by a provider: to ``org:CODE`` or ``group:NAME``, for methods and paths.

    Empty ``methods`` means every method; empty ``paths`` means the whole
    service. Paths are prefixes on whole segments: ``/customers`` admits
    ``/customers`` and ``/customers/AB123456C``, never ``/customers-admin``.
    """

    id: str = Field(pattern=_ID.pattern)
    provider: str
    service: str
    grantee: str = Field(pattern=r"^(org:[A-Z0-9]{2,16}|group:[a-z][a-z0-9-]{1,62})$")
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    rate_per_second: float | None = Field(default=None, gt=0, le=100_000)
    burst: int | None = Field(default=None, ge=1, le=1_000_000)
    granted_at: Time


class ServiceGroup(_Model):
    """A named group of organisations, owned by the provider that defines it."""

    provider: str
    name: str = Field(pattern=_GROUP.pattern)
    members: tuple[str, ...] = ()


# -- changes a provider signs and central applies -----------------------------

# A change is written without its null fields (to_bytes), so these may be
# absent; every other field must be present.
_CHANGE_OPTIONAL = (
    "service",
    "service_name",
    "right",
    "right_id",
    "group",
    "service.updated_at",
    "right.rate_per_second",
    "right.burst",
)


class ServiceChange(_Model):
    format: Literal["gcx.service-change/1"] = "gcx.service-change/1"
    id: str = Field(pattern=_ID.pattern)
    provider: str
    issued_at: Time
    action: Literal["publish", "withdraw", "grant", "revoke", "group"]
    service: ServiceEntry | None = None
    service_name: str | None = None
    right: AccessRight | None = None
    right_id: str | None = None
    group: ServiceGroup | None = None

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> ServiceChange:
        try:
            return load_model(cls, payload, optional=_CHANGE_OPTIONAL)
        except ValidationError as exc:
            raise InputError(f"The service change is malformed: {_first(exc)}.") from exc
        except ValueError as exc:
            raise InputError(f"The service change is malformed: {exc}.") from exc


def check_change(change: ServiceChange, *, now: dt.datetime) -> None:
    """Refuse a change that is stale, from the future, or speaks for another provider."""
    check_fresh(change.issued_at, now=now, what="service change")
    owned = [x.provider for x in (change.service, change.right, change.group) if x is not None]
    if any(p != change.provider for p in owned):
        raise InputError("A provider may only change its own services, rights and groups.")
    needs = {
        "publish": change.service,
        "withdraw": change.service_name,
        "grant": change.right,
        "revoke": change.right_id,
        "group": change.group,
    }[change.action]
    if needs is None:
        raise InputError(f"A {change.action!r} change is missing what it changes.")
    if change.service is not None:
        size = len(json.dumps(change.service.openapi))
        if size > MAX_OPENAPI_BYTES:
            raise InputError(f"The OpenAPI document is larger than {MAX_OPENAPI_BYTES} bytes.")
    if change.right is not None:
        normalise_methods(change.right.methods)
        for prefix in change.right.paths:
            normalise_path(prefix)


def check_fresh(at: dt.datetime, *, now: dt.datetime, what: str) -> None:
    if at > now + MAX_SKEW:
        raise InputError(f"The {what} is dated in the future; check the sender's clock.")
    if at < now - MAX_SKEW:
        raise InputError(f"The {what} is more than five minutes old and was refused.")


# -- paths and rights -----------------------------------------------------------


def normalise_path(path: str) -> str:
    """The path as rights see it, or :class:`InputError` for anything ambiguous.

    Dot segments, empty segments and backslashes are refused rather than
    resolved, so the path a right was checked against is exactly the path the
    backend receives.
    """
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 2000 or "\\" in path or "\x00" in path:
        raise InputError("The service path is too long or holds characters it may not.")
    segments = path.split("/")[1:]
    if path != "/" and any(s in ("", ".", "..") for s in segments[:-1]):
        raise InputError("The service path may not hold empty, '.' or '..' segments.")
    if segments and segments[-1] in (".", ".."):
        raise InputError("The service path may not hold '.' or '..' segments.")
    return path


def normalise_methods(methods: Iterable[str]) -> tuple[str, ...]:
    result = tuple(sorted({m.upper() for m in methods}))
    unknown = [m for m in result if m not in METHODS]
    if unknown:
        raise InputError(f"Unknown HTTP methods: {', '.join(unknown)}.")
    return result


def path_within(path: str, prefix: str) -> bool:
    """True if ``path`` is ``prefix`` or below it, on whole segments."""
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def right_admits(right: AccessRight, method: str, path: str) -> bool:
    if right.methods and method.upper() not in right.methods:
        return False
    return not right.paths or any(path_within(path, p) for p in right.paths)


@dataclass(frozen=True)
class Decision:
    """What a rights check decided: the service and the right that admitted the call."""

    service: ServiceEntry
    right: AccessRight

    @property
    def rate(self) -> tuple[float, int]:
        return (
            self.right.rate_per_second or self.service.rate_per_second,
            self.right.burst or self.service.burst,
        )


@dataclass
class RightsIndex:
    """Services, rights and groups of one directory version, indexed for per-call checks.

    Built once per directory version (the gateway caches it), so a call costs
    dictionary lookups, not scans of the directory.
    """

    version: int
    services: dict[tuple[str, str], ServiceEntry] = field(default_factory=dict)
    rights: dict[tuple[str, str], list[AccessRight]] = field(default_factory=dict)
    groups: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        version: int,
        services: Iterable[ServiceEntry],
        rights: Iterable[AccessRight],
        groups: Iterable[ServiceGroup],
    ) -> RightsIndex:
        index = cls(version)
        for service in services:
            index.services[(service.provider, service.name)] = service
        for group in groups:
            index.groups[(group.provider, group.name)] = frozenset(group.members)
        for right in rights:
            index.rights.setdefault((right.provider, right.service), []).append(right)
        return index

    def grantee_matches(self, right: AccessRight, consumer: str) -> bool:
        kind, _, name = right.grantee.partition(":")
        if kind == "org":
            return name == consumer
        return consumer in self.groups.get((right.provider, name), frozenset())

    def service(self, provider: str, name: str) -> ServiceEntry:
        found = self.services.get((provider, name))
        if found is None:
            raise ServiceUnknown(
                f"{provider[:16]} publishes no service named {name[:63]!r} in directory "
                f"version {self.version}."
            )
        return found

    def visible_to(self, consumer: str) -> list[tuple[ServiceEntry, list[AccessRight]]]:
        """Every service ``consumer`` holds at least one right to, with those rights."""
        result = []
        for key, service in sorted(self.services.items()):
            mine = [r for r in self.rights.get(key, []) if self.grantee_matches(r, consumer)]
            if mine:
                result.append((service, mine))
        return result

    def decide(self, consumer: str, provider: str, name: str, method: str, path: str) -> Decision:
        """The right that admits this call, or :class:`ServiceForbidden` (deny by default)."""
        service = self.service(provider, name)
        held = [
            r for r in self.rights.get((provider, name), []) if self.grantee_matches(r, consumer)
        ]
        for right in held:
            if right_admits(right, method, path):
                return Decision(service, right)
        if held:
            raise ServiceForbidden(
                f"{consumer} may call {provider}/{name}, but not {method} {path[:200]}: it is "
                "outside the methods and paths granted."
            )
        raise ServiceForbidden(
            f"{consumer} holds no access right to {provider}/{name}; ask {provider} to grant one."
        )


def require_caller_facts(service: ServiceEntry, user: str | None, purpose: str | None) -> None:
    if service.requires_user and not user:
        raise UserRequired(
            f"{service.provider}/{service.name} requires the end user's identity in X-Gcx-User."
        )
    if service.requires_purpose and not purpose:
        raise PurposeRequired(
            f"{service.provider}/{service.name} requires the purpose of the lookup in "
            "X-Gcx-Purpose."
        )


# -- call documents ---------------------------------------------------------------


class CallRequest(_Model):
    format: Literal["gcx.call-request/1"] = "gcx.call-request/1"
    id: str = Field(pattern=_ID.pattern)
    consumer: str
    consumer_gateway: str
    user: str | None = Field(default=None, max_length=200)
    # The consumer's system account that stated ``user`` on the person's behalf;
    # None when the person called with their own token (then ``user`` is theirs).
    system: str | None = Field(default=None, max_length=64)
    purpose: str | None = Field(default=None, max_length=500)
    provider: str
    service: str
    method: str
    path: str = Field(max_length=2000)
    query: str = Field(default="", max_length=4000)
    headers: dict[str, str] = Field(default_factory=dict)
    body_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    body_size: int = Field(ge=0)
    created_at: Time
    directory_version: int

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> CallRequest:
        try:
            # ``system`` is absent from requests signed before it existed.
            return _load_call_document(cls, payload, optional=("system",))
        except ValidationError as exc:
            raise InputError(f"The call request is malformed: {_first(exc)}.") from exc
        except ValueError as exc:
            raise InputError(f"The call request is malformed: {exc}.") from exc


class CallResponse(_Model):
    format: Literal["gcx.call-response/1"] = "gcx.call-response/1"
    call_id: str = Field(pattern=_ID.pattern)
    request_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    provider: str
    provider_gateway: str
    service: str
    status: int = Field(ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict)
    body_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    body_size: int = Field(ge=0)
    created_at: Time
    directory_version: int

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> CallResponse:
        try:
            return _load_call_document(cls, payload)
        except ValidationError as exc:
            raise InputError(f"The call response is malformed: {_first(exc)}.") from exc
        except ValueError as exc:
            raise InputError(f"The call response is malformed: {exc}.") from exc


_Document = TypeVar("_Document", bound=BaseModel)


def _load_call_document(
    model: type[_Document], payload: bytes, *, optional: tuple[str, ...] = ()
) -> _Document:
    """:func:`~gcx.protocol.documents.load_model` for the two call documents, per call.

    Both are flat (no nested model; ``headers`` is a map, whose keys are data),
    so "every field written out" is a check of the top-level keys, without
    load_model's dump and walk of every key path. Its strict JSON reading
    (no repeated key, no NaN) and strict validation are the same.
    """
    raw = strict_json.loads_object(payload)
    value = model.model_validate_json(payload, strict=True)
    missing = set(model.model_fields) - set(raw) - set(optional)
    if missing:
        raise ValueError(f"the document leaves out {', '.join(sorted(missing))}")
    return value


def check_request_received(
    request: CallRequest,
    *,
    peer_organisations: Iterable[str],
    hosted: Iterable[str],
    body_sha256: str,
    body_size: int,
    now: dt.datetime,
) -> None:
    """The provider's checks on a verified request document, before rights."""
    if request.consumer not in set(peer_organisations):
        raise PeerRefused(
            f"The calling gateway does not host {request.consumer[:16]}, the organisation the "
            "request claims to come from."
        )
    if request.provider not in set(hosted):
        raise ServiceUnknown(f"This gateway does not host {request.provider[:16]}.")
    check_fresh(request.created_at, now=now, what="call request")
    if body_sha256 != request.body_sha256 or body_size != request.body_size:
        raise CallDigestMismatch()


def check_response_matches(
    response: CallResponse,
    request: CallRequest,
    *,
    request_sha256: str,
    body_sha256: str,
    body_size: int,
) -> None:
    """The consumer's checks on a verified response document."""
    if response.call_id != request.id or response.request_sha256 != request_sha256:
        raise CallResponseInvalid(
            "The provider's signed answer does not name the request this gateway sent."
        )
    if response.provider != request.provider or response.service != request.service:
        raise CallResponseInvalid("The signed answer is for another provider or service.")
    if response.body_sha256 != body_sha256 or response.body_size != body_size:
        raise CallResponseInvalid(
            "The answer's body does not match the digest the provider signed; it was changed "
            "in transit."
        )


# -- rate limits -------------------------------------------------------------------


@dataclass
class TokenBucket:
    """A token bucket: ``rate`` tokens a second, holding at most ``burst``.

    Time is a monotonic reading in seconds passed in by the caller, so tests
    drive it without sleeping.
    """

    rate: float
    burst: int
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float) -> float | None:
        """Take one token; None if taken, else the seconds until one is available."""
        if self.tokens < 0:
            self.tokens, self.updated = float(self.burst), now
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


@dataclass
class RateLimiter:
    """Buckets per (provider, service, consumer); settings follow the directory."""

    buckets: dict[tuple[str, str, str], TokenBucket] = field(default_factory=dict)

    def take(self, key: tuple[str, str, str], rate: float, burst: int, now: float) -> float | None:
        bucket = self.buckets.get(key)
        if bucket is None or bucket.rate != rate or bucket.burst != burst:
            bucket = self.buckets[key] = TokenBucket(rate, burst)
        return bucket.take(now)


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def valid_organisation(code: str) -> bool:
    return bool(_ORG.match(code))
