"""Sealing an upload as it arrives: the same chunks in any piece sizes, taken only when
exactly complete, and made again from the kept upload byte for byte."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

import pytest

from gcx import crypto
from gcx.errors import StorageFull, TransferUnreadable
from gcx.gateway.transfers.sealing_ahead import SealingAhead
from gcx.protocol.envelope import Sender

SEGMENT = 64 * 1024
TID = "cd" * 16
NOW = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)


def _open(key: bytes, sealed: crypto.SealedFile, chunks: dict[int, bytes]) -> bytes:
    cipher = crypto.StreamCipher(key, TID, 0, bytes.fromhex(sealed.nonce_prefix))
    last = len(chunks) - 1
    return b"".join(cipher.open(n, chunks[n], last=n == last) for n in range(len(chunks)))


@pytest.mark.parametrize("size", [1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 3 * SEGMENT + 7])
@pytest.mark.parametrize("piece", [1000, SEGMENT, 3 * SEGMENT])
def test_pieces_of_any_size_seal_to_a_file_that_opens(size: int, piece: int) -> None:
    """Fed in pieces that do not line up with segments, the file seals to chunks that decrypt
    in order to the same bytes, with the same digests a whole-file seal reports."""
    data = secrets.token_bytes(size)
    key = crypto.new_content_key()
    chunks: dict[int, bytes] = {}
    sealer = crypto.FileSealer(
        content_key=key,
        transfer_id=TID,
        index=0,
        size=size,
        write_chunk=chunks.__setitem__,
        segment_size=SEGMENT,
    )
    for start in range(0, size, piece):
        sealer.feed(data[start : start + piece])
    sealed = sealer.finish()
    assert len(chunks) == crypto.segment_count(size, SEGMENT)
    assert sealed.sha256 == hashlib.sha256(data).hexdigest()
    assert list(sealed.chunk_digests) == [hashlib.sha256(chunks[n]).hexdigest() for n in chunks]
    assert _open(key, sealed, chunks) == data


def test_more_or_fewer_bytes_than_declared_are_refused() -> None:
    """A file fed past its size, or finished short of it, is refused (ValueError)."""
    sealer = crypto.FileSealer(
        content_key=crypto.new_content_key(),
        transfer_id=TID,
        index=0,
        size=10,
        write_chunk=lambda n, c: None,
        segment_size=SEGMENT,
    )
    sealer.feed(b"12345")
    with pytest.raises(ValueError):
        sealer.finish()
    with pytest.raises(ValueError):
        sealer.feed(b"123456")


def _fed(ahead: SealingAhead, upload: str, data: bytes, push: Any = None) -> None:
    ahead.start(upload, len(data), SEGMENT, push)
    for start in range(0, len(data), 5000):
        future = ahead.feed(upload, data[start : start + 5000])
        assert future is not None
        future.result()


def _pushed(into: dict[int, bytes]) -> Any:
    """A push starter that records every chunk it is given, checking what it is told."""

    def start(transfer_id: str, slot: int, digest: str) -> Any:
        assert (slot, digest) == (SEGMENT + 16, "blake3")
        return into.__setitem__

    return start


def test_a_complete_upload_is_taken_once_with_the_chunks_it_pushed() -> None:
    """Fed whole, the upload is taken once: a transfer sealer holding the one file, whose
    chunks (handed to the push as they were sealed, and written nowhere) are the ones the
    manifest will list, and open to the bytes fed."""
    ahead, data = SealingAhead(), secrets.token_bytes(2 * SEGMENT + 3)
    chunks: dict[int, bytes] = {}
    _fed(ahead, "u1", data, _pushed(chunks))
    assert ahead.covers("u1", len(data))
    taken = ahead.take(["u1"])
    assert taken is not None
    assert taken.files[0].sha256 == hashlib.sha256(data).hexdigest()
    assert [len(chunks[n]) for n in sorted(chunks)] == [SEGMENT + 16, SEGMENT + 16, 3 + 16]
    # Sealed ahead in the format new transfers are written in: BLAKE3 chunk digests.
    assert taken.sealer.format == "gcx.transfer/2"
    blake3 = [crypto.chunk_digest("blake3", chunks[n]) for n in sorted(chunks)]
    assert blake3 == list(taken.files[0].chunk_digests)
    assert ahead.take(["u1"]) is None


def test_an_incomplete_or_dropped_upload_is_not_taken() -> None:
    """An upload not fed to its end is not taken, nor is a dropped one; a PATCH that does not
    continue where the feeding stopped is not covered."""
    ahead, data = SealingAhead(), secrets.token_bytes(SEGMENT + 1)
    ahead.start("u2", len(data), SEGMENT)
    ahead.feed("u2", data[:100])
    assert not ahead.covers("u2", 50)
    assert ahead.take(["u2"]) is None
    _fed(ahead, "u3", data)
    ahead.drop("u3")
    assert ahead.take(["u3"]) is None
    assert ahead.feed("u3", b"late") is None  # not being sealed any more: ignored
    ahead.start("u4", 0, SEGMENT)
    assert ahead.take(["u4"]) is None  # an empty upload is sealed when the transfer is made


def test_a_push_that_fails_does_not_stop_the_sealing() -> None:
    """Sending ahead is only a head start: a push that raises is logged, and the upload is
    still sealed whole and taken."""
    data = secrets.token_bytes(3 * SEGMENT)

    def start(transfer_id: str, slot: int, digest: str) -> Any:
        def send(number: int, chunk: bytes) -> None:
            raise StorageFull()

        return send

    ahead = SealingAhead()
    _fed(ahead, "u5", data, start)
    taken = ahead.take(["u5"])
    assert taken is not None and taken.files[0].sha256 == hashlib.sha256(data).hexdigest()


def test_a_kept_upload_makes_every_chunk_again_exactly_and_refuses_a_changed_one() -> None:
    """The sender keeps the upload, not its chunks: with the content key sealed to its own
    organisation, each chunk made again from its plaintext is the chunk the manifest lists;
    a segment changed since (one byte) is refused, never sealed under the same nonce."""
    ahead, data = SealingAhead(), secrets.token_bytes(2 * SEGMENT + 5)
    chunks: dict[int, bytes] = {}
    _fed(ahead, "u6", data, _pushed(chunks))
    taken = ahead.take(["u6"])
    assert taken is not None
    sender = crypto.EncryptionKey.generate()
    recipient = crypto.EncryptionKey.generate()
    sealed = taken.sealer.seal(
        sender=Sender(organisation="DWP", user="clerk"),
        recipients={"TOWER": recipient.public},
        marking="OFFICIAL",
        created_at=NOW,
        expires_at=NOW + dt.timedelta(days=1),
        metadata=b"{}",
        signing_key=crypto.SigningKey.generate(),
    )
    manifest = sealed.manifest
    kept = crypto.open_kept(manifest, taken.sealer.kept_key("DWP", sender.public), "DWP", sender)
    for number in range(len(manifest.chunks)):
        segment = data[number * SEGMENT : (number + 1) * SEGMENT]
        assert kept.reseal_chunk(number, segment) == chunks[number]
    changed = bytes([data[0] ^ 1]) + data[1:SEGMENT]
    with pytest.raises(TransferUnreadable):
        kept.reseal_chunk(0, changed)
    with pytest.raises(TransferUnreadable):  # sealed to dwp: no other key opens it
        crypto.open_kept(manifest, taken.sealer.kept_key("DWP", sender.public), "DWP", recipient)


def _batch_fed(ahead: SealingAhead, batch: str, files: list[bytes], push: Any = None) -> None:
    for index, data in enumerate(files):
        upload = f"{batch}-{index}"
        ahead.start(upload, len(data), SEGMENT, push, batch=batch, index=index, files=len(files))
        for start in range(0, len(data), 7000):
            future = ahead.feed(upload, data[start : start + 7000])
            assert future is not None
            future.result()


def test_a_batch_is_sealed_file_after_file_by_one_sealer_and_taken_whole() -> None:
    """The files of a batch, fed one after another, are one transfer's files in that order:
    chunks numbered across the batch, pushed as sealed, each file's digest its own; taken
    only with exactly its uploads in its order."""
    files = [secrets.token_bytes(SEGMENT + 5), secrets.token_bytes(3), secrets.token_bytes(SEGMENT)]
    chunks: dict[int, bytes] = {}
    ahead = SealingAhead()
    _batch_fed(ahead, "b1", files, _pushed(chunks))
    assert ahead.take(["b1-1", "b1-0", "b1-2"]) is None  # another order: not this batch
    _batch_fed(ahead, "b2", files, _pushed(chunks := {}))
    taken = ahead.take(["b2-0", "b2-1", "b2-2"])
    assert taken is not None
    assert [f.sha256 for f in taken.files] == [hashlib.sha256(d).hexdigest() for d in files]
    assert sorted(chunks) == [0, 1, 2, 3]  # two chunks, then one, then one
    digests = [d for f in taken.files for d in f.chunk_digests]
    assert digests == [crypto.chunk_digest("blake3", chunks[n]) for n in range(4)]
    assert ahead.take(["b2-0", "b2-1", "b2-2"]) is None


def test_a_batch_file_out_of_turn_or_unfinished_drops_the_batch() -> None:
    """A file that does not follow the one before it, complete, in its batch (a skipped
    place, the one before cut short, another batch size) leaves nothing to take: the
    batch is sealed when the transfer is made."""
    data = secrets.token_bytes(SEGMENT)
    ahead = SealingAhead()
    ahead.start("s-0", len(data), SEGMENT, batch="skip", index=0, files=3)
    ahead.feed("s-0", data)
    ahead.start("s-2", len(data), SEGMENT, batch="skip", index=2, files=3)
    assert not ahead.covers("s-2", 0)
    ahead.start("c-0", len(data), SEGMENT, batch="cut", index=0, files=2)
    future = ahead.feed("c-0", data[:100])
    assert future is not None
    future.result()
    ahead.start("c-1", len(data), SEGMENT, batch="cut", index=1, files=2)
    assert not ahead.covers("c-1", 0)
    assert ahead.take(["c-0", "c-1"]) is None
    ahead.start("n-0", len(data), SEGMENT, batch="size", index=0, files=2)
    ahead.feed("n-0", data)
    ahead.start("n-1", len(data), SEGMENT, batch="size", index=1, files=3)
    assert not ahead.covers("n-1", 0)
    _batch_fed(ahead, "whole", [data, data])
    ahead.drop("whole-1")  # a later PATCH that did not continue where the feeding stopped
    assert ahead.take(["whole-0", "whole-1"]) is None
