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
from collections.abc import Callable, Sequence

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
    return tree_head_of_hashes([_leaf(d) for d in leaves])


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


ReadLeaves = Callable[[int, int], Sequence[bytes]]  # (start, end) -> leaves[start:end]


class MerkleLog:
    """The tree over a log that only grows, remembering complete subtrees.

    Hashing the whole log for every head and proof costs a pass over every
    entry; a central asked by each gateway each minute cannot afford that as
    its log grows. This keeps the hash of every complete, aligned subtree of
    ``2**block_level`` leaves or more (about one 32-byte hash per
    ``2**(block_level-1)`` leaves), so a head or a proof needs O(log n) stored
    hashes plus a few short reads of leaves through ``read_leaves`` where the
    tree's edges cut a block. The results equal :func:`tree_head` and
    :func:`consistency_proof` over the same leaves. Not thread-safe: callers
    hold a lock around it.
    """

    def __init__(self, read_leaves: ReadLeaves, block_level: int = 6) -> None:
        self._read = read_leaves
        self._block = 1 << block_level
        self._block_level = block_level
        # _levels[j]: hashes of the complete subtrees of 2**(block_level + j) leaves, in order.
        self._levels: list[bytearray] = []
        self._pending: list[bytes] = []  # leaf hashes after the last complete block
        self.size = 0

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Append leaves (the data, not yet hashed) to the end of the log."""
        for data in leaves:
            self._pending.append(_leaf(data))
            self.size += 1
            if len(self._pending) == self._block:
                self._add(0, _perfect(self._pending))
                self._pending = []

    def _add(self, level: int, digest: bytes) -> None:
        while True:
            if level == len(self._levels):
                self._levels.append(bytearray())
            row = self._levels[level]
            row += digest
            if (len(row) // 32) % 2:
                return
            digest = _node(bytes(row[-64:-32]), bytes(row[-32:]))
            level += 1

    def head(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all of them by default)."""
        n = self.size if size is None else size
        if not 0 <= n <= self.size:
            raise ValueError("the size must be between 0 and the log's size")
        return hashlib.sha256(b"").digest() if n == 0 else self._subtree(0, n)

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[size]) of RFC 9162 section 2.1.4.1."""
        n = self.size if size is None else size
        if not 0 <= old_size <= n <= self.size:
            raise ValueError("old size must be between 0 and the tree size")
        if old_size in (0, n):
            return []
        return self._subproof(old_size, 0, n, True)

    def _subproof(self, m: int, start: int, n: int, complete: bool) -> list[bytes]:
        if m == n:
            return [] if complete else [self._subtree(start, n)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, start, k, complete), self._subtree(start + k, n - k)]
        return [*self._subproof(m - k, start + k, n - k, False), self._subtree(start, k)]

    def _subtree(self, start: int, size: int) -> bytes:
        """MTH(D[start:start+size]) for a piece the RFC's splitting produces."""
        if size & (size - 1) == 0 and size >= self._block:
            # Splits at powers of two leave every such piece aligned to its size.
            level = size.bit_length() - 1 - self._block_level
            index = start // size
            return bytes(self._levels[level][index * 32 : index * 32 + 32])
        if size <= self._block:
            return tree_head_of_hashes(self._leaf_hashes(start, start + size))
        k = _split(size)
        return _node(self._subtree(start, k), self._subtree(start + k, size - k))

    def _leaf_hashes(self, start: int, end: int) -> list[bytes]:
        pending_from = self.size - len(self._pending)
        if start >= pending_from:
            return self._pending[start - pending_from : end - pending_from]
        leaves = self._read(start, end)
        if len(leaves) != end - start:
            raise ValueError("the log returned fewer leaves than it holds")
        return [_leaf(d) for d in leaves]


def _perfect(hashes: Sequence[bytes]) -> bytes:
    """The root over a power-of-two count of leaf hashes."""
    level = list(hashes)
    while len(level) > 1:
        level = [_node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def tree_head_of_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over one or more leaves already hashed (see :func:`tree_head`)."""
    level = list(hashes)
    # Pairing left to right and carrying an odd last node up unchanged gives
    # exactly the RFC's split-at-largest-power-of-two tree.
    while len(level) > 1:
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]
