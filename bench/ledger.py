"""Traceability ledger benchmark: append throughput, inclusion proof time, full verify time.

Run from the repository root: ``python -m bench.ledger [--quick]`` (quick: 100,000 events,
about a minute; full: 1,000,000). Three measurements, each with a baseline from the same run:

1. **Append.** EPCIS ObjectEvents of about 600 bytes (canonical JSON) go through
   ``hub.ledger.append_events`` into a fresh SQLite hub database, 500 per transaction, with
   ``sign_head_if_due`` every 1,000 events as the hub runs it. Baseline: the same rows (plain
   ``json.dumps`` document, no validation, canonical form, hashing or EPC rows) inserted with
   one executemany per transaction into another fresh hub database. ``append_ratio`` =
   ledger events/s over baseline events/s.
2. **Proofs.** 10,000 inclusion proofs of random leaves in a ``MerkleTree`` of 1,000,000
   leaves (``proof_ms`` is their p99; p50 beside it), and the same through
   ``hub.ledger.inclusion_proof`` on the database (its size, warm cache: ``proof_db_*``).
   Baseline: SHA-256 of one leaf document; ``proof_ratio`` = proof p50 over it.
3. **Verify.** ``hub.ledger.verify_log`` over the whole database (``verify_s``). Baseline:
   SHA-256 leaf hashes of the same documents, held in memory; ``verify_ratio`` = verify time
   over it. ``verify_stream_hash_s`` also streams the documents from the database.

Progress goes to stdout; the last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from hub import ledger
from hub.db import make_engine, migrate, session_factory
from hub.merkle import MerkleTree, leaf_hash
from hub.trace_models import TraceEvent

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
BATCH = 500  # events per transaction
SIGN_EVERY = 1_000
PROOF_LEAVES = 1_000_000
PROOFS = 10_000
Figures = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    mode: str
    leaves: int  # events appended, then verified


QUICK = Sizes("quick", leaves=100_000)
FULL = Sizes("full", leaves=1_000_000)


def say(text: str) -> None:
    """Print one progress line now."""
    print(text, flush=True)


def percentile_ms(samples_ns: Sequence[int], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of nanosecond samples, in milliseconds."""
    ordered = sorted(samples_ns)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return round(ordered[rank] / 1e6, 4)


def event(n: int) -> dict[str, Any]:
    """A strawberry punnet leaving a packhouse dock, with its core temperature."""
    return {
        "eventID": f"urn:uuid:{uuid.UUID(int=n, version=4)}",
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "epcList": [f"urn:epc:id:sgtin:0690123.456789.{n}"],
        "eventTime": (T0 + timedelta(milliseconds=n * 37)).isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": "+08:00",
        "readPoint": {"id": "urn:epc:id:sgln:0690123.00001.dock-3"},
        "bizLocation": {"id": "urn:epc:id:sgln:0690123.00001.0"},
        "sensorElementList": [{"sensorReport": [
            {"type": "Temperature", "value": round(2 + (n % 40) / 10, 1), "uom": "CEL"}]}],
        "quantityList": [{"epcClass": "urn:epc:class:lgtin:0690123.456789.L2611",
                          "quantity": 1, "uom": "H87"}],
    }


def fresh_database(work: Path, name: str) -> sessionmaker[Session]:
    """A migrated, empty hub database in ``work``."""
    url = f"sqlite:///{work / name / 'hub.db'}"
    migrate(url)
    return session_factory(make_engine(url))


def time_append(factory: sessionmaker[Session], leaves: int, key: Ed25519PrivateKey) -> float:
    """Seconds spent appending (and signing), events built outside the clock."""
    spent = 0.0
    for start in range(0, leaves, BATCH):
        events = [event(n) for n in range(start, min(leaves, start + BATCH))]
        began = time.perf_counter()
        with factory.begin() as session:
            ledger.append_events(session, events, source="bench", now=T0)
            ledger.sign_head_if_due(session, key, T0, every=SIGN_EVERY, every_s=86_400)
        spent += time.perf_counter() - began
        if (start + BATCH) % 100_000 == 0:
            say(f"  appended {start + BATCH} events, {spent:.1f} s")
    with factory.begin() as session:  # a head over the tail too, outside the clock
        ledger.sign_head(session, key, T0)
    return spent


def time_plain_inserts(factory: sessionmaker[Session], leaves: int) -> float:
    """Seconds for plain executemany inserts of the same rows, same transactions."""
    table = insert(TraceEvent.__table__)  # type: ignore[arg-type]
    zero = bytes(32)
    spent = 0.0
    for start in range(0, leaves, BATCH):
        events = [event(n) for n in range(start, min(leaves, start + BATCH))]
        began = time.perf_counter()
        rows = [{"seq": start + i, "event_id": e["eventID"], "event_type": e["type"],
                 "event_time": datetime.fromisoformat(e["eventTime"]),
                 "biz_step": e["bizStep"], "source": "bench", "document": json.dumps(e),
                 "leaf_hash": zero, "recorded_at": T0} for i, e in enumerate(events)]
        with factory.begin() as session:
            session.execute(table, rows)
        spent += time.perf_counter() - began
    return spent


