"""Chunks arriving at the receiving gateway: reading, checking and writing them, and which
are on disk (the peer endpoints of :mod:`gcx.gateway.transfers.peer_api` use these)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gcx import crypto
from gcx.errors import ChunkDigestMismatch
from gcx.httpapi import read_body
from gcx.protocol.transfer import TransferManifest
from gcx.store.transfer_files import ChunkStore


def on_disk(files: ChunkStore, manifest: TransferManifest) -> set[int]:
    """The chunks whose slots on disk hold what the manifest lists (one read of the file)."""
    sizes = [manifest.chunk_size(n) for n in range(len(manifest.chunks))]
    return files.verified_chunks(
        "incoming",
        manifest.id,
        manifest.chunks,
        sizes,
        manifest.chunk_slot,
        crypto.chunk_hasher(manifest.chunk_hash),
    )


async def chunk_body(request: web.Request, size: int) -> bytes:
    """The chunk's bytes: read in one call when the declared length is the size expected.

    Reading a 1 MiB body 64 KiB at a time cost the receiver a trip round the loop per
    piece; any other declared length goes through the general capped reader.
    """
    if request.content_length != size:
        return await read_body(request, size)
    try:
        return await request.content.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise ChunkDigestMismatch(
            f"The chunk ended after {len(exc.partial)} of its {size} bytes; send it again."
        ) from exc


def store_chunk(files: ChunkStore, manifest: TransferManifest, number: int, data: bytes) -> bool:
    """Write chunk ``number`` if it is exactly what the signed manifest lists; False if not."""
    if len(data) != manifest.chunk_size(number):
        return False
    if crypto.chunk_digest(manifest.chunk_hash, data) != manifest.chunks[number]:
        return False
    files.write_chunk("incoming", manifest.id, number, data, manifest.chunk_slot)
    return True
