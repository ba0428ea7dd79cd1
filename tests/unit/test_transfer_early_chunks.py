"""The receiver's table of chunks that came before their manifest (transfers.early_chunks)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from gcx import crypto
from gcx.errors import EarlyChunksRefused, EarlyChunksUnsettled, EnvelopeMalformed
from gcx.gateway.transfers.early_chunks import EarlyChunks
from gcx.protocol.envelope import Sender
from gcx.protocol.transfer import TAG_BYTES, TransferFormat, TransferManifest

SEGMENT = 64 * 1024
SLOT = SEGMENT + TAG_BYTES
NOW = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)


def _manifest(
    size: int, format: TransferFormat = "gcx.transfer/2"
) -> tuple[TransferManifest, dict[int, bytes]]:
    """A signed manifest for ``size`` random bytes and its chunks by number."""
    chunks: dict[int, bytes] = {}
    sealer = crypto.TransferSealer("ab" * 16, SEGMENT, format)
    file = sealer.begin_file(size, lambda n, data: chunks.__setitem__(n, data))
    file.feed(bytes(range(256)) * (size // 256) + bytes(size % 256))
    sealer.end_file(file)
    sealed = sealer.seal(
        sender=Sender(organisation="E09000030", user="benefits.officer"),
        recipients={"DWP": crypto.EncryptionKey.generate().public},
        marking="OFFICIAL",
        created_at=NOW,
        expires_at=NOW + dt.timedelta(days=1),
        metadata=b"{}",
        signing_key=crypto.SigningKey.generate(),
    )
    return sealed.manifest, chunks


def _put(
    early: EarlyChunks,
    transfer_id: str,
    number: int,
    data: bytes,
    peer: str = "a",
    chunk_hash: str = "blake3",
) -> None:
    early.reserve(transfer_id, peer, SLOT, chunk_hash, len(data), lambda: False, lambda: False)
    early.written(transfer_id, number, [data], ok=True)


def test_chunks_count_only_where_the_manifest_vouches_for_them() -> None:
    manifest, chunks = _manifest(3 * SEGMENT + 10)
    early = EarlyChunks(per_peer_bytes=10 * SLOT)
    _put(early, manifest.id, 0, chunks[0])
    _put(early, manifest.id, 1, b"x" * len(chunks[1]))  # changed on the way: not counted
    _put(early, manifest.id, 3, chunks[3])
    assert early.take(manifest.id, "a", manifest) == {0, 3}


def test_chunks_from_another_gateway_or_slot_size_count_for_nothing() -> None:
    manifest, chunks = _manifest(2 * SEGMENT)
    early = EarlyChunks(per_peer_bytes=10 * SLOT)
    _put(early, manifest.id, 0, chunks[0], peer="b")
    assert early.take(manifest.id, "a", manifest) == set()

    other = EarlyChunks(per_peer_bytes=10 * SLOT)
    other.reserve(
        manifest.id, "a", SLOT * 2, "blake3", len(chunks[0]), lambda: False, lambda: False
    )
    other.written(manifest.id, 0, [chunks[0]], ok=True)
    assert other.take(manifest.id, "a", manifest) == set()


def test_chunks_count_only_with_the_digest_their_manifest_lists() -> None:
    """Chunks sent ahead as SHA-256 (a gateway writing gcx.transfer/1) count for a /1
    manifest; for a /2 one they count for nothing and are sent again."""
    old, old_chunks = _manifest(2 * SEGMENT, "gcx.transfer/1")
    early = EarlyChunks(per_peer_bytes=10 * SLOT)
    _put(early, old.id, 0, old_chunks[0], chunk_hash="sha256")
    _put(early, old.id, 1, old_chunks[1], chunk_hash="sha256")
    assert early.take(old.id, "a", old) == {0, 1}

    new, new_chunks = _manifest(2 * SEGMENT)
    early = EarlyChunks(per_peer_bytes=10 * SLOT)
    _put(early, new.id, 0, new_chunks[0], chunk_hash="sha256")
    assert early.take(new.id, "a", new) == set()


def test_one_transfer_s_early_chunks_keep_one_digest() -> None:
    manifest, chunks = _manifest(2 * SEGMENT)
    early = EarlyChunks(per_peer_bytes=10 * SLOT)
    _put(early, manifest.id, 0, chunks[0])
    with pytest.raises(EarlyChunksRefused):
        _put(early, manifest.id, 1, chunks[1], chunk_hash="sha256")


def test_a_digest_no_manifest_lists_is_malformed() -> None:
    with pytest.raises(EnvelopeMalformed):
        EarlyChunks.check_slot(SLOT, 0, 100, "md5")


def test_nothing_known_means_the_file_is_checked_instead() -> None:
    manifest, _ = _manifest(SEGMENT)
    assert EarlyChunks(per_peer_bytes=SLOT).take(manifest.id, "a", manifest) is None


def test_an_offered_transfer_takes_no_more_early_chunks() -> None:
    manifest, chunks = _manifest(2 * SEGMENT)
    early = EarlyChunks(per_peer_bytes=10 * SLOT)
    _put(early, manifest.id, 0, chunks[0])
    early.take(manifest.id, "a", manifest)
    with pytest.raises(EarlyChunksRefused):
        _put(early, manifest.id, 1, chunks[1])
    # After a restart the table is empty, and the database says it was offered.
    fresh = EarlyChunks(per_peer_bytes=10 * SLOT)
    with pytest.raises(EarlyChunksRefused):
        fresh.reserve(manifest.id, "a", SLOT, "blake3", 100, lambda: True, lambda: False)


def test_a_second_gateway_cannot_add_to_a_transfer_another_began() -> None:
    early = EarlyChunks(per_peer_bytes=10 * SLOT)
    _put(early, "cd" * 16, 0, b"1" * 100, peer="a")
    with pytest.raises(EarlyChunksRefused):
        _put(early, "cd" * 16, 1, b"2" * 100, peer="b")


def test_each_peer_is_held_to_its_budget_and_a_failed_write_gives_room_back() -> None:
    early = EarlyChunks(per_peer_bytes=250)
    _put(early, "01" * 16, 0, b"a" * 100)
    early.reserve("01" * 16, "a", SLOT, "blake3", 100, lambda: False, lambda: False)
    early.written("01" * 16, 1, [b"b" * 100], ok=False)  # the disk refused it
    _put(early, "02" * 16, 0, b"c" * 100)
    with pytest.raises(EarlyChunksRefused):
        _put(early, "03" * 16, 0, b"d" * 100)
    _put(early, "03" * 16, 0, b"d" * 100, peer="b")  # another gateway's own budget


def test_the_number_of_transfers_held_ahead_is_bounded() -> None:
    early = EarlyChunks(per_peer_bytes=10**9, limit=2)
    _put(early, "01" * 16, 0, b"a")
    _put(early, "02" * 16, 0, b"a")
    with pytest.raises(EarlyChunksRefused):
        _put(early, "03" * 16, 0, b"a")


def test_an_offer_waits_for_a_chunk_still_being_written() -> None:
    manifest, chunks = _manifest(2 * SEGMENT)
    early = EarlyChunks(per_peer_bytes=10 * SLOT)
    early.reserve(manifest.id, "a", SLOT, "blake3", len(chunks[1]), lambda: False, lambda: False)

    def finish_later() -> None:
        time.sleep(0.2)
        early.written(manifest.id, 1, [chunks[1]], ok=True)

    writer = threading.Thread(target=finish_later)
    writer.start()
    try:
        assert early.take(manifest.id, "a", manifest) == {1}
    finally:
        writer.join()


def test_an_offer_during_a_write_that_does_not_end_is_made_again_later() -> None:
    """Counting while a write is stalled would let it land after the count, perhaps
    over the chunk sent again the usual way: the offer is refused, to be made again."""
    manifest, chunks = _manifest(2 * SEGMENT)
    early = EarlyChunks(per_peer_bytes=10 * SLOT, settle=0.05)
    _put(early, manifest.id, 0, chunks[0])
    early.reserve(manifest.id, "a", SLOT, "blake3", len(chunks[1]), lambda: False, lambda: False)
    with pytest.raises(EarlyChunksUnsettled) as refused:
        early.take(manifest.id, "a", manifest)
    assert refused.value.status == 503
    with pytest.raises(EarlyChunksRefused):  # offered: nothing more comes early
        _put(early, manifest.id, 1, chunks[1])
    with pytest.raises(EarlyChunksUnsettled):  # the same write is waited for again
        early.take(manifest.id, "a", manifest)
    early.written(manifest.id, 1, [chunks[1]], ok=True)
    assert early.take(manifest.id, "a", manifest) == {0, 1}


@pytest.mark.parametrize(
    ("slot", "number", "size"),
    [(1000, 0, 100), (SLOT, -1, 100), (SLOT, 1 << 22, 100), (SLOT, 0, SLOT + 1), (SLOT, 0, 3)],
    ids=["slot too small", "negative", "past any transfer", "larger than the slot", "no tag"],
)
def test_what_no_manifest_could_have_is_malformed(slot: int, number: int, size: int) -> None:
    with pytest.raises(EnvelopeMalformed):
        EarlyChunks.check_slot(slot, number, size, "blake3")


def test_chunks_written_before_a_restart_make_the_offer_re_check_the_file() -> None:
    """After a restart the table knows only what came since; the file holds more."""
    manifest, chunks = _manifest(2 * SEGMENT)
    early = EarlyChunks(per_peer_bytes=10 * SLOT)
    early.reserve(manifest.id, "a", SLOT, "blake3", len(chunks[1]), lambda: False, lambda: True)
    early.written(manifest.id, 1, [chunks[1]], ok=True)
    assert early.take(manifest.id, "a", manifest) is None
