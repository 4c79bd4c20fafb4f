"""The gateway's cached manifest: which returned items this site expects back, kept offline.

The hub sends it as the ``args`` of ``cmd/manifest``. A full document replaces the cache, a
delta (``full: false``) upserts ``items`` and drops ``removed``. Versions only move forward: an
older document is ignored and reported as stale, so a late or repeated one cannot undo a newer
one; a delta whose ``base`` is not the stored version is refused (the hub then sends a full
one). The cache is a SQLite (WAL) file next to the outbox, so it survives reboots and outages.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.errors import EdgeError
from edge.recorder import Clock
from edge.settings import GatewaySettings
from protocols.messages import describe
from protocols.tag import is_valid_gtin

logger = logging.getLogger(__name__)

MAX_ITEMS = 100_000
_ItemId = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Z0-9-]+$")]
_Amount = Annotated[float, Field(ge=0)]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    gtin TEXT NOT NULL,
    lot TEXT NOT NULL,
    family TEXT,
    high_risk INTEGER,
    hours_above_limit REAL,
    degree_hours REAL,
    shelf_life_used_frac REAL
);
"""
_COLUMNS = ("item_id", "gtin", "lot", "family", "high_risk", "hours_above_limit",
            "degree_hours", "shelf_life_used_frac")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM items"


class ManifestError(EdgeError):
    """A manifest document the gateway refuses, or a cache it cannot write."""


class ManifestGap(ManifestError):
    """A delta that does not build on the stored version: a full manifest is needed."""


class ManifestItem(BaseModel):
    """One item the site expects back, with the cold-chain summary the grader may use."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    item_id: _ItemId
    gtin: Annotated[str, Field(pattern=r"^\d{14}$")]
    lot: Annotated[str, Field(min_length=1, max_length=10, pattern=r"^[A-Z0-9-]+$")]
    family: Annotated[str, Field(min_length=1, max_length=64,
                                 pattern=r"^[^\x00-\x1f\x7f]*$")] | None = None
    high_risk: bool | None = None  # None: the hub does not say; the tag's flag stands
    hours_above_limit: _Amount | None = None
    degree_hours: _Amount | None = None
    shelf_life_used_frac: _Amount | None = None

    @field_validator("gtin")
    @classmethod
    def _check_digit(cls, value: str) -> str:
        if not is_valid_gtin(value):
            raise ValueError("wrong GTIN check digit")
        return value


class ManifestDocument(BaseModel):
    """A full manifest or a delta, as carried in the ``args`` of ``cmd/manifest``."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    version: Annotated[int, Field(ge=1, strict=True)]
    site: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
    full: Annotated[bool, Field(strict=True)]
    base: Annotated[int, Field(ge=0, strict=True)] | None = None  # the version a delta extends
    items: Annotated[list[ManifestItem], Field(max_length=MAX_ITEMS)] = Field(
        default_factory=list)
    removed: Annotated[list[_ItemId], Field(max_length=MAX_ITEMS)] = Field(
        default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ManifestDocument:
        ids = [item.item_id for item in self.items]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})[:3]
            raise ValueError(f"items: item ids listed twice: {twice}")
        if self.full and self.removed:
            raise ValueError("removed: only a delta (full=false) removes items")
        both = sorted(set(ids) & set(self.removed))[:3]
        if both:
            raise ValueError(f"removed: items both upserted and removed: {both}")
        return self


class ApplyStatus(StrEnum):
    """What applying a manifest document did."""

    APPLIED = "applied"
    STALE = "stale"  # older than the stored version: ignored
    UNCHANGED = "unchanged"  # the stored version already: ignored (a redelivery)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """The outcome of :meth:`Manifest.apply` and the cache afterwards."""

    status: ApplyStatus
    version: int  # the stored version after the call
    count: int
    offered: int  # the document's version
    upserted: int = 0
    removed: int = 0


def parse_document(document: ManifestDocument | Mapping[str, Any]) -> ManifestDocument:
    """Validate a manifest document; raise ManifestError naming the bad field."""
    if isinstance(document, ManifestDocument):
        return document
    if not isinstance(document, Mapping):
        raise ManifestError(f"manifest: expected a JSON object, got {type(document).__name__}")
    try:
        return ManifestDocument.model_validate(dict(document))
    except ValidationError as err:
        raise ManifestError(f"manifest: {describe(err)}") from None


