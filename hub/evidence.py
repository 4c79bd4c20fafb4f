"""Signed tree heads and evidence bundles, checked offline with only the ledger's public key.

Pure: no database, no files. A signed head is Ed25519 over ``head_message``:

    b"coldloop-tree-head-v1\\n" || tree_size (8 bytes, big-endian) || root hash (32 bytes)
    || timestamp (milliseconds since 1970-01-01 UTC, 8 bytes, big-endian)

An evidence bundle (``format`` = ``coldloop-evidence-v1``) is JSON: the signed head, and for
each event its ``seq`` (leaf index), ``event_id``, the canonical ``document`` exactly as
hashed (leaf data = its UTF-8 bytes) and its ``inclusion_proof`` at the head's size. Hashes,
keys and signatures are lowercase hex.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from hub.merkle import HASH_SIZE, ProofError, leaf_hash, verify_inclusion
from protocols.instants import LATEST

HEAD_CONTEXT = b"coldloop-tree-head-v1\n"
BUNDLE_FORMAT = "coldloop-evidence-v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_HEX = re.compile(r"[0-9a-f]*")


def head_message(tree_size: int, root: bytes, timestamp_ms: int) -> bytes:
    """Return the bytes a tree head's signature covers."""
    if len(root) != HASH_SIZE:
        raise ValueError(f"a root hash is {HASH_SIZE} bytes, got {len(root)}")
    return (HEAD_CONTEXT + tree_size.to_bytes(8, "big") + root
            + timestamp_ms.to_bytes(8, "big"))


def timestamp_ms(at: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime (truncated, exact arithmetic)."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: a head's time must be aware")
    return (at - _EPOCH) // _MS


def from_timestamp_ms(ms: int) -> datetime:
    """The aware UTC datetime of a head's millisecond timestamp."""
    return _EPOCH + ms * _MS


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey | bytes) -> str:
    """A key's id: hex of the first 16 bytes of SHA-256 over its 32 raw bytes."""
    raw = public_key if isinstance(public_key, bytes) else raw_public_key(public_key)
    return hashlib.sha256(raw).digest()[:16].hex()


def public_key_from_bytes(data: bytes) -> Ed25519PublicKey:
    """Read an Ed25519 public key given raw (32 bytes), as hex text or as PEM; ValueError if not."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = load_pem_public_key(text)
        except ValueError as err:
            raise ValueError(f"not a readable PEM public key ({err})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"a PEM {type(key).__name__}, not an Ed25519 public key")
        return key
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    if re.fullmatch(rb"[0-9a-fA-F]{64}", text):
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.decode()))
    raise ValueError(f"not an Ed25519 public key: expected PEM, 32 raw bytes or 64 hex digits, "
                     f"got {len(data)} bytes")


def _hex(value: Any, size: int, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise ValueError(f"{what} must be {2 * size} lowercase hex digits, got {value!r:.80}")
    return bytes.fromhex(value)


def _int(value: Any, what: str, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ValueError(f"{what} must be an integer from 0 to {limit}, got {value!r:.80}")
    return value


_MAX_TREE_SIZE = 2**63 - 1  # signed as 8 bytes
_MAX_TIMESTAMP_MS = int(LATEST.timestamp() * 1000)  # the instants anything may carry


@dataclass(frozen=True)
class SignedHead:
    """A tree head as signed: the size and root of the log at a time, under one key."""

    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    key_id: str
    signature: bytes

    @property
    def signed_at(self) -> datetime:
        """When the head was signed (UTC, millisecond precision)."""
        return from_timestamp_ms(self.timestamp_ms)

    def message(self) -> bytes:
        """The bytes the signature covers."""
        return head_message(self.tree_size, self.root_hash, self.timestamp_ms)

    def problems(self, public_key: Ed25519PublicKey) -> list[str]:
        """What is wrong with this head under ``public_key`` (empty: it is genuine)."""
        expected = key_id(public_key)
        if self.key_id != expected:
            return [f"head at size {self.tree_size} names key {self.key_id}, but the given "
                    f"public key is {expected}"]
        try:
            public_key.verify(self.signature, self.message())
        except InvalidSignature:
            return [f"the signature of the head at size {self.tree_size} does not verify with "
                    f"public key {expected}"]
        return []

    def to_json(self) -> dict[str, Any]:
        """The head as JSON-ready values (the form ``coldloop trace head`` prints)."""
        return {"tree_size": self.tree_size, "root_hash": self.root_hash.hex(),
                "timestamp_ms": self.timestamp_ms,
                "signed_at": self.signed_at.isoformat(timespec="milliseconds"),
                "key_id": self.key_id, "signature": self.signature.hex()}

    @classmethod
    def from_json(cls, data: Any) -> SignedHead:
        """Read a head written by ``to_json``; ValueError naming the bad field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a signed head is a JSON object, got {type(data).__name__}")
        for name in ("tree_size", "root_hash", "timestamp_ms", "key_id", "signature"):
            if name not in data:
                raise ValueError(f"signed head has no '{name}'")
        head = cls(tree_size=_int(data["tree_size"], "tree_size", _MAX_TREE_SIZE),
                   root_hash=_hex(data["root_hash"], HASH_SIZE, "root_hash"),
                   timestamp_ms=_int(data["timestamp_ms"], "timestamp_ms", _MAX_TIMESTAMP_MS),
                   key_id=_hex(data["key_id"], 16, "key_id").hex(),
                   signature=_hex(data["signature"], 64, "signature"))
        shown = data.get("signed_at")
        if shown is not None and shown != head.to_json()["signed_at"]:
            raise ValueError(f"signed_at {shown!r} is not the signed timestamp "
                             f"{head.to_json()['signed_at']}")
        return head


