"""The traceability ledger: EPCIS events appended to a Merkle log, signed heads, proofs, audit.

Every event becomes leaf ``seq`` of an RFC 9162 tree; its leaf data is the event's canonical
JSON (``canonical_json``). Heads are signed with Ed25519 (hub.evidence). ``verify_log``
re-reads the whole log; ``evidence_bundle`` exports events with proofs for offline checking.
See docs/ledger.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from pydantic_core import from_json
from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.orm import Session

from hub.errors import Conflict, InvalidInput, NotFound
from hub.evidence import (
    BUNDLE_FORMAT,
    SignedHead,
    from_timestamp_ms,
    head_message,
    key_id,
    public_key_from_bytes,
    timestamp_ms,
)
from hub.merkle import CompactRange, MerkleTree, ProofError, leaf_hash, verify_inclusion
from hub.trace_models import LedgerHead, TraceEvent, TraceEventEpc
from protocols.instants import within_range

logger = logging.getLogger(__name__)

# Serialises appends and signing across hub processes on PostgreSQL (a transaction-level lock).
LOCK_KEY = int.from_bytes(hashlib.sha256(b"coldloop.ledger").digest()[:8], "big", signed=True)
_EPC_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList",
                   "outputQuantityList")
_LIMITS = {"eventID": 200, "type": 32, "bizStep": 120}
_CHUNK = 500  # event ids per IN (...) lookup
_STREAM = 10_000  # rows per fetch while verifying


# --- events: canonical form, identifiers ---------------------------------------------------


def canonical_json(event: Mapping[str, Any]) -> str:
    """The event as its leaf data: sorted keys, no spaces, non-ASCII kept (hashed as UTF-8)."""
    return json.dumps(event if isinstance(event, dict) else dict(event), sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def identifiers(event: Mapping[str, Any]) -> list[str]:
    """Every EPC, parent id and quantity class the event names, sorted, each once."""
    found: set[Any] = set()
    try:
        parent = event.get("parentID")
        if parent is not None:
            found.add(parent)
        for name in _EPC_LISTS:
            value = event.get(name)
            if value:
                found.update(value if isinstance(value, list | tuple) else (None,))
        for name in _QUANTITY_LISTS:
            for quantity in event.get(name) or ():
                found.add(quantity.get("epcClass"))
    except (TypeError, AttributeError):  # unhashable or not objects: said precisely below
        found.add(None)
    if all(isinstance(epc, str) and 0 < len(epc) <= 200 and "\x00" not in epc
           for epc in found):
        return sorted(found)
    return _named_identifiers(event)


def _named_identifiers(event: Mapping[str, Any]) -> list[str]:
    """``identifiers`` the slow way, raising InvalidInput that names the bad member."""
    found: set[str] = set()
    parent = event.get("parentID")
    if parent is not None:
        found.add(_identifier(parent, "parentID"))
    for name in _EPC_LISTS:
        for n, epc in enumerate(_list(event.get(name), name)):
            found.add(_identifier(epc, f"{name}[{n}]"))
    for name in _QUANTITY_LISTS:
        for n, quantity in enumerate(_list(event.get(name), name)):
            if not isinstance(quantity, Mapping):
                raise InvalidInput(f"{name}[{n}] is not an object with an epcClass")
            found.add(_identifier(quantity.get("epcClass"), f"{name}[{n}].epcClass"))
    return sorted(found)


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidInput(f"{name} is a {type(value).__name__}, not a list")
    return list(value)


def _identifier(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200 or "\x00" in value:
        raise InvalidInput(f"{where} must be an identifier of 1 to 200 characters (no NUL), "
                           f"got {value!r:.60}")
    return value


class _Fields(NamedTuple):
    """What the ledger's columns and EPC index take from an event."""

    event_id: str
    event_type: str
    event_time: datetime
    biz_step: str | None
    epcs: list[str]


