"""RFC 9162 tree heads and consistency proofs, checked against a direct recursive definition."""

from __future__ import annotations

import hashlib

import pytest

from gcx.crypto import MerkleLog, consistency_proof, tree_head, verify_consistency
from gcx.errors import ConsistencyProofInvalid


def reference_head(leaves: list[bytes]) -> bytes:
    """MTH as RFC 9162 section 2.1.1 writes it, recursively."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_head(leaves[:k]) + reference_head(leaves[k:])
    ).digest()


def _leaves(count: int) -> list[bytes]:
    return [hashlib.sha256(str(i).encode()).digest() for i in range(count)]


LEAVES = _leaves(40)


@pytest.mark.parametrize("size", range(41))
def test_tree_head_matches_the_rfc_definition(size: int) -> None:
    """The iterative tree head equals the RFC's recursive one for every size up to 40."""
    assert tree_head(LEAVES[:size]) == reference_head(LEAVES[:size])


def test_every_consistency_proof_verifies() -> None:
    """For every pair of sizes m <= n up to 40, PROOF(m, n) verifies against both heads."""
    for n in range(41):
        for m in range(n + 1):
            proof = consistency_proof(m, LEAVES[:n])
            verify_consistency(m, tree_head(LEAVES[:m]), n, tree_head(LEAVES[:n]), proof)


@pytest.mark.parametrize(("m", "n"), [(1, 2), (3, 7), (4, 8), (5, 33), (16, 40), (39, 40)])
def test_a_rewritten_old_entry_breaks_the_proof(m: int, n: int) -> None:
    """Changing any entry the old head covered makes the new tree unprovable from it."""
    old_head = tree_head(LEAVES[:m])
    for changed in range(m):
        rewritten = list(LEAVES[:n])
        rewritten[changed] = hashlib.sha256(b"edited").digest()
        with pytest.raises(ConsistencyProofInvalid):
            verify_consistency(
                m, old_head, n, tree_head(rewritten), consistency_proof(m, rewritten)
            )


def test_a_shrunken_tree_or_altered_proof_is_refused() -> None:
    """A smaller new tree, a same-size tree with another head, or a changed proof node fail."""
    head_10 = tree_head(LEAVES[:10])
    with pytest.raises(ConsistencyProofInvalid):
        verify_consistency(10, head_10, 9, tree_head(LEAVES[:9]), [])
    with pytest.raises(ConsistencyProofInvalid):
        verify_consistency(10, head_10, 10, tree_head(LEAVES[1:11]), [])
    proof = consistency_proof(10, LEAVES[:20])
    proof[0] = bytes(32)
    with pytest.raises(ConsistencyProofInvalid):
        verify_consistency(10, head_10, 20, tree_head(LEAVES[:20]), proof)


def test_every_tree_extends_the_empty_one() -> None:
    """A first checkpoint (nothing lodged before) needs no proof, even for an empty log."""
    verify_consistency(0, b"", 0, tree_head([]), [])
    verify_consistency(0, b"", 5, tree_head(LEAVES[:5]), [])


def _log(leaves: list[bytes], block_level: int, reads: list[tuple[int, int]]) -> MerkleLog:
    def read(start: int, end: int) -> list[bytes]:
        reads.append((start, end))
        return leaves[start:end]

    return MerkleLog(read, block_level=block_level)


@pytest.mark.parametrize("block_level", [0, 1, 2, 3])
def test_the_remembering_log_gives_the_same_heads_and_proofs(block_level: int) -> None:
    """Grown in uneven steps, it answers every head and proof as hashing everything would."""
    leaves = _leaves(70)
    reads: list[tuple[int, int]] = []
    log = _log(leaves, block_level, reads)
    grown = 0
    for step in (1, 2, 3, 7, 16, 1, 40):
        log.extend(leaves[grown : grown + step])
        grown = min(grown + step, len(leaves))
        assert log.size == grown
        assert log.head() == tree_head(leaves[:grown])
        for n in range(grown + 1):
            assert log.head(n) == tree_head(leaves[:n]), (grown, n)
            for m in range(n + 1):
                assert log.consistency_proof(m, n) == consistency_proof(m, leaves[:n]), (m, n)


def test_the_remembering_log_reads_only_short_runs_of_leaves() -> None:
    """A head and a proof on a big log read a few blocks' worth of leaves, not the log."""
    leaves = _leaves(5000)
    reads: list[tuple[int, int]] = []
    log = _log(leaves, 4, reads)
    log.extend(leaves)
    assert log.head() == tree_head(leaves)
    proof = log.consistency_proof(3001)
    verify_consistency(3001, tree_head(leaves[:3001]), 5000, log.head(), proof)
    assert sum(end - start for start, end in reads) < 5 * 16, reads


def test_the_remembering_log_refuses_sizes_it_does_not_hold() -> None:
    log = _log(_leaves(3), 1, [])
    log.extend(_leaves(3))
    with pytest.raises(ValueError):
        log.head(4)
    with pytest.raises(ValueError):
        log.consistency_proof(2, 4)
    assert log.head(0) == tree_head([])
