"""An append-only Merkle tree with RFC 6962 / RFC 9162 hashing, proofs and their verification.

Pure: bytes in, bytes out. ``leaf_hash(d) = SHA-256(0x00 || d)``, ``node_hash(l, r) =
SHA-256(0x01 || l || r)``; the root of ``n`` leaves is RFC 9162's MTH, which splits at the
largest power of two below ``n``. Proofs and their checks follow RFC 9162 §2.1.3 (inclusion) and
§2.1.4 (consistency); a proof is a list of 32-byte hashes, the one nearest the leaf first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}): the root of the empty tree
_LEAF = b"\x00"
_NODE = b"\x01"


class ProofError(ValueError):
    """A proof that does not show what it claims; the message says which check failed."""


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf's data: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children into their parent: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH of the given leaf hashes, by the RFC's recursive definition (a reference)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return bytes(leaf_hashes[0])
    k = _split(n)
    return node_hash(root_hash(leaf_hashes[:k]), root_hash(leaf_hashes[k:]))


class CompactRange:
    """The roots of the complete subtrees covering leaves ``[0, size)``: a streaming root.

    Appending is O(1) amortized and ``root()`` is O(log n), in O(log n) memory: enough to check
    a signed root while streaming a log, without keeping its leaves.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(f"a range of {size} leaves has {size.bit_count()} subtree roots, "
                             f"got {len(hashes)}")
        self.size = size
        self._hashes: list[bytes] = list(hashes)  # subtree roots, left to right, largest first

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash."""
        merged, size = leaf, self.size
        while size & 1:
            merged = node_hash(self._hashes.pop(), merged)
            size >>= 1
        self._hashes.append(merged)
        self.size += 1

    def root(self) -> bytes:
        """Return MTH of the leaves appended so far."""
        if not self._hashes:
            return EMPTY_ROOT
        merged = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            merged = node_hash(left, merged)
        return merged


class MerkleTree:
    """An append-only sequence of leaf hashes with every complete subtree's hash kept.

    Level ``h`` holds, 32 bytes each in one bytearray, the hashes of the aligned subtrees of
    ``2**h`` leaves completed so far (level 0: the leaf hashes). Appends are O(1) amortized;
    any subtree that RFC 9162's proofs ask for is one lookup, or O(log n) hashes on the right
    edge, so roots and proofs at any earlier size are O(log n).
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """How many leaves the tree holds."""
        return len(self._levels[0]) // HASH_SIZE

    def __len__(self) -> int:
        return self.size

    def leaf(self, index: int) -> bytes:
        """Return the hash of leaf ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is outside a tree of {self.size} leaves")
        return bytes(self._levels[0][index * HASH_SIZE:(index + 1) * HASH_SIZE])

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (32 bytes) and complete the subtrees it closes."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, got {len(leaf)}")
        levels = self._levels
        levels[0] += leaf
        level = 0
        while not (len(levels[level]) // HASH_SIZE) & 1:  # an even count closes a pair
            if level + 1 == len(levels):
                levels.append(bytearray())
            levels[level + 1] += hashlib.sha256(_NODE + levels[level][-2 * HASH_SIZE:]).digest()
            level += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Add leaf hashes in order, then complete the subtrees they close."""
        below = self._levels[0]
        for leaf in leaf_hashes:
            if len(leaf) != HASH_SIZE:
                raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, got {len(leaf)}")
            below += leaf
        level = 0
        while len(self._levels[level]) >= 2 * HASH_SIZE:
            below = self._levels[level]
            if level + 1 == len(self._levels):
                self._levels.append(bytearray())
            above = self._levels[level + 1]
            view, prefix = memoryview(below), hashlib.sha256(_NODE)
            for pair in range(len(above) // HASH_SIZE, len(below) // (2 * HASH_SIZE)):
                digest = prefix.copy()
                digest.update(view[pair * 2 * HASH_SIZE:(pair + 1) * 2 * HASH_SIZE])
                above += digest.digest()
            view.release()
            level += 1

    def compact_range(self) -> CompactRange:
        """The roots of the complete subtrees covering all leaves, to extend without copying."""
        hashes, start = [], 0
        for level in reversed(range(self.size.bit_length())):
            if self.size >> level & 1:
                hashes.append(self._subtree(start, start + (1 << level)))
                start += 1 << level
        return CompactRange(self.size, hashes)

    def root(self, size: int | None = None) -> bytes:
        """Return MTH of the first ``size`` leaves (default: all)."""
        size = self.size if size is None else self._check_size(size)
        return self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return RFC 9162 PATH(index, D[0:size]): the audit path of leaf ``index``."""
        size = self.size if size is None else self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is outside a tree of {size} leaves")
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                path.append(self._subtree(start + k, end))
                end = start + k
            else:
                path.append(self._subtree(start, start + k))
                start += k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Return RFC 9162 PROOF(old_size, D[0:new_size]); empty when old is 0 or equal."""
        new_size = self.size if new_size is None else self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
        if old_size in (0, new_size):
            return []
        path: list[bytes] = []
        start, end, m, whole = 0, new_size, old_size, True
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                path.append(self._subtree(start + k, end))
                end = start + k
            else:
                path.append(self._subtree(start, start + k))
                start, m, whole = start + k, m - k, False
        if not whole:
            path.append(self._subtree(start, end))
        path.reverse()
        return path

    def _check_size(self, size: int) -> int:
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size}")
        return size

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range of RFC 9162's decomposition."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:  # a complete aligned subtree: stored
            level = n.bit_length() - 1
            offset = (start >> level) * HASH_SIZE
            return bytes(self._levels[level][offset:offset + HASH_SIZE])
        k = _split(n)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))


def _lsb(n: int) -> int:
    return n & 1


def root_from_inclusion_proof(leaf: bytes, index: int, size: int,
                              proof: Sequence[bytes]) -> bytes:
    """Return the root an inclusion proof leads to (RFC 9162 §2.1.3.2); ProofError if malformed."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE:
            raise ProofError(f"a proof hash is {HASH_SIZE} bytes, got {len(p)}")
        if sn == 0:
            raise ProofError(f"proof is too long for leaf {index} of {size}")
        if _lsb(fn) or fn == sn:
            r = node_hash(p, r)
            while not _lsb(fn) and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"proof is too short for leaf {index} of {size}")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Check that ``leaf`` is leaf ``index`` of the tree of ``size`` with ``root``; else raise."""
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise ProofError(f"inclusion proof of leaf {index} does not lead to the root of the "
                         f"tree of {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Check that the tree of ``old_size`` is a prefix of the one of ``new_size`` (RFC 9162
    §2.1.4.2); raise ProofError saying what failed."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"tree size {old_size} is larger than {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("equal tree sizes take an empty proof")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a proof from the empty tree is empty")
        if old_root != EMPTY_ROOT:
            raise ProofError("the root of the empty tree is SHA-256 of nothing")
        return
    if not proof:
        raise ProofError(f"empty consistency proof from size {old_size} to {new_size}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError(f"a proof hash is {HASH_SIZE} bytes")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # the old tree is a complete subtree: its root starts
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while _lsb(fn):
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof is too long for sizes {old_size} to {new_size}")
        if _lsb(fn) or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not _lsb(fn) and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof is too short for sizes {old_size} to {new_size}")
    if fr != old_root:
        raise ProofError(f"consistency proof does not lead to the root of the tree of {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the root of the tree of {new_size}")