def _text(event: Mapping[str, Any], name: str, where: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{where} has no {name}: a non-empty string is required")
    if "\x00" in value:
        raise InvalidInput(f"{where}: {name} holds a NUL character")
    limit = _LIMITS.get(name, 64)
    if len(value) > limit:
        raise InvalidInput(f"{where}: {name} is longer than {limit} characters")
    return value


def _fields(n: int, event: Any) -> _Fields:
    """Check an event's required members; InvalidInput names the event and the problem."""
    if not isinstance(event, Mapping):
        raise InvalidInput(f"event {n} is a {type(event).__name__}, not a JSON object")
    event_id = _text(event, "eventID", f"event {n}")
    where = f"event {event_id!r}"
    event_type = _text(event, "type", where)
    stamp = _text(event, "eventTime", where)
    try:
        event_time = datetime.fromisoformat(stamp)
    except ValueError:
        raise InvalidInput(f"{where}: eventTime {stamp!r} is not an ISO 8601 date-time") \
            from None
    if event_time.tzinfo is None:
        raise InvalidInput(f"{where}: eventTime {stamp!r} has no time zone offset")
    try:
        within_range(event_time)
    except ValueError as err:
        raise InvalidInput(f"{where}: eventTime {err}") from None
    biz_step = None if event.get("bizStep") is None else _text(event, "bizStep", where)
    try:
        epcs = identifiers(event)
    except InvalidInput as err:
        raise InvalidInput(f"{where}: {err}") from None
    return _Fields(event_id, event_type, event_time, biz_step, epcs)


def _prepare(n: int, event: Any) -> tuple[_Fields, str, bytes]:
    """An event's fields, canonical document and leaf hash."""
    fields = _fields(n, event)
    try:
        document = canonical_json(event)
        leaf = leaf_hash(document.encode("utf-8"))
    except (TypeError, ValueError) as err:  # UnicodeEncodeError included
        raise InvalidInput(f"event {fields.event_id!r} is not JSON data: {err}") from None
    return fields, document, leaf


# --- appending ------------------------------------------------------------------------------


def _lock(session: Session) -> None:
    """Take the ledger's write lock until the transaction ends (seq order across processes)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    else:  # SQLite: any write takes the database's write lock, held to commit or rollback
        session.execute(text("UPDATE ledger_heads SET tree_size = tree_size WHERE 0 = 1"))


def ledger_size(session: Session) -> int:
    """How many events the ledger holds (the next event's seq)."""
    last = session.scalar(select(func.max(TraceEvent.seq)))
    return 0 if last is None else int(last) + 1


@dataclass(frozen=True, slots=True)
class Appended:
    """An event's ledger entry as appended (a TraceEvent row's values); ``new``: added now."""

    seq: int
    event_id: str
    event_type: str
    event_time: datetime
    biz_step: str | None
    source: str
    document: str
    leaf_hash: bytes
    recorded_at: datetime
    new: bool


_ENTRY_COLUMNS = ("seq", "event_id", "event_type", "event_time", "biz_step", "source",
                  "document", "leaf_hash", "recorded_at")


def append_events(session: Session, events: Sequence[Mapping[str, Any]], *, source: str,
                  now: datetime) -> list[Appended]:
    """Append EPCIS events in order; return their entries, one per given event.

    Idempotent: an eventID already in the ledger with the identical document returns the
    stored row; with another document it raises Conflict (an EPCIS event is never changed;
    correct it with an error declaration). Malformed events raise InvalidInput and nothing is
    appended. Consecutive seqs are assigned under the ledger's lock; the caller commits.
    """
    if not source or len(source) > 64:
        raise InvalidInput(f"source must be 1 to 64 characters (e.g. 'hub'), got {source!r}")
    prepared = [_prepare(n, event) for n, event in enumerate(events)]
    unique: dict[str, tuple[_Fields, str, bytes]] = {}
    for item in prepared:
        first = unique.setdefault(item[0].event_id, item)
        if first[2] != item[2]:
            raise Conflict(f"event {item[0].event_id!r} is given twice with different "
                           "documents")
    if not unique:
        return []
    _lock(session)
    stored = _stored_ids(session, list(unique))
    for event_id, (_, stored_leaf) in stored.items():
        if stored_leaf != unique[event_id][2]:
            raise Conflict(
                f"event {event_id!r} is already in the ledger with a different document; "
                "a recorded EPCIS event is never changed: record an error declaration and a "
                "corrective event instead")
    seq = ledger_size(session)
    rows: list[dict[str, Any]] = []
    epc_rows: list[dict[str, Any]] = []
    seqs: dict[str, int] = {event_id: s for event_id, (s, _) in stored.items()}
    for fields, document, leaf in unique.values():
        if fields.event_id in seqs:
            continue
        seqs[fields.event_id] = seq
        rows.append({"seq": seq, "event_id": fields.event_id, "event_type": fields.event_type,
                     "event_time": fields.event_time.astimezone(UTC),
                     "biz_step": fields.biz_step,
                     "source": source, "document": document, "leaf_hash": leaf,
                     "recorded_at": now})
        epc_rows.extend({"seq": seq, "epc": epc} for epc in fields.epcs)
        seq += 1
    if rows:
        session.execute(_bulk(TraceEvent), rows)
        if epc_rows:
            session.execute(_bulk(TraceEventEpc), epc_rows)
    return _entries(session, rows, [seqs[fields.event_id] for fields, _, _ in prepared])


def _bulk(model: type[Any]) -> Any:
    """A Core INSERT of the model's table: one executemany, no ORM bookkeeping."""
    return insert(model.__table__)


def _stored_ids(session: Session, event_ids: list[str]) -> dict[str, tuple[int, bytes]]:
    found: dict[str, tuple[int, bytes]] = {}
    for start in range(0, len(event_ids), _CHUNK):
        chunk = event_ids[start:start + _CHUNK]
        for event_id, seq, stored in session.execute(
                select(TraceEvent.event_id, TraceEvent.seq, TraceEvent.leaf_hash)
                .where(TraceEvent.event_id.in_(chunk))):
            found[event_id] = (seq, bytes(stored))
    return found


def _entries(session: Session, inserted: list[dict[str, Any]],
             order: list[int]) -> list[Appended]:
    """The entries in the order asked: new ones from what was inserted, others read back."""
    by_seq = {values["seq"]: Appended(**values, new=True) for values in inserted}
    missing = sorted(set(order) - by_seq.keys())
    columns = [getattr(TraceEvent, name) for name in _ENTRY_COLUMNS]
    for start in range(0, len(missing), _CHUNK):
        for row in session.execute(select(*columns).where(
                TraceEvent.seq.in_(missing[start:start + _CHUNK]))):
            by_seq[row.seq] = Appended(**row._asdict(), new=False)
    return [by_seq[seq] for seq in order]


# --- the tree: committed leaf hashes cached per database ------------------------------------


class TreeCache:
    """The committed leaf hashes of each database, kept in memory so proofs are O(log n).

    Filled through a connection of its own, so it only ever holds committed rows (a session's
    uncommitted appends may still roll back). Before use it checks that its last leaf is still
    the database's, and starts over if not; it only grows over a gap-free prefix of seqs.
    """

    def __init__(self) -> None:
        self._trees: dict[str, MerkleTree] = {}
        self._lock = threading.Lock()

    def tree(self, session: Session, size: int) -> MerkleTree:
        """The committed tree, holding at least ``size`` leaves if the database has them.

        When the cached tree is large enough, one look-up on the session's own connection
        checks it is still this database's; otherwise it is brought up to date.
        """
        engine = _engine(session)
        tree = self._trees.get(self._key(engine) or "")
        if tree is not None and tree.size >= max(size, 1):
            last = session.connection().execute(
                select(TraceEvent.leaf_hash).where(TraceEvent.seq == tree.size - 1)).scalar()
            if last is not None and bytes(last) == tree.leaf(tree.size - 1):
                return tree
        return self.committed(engine)

    def committed(self, engine: Engine) -> MerkleTree:
        """The tree of the database's committed leaves, brought up to date."""
        key = self._key(engine)
        if key is None:
            return MerkleTree()
        with self._lock, engine.connect() as conn:
            tree = self._trees.setdefault(key, MerkleTree())
            if not self._extend(conn, tree):
                logger.info("ledger cache of %s no longer matches the database: rebuilt", key)
                tree = self._trees[key] = MerkleTree()
                self._extend(conn, tree)
            return tree

    @staticmethod
    def _key(engine: Engine) -> str | None:
        """The cache key of a database; None for in-memory SQLite, which another connection
        would not see (or see with this session's uncommitted rows)."""
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            return None
        return url.render_as_string(hide_password=True)

    @staticmethod
    def _extend(conn: Connection, tree: MerkleTree) -> bool:
        """Add the leaves committed since; False if the tree's last leaf is not the database's
        (one query: it starts at that leaf)."""
        start = max(tree.size - 1, 0)
        rows = conn.execute(select(TraceEvent.seq, TraceEvent.leaf_hash)
                            .where(TraceEvent.seq >= start).order_by(TraceEvent.seq)
                            .execution_options(yield_per=_STREAM))
        found = iter(rows)
        try:
            if tree.size:
                first = next(found, None)
                if first is None or first[0] != start or bytes(first[1]) != tree.leaf(start):
                    return False
            for seq, stored in found:
                if seq != tree.size or len(stored) != 32:
                    break  # a gap or a damaged hash: proofs beyond it are refused
                tree.append(bytes(stored))
        finally:
            rows.close()
        return True

    def clear(self) -> None:
        """Forget every cached tree."""
        with self._lock:
            self._trees.clear()


TREES = TreeCache()


def _engine(session: Session) -> Engine:
    return session.get_bind().engine


def _leaves_after(session: Session, start: int, end: int) -> Iterator[bytes]:
    """Stored leaf hashes of seqs ``start..end-1`` as this session sees them, checked."""
    expected = start
    for seq, stored in session.execute(
            select(TraceEvent.seq, TraceEvent.leaf_hash)
            .where(TraceEvent.seq >= start, TraceEvent.seq < end).order_by(TraceEvent.seq)):
        if seq != expected or len(stored) != 32:
            break
        expected += 1
        yield bytes(stored)
    if expected != end:
        raise Conflict(f"the ledger has no valid seq {expected}: it was removed or damaged; "
                       "run coldloop trace verify")


def _tree(session: Session, size: int) -> MerkleTree:
    """A tree holding at least the first ``size`` leaves; InvalidInput if the ledger is
    smaller."""
    tree = TREES.tree(session, size)
    if tree.size >= size:
        return tree
    held = ledger_size(session)
    if size > held:
        raise InvalidInput(f"the ledger holds {held} events, not {size}")
    return MerkleTree([*(tree.leaf(i) for i in range(tree.size)),
                       *_leaves_after(session, tree.size, size)])


def _root(session: Session, size: int) -> bytes:
    """The root of the first ``size`` leaves as this session sees them."""
    tree = TREES.tree(session, size)
    if tree.size >= size:
        return tree.root(size)
    frontier = tree.compact_range()
    for leaf in _leaves_after(session, tree.size, size):
        frontier.append(leaf)
    return frontier.root()


def inclusion_proof(session: Session, seq: int, tree_size: int) -> list[bytes]:
    """The audit path of event ``seq`` in the tree of the first ``tree_size`` events."""
    if not 0 <= seq < tree_size:
        raise InvalidInput(f"no inclusion proof of seq {seq} in a tree of {tree_size}")
    return _tree(session, tree_size).inclusion_proof(seq, tree_size)


def consistency_proof(session: Session, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of ``old_size`` events is a prefix of the one of ``new_size``."""
    if not 0 <= old_size <= new_size:
        raise InvalidInput(f"no consistency proof from size {old_size} to {new_size}")
    return _tree(session, new_size).consistency_proof(old_size, new_size)


# --- signed heads -----------------------------------------------------------------------------


def signed_head(head: LedgerHead) -> SignedHead:
    """A stored head in the form evidence bundles and ``coldloop trace head`` carry."""
    return SignedHead(tree_size=head.tree_size, root_hash=bytes(head.root_hash),
                      timestamp_ms=timestamp_ms(head.signed_at), key_id=head.key_id,
                      signature=bytes(head.signature))


def latest_head(session: Session) -> LedgerHead | None:
    """The signed head of the largest tree, if any."""
    return session.scalars(select(LedgerHead).order_by(LedgerHead.tree_size.desc())
                           .limit(1)).first()


def sign_head(session: Session, key: Ed25519PrivateKey, now: datetime) -> LedgerHead:
    """Sign the root of every event appended so far (the head already there if none since).

    Refuses (Conflict) unless the log still extends the previous head, and re-hashes the
    documents appended since: a head never signs a leaf whose document no longer matches it.
    """
    _lock(session)
    size = ledger_size(session)
    existing = session.get(LedgerHead, size)
    if existing is not None:
        return existing
    previous = latest_head(session)
    if previous is not None:
        if previous.tree_size > size:
            raise Conflict(f"the ledger holds {size} events but a head was signed at size "
                           f"{previous.tree_size}: events were removed; run coldloop trace "
                           "verify")
        if _root(session, previous.tree_size) != bytes(previous.root_hash):
            raise Conflict(f"the log no longer gives the root signed at size "
                           f"{previous.tree_size}, so no head is signed; run coldloop trace "
                           "verify")
    _check_documents(session, previous.tree_size if previous else 0, size)
    root = _root(session, size)
    ms = timestamp_ms(now)
    head = LedgerHead(tree_size=size, root_hash=root, signed_at=from_timestamp_ms(ms),
                      key_id=key_id(key.public_key()),
                      signature=key.sign(head_message(size, root, ms)))
    session.add(head)
    session.flush()
    logger.info("ledger head signed at size %d", size)
    return head


def sign_head_if_due(session: Session, key: Ed25519PrivateKey, now: datetime, *,
                     every: int, every_s: float) -> LedgerHead | None:
    """Sign a head when ``every`` events or ``every_s`` seconds passed since the last one."""
    previous = latest_head(session)
    size = ledger_size(session)
    if size == (previous.tree_size if previous else 0):
        return None
    if (previous is None or size - previous.tree_size >= every
            or (now - previous.signed_at).total_seconds() >= every_s):
        return sign_head(session, key, now)
    return None


def _check_documents(session: Session, start: int, end: int) -> None:
    rows = session.execute(select(TraceEvent.seq, TraceEvent.event_id, TraceEvent.document,
                                  TraceEvent.leaf_hash)
                           .where(TraceEvent.seq >= start, TraceEvent.seq < end)
                           .execution_options(yield_per=_STREAM))
    for seq, event_id, document, stored in rows:
        if leaf_hash(document.encode("utf-8")) != bytes(stored):
            rows.close()
            raise Conflict(f"seq {seq} ({event_id}): its document does not match its leaf "
                           "hash, so no head is signed; run coldloop trace verify")


# --- keys -------------------------------------------------------------------------------------


def write_signing_key(path: Path, *, force: bool = False) -> Ed25519PrivateKey:
    """Create an Ed25519 key at ``path`` (PEM, mode 0600) and its public key at ``.pub``.

    With ``force`` an existing key is replaced and its public key kept as
    ``<name>.<key id>.pub``: heads it signed still verify with that file.
    """
    path = Path(path)
    if path.exists() and not force:
        raise Conflict(f"a ledger signing key already exists at {path}; heads signed with it "
                       "verify only with its public key: pass --force to replace it anyway")
    path.parent.mkdir(parents=True, exist_ok=True)
    public = public_key_path(path)
    if path.exists() and public.exists():
        old = load_public_key(public)
        os.replace(public, path.with_name(f"{path.stem}.{key_id(old)}.pub"))
    key = Ed25519PrivateKey.generate()
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        out.flush()
        os.fsync(out.fileno())
    os.chmod(temporary, 0o600)  # in case it existed with looser bits
    os.replace(temporary, path)
    public.write_bytes(key.public_key().public_bytes(Encoding.PEM,
                                                     PublicFormat.SubjectPublicKeyInfo))
    return key


def public_key_path(key_path: Path) -> Path:
    """Where the public key of the signing key at ``key_path`` is written."""
    return Path(key_path).with_suffix(".pub")


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read the ledger's Ed25519 signing key (PEM); NotFound or InvalidInput saying why not."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no ledger signing key at {path}: create one with "
                       "`coldloop trace keygen`") from None
    except OSError as err:
        raise InvalidInput(f"cannot read the ledger signing key at {path}: {err}") from None
    if os.name == "posix" and path.stat().st_mode & 0o077:
        logger.warning("ledger signing key %s is readable by others: chmod 600 it", path)
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise InvalidInput(f"{path} is not an unencrypted PEM private key ({err})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read an Ed25519 public key file (PEM, raw 32 bytes or 64 hex digits)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no public key file at {path}") from None
    except OSError as err:
        raise InvalidInput(f"cannot read the public key at {path}: {err}") from None
    try:
        return public_key_from_bytes(data)
    except ValueError as err:
        raise InvalidInput(f"{path}: {err}") from None


# --- verifying the whole log ------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the stored log; ``seq`` and ``event_id`` when it is one event."""

    message: str
    seq: int | None = None
    event_id: str | None = None

    def __str__(self) -> str:
        if self.seq is None:
            return self.message
        who = f"seq {self.seq}" + (f" (eventID {self.event_id})" if self.event_id else "")
        return f"{who}: {self.message}"


@dataclass
class VerifyReport:
    """What ``verify_log`` found: problems in log order (the first is the first bad entry)."""

    events: int = 0
    heads: int = 0
    problems: list[Problem] = field(default_factory=list)  # the first MAX_PROBLEMS
    problem_count: int = 0
    notes: list[str] = field(default_factory=list)  # limits of what could be checked

    MAX_PROBLEMS = 1000

    @property
    def ok(self) -> bool:
        """Whether nothing was found wrong."""
        return self.problem_count == 0

    @property
    def first(self) -> Problem | None:
        """The first bad entry, if any."""
        return self.problems[0] if self.problems else None

    def add(self, problem: Problem) -> None:
        """Record a problem (kept up to MAX_PROBLEMS, all counted)."""
        self.problem_count += 1
        if len(self.problems) < self.MAX_PROBLEMS:
            self.problems.append(problem)

    def summary(self) -> str:
        """One line: "ok, N events, M heads", or the first problem."""
        if self.ok:
            return f"ok, {self.events} events, {self.heads} heads"
        more = self.problem_count - 1
        return f"FAILED: {self.first}" + (
            f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


class _Checkpoints:
    """The signed heads to check, by tree size, and the state of the checks so far."""

    def __init__(self, report: VerifyReport, keys: dict[str, Ed25519PublicKey],
                 stored: list[SignedHead], kept: Sequence[SignedHead]) -> None:
        self.report, self.keys = report, keys
        self.by_size: dict[int, list[tuple[str, SignedHead]]] = {}
        for head in stored:
            self.by_size.setdefault(head.tree_size, []).append(("signed head", head))
        for head in kept:
            here = self.by_size.setdefault(head.tree_size, [])
            if not any(other == head for _, other in here):
                here.append(("head kept outside the database", head))
        self.matched = 0  # the largest size whose head matched the log

    def check(self, size: int, root: bytes) -> None:
        """Check the heads at ``size`` against the log's root at that size."""
        heads = self.by_size.get(size, [])
        origins = {origin for origin, _ in heads}
        if "head kept outside the database" in origins:
            what = ("is not in the database (heads were deleted)" if "signed head" not in
                    origins else "differs from the database's head at that size")
            self.report.add(Problem(f"the head at size {size} kept outside the database {what}"))
        for origin, head in heads:
            key = self.keys.get(head.key_id)
            if key is None:
                self.report.add(Problem(
                    f"the {origin} at size {size} is signed by key {head.key_id}, which is "
                    f"not among the given public keys ({', '.join(sorted(self.keys))})"))
                continue
            forged = head.problems(key)
            for message in forged:
                self.report.add(Problem(f"{origin}: {message}"))
            if head.root_hash == root:
                if not forged:
                    self.matched = max(self.matched, size)
                continue
            first, last = self.matched, size - 1
            where = (f"seq {first} was altered, removed or reordered" if first == last else
                     f"the first differing event is between seq {first} and seq {last}")
            self.report.add(Problem(f"root at size {size} does not match the {origin}: {where}",
                                    seq=first if first == last else None))

    def beyond(self, count: int) -> None:
        """Heads over more events than the log holds: events removed from its end."""
        for size in sorted(s for s in self.by_size if s > count):
            for origin, head in self.by_size[size]:
                key = self.keys.get(head.key_id)
                genuine = key is not None and not head.problems(key)
                self.report.add(Problem(
                    f"the {origin} at size {size} covers {size} events but the log holds "
                    f"{count}: events from seq {count} on were removed"
                    + ("" if genuine else " (that head's signature does not verify either)")))


def verify_log(session: Session, public_keys: Ed25519PublicKey | Sequence[Ed25519PublicKey],
               *, kept_heads: Sequence[SignedHead] = ()) -> VerifyReport:
    """Re-check the whole stored log against its documents and signed heads.

    Streams every event in seq order: seqs must be contiguous from 0, each document must hash
    to its stored leaf hash, the EPC index must list what the document names, and the root at
    every signed head's size (recomputed from the documents) must be the signed one under a
    given key. ``kept_heads`` are heads an auditor kept elsewhere: they reveal deleted heads
    and events removed from the end.
    """
    keys = {key_id(k): k for k in ((public_keys,) if isinstance(public_keys, Ed25519PublicKey)
                                   else public_keys)}
    stored = [signed_head(h) for h in session.scalars(select(LedgerHead)
                                                      .order_by(LedgerHead.tree_size))]
    report = VerifyReport(heads=len(stored))
    checkpoints = _Checkpoints(report, keys, stored, kept_heads)
    frontier = CompactRange()
    if 0 in checkpoints.by_size:
        checkpoints.check(0, frontier.root())
    sizes, sha256 = checkpoints.by_size, hashlib.sha256
    connection = session.connection().execution_options(stream_results=True,
                                                         yield_per=_STREAM)
    index = _EpcIndex(iter(connection.exec_driver_sql(_EPCS_SQL)))
    derived = _Derived(session)
    expected = 0
    # Plain driver rows: ORM or typed rows would double the time of a million-event audit.
    for seq, event_id, event_type, event_time, biz_step, document, stored_leaf in \
            connection.exec_driver_sql(_EVENTS_SQL):
        if seq != expected:
            gap = f"seq {expected}" if seq == expected + 1 else f"seqs {expected}..{seq - 1}"
            report.add(Problem(f"{gap} missing: the event was removed", seq=expected))
            expected = seq
        leaf = sha256(b"\x00" + document.encode("utf-8", "surrogatepass")).digest()
        listed = index.listed(seq)
        if leaf != stored_leaf:
            report.add(Problem("document does not match its leaf hash", seq, event_id))
        else:
            wrong = derived.problem(document, listed, event_id, event_type, event_time, biz_step)
            if wrong:
                report.add(Problem(wrong, seq, event_id))
        frontier.append(leaf)
        expected += 1
        if frontier.size in sizes:
            checkpoints.check(frontier.size, frontier.root())
    report.events = frontier.size
    checkpoints.beyond(frontier.size)
    signed = max((s for s in sizes if s <= frontier.size), default=None)
    if signed is None:
        report.notes.append("no signed head: a document rewritten together with its leaf hash, "
                            "or events reordered, cannot be detected (coldloop trace sign)")
    elif frontier.size > signed:
        report.notes.append(f"{frontier.size - signed} events after the last signed head "
                            f"(size {signed}) are not covered by a signature yet")
    return report


_EVENTS_SQL = ("SELECT seq, event_id, event_type, event_time, biz_step, document, leaf_hash "
               "FROM trace_events ORDER BY seq")
_EPCS_SQL = "SELECT seq, epc FROM trace_event_epcs ORDER BY seq, epc"


class _EpcIndex:
    """The EPC index streamed in seq order beside the events (a merge join)."""

    def __init__(self, rows: Iterator[Any]) -> None:
        self._rows = rows
        self._next = next(rows, None)

    def listed(self, seq: int) -> list[str]:
        """The EPCs indexed for ``seq``, sorted (skipping rows of seqs before it)."""
        found: list[str] = []
        row = self._next
        while row is not None and row[0] <= seq:
            if row[0] == seq:
                found.append(row[1])
            row = next(self._rows, None)
        self._next = row
        return found


class _Derived:
    """Checks that a genuine document's columns and EPC index rows still agree with it."""

    def __init__(self, session: Session) -> None:
        dialect = session.get_bind().dialect
        column = TraceEvent.__table__.c.event_time
        self._time = column.type.dialect_impl(dialect).result_processor(dialect, None) \
            or (lambda value: value)

    def problem(self, document: str, listed: list[str], event_id: str, event_type: str,
                event_time: Any, biz_step: str | None) -> str | None:
        """What disagrees with the document, or None."""
        try:
            event = from_json(document)  # pydantic's parser: twice json.loads' speed
            said = (event["eventID"], event["type"], event.get("bizStep"),
                    datetime.fromisoformat(event["eventTime"]))
            named = identifiers(event)
        except (ValueError, KeyError, TypeError, AttributeError) as err:  # InvalidInput too
            return f"document is not a valid EPCIS event ({err})"
        stored = (event_id, event_type, biz_step, self._time(event_time))
        if stored != said:
            name, value, other = next((n, v, o) for n, v, o in zip(
                ("event_id", "event_type", "biz_step", "event_time"), stored, said,
                strict=True) if v != o)
            return f"column {name} says {value!r} but the document says {other!r}"
        if named != listed:
            return (f"the EPC index lists {sorted(set(listed) - set(named))} that the document "
                    f"does not name and lacks {sorted(set(named) - set(listed))}")
        return None


# --- evidence ---------------------------------------------------------------------------------


def evidence_bundle(session: Session, seqs: Sequence[int]) -> dict[str, Any]:
    """Events with their inclusion proofs at the latest signed head, checkable offline.

    Raises NotFound (no head, unknown seq), InvalidInput (a seq the head does not cover yet)
    or Conflict (the stored event no longer matches the signed log).
    """
    if not seqs:
        raise InvalidInput("name at least one event (seq) for the bundle")
    head = latest_head(session)
    if head is None:
        raise NotFound("no signed head yet: sign one with `coldloop trace sign`")
    wanted = list(dict.fromkeys(seqs))
    late = [s for s in wanted if not 0 <= s < head.tree_size]
    if late:
        raise InvalidInput(f"seq {late[0]} is not covered by the latest signed head (size "
                           f"{head.tree_size}); sign a new head first")
    rows = {row.seq: row for start in range(0, len(wanted), _CHUNK)
            for row in session.execute(select(TraceEvent.seq, TraceEvent.event_id,
                                              TraceEvent.document)
                                       .where(TraceEvent.seq.in_(wanted[start:start + _CHUNK])))}
    absent = [s for s in wanted if s not in rows]
    if absent:
        raise NotFound(f"seq {absent[0]} is not in the ledger (removed?): run coldloop trace "
                       "verify")
    tree = _tree(session, head.tree_size)
    if tree.root(head.tree_size) != bytes(head.root_hash):
        raise Conflict(f"the stored leaf hashes no longer give the signed root at size "
                       f"{head.tree_size}: run coldloop trace verify")
    events = []
    for seq in wanted:
        row = rows[seq]
        proof = tree.inclusion_proof(seq, head.tree_size)
        try:
            verify_inclusion(leaf_hash(row.document.encode("utf-8")), seq, head.tree_size,
                             proof, bytes(head.root_hash))
        except ProofError:
            raise Conflict(f"seq {seq} ({row.event_id}): its document no longer matches the "
                           "signed log; run coldloop trace verify") from None
        events.append({"seq": seq, "event_id": row.event_id, "document": row.document,
                       "inclusion_proof": [p.hex() for p in proof]})
    return {"format": BUNDLE_FORMAT, "head": signed_head(head).to_json(), "events": events}
