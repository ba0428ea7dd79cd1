"""Signed audit checkpoints: a gateway's tree head, lodged with central, and central's own.

Payload type ``application/vnd.gcx.checkpoint+json``, signed (DSSE) with the
gateway's own key, the one its TLS certificate certifies. Central's head has
the payload type ``application/vnd.gcx.central-checkpoint+json`` (so neither
can be passed off as the other), is signed with the network's root key, and
names ``central``. Fields:

* ``format``: ``gcx.checkpoint/1``
* ``gateway``: the gateway's name, or ``central``
* ``tree_size``: how many audit entries the tree covers
* ``root_hash``: hex RFC 9162 tree head over the entries' hashes, in order
* ``issued_at``: when the gateway made it
* ``previous_size``: the size of the last head central accepted from it
* ``consistency_proof``: hex nodes proving the new tree extends that one
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from gcx.errors import InputError
from gcx.protocol.documents import (
    field_int,
    field_str,
    field_str_list,
    field_time,
    load_object,
)

PAYLOAD_TYPE = "application/vnd.gcx.checkpoint+json"
CENTRAL_PAYLOAD_TYPE = "application/vnd.gcx.central-checkpoint+json"
CENTRAL_LOG = "central"
FORMAT = "gcx.checkpoint/1"
_FIELDS = (
    "format",
    "gateway",
    "tree_size",
    "root_hash",
    "issued_at",
    "previous_size",
    "consistency_proof",
)


@dataclass(frozen=True)
class Checkpoint:
    gateway: str
    tree_size: int
    root_hash: str
    issued_at: dt.datetime
    previous_size: int
    consistency_proof: tuple[str, ...]

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "gateway": self.gateway,
                "tree_size": self.tree_size,
                "root_hash": self.root_hash,
                "issued_at": self.issued_at.isoformat(),
                "previous_size": self.previous_size,
                "consistency_proof": list(self.consistency_proof),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> Checkpoint:
        try:
            raw = load_object(payload, _FIELDS)
            if raw["format"] != FORMAT:
                raise ValueError("format")
            checkpoint = cls(
                field_str(raw, "gateway"),
                field_int(raw, "tree_size"),
                field_str(raw, "root_hash"),
                field_time(raw, "issued_at"),
                field_int(raw, "previous_size"),
                field_str_list(raw, "consistency_proof"),
            )
            bytes.fromhex(checkpoint.root_hash)
            for node in checkpoint.consistency_proof:
                bytes.fromhex(node)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError("The checkpoint is not in the gcx.checkpoint/1 format.") from exc
        if checkpoint.tree_size < 0 or checkpoint.previous_size < 0:
            raise InputError("The checkpoint's sizes are impossible.")
        return checkpoint
