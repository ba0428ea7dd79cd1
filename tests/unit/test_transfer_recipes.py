"""The transfer recipes: what gateway code seals, opens and receipts a transfer with."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import json
import secrets

import pytest

from gcx import crypto
from gcx.errors import EnvelopeMalformed, ReceiptInvalid, SignatureInvalid, TransferUnreadable
from gcx.protocol.envelope import Sender
from gcx.protocol.transfer import PAYLOAD_TYPE, ReceiptFile, TransferManifest, TransferReceipt

NOW = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
TID = "ab" * 16
SEGMENT = 64 * 1024
FILES = [b"first file " * 10_000, b"", b"x" * SEGMENT]


def _sealed() -> tuple[crypto.SealedTransfer, dict[int, bytes], crypto.EncryptionKey, list[str]]:
    sender = crypto.SigningKey.generate()
    council, police = crypto.EncryptionKey.generate(), crypto.EncryptionKey.generate()
    chunks: dict[int, bytes] = {}
    sealer = crypto.TransferSealer(TID, SEGMENT)
    digests = []
    for data in FILES:
        sealed = sealer.add_file(io.BytesIO(data), len(data), chunks.__setitem__)
        digests.append(sealed.sha256)
    transfer = sealer.seal(
        sender=Sender(organisation="DWP", user="clerk"),
        recipients={"E09000030": council.public, "MPS": police.public},
        marking="OFFICIAL-SENSITIVE",
        created_at=NOW,
        expires_at=NOW + dt.timedelta(days=7),
        metadata=b'{"files": "as the caller writes them"}',
        signing_key=sender,
    )
    # The document is the manifest, signed by the sender, in the form gcx verifies.
    payload = crypto.verify_document(
        transfer.document, PAYLOAD_TYPE, {crypto.key_id(sender.public): sender.public}
    )
    assert TransferManifest.from_bytes(payload) == transfer.manifest
    return transfer, chunks, council, digests


def test_sealed_files_open_for_each_recipient_and_only_for_them() -> None:
    """Chunks are numbered across the transfer; each file opens whole for a recipient, and
    another organisation's key opens nothing."""
    transfer, chunks, council, digests = _sealed()
    manifest = transfer.manifest
    assert sorted(chunks) == list(range(len(manifest.chunks)))
    # New transfers list BLAKE3 digests of their chunks (gcx.transfer/2).
    assert manifest.format == "gcx.transfer/2" and manifest.chunk_hash == "blake3"
    listed = [crypto.chunk_digest("blake3", chunks[n]) for n in sorted(chunks)]
    assert listed == list(manifest.chunks)
    key = crypto.open_transfer(manifest, "E09000030", council)
    assert key.metadata() == b'{"files": "as the caller writes them"}'
    for index, data in enumerate(FILES):
        entry = manifest.files[index]
        cipher = key.file_cipher(index)
        opened = b"".join(
            cipher.open(s, chunks[entry.first_chunk + s], last=s == entry.chunks - 1)
            for s in range(entry.chunks)
        )
        assert opened == data and hashlib.sha256(opened).hexdigest() == digests[index]
    with pytest.raises(TransferUnreadable):
        crypto.open_transfer(manifest, "MPS", council)
    with pytest.raises(TransferUnreadable):
        crypto.open_transfer(manifest, "HMRC", council)