def manifest_path(settings: GatewaySettings) -> Path:
    """Where a gateway keeps its manifest cache: next to its outbox."""
    return settings.outbox_path.parent / "manifest.db"


class Manifest:
    """The durable manifest cache; lookups from station threads, updates from the uplink."""

    def __init__(self, path: Path, site: str, clock: Clock = time.time) -> None:
        self.path = path
        self.site = site
        self.clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=30,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self._version = int(self._meta("version") or 0)
        self._count = int(self._conn.execute("SELECT count(*) FROM items").fetchone()[0])

    @property
    def version(self) -> int:
        """The stored manifest version; 0 until the hub has sent one."""
        return self._version

    @property
    def count(self) -> int:
        """How many items the site expects back."""
        return self._count

    def lookup(self, item_id: str) -> ManifestItem | None:
        """Return what the manifest says about an item, or None if it is not expected here."""
        with self._lock:
            row = self._conn.execute(f"{_SELECT} WHERE item_id = ?", (item_id,)).fetchone()
        return None if row is None else _item(row)

    def is_known(self, item_id: str) -> bool:
        """Whether a station should treat the item as expected (True until a manifest arrives)."""
        return self._version == 0 or self.lookup(item_id) is not None

    def apply(self, document: ManifestDocument | Mapping[str, Any]) -> ApplyResult:
        """Apply a full manifest or a delta; raise ManifestError if it is invalid or a gap."""
        doc = parse_document(document)
        if doc.site != self.site:
            raise ManifestError(f"manifest: site: document is for site {doc.site!r}, "
                                f"this gateway is at {self.site!r}")
        with self._lock:
            if doc.version <= self._version:
                status = ApplyStatus.STALE if doc.version < self._version else (
                    ApplyStatus.UNCHANGED)
                return ApplyResult(status, self._version, self._count, doc.version)
            if not doc.full and doc.base is not None and doc.base != self._version:
                raise ManifestGap(f"manifest: base: delta v{doc.version} extends v{doc.base}, "
                                  f"but this gateway has v{self._version}; send a full manifest")
            try:
                removed = self._store(doc)
            except sqlite3.Error as err:
                raise ManifestError(f"could not store manifest v{doc.version}: {err}") from err
        logger.info("manifest v%d applied (%s): %d items expected", doc.version,
                    "full" if doc.full else "delta", self._count)
        return ApplyResult(ApplyStatus.APPLIED, self._version, self._count, doc.version,
                           upserted=len(doc.items), removed=removed)

    def items(self) -> Iterator[ManifestItem]:
        """Every item in the cache, by item id."""
        with self._lock:
            rows = self._conn.execute(f"{_SELECT} ORDER BY item_id").fetchall()
        return iter([_item(row) for row in rows])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    def _store(self, doc: ManifestDocument) -> int:
        """Write a document in one transaction; return how many items it removed."""
        rows = [tuple(_column(item, c) for c in _COLUMNS) for item in doc.items]
        with self._transaction() as conn:
            if doc.full:
                removed = conn.execute("DELETE FROM items").rowcount
            else:
                removed = conn.executemany("DELETE FROM items WHERE item_id = ?",
                                           [(i,) for i in doc.removed]).rowcount
            conn.executemany(f"INSERT OR REPLACE INTO items ({', '.join(_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_COLUMNS))})", rows)
            conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                             [("version", str(doc.version)), ("updated_at", str(self.clock()))])
            count = int(conn.execute("SELECT count(*) FROM items").fetchone()[0])
        self._version, self._count = doc.version, count
        return max(removed, 0)

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")


def _column(item: ManifestItem, name: str) -> Any:
    value = getattr(item, name)
    return int(value) if isinstance(value, bool) else value


def _item(row: tuple[Any, ...]) -> ManifestItem:
    data = dict(zip(_COLUMNS, row, strict=True))
    if data["high_risk"] is not None:
        data["high_risk"] = bool(data["high_risk"])
    return ManifestItem.model_construct(**data)  # validated when it was stored
