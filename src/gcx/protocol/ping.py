"""The signed ping between gateways: the smallest exchange that proves a path works.

The sender signs a ping as one of its organisations; the receiver checks that
the organisation is hosted by the gateway at the other end of the mutual-TLS
connection, and answers with a pong signed by the organisation pinged,
echoing the nonce and naming the directory version it holds.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from gcx.errors import InputError, PeerRefused
from gcx.protocol.documents import field_int, field_str, field_time, load_object

PING_TYPE = "application/vnd.gcx.ping+json"
PONG_TYPE = "application/vnd.gcx.pong+json"
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Ping:
    from_org: str
    to_org: str
    nonce: str
    sent_at: dt.datetime

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "type": "ping",
                "from": self.from_org,
                "to": self.to_org,
                "nonce": self.nonce,
                "sent_at": self.sent_at.isoformat(),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> Ping:
        try:
            body = load_object(payload, ("type", "from", "to", "nonce", "sent_at"))
            if body["type"] != "ping":
                raise ValueError("not a ping")
            return cls(
                field_str(body, "from"),
                field_str(body, "to"),
                field_str(body, "nonce"),
                field_time(body, "sent_at"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError("The ping is not in the gcx ping format.") from exc


@dataclass(frozen=True)
class Pong:
    org: str
    gateway: str
    nonce: str
    directory_version: int

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "type": "pong",
                "org": self.org,
                "gateway": self.gateway,
                "nonce": self.nonce,
                "directory_version": self.directory_version,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> Pong:
        try:
            body = load_object(payload, ("type", "org", "gateway", "nonce", "directory_version"))
            if body["type"] != "pong":
                raise ValueError("not a pong")
            return cls(
                field_str(body, "org"),
                field_str(body, "gateway"),
                field_str(body, "nonce"),
                field_int(body, "directory_version"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError("The pong is not in the gcx pong format.") from exc


def check_ping(
    ping: Ping, *, peer_organisations: tuple[str, ...], hosted: list[str], now: dt.datetime
) -> None:
    """Refuse a ping that the connecting gateway may not send, or that is not for us."""
    if ping.from_org not in peer_organisations:
        raise PeerRefused(
            f"The ping claims to come from {ping.from_org[:16]}, which the directory does not "
            "list on the gateway that sent it."
        )
    if ping.to_org not in hosted:
        raise InputError(f"This gateway does not host {ping.to_org[:16]}.")
    if abs(now - ping.sent_at) > MAX_CLOCK_SKEW:
        raise InputError("The ping's time is more than five minutes from ours; check clocks.")
