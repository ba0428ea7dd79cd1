"""Merkle tree heads and consistency proofs as RFC 9162 (Certificate Transparency 2.0) defines them.

Leaves are audit entries' hashes. A gateway signs the head of the tree over
its whole log and lodges it with central together with a proof that the new
tree extends the one it lodged before; central checks the proof without ever
seeing an entry. A gateway that rewrites any lodged entry cannot produce such
a proof.

Hashing (RFC 9162, 2.1.1): the empty tree is SHA-256 of nothing; a leaf is
SHA-256(0x00 || data); an interior node is SHA-256(0x01 || left || right),
splitting n leaves at the largest power of two below n.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from gcx.errors import ConsistencyProofInvalid


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n > 1)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def tree_head(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of ``leaves`` (iterative, so large logs do not recurse deeply)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = [_leaf(d) for d in leaves]
    # Pairing left to right and carrying an odd last node up unchanged gives
    # exactly the RFC's split-at-largest-power-of-two tree.
    while len(level) > 1:
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [tree_head(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), tree_head(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), tree_head(leaves[:k])]


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1."""
    if not 0 <= old_size <= len(leaves):
        raise ValueError("old size must be between 0 and the tree size")
    if old_size in (0, len(leaves)):
        return []
    return _subproof(old_size, leaves, True)


def verify_consistency(
    old_size: int, old_root: bytes, new_size: int, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ConsistencyProofInvalid` unless ``proof`` shows the new tree extends the old.

    This follows the verification steps of RFC 9162 section 2.1.4.2.
    """
    if old_size > new_size:
        raise ConsistencyProofInvalid("The new tree is smaller than the one lodged before.")
    if old_size == 0:  # every tree extends the empty one
        if proof:
            raise ConsistencyProofInvalid()
        return
    if old_size == new_size:
        if proof or old_root != new_root:
            raise ConsistencyProofInvalid("The tree has the same size but a different head.")
        return
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        raise ConsistencyProofInvalid()
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ConsistencyProofInvalid()
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ConsistencyProofInvalid()
