"""Where an upload is sealed as it arrives (gateway.transfers.uploads.batch_place): its own
batch, its place in a named batch of its account, or not at all."""

from __future__ import annotations

import pytest

from gcx.gateway.transfers.uploads import batch_place

BATCH = "0123456789abcdef" * 2


def test_a_lone_upload_is_a_batch_of_its_own() -> None:
    assert batch_place("clerk", "u1", {}) == ("upload u1", 0, 1)
    assert batch_place("clerk", "u1", {"gcx-files": "1"}) == ("upload u1", 0, 1)


def test_a_named_batch_is_its_accounts_own() -> None:
    place = {"gcx-files": "3", "gcx-batch": BATCH, "gcx-index": "2"}
    assert batch_place("clerk", "u1", place) == (f"batch clerk {BATCH}", 2, 3)
    assert batch_place("other", "u2", place) == (f"batch other {BATCH}", 2, 3)


@pytest.mark.parametrize(
    "metadata",
    [
        {"gcx-files": "2"},  # a file of several without a place: sealed when made
        {"gcx-files": "2", "gcx-batch": BATCH},
        {"gcx-files": "2", "gcx-batch": BATCH, "gcx-index": "2"},
        {"gcx-files": "2", "gcx-batch": BATCH, "gcx-index": "x"},
        {"gcx-files": "2", "gcx-batch": BATCH.upper(), "gcx-index": "0"},
        {"gcx-files": "two", "gcx-batch": BATCH, "gcx-index": "0"},
    ],
)
def test_an_upload_without_a_place_that_fits_is_sealed_when_the_transfer_is_made(
    metadata: dict[str, str],
) -> None:
    """Also for metadata an earlier version stored without checking it: never an error."""
    assert batch_place("clerk", "u1", metadata) is None
