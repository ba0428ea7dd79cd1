"""The covering note of a transfer travels in its encrypted metadata, and is optional."""

from __future__ import annotations

import json

import pytest

from gcx.errors import TransferUnreadable
from gcx.protocol.transfer import MAX_NOTE_CHARS, FileMetadata, TransferMetadata

FILE = FileMetadata(index=0, name="claims.csv", size=3, sha256="0" * 64)


def test_metadata_without_a_note_is_what_older_gateways_wrote() -> None:
    """No note, no field: the bytes are those of metadata from before notes existed."""
    written = TransferMetadata(files=(FILE,)).to_bytes()
    assert "note" not in json.loads(written)
    older = json.dumps({"files": [FILE.model_dump(mode="json")]}).encode()
    assert TransferMetadata.from_bytes(older).note is None


def test_a_note_reads_back_as_written() -> None:
    written = TransferMetadata(files=(FILE,), note="Claims for March; call me.").to_bytes()
    assert TransferMetadata.from_bytes(written).note == "Claims for March; call me."


@pytest.mark.parametrize("note", ["", "x" * (MAX_NOTE_CHARS + 1)])
def test_an_empty_or_overlong_note_is_unreadable_metadata(note: str) -> None:
    payload = json.dumps({"files": [FILE.model_dump(mode="json")], "note": note}).encode()
    with pytest.raises(TransferUnreadable):
        TransferMetadata.from_bytes(payload)