def bench_append(work: Path, sizes: Sizes, key: Ed25519PrivateKey) -> tuple[Figures,
                                                                            sessionmaker[Session]]:
    """Ledger appends against plain inserts; returns the figures and the ledger database."""
    documents = [ledger.canonical_json(event(n)) for n in range(1000)]
    baseline_s = time_plain_inserts(fresh_database(work, "plain"), sizes.leaves)
    say(f"baseline: plain inserts {sizes.leaves / baseline_s:,.0f} events/s; ledger appends…")
    factory = fresh_database(work, "ledger")
    append_s = time_append(factory, sizes.leaves, key)
    figures = {"append_per_s": round(sizes.leaves / append_s, 1),
               "append_baseline_per_s": round(sizes.leaves / baseline_s, 1),
               "append_ratio": round(baseline_s / append_s, 3),
               "append_s": round(append_s, 2), "append_baseline_s": round(baseline_s, 2),
               "document_bytes": round(sum(len(d.encode()) for d in documents) / 1000),
               "heads_signed": -(-sizes.leaves // SIGN_EVERY)}
    say(f"append: {figures}")
    return figures, factory


def bench_proofs(factory: sessionmaker[Session], leaves: int) -> Figures:
    """Inclusion proofs at 1,000,000 leaves (pure tree) and through the ledger (database)."""
    began = time.perf_counter()
    tree = MerkleTree(leaf_hash(n.to_bytes(8, "big")) for n in range(PROOF_LEAVES))
    build_s = time.perf_counter() - began
    rng = random.Random(7)
    tree_ns, sha_ns = [], []
    document = ledger.canonical_json(event(1)).encode()
    for _ in range(PROOFS):
        index = rng.randrange(PROOF_LEAVES)
        began_ns = time.perf_counter_ns()
        tree.inclusion_proof(index)
        tree_ns.append(time.perf_counter_ns() - began_ns)
        began_ns = time.perf_counter_ns()
        leaf_hash(document)
        sha_ns.append(time.perf_counter_ns() - began_ns)
    db_ns = []
    with factory() as session:
        ledger.inclusion_proof(session, 0, leaves)  # fills the cache (not measured)
        for _ in range(PROOFS):
            seq = rng.randrange(leaves)
            began_ns = time.perf_counter_ns()
            ledger.inclusion_proof(session, seq, leaves)
            db_ns.append(time.perf_counter_ns() - began_ns)
    sha_ms = percentile_ms(sha_ns, 50)
    figures = {"proof_ms": percentile_ms(tree_ns, 99), "proof_p50_ms": percentile_ms(tree_ns, 50),
               "proof_leaves": PROOF_LEAVES, "proof_db_p50_ms": percentile_ms(db_ns, 50),
               "proof_db_p99_ms": percentile_ms(db_ns, 99), "proof_db_leaves": leaves,
               "proof_baseline_sha256_ms": sha_ms,
               "proof_ratio": round(percentile_ms(tree_ns, 50) / max(sha_ms, 1e-6), 1),
               "tree_build_s": round(build_s, 2)}
    say(f"proofs: {figures}")
    return figures


def bench_verify(factory: sessionmaker[Session], leaves: int, key: Ed25519PrivateKey) -> Figures:
    """verify_log over the whole database against hashing the same documents."""
    began = time.perf_counter()
    with factory() as session:
        report = ledger.verify_log(session, key.public_key())
    verify_s = time.perf_counter() - began
    if not report.ok or report.events != leaves:
        raise RuntimeError(f"the benchmark's own log does not verify: {report.summary()}")
    began = time.perf_counter()
    with factory() as session:
        for document, _ in session.execute(select(TraceEvent.document, TraceEvent.leaf_hash)
                                           .execution_options(yield_per=10_000)):
            hashlib.sha256(b"\x00" + document.encode()).digest()
    stream_s = time.perf_counter() - began
    with factory() as session:
        documents = [d.encode() for d in session.scalars(select(TraceEvent.document))]
    began = time.perf_counter()
    for data in documents:
        hashlib.sha256(b"\x00" + data).digest()
    hash_s = time.perf_counter() - began
    figures = {"verify_s": round(verify_s, 2), "verify_heads": report.heads,
               "verify_baseline_hash_s": round(hash_s, 3),
               "verify_stream_hash_s": round(stream_s, 2),
               "verify_ratio": round(verify_s / hash_s, 1)}
    say(f"verify: {figures}")
    return figures


def run(sizes: Sizes) -> Figures:
    """Run the benchmark in a scratch directory; return the report."""
    started = time.perf_counter()
    key = Ed25519PrivateKey.generate()
    figures: Figures = {"mode": sizes.mode, "cpu_count": os.cpu_count(), "leaves": sizes.leaves,
                        "batch": BATCH, "sign_every": SIGN_EVERY, "database": "sqlite"}
    with tempfile.TemporaryDirectory(prefix="coldloop-bench-ledger-") as tmp:
        appended, factory = bench_append(Path(tmp), sizes, key)
        figures |= appended
        figures |= bench_proofs(factory, sizes.leaves)
        figures |= bench_verify(factory, sizes.leaves, key)
        factory.kw["bind"].dispose()
    figures["elapsed_s"] = round(time.perf_counter() - started, 1)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, run the benchmark, print the JSON line last."""
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about a minute, 100,000 events")
    args = parser.parse_args(argv)
    figures = run(QUICK if args.quick else FULL)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
