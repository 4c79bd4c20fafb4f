"""The Merkle tree against the RFC 6962 vectors of COLDCHAIN.md, and proof properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleTree,
    ProofError,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# COLDCHAIN.md, "Merkle log test vectors" (transparency-dev/merkle).
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                     "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
HASHES = [leaf_hash(data) for data in LEAVES]


def hashes(n: int) -> list[bytes]:
    """``n`` distinct leaf hashes."""
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


BIG = hashes(300)
BIG_TREE = MerkleTree(BIG)


def test_hashing_vectors() -> None:
    assert EMPTY_ROOT.hex() == ROOTS[0]
    assert leaf_hash(b"").hex() == ROOTS[1]
    assert node_hash(HASHES[0], HASHES[1]).hex() == ROOTS[2]


@pytest.mark.parametrize("n", range(9))
def test_roots_of_the_first_n_vector_leaves(n: int) -> None:
    assert root_hash(HASHES[:n]).hex() == ROOTS[n]
    assert MerkleTree(HASHES[:n]).root().hex() == ROOTS[n]
    assert MerkleTree(HASHES).root(n).hex() == ROOTS[n]
    grown, streamed = MerkleTree(), CompactRange()
    for leaf in HASHES[:n]:
        grown.append(leaf)
        streamed.append(leaf)
    assert grown.root().hex() == streamed.root().hex() == ROOTS[n]


def test_roots_agree_with_the_recursive_definition_at_every_size() -> None:
    tree, streamed = MerkleTree(), CompactRange()
    for n, leaf in enumerate(BIG, 1):
        tree.append(leaf)
        streamed.append(leaf)
        assert tree.root() == streamed.root() == root_hash(BIG[:n])
    assert all(BIG_TREE.root(n) == root_hash(BIG[:n]) for n in range(len(BIG)))


def test_extend_in_pieces_and_compact_range_of_a_tree() -> None:
    tree = MerkleTree(BIG[:5])
    tree.extend(BIG[5:77])
    tree.append(BIG[77])
    tree.extend(BIG[78:])
    assert tree.root() == BIG_TREE.root()
    for n in (0, 1, 7, 8, 100, 255, 256, 299):
        frontier = MerkleTree(BIG[:n]).compact_range()
        for leaf in BIG[n:]:
            frontier.append(leaf)
        assert frontier.root() == BIG_TREE.root()


def test_every_inclusion_proof_of_small_trees_verifies() -> None:
    for size in range(1, 130):
        root = BIG_TREE.root(size)
        for index in range(size):
            verify_inclusion(BIG[index], index, size, BIG_TREE.inclusion_proof(index, size), root)


def test_every_consistency_proof_of_small_trees_verifies() -> None:
    for new in range(0, 70):
        for old in range(0, new + 1):
            verify_consistency(old, new, BIG_TREE.root(old), BIG_TREE.root(new),
                               BIG_TREE.consistency_proof(old, new))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_inclusion_proofs_verify_and_tampered_ones_fail(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, len(BIG)))
    index = data.draw(st.integers(0, size - 1))
    proof = BIG_TREE.inclusion_proof(index, size)
    root = BIG_TREE.root(size)
    verify_inclusion(BIG[index], index, size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(b"not this leaf"), index, size, proof, root)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        flipped = bytearray(proof[k])
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ProofError):
            verify_inclusion(BIG[index], index, size, [*proof[:k], bytes(flipped),
                                                       *proof[k + 1:]], root)
        with pytest.raises(ProofError):
            verify_inclusion(BIG[index], index, size, proof[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(BIG[index], index, size, [*proof, root], root)
    other = data.draw(st.integers(0, size - 1))
    if other != index:
        with pytest.raises(ProofError):
            verify_inclusion(BIG[index], other, size, proof, root)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_consistency_proofs_verify_and_tampered_ones_fail(data: st.DataObject) -> None:
    new = data.draw(st.integers(2, len(BIG)))
    old = data.draw(st.integers(1, new - 1))
    proof = BIG_TREE.consistency_proof(old, new)
    old_root, new_root = BIG_TREE.root(old), BIG_TREE.root(new)
    verify_consistency(old, new, old_root, new_root, proof)
    k = data.draw(st.integers(0, len(proof) - 1))
    flipped = bytearray(proof[k])
    flipped[data.draw(st.integers(0, 31))] ^= 0x80
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, [*proof[:k], bytes(flipped),
                                                          *proof[k + 1:]])
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, proof[:-1])
    with pytest.raises(ProofError):
        verify_consistency(old, new, leaf_hash(b"forked"), new_root, proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, leaf_hash(b"forked"), proof)
    fork = MerkleTree([*BIG[:old - 1], leaf_hash(b"rewritten"), *BIG[old:new]])
    with pytest.raises(ProofError):  # a history rewritten inside the old tree
        verify_consistency(old, new, old_root, fork.root(), fork.consistency_proof(old, new))


@pytest.mark.parametrize(("old", "new", "proof", "message"), [
    (3, 3, [b"\0" * 32], "empty proof"),
    (0, 5, [b"\0" * 32], "empty"),
    (2, 5, [], "empty consistency proof"),
    (5, 3, [], "larger"),
])
def test_consistency_edge_cases(old: int, new: int, proof: list[bytes], message: str) -> None:
    with pytest.raises(ProofError, match=message):
        verify_consistency(old, new, BIG_TREE.root(min(old, new)), BIG_TREE.root(new), proof)


def test_trivial_consistency_and_bad_arguments() -> None:
    verify_consistency(0, 9, EMPTY_ROOT, BIG_TREE.root(9), [])
    verify_consistency(9, 9, BIG_TREE.root(9), BIG_TREE.root(9), [])
    with pytest.raises(ProofError, match="outside"):
        verify_inclusion(BIG[0], 5, 5, [], BIG_TREE.root(5))
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree([b"short"])
    with pytest.raises(ValueError, match="outside"):
        BIG_TREE.inclusion_proof(0, len(BIG) + 1)
    with pytest.raises(IndexError):
        BIG_TREE.leaf(len(BIG))
