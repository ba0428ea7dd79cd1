"""Storing and loading envelopes on a gateway, in either direction.

Small ciphertext parts go in the database row; large ones go to the blob
store first, and the row that names them is committed after, so a committed
row never points at a missing blob (a crash in between leaves only an
orphan blob, which holds ciphertext and can be swept).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx.crypto import unverified_header
from gcx.errors import NotFound
from gcx.protocol.envelope import EnvelopeHeader
from gcx.store import iso
from gcx.store.blobs import BlobStore
from gcx.store.schema import envelope_parts, envelopes

INLINE_LIMIT = 256 * 1024
# Built once: building a statement costs SQLAlchemy several times running it.
_INSERT_ENVELOPE = envelopes.insert()
_INSERT_PART = envelope_parts.insert()


@dataclass(frozen=True)
class StoredEnvelope:
    header: EnvelopeHeader
    signed_header: bytes
    parts: tuple[bytes, ...]
    digest: str
    sender_gateway: str
    directory_version: int


def put_large_parts(
    blobs: BlobStore, envelope_id: str, direction: str, parts: Sequence[bytes]
) -> dict[int, str]:
    """Write parts too large for a row to the blob store; call before the transaction."""
    keys: dict[int, str] = {}
    for index, part in enumerate(parts):
        if len(part) > INLINE_LIMIT:
            key = f"envelopes/{direction}/{envelope_id[:2]}/{envelope_id}/{index}"
            blobs.put(key, part)
            keys[index] = key
    return keys


@dataclass(frozen=True)
class NewEnvelope:
    """Everything :func:`insert_envelopes` writes for one envelope."""

    header: EnvelopeHeader
    signed_header: bytes
    parts: Sequence[bytes]
    blob_keys: dict[int, str]
    digest: str
    sender_gateway: str
    directory_version: int


def insert_envelopes(
    conn: Connection, items: Sequence[NewEnvelope], *, direction: str, now: dt.datetime
) -> None:
    """Insert many envelopes and their parts: one ``executemany`` for each table."""
    if not items:
        return
    stored_at = iso(now)
    conn.execute(
        _INSERT_ENVELOPE,
        [
            {
                "id": i.header.id,
                "direction": direction,
                "kind": i.header.kind,
                "sender_org": i.header.sender.organisation,
                "sender_user": i.header.sender.user,
                "sender_gateway": i.sender_gateway,
                "recipients": list(i.header.recipients),
                "marking": i.header.marking,
                "created_at": iso(i.header.created_at),
                "expires_at": iso(i.header.expires_at),
                "stored_at": stored_at,
                "digest": i.digest,
                "size": len(i.signed_header) + sum(len(p) for p in i.parts),
                "signed_header": i.signed_header,
                "part_count": len(i.parts),
                "directory_version": i.directory_version,
            }
            for i in items
        ],
    )
    parts = [
        {
            "envelope_id": i.header.id,
            "direction": direction,
            "part_index": index,
            "size": len(part),
            "sha256": i.header.parts[index].sha256,
            "data": None if index in i.blob_keys else part,
            "blob_key": i.blob_keys.get(index),
        }
        for i in items
        for index, part in enumerate(i.parts)
    ]
    if parts:
        conn.execute(_INSERT_PART, parts)


def stored_digests(
    conn: Connection, envelope_ids: Collection[str], direction: str
) -> dict[str, str]:
    """:func:`stored_digest` for many envelopes in one query; those not held are left out."""
    if not envelope_ids:
        return {}
    rows = conn.execute(
        sa.select(envelopes.c.id, envelopes.c.digest).where(
            envelopes.c.id.in_(list(envelope_ids)), envelopes.c.direction == direction
        )
    )
    return {r.id: str(r.digest) for r in rows}


def load_envelopes(
    conn: Connection, blobs: BlobStore, envelope_ids: Sequence[str], direction: str
) -> dict[str, StoredEnvelope]:
    """:func:`load_envelope` for many envelopes in two queries; those not held are left out."""
    if not envelope_ids:
        return {}
    ids = list(envelope_ids)
    rows = conn.execute(
        sa.select(
            envelopes.c.id,
            envelopes.c.signed_header,
            envelopes.c.digest,
            envelopes.c.sender_gateway,
            envelopes.c.directory_version,
        ).where(envelopes.c.id.in_(ids), envelopes.c.direction == direction)
    ).all()
    parts: dict[str, list[bytes]] = {}
    for p in conn.execute(
        sa.select(envelope_parts.c.envelope_id, envelope_parts.c.data, envelope_parts.c.blob_key)
        .where(envelope_parts.c.envelope_id.in_(ids), envelope_parts.c.direction == direction)
        .order_by(envelope_parts.c.envelope_id, envelope_parts.c.part_index)
    ):
        data = bytes(p.data) if p.blob_key is None else blobs.get(p.blob_key)
        parts.setdefault(p.envelope_id, []).append(data)
    loaded: dict[str, StoredEnvelope] = {}
    for row in rows:
        signed_header = bytes(row.signed_header)
        loaded[row.id] = StoredEnvelope(
            unverified_header(signed_header),
            signed_header,
            tuple(parts.get(row.id, ())),
            row.digest,
            row.sender_gateway,
            row.directory_version,
        )
    return loaded


def insert_envelope(
    conn: Connection,
    *,
    header: EnvelopeHeader,
    signed_header: bytes,
    parts: Sequence[bytes],
    blob_keys: dict[int, str],
    direction: str,
    digest: str,
    sender_gateway: str,
    directory_version: int,
    now: dt.datetime,
) -> None:
    conn.execute(
        envelopes.insert(),
        {
            "id": header.id,
            "direction": direction,
            "kind": header.kind,
            "sender_org": header.sender.organisation,
            "sender_user": header.sender.user,
            "sender_gateway": sender_gateway,
            "recipients": list(header.recipients),
            "marking": header.marking,
            "created_at": iso(header.created_at),
            "expires_at": iso(header.expires_at),
            "stored_at": iso(now),
            "digest": digest,
            "size": len(signed_header) + sum(len(p) for p in parts),
            "signed_header": signed_header,
            "part_count": len(parts),
            "directory_version": directory_version,
        },
    )
    if parts:
        conn.execute(
            envelope_parts.insert(),
            [
                {
                    "envelope_id": header.id,
                    "direction": direction,
                    "part_index": index,
                    "size": len(part),
                    "sha256": header.parts[index].sha256,
                    "data": None if index in blob_keys else part,
                    "blob_key": blob_keys.get(index),
                }
                for index, part in enumerate(parts)
            ],
        )


def stored_digest(conn: Connection, envelope_id: str, direction: str) -> str | None:
    """The digest of the envelope held under this id, or None if none is held."""
    value = conn.execute(
        sa.select(envelopes.c.digest).where(
            envelopes.c.id == envelope_id, envelopes.c.direction == direction
        )
    ).scalar()
    return None if value is None else str(value)


def load_envelope(
    conn: Connection, blobs: BlobStore, envelope_id: str, direction: str
) -> StoredEnvelope:
    row = conn.execute(
        sa.select(envelopes).where(
            envelopes.c.id == envelope_id, envelopes.c.direction == direction
        )
    ).first()
    if row is None:
        raise NotFound(f"There is no message {envelope_id[:40]!r}.")
    part_rows = conn.execute(
        sa.select(envelope_parts)
        .where(
            envelope_parts.c.envelope_id == envelope_id,
            envelope_parts.c.direction == direction,
        )
        .order_by(envelope_parts.c.part_index)
    ).all()
    parts = tuple(bytes(p.data) if p.blob_key is None else blobs.get(p.blob_key) for p in part_rows)
    signed_header = bytes(row.signed_header)
    return StoredEnvelope(
        unverified_header(signed_header),
        signed_header,
        parts,
        row.digest,
        row.sender_gateway,
        row.directory_version,
    )