def test_a_sender_may_still_write_gcx_transfer_1_with_sha256_chunk_digests() -> None:
    """For peers not yet on gcx.transfer/2: the manifest says /1, lists SHA-256 digests and
    opens exactly as a /2 one does."""
    council = crypto.EncryptionKey.generate()
    chunks: dict[int, bytes] = {}
    sealer = crypto.TransferSealer(TID, SEGMENT, "gcx.transfer/1")
    sealer.add_file(io.BytesIO(FILES[0]), len(FILES[0]), chunks.__setitem__)
    manifest = sealer.seal(
        sender=Sender(organisation="DWP", user="clerk"),
        recipients={"E09000030": council.public},
        marking="OFFICIAL",
        created_at=NOW,
        expires_at=NOW + dt.timedelta(days=7),
        metadata=b"{}",
        signing_key=crypto.SigningKey.generate(),
    ).manifest
    assert TransferManifest.from_bytes(manifest.to_bytes()).format == "gcx.transfer/1"
    assert manifest.chunk_hash == "sha256"
    assert [hashlib.sha256(chunks[n]).hexdigest() for n in sorted(chunks)] == list(manifest.chunks)
    cipher = crypto.open_transfer(manifest, "E09000030", council).file_cipher(0)
    last = len(chunks) - 1
    assert b"".join(cipher.open(n, chunks[n], last=n == last) for n in sorted(chunks)) == FILES[0]


def test_a_manifest_in_an_unknown_format_is_refused() -> None:
    """A later format, or none, is malformed to this gateway: refused, never guessed at."""
    transfer, _, _, _ = _sealed()
    raw = json.loads(transfer.manifest.to_bytes())
    for format in ("gcx.transfer/3", "gcx.transfer/0", "", None):
        with pytest.raises(EnvelopeMalformed):
            TransferManifest.from_bytes(json.dumps({**raw, "format": format}).encode())
    with pytest.raises(ValueError):
        crypto.TransferSealer(TID, SEGMENT, "gcx.transfer/3")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        crypto.chunk_digest("md5", b"chunk")


@pytest.mark.parametrize("name", ["sha256", "blake3"])
def test_a_chunk_hashed_piece_by_piece_has_the_digest_of_the_whole(name: str) -> None:
    """The receiver hashes a chunk in the pieces it arrived in: the digest is the one of
    the joined bytes, however the chunk was cut, and an unknown kind is refused."""
    chunk = secrets.token_bytes(5000)
    whole = crypto.chunk_digest(name, chunk)
    for cuts in ([], [1], [0, 4096], [17, 18, 2500, 4999]):
        bounds = [0, *cuts, len(chunk)]
        pieces = [memoryview(chunk)[a:b] for a, b in itertools.pairwise(bounds)]
        assert crypto.pieces_digest(name, pieces) == whole
    assert crypto.pieces_digest(name, [chunk[:10]]) != whole
    with pytest.raises(ValueError):
        crypto.pieces_digest("md5", [chunk])


def test_a_file_of_the_wrong_length_is_refused() -> None:
    sealer = crypto.TransferSealer(TID, SEGMENT)
    with pytest.raises(ValueError):
        sealer.add_file(io.BytesIO(b"short"), 10, lambda _n, _d: None)


def test_transfer_receipts_verify_only_for_what_was_sent() -> None:
    """A recipient's signed receipt verifies against its key for exactly these files; another
    key, another transfer or another list of files is refused."""
    recipient = crypto.SigningKey.generate()
    files = (("case.pdf", 10, "0" * 64),)
    receipt = TransferReceipt(
        transfer_id=TID,
        manifest_digest="sha256:" + "1" * 64,
        recipient="MPS",
        gateway="gw-police",
        received_at=NOW,
        files=(ReceiptFile(index=0, name="case.pdf", size=10, sha256="0" * 64),),
    )
    document = crypto.sign_transfer_receipt(receipt, recipient)
    expected = {
        "transfer_id": TID,
        "manifest_digest": "sha256:" + "1" * 64,
        "organisation": "MPS",
        "files": files,
    }
    assert crypto.verify_transfer_receipt(document, recipient.public, **expected) == receipt
    with pytest.raises(SignatureInvalid):
        crypto.verify_transfer_receipt(document, crypto.SigningKey.generate().public, **expected)
    with pytest.raises(ReceiptInvalid):
        crypto.verify_transfer_receipt(
            document, recipient.public, **{**expected, "transfer_id": "cd" * 16}
        )
    with pytest.raises(ReceiptInvalid):
        crypto.verify_transfer_receipt(
            document, recipient.public, **{**expected, "files": (("case.pdf", 11, "0" * 64),)}
        )
