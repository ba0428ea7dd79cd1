"""The chunks a sending gateway sends: read from its chunk file, or made again from the upload.

A transfer sealed when it was made keeps its ciphertext chunks
(``out/<id>/chunks``); a transfer sealed as its uploads arrived keeps the
uploads instead, with the content key sealed to the sending organisation
(:meth:`gcx.store.transfer_files.TransferFiles.keep_uploads`), and each chunk
is sealed again from its plaintext segment when it is sent. AES-GCM gives the
same bytes for the same key, nonce and plaintext, and every chunk made is
checked against the signed manifest's digest before it goes, so a file
changed on disk is never sent as if it were the one signed for.
"""

from __future__ import annotations

from collections.abc import Callable

from gcx import crypto
from gcx.errors import NotFound, TransferUnreadable
from gcx.gateway.runtime import Gateway
from gcx.gateway.transfers.policy import transfer_files
from gcx.protocol.transfer import TAG_BYTES, TransferManifest

ChunkReader = Callable[[int], bytes]


def chunk_reader(gateway: Gateway, transfer_id: str, manifest: TransferManifest) -> ChunkReader:
    """What gives chunk ``n`` of an outgoing transfer (blocking: call it off the event loop)."""
    files = transfer_files(gateway)
    sealed_key = files.kept_key(transfer_id)
    if sealed_key is None:
        return lambda number: files.read_chunk(
            "out", transfer_id, number, manifest.chunk_size(number), manifest.chunk_slot
        )
    organisation = manifest.sender.organisation
    keys = gateway.keys.organisations.get(organisation)
    try:
        if keys is None:
            raise TransferUnreadable()
        key = crypto.open_kept(manifest, sealed_key, organisation, keys.encryption)
    except TransferUnreadable:
        raise NotFound(
            f"Transfer {transfer_id} is kept as its file, and {organisation[:16]}'s key here "
            "does not open its content key."
        ) from None

    def read(number: int) -> bytes:
        entry, segment, _ = manifest.locate(number)
        size = manifest.chunk_size(number) - TAG_BYTES
        plaintext = files.read_kept(transfer_id, entry.index, segment * manifest.segment_size, size)
        try:
            return key.reseal_chunk(number, plaintext)
        except TransferUnreadable:
            raise NotFound(
                f"Chunk {number} of transfer {transfer_id} cannot be made again: the file "
                "kept for it is not the one the manifest was signed for."
            ) from None

    return read