def verify_bundle(bundle: Mapping[str, Any], public_key_bytes: bytes) -> list[str]:
    """Check an evidence bundle offline; return its problems (empty: every event is proven)."""
    try:
        public_key = public_key_from_bytes(public_key_bytes)
    except ValueError as err:
        return [f"public key: {err}"]
    if not isinstance(bundle, Mapping):
        return [f"a bundle is a JSON object, got {type(bundle).__name__}"]
    if bundle.get("format") != BUNDLE_FORMAT:
        return [f"format is {bundle.get('format')!r}, expected {BUNDLE_FORMAT!r}"]
    try:
        head = SignedHead.from_json(bundle.get("head"))
    except ValueError as err:
        return [f"head: {err}"]
    problems = head.problems(public_key)
    events = bundle.get("events")
    if not isinstance(events, Sequence) or isinstance(events, str) or not events:
        return [*problems, "the bundle holds no events"]
    seen: set[int] = set()
    for n, event in enumerate(events):
        problems += _event_problems(n, event, head, seen)
    return problems


def _event_problems(n: int, event: Any, head: SignedHead, seen: set[int]) -> list[str]:
    if not isinstance(event, Mapping):
        return [f"events[{n}] is not a JSON object"]
    where = f"events[{n}]"
    try:
        seq = _int(event.get("seq"), "seq", _MAX_TREE_SIZE)
        where = f"event seq {seq} ({event.get('event_id')!r})"
        document = event.get("document")
        if not isinstance(document, str):
            raise ValueError("document must be the canonical JSON text of the event")
        proof = event.get("inclusion_proof")
        if not isinstance(proof, list):
            raise ValueError("inclusion_proof must be a list of hashes")
        path = [_hex(p, HASH_SIZE, "an inclusion proof hash") for p in proof]
        data = document.encode("utf-8")
    except (ValueError, UnicodeEncodeError) as err:
        return [f"{where}: {err}"]
    problems = []
    if seq in seen:
        problems.append(f"{where}: listed twice")
    seen.add(seq)
    try:
        parsed = json.loads(document)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict) or parsed.get("eventID") != event.get("event_id"):
        problems.append(f"{where}: event_id is not the eventID inside the document")
    try:
        verify_inclusion(leaf_hash(data), seq, head.tree_size, path, head.root_hash)
    except ProofError as err:
        problems.append(f"{where}: the document is not proven by the signed head ({err})")
    return problems

