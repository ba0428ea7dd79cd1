"""Chunks arriving at the receiving gateway: reading, checking and writing them, and which
are on disk (the peer endpoints of :mod:`gcx.gateway.transfers.peer_api` use these)."""

from __future__ import annotations

from aiohttp import web

from gcx import crypto
from gcx.errors import ChunkDigestMismatch
from gcx.httpapi import read_body
from gcx.protocol.transfer import TransferManifest
from gcx.store.direct_io import Pieces
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


async def chunk_pieces(request: web.Request, size: int) -> Pieces:
    """The chunk's bytes as the pieces they arrived in, not joined.

    Joining a 2 MiB body (``readexactly``) copied it into fresh memory on the event
    loop, about a sixth of the receiving loop's time; the pieces are hashed one by one
    and copied once, into the aligned buffer they are written from, on a worker thread.
    Any other declared length goes through the general capped reader.
    """
    if request.content_length != size:
        return [await read_body(request, size)]
    pieces: Pieces = []
    held = 0
    while held < size:
        # At most the declared length arrives: aiohttp's parser stops the body there.
        piece = await request.content.readany()
        if not piece:
            raise ChunkDigestMismatch(
                f"The chunk ended after {held} of its {size} bytes; send it again."
            )
        pieces.append(piece)
        held += len(piece)
    return pieces


def store_chunk(files: ChunkStore, manifest: TransferManifest, number: int, pieces: Pieces) -> bool:
    """Write chunk ``number`` if it is exactly what the signed manifest lists; False if not."""
    if sum(len(piece) for piece in pieces) != manifest.chunk_size(number):
        return False
    if crypto.pieces_digest(manifest.chunk_hash, pieces) != manifest.chunks[number]:
        return False
    files.write_chunk("incoming", manifest.id, number, pieces, manifest.chunk_slot)
    return True
