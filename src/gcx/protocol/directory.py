"""The directory: the signed, versioned, expiring document gateways live by.

A gateway decides who is who, and who may do what, from the directory it holds
and from nothing else. The rules for taking a new one (:func:`accept_directory`)
are pure: signature checking happens first, in ``gcx.crypto``, and this module
decides on versions and time.

Invariants a held directory keeps:

* its version never goes down (a lower one is a rollback and is refused);
* the same version always means the same bytes (anything else is refused);
* past ``expires_at`` it is useless: :func:`usable_directory` says so and the
  gateway stops exchanging.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gcx.errors import DirectoryExpired, DirectoryMalformed, DirectoryRollback, DirectoryUnavailable
from gcx.protocol.documents import Time, load_model
from gcx.protocol.services import AccessRight, ServiceEntry, ServiceGroup

PAYLOAD_TYPE = "application/vnd.gcx.directory+json"
FORMAT = "gcx.directory/1"
# Directories published before services existed leave these out; every
# other field is always written, and must be.
_OPTIONAL = ("services", "service_rights", "service_groups")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrganisationEntry(_Model):
    code: str
    name: str
    type: str
    gateway: str | None = Field(
        default=None, description="The gateway hosting this organisation, if it is connected."
    )
    signing_key: str | None = Field(default=None, description="Ed25519 public key, base64.")
    signing_certificate: str | None = Field(default=None, description="PEM, issued by the root.")
    encryption_key: str | None = Field(
        default=None, description="HPKE ML-KEM-768+X25519 public key, base64."
    )
    encryption_kem: Literal["MLKEM768-X25519"] | None = None


class GatewayEntry(_Model):
    name: str
    peer_address: str = Field(description="host:port of the mutual-TLS peer endpoint.")
    certificate_fingerprint: str
    certificate_serial: str
    certificate_not_after: Time
    organisations: tuple[str, ...]


class Revocation(_Model):
    gateway: str
    certificate_serial: str
    certificate_fingerprint: str
    reason: str
    revoked_at: Time


class Directory(_Model):
    format: Literal["gcx.directory/1"] = "gcx.directory/1"
    network: str
    version: int = Field(ge=1)
    issued_at: Time
    expires_at: Time
    organisations: tuple[OrganisationEntry, ...] = ()
    gateways: tuple[GatewayEntry, ...] = ()
    revocations: tuple[Revocation, ...] = ()
    # Service access (gcx.protocol.services): additive, so a directory without
    # them reads as "no services published".
    services: tuple[ServiceEntry, ...] = ()
    service_rights: tuple[AccessRight, ...] = ()
    service_groups: tuple[ServiceGroup, ...] = ()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> Directory:
        try:
            return load_model(cls, payload, optional=_OPTIONAL)
        except (ValidationError, ValueError) as exc:
            raise DirectoryMalformed(
                "The directory does not match the gcx.directory/1 format."
            ) from exc

    # Lookups a gateway makes on every connection and message. A directory is one
    # immutable object until the next is accepted, so each index is made once for it
    # (cached, never serialised, not a field); scans per request grew with the network
    # and the revocation list only ever grows. The first entry wins, as a scan found it.
    @functools.cached_property
    def _gateways_by_fingerprint(self) -> dict[str, GatewayEntry]:
        return {g.certificate_fingerprint: g for g in reversed(self.gateways)}

    @functools.cached_property
    def _gateways_by_name(self) -> dict[str, GatewayEntry]:
        return {g.name: g for g in reversed(self.gateways)}

    @functools.cached_property
    def _organisations_by_code(self) -> dict[str, OrganisationEntry]:
        return {o.code: o for o in reversed(self.organisations)}

    @functools.cached_property
    def _revoked(self) -> frozenset[str]:
        return frozenset(r.certificate_fingerprint for r in self.revocations)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        # A copy starts with the original's instance dictionary, indexes included: they
        # would describe the entries the copy replaced, so it makes its own.
        copy = super().model_copy(update=update, deep=deep)
        for name in _INDEXES:
            copy.__dict__.pop(name, None)
        return copy

    def gateway_by_fingerprint(self, fingerprint: str) -> GatewayEntry | None:
        return self._gateways_by_fingerprint.get(fingerprint)

    def gateway_named(self, name: str) -> GatewayEntry | None:
        return self._gateways_by_name.get(name)

    def organisation(self, code: str) -> OrganisationEntry | None:
        return self._organisations_by_code.get(code)

    def gateway_for_organisation(self, code: str) -> GatewayEntry | None:
        org = self.organisation(code)
        return self.gateway_named(org.gateway) if org and org.gateway else None

    def is_revoked(self, fingerprint: str) -> bool:
        return fingerprint in self._revoked


_INDEXES = ("_gateways_by_fingerprint", "_gateways_by_name", "_organisations_by_code", "_revoked")


def accept_directory(
    held: Directory | None,
    held_bytes: bytes | None,
    offered: Directory,
    offered_bytes: bytes,
    *,
    network: str,
    now: dt.datetime,
) -> bool:
    """Decide whether to replace the held directory with the offered one.

    Returns True if the offered one should be stored, False if it is the one
    already held. Raises if it must be refused.
    """
    if offered.network != network:
        raise DirectoryMalformed(
            f"The directory is for network {offered.network[:60]!r}, not {network!r}."
        )
    if now >= offered.expires_at:
        raise DirectoryExpired(
            f"The directory (version {offered.version}) expired at "
            f"{offered.expires_at.isoformat()}; a fresh one is needed."
        )
    if held is not None:
        if offered.version < held.version:
            raise DirectoryRollback(
                f"The directory offered is version {offered.version}, older than version "
                f"{held.version} already held; it was refused as a rollback."
            )
        if offered.version == held.version:
            if offered_bytes != held_bytes:
                raise DirectoryRollback(
                    f"Two different directories claim version {offered.version}; the new one "
                    "was refused."
                )
            return False
    return True


def usable_directory(held: Directory | None, *, now: dt.datetime) -> Directory:
    """The held directory if it may be used now; otherwise raise saying why not."""
    if held is None:
        raise DirectoryUnavailable()
    if now >= held.expires_at:
        raise DirectoryUnavailable(
            f"The directory held (version {held.version}) expired at "
            f"{held.expires_at.isoformat()}; this gateway refuses to exchange until it gets a "
            "fresh one from central."
        )
    return held


def canonical_json(value: object) -> bytes:
    """Compact, key-sorted JSON used for signed bodies other than the directory."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
