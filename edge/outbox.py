"""The gateway's durable outbox: a SQLite (WAL) journal of everything still to send to the hub.

Business events are committed with ``synchronous=FULL`` before the station's light turns on and
leave only when the hub acknowledges them after its own commit; telemetry leaves on the broker's
PUBACK. A message the hub rejects, or that failed too often, moves to the dead-letter table.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from edge.errors import OutboxFull

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL UNIQUE,
    cls TEXT NOT NULL CHECK (cls IN ('event', 'telemetry')),
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_sent_at REAL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    msg_id TEXT PRIMARY KEY,
    cls TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    dead_at REAL NOT NULL
);
"""


class DiskLevel(StrEnum):
    """How much room the outbox's disk has left, by the configured reserves."""

    OK = "ok"
    LOW = "low"  # below the telemetry reserve: telemetry is downsampled
    FULL = "full"  # below the event reserve, or SQLite said the disk is full: events refused


class MessageClass(StrEnum):
    """How a message leaves the outbox."""

    EVENT = "event"  # on the hub's application ack
    TELEMETRY = "telemetry"  # on the broker's PUBACK


@dataclass(frozen=True, slots=True)
class Pending:
    """A message waiting in the outbox."""

    seq: int
    msg_id: str
    cls: MessageClass
    topic: str
    payload: bytes
    attempts: int


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to commit to the outbox."""

    msg_id: str
    cls: MessageClass
    topic: str
    payload: bytes


class Outbox:
    """Durable message journal; safe to use from several threads (one connection each)."""

    def __init__(self, path: Path, max_attempts: int = 20, *,
                 telemetry_reserve_mb: float = 0.0, event_reserve_mb: float = 0.0,
                 free_bytes: Callable[[], int] | None = None) -> None:
        self.path = path
        self.max_attempts = max_attempts
        self.telemetry_reserve = int(telemetry_reserve_mb * 1024 * 1024)
        self.event_reserve = int(event_reserve_mb * 1024 * 1024)
        # Free bytes on the outbox's filesystem; replaceable (tests, or a quota).
        self.free_bytes = free_bytes or (lambda: shutil.disk_usage(self.path.parent).free)
        self._sqlite_full = False  # SQLite refused a write: full until a write succeeds
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a committed scan survives a power cut
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def relax_this_thread(self) -> None:
        """Use synchronous=NORMAL on this thread's connection (the uplink's bookkeeping).

        Send attempts and ack removals lost to a power cut only mean a message is sent again,
        and the hub acks a resend as a duplicate; new messages keep FULL on their threads.
        """
        self._conn().execute("PRAGMA synchronous=NORMAL")

    def next_boot(self) -> int:
        """Increment and return the boot counter (durably): message ids never repeat."""
        conn = self._conn()
        with _tx(conn):
            conn.execute("INSERT INTO meta(key, value) VALUES ('boot', 1) "
                         "ON CONFLICT(key) DO UPDATE SET value = value + 1")
            row = conn.execute("SELECT value FROM meta WHERE key = 'boot'").fetchone()
        return int(row[0])

    def disk_level(self) -> DiskLevel:
        """Where the disk stands against the reserves."""
        free = self.free_bytes()
        if self._sqlite_full or free < self.event_reserve:
            return DiskLevel.FULL
        return DiskLevel.LOW if free < self.telemetry_reserve else DiskLevel.OK

    def put(self, messages: Sequence[NewMessage], now: float) -> None:
        """Commit messages in one durable transaction: all of them or none.

        Raises OutboxFull (nothing written) below the event reserve or when SQLite reports
        the disk full.
        """
        if self.free_bytes() < self.event_reserve:
            raise OutboxFull(f"only {self.free_bytes() // 2**20} MB free on the outbox's disk, "
                             f"below the reserve of {self.event_reserve // 2**20} MB")
        conn = self._conn()
        try:
            with _tx(conn):
                conn.executemany(
                    "INSERT INTO outbox(msg_id, cls, topic, payload, created_at) "
                    "VALUES (?,?,?,?,?)",
                    [(m.msg_id, m.cls.value, m.topic, m.payload, now) for m in messages],
                )
        except sqlite3.OperationalError as err:
            if "full" not in str(err):
                raise
            self._sqlite_full = True
            raise OutboxFull(f"the outbox's disk is full: {err}") from err
        self._sqlite_full = False

    def due(self, limit: int, now: float, retry_after_s: float,
            exclude: Iterable[int] = ()) -> list[Pending]:
        """Oldest messages never sent, or sent more than ``retry_after_s`` ago without an ack."""
        skip = set(exclude)
        rows = self._conn().execute(
            "SELECT seq, msg_id, cls, topic, payload, attempts FROM outbox "
            "WHERE last_sent_at IS NULL OR last_sent_at <= ? ORDER BY seq LIMIT ?",
            # Rows in flight were marked sent, so SQL already leaves them out unless their retry
            # time passed; a little slack covers those.
            (now - retry_after_s, limit + min(len(skip), 64)),
        ).fetchall()
        found = [Pending(r[0], r[1], MessageClass(r[2]), r[3], bytes(r[4]), r[5])
                 for r in rows if r[0] not in skip]
        return found[:limit]

    def mark_sent(self, seqs: Sequence[int], now: float) -> list[str]:
        """Record a send attempt; return ids moved to dead letters for too many attempts."""
        conn = self._conn()
        with _tx(conn):
            conn.executemany("UPDATE outbox SET attempts = attempts + 1, last_sent_at = ? "
                             "WHERE seq = ?", [(now, s) for s in seqs])
            dead = []
            for start in range(0, len(seqs), 500):  # only the rows just sent can have run out
                chunk = list(seqs[start:start + 500])
                dead += [r[0] for r in conn.execute(
                    f"SELECT msg_id FROM outbox WHERE attempts >= ? AND seq IN "
                    f"({','.join('?' * len(chunk))})", (self.max_attempts, *chunk))]
        for msg_id in dead:
            self.dead_letter(msg_id, f"no ack after {self.max_attempts} attempts", now)
        return dead

    def make_all_due(self) -> int:
        """Forget every send attempt's time: everything waiting goes out again (a resync)."""
        conn = self._conn()
        with _tx(conn):
            return conn.execute("UPDATE outbox SET last_sent_at = NULL").rowcount

    def limit_pages(self, pages: int) -> None:
        """Cap the database size (SQLite's max_page_count): a real SQLITE_FULL for tests."""
        self._conn().execute(f"PRAGMA max_page_count = {int(pages)}")

    def remove(self, msg_ids: Iterable[str]) -> int:
        """Drop acknowledged messages; return how many were still there."""
        conn = self._conn()
        with _tx(conn):
            cursor = conn.executemany("DELETE FROM outbox WHERE msg_id = ?",
                                      [(m,) for m in msg_ids])
        return cursor.rowcount

    def dead_letter(self, msg_id: str, reason: str, now: float) -> bool:
        """Move one message to the dead-letter table with the reason."""
        conn = self._conn()
        with _tx(conn):
            moved = conn.execute(
                "INSERT OR IGNORE INTO dead_letter(msg_id, cls, topic, payload, created_at, "
                "attempts, reason, dead_at) SELECT msg_id, cls, topic, payload, created_at, "
                "attempts, ?, ? FROM outbox WHERE msg_id = ?", (reason, now, msg_id)).rowcount
            conn.execute("DELETE FROM outbox WHERE msg_id = ?", (msg_id,))
        return moved > 0

    def depth(self, cls: MessageClass | None = None) -> int:
        """How many messages are waiting (of one class, or all)."""
        if cls is None:
            row = self._conn().execute("SELECT count(*) FROM outbox").fetchone()
        else:
            row = self._conn().execute("SELECT count(*) FROM outbox WHERE cls = ?",
                                       (cls.value,)).fetchone()
        return int(row[0])

    def dead_letters(self) -> list[tuple[str, str]]:
        """Ids and reasons of dead-lettered messages."""
        return [(r[0], r[1]) for r in
                self._conn().execute("SELECT msg_id, reason FROM dead_letter ORDER BY dead_at")]

    def close(self) -> None:
        """Close every thread's connection."""
        with self._conns_lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = threading.local()


class _tx:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error (the connection is in autocommit mode)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:  # SQLITE_FULL has already rolled back by itself
            self.conn.execute("ROLLBACK")
