"""The traceability ledger on a real database: appends, heads, proofs, tampering, evidence."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from sqlalchemy import MetaData, func, inspect, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from hub import ledger
from hub.db import alembic_config, make_engine, migrate, session_factory
from hub.errors import Conflict, InvalidInput, NotFound
from hub.evidence import SignedHead, head_message, key_id, raw_public_key, verify_bundle
from hub.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from hub.trace_models import LedgerHead, TraceEvent, TraceEventEpc
from tests.hub.ledger_helpers import (
    T0,
    append,
    engine_of,
    event,
    fill,
    row,
    signing_key,
    sql,
)

KEY = signing_key()
PUBLIC = KEY.public_key()


def verify(factory: sessionmaker[Session], **kwargs: Any) -> ledger.VerifyReport:
    with factory() as session:
        return ledger.verify_log(session, PUBLIC, **kwargs)


# --- appending ---------------------------------------------------------------------------------


def test_events_get_consecutive_seqs_canonical_documents_and_epcs(
        hub_db: sessionmaker[Session]) -> None:
    entries = append(hub_db, [event(0), event(1), event(2)])
    assert [(e.seq, e.new) for e in entries] == [(0, True), (1, True), (2, True)]
    first = entries[0]
    assert first.document == json.dumps(event(0), sort_keys=True, separators=(",", ":"),
                                        ensure_ascii=False)
    assert "Fraises — 500 g" in first.document
    assert first.leaf_hash == leaf_hash(first.document.encode("utf-8"))
    assert (first.event_type, first.biz_step, first.source) == ("ObjectEvent", "shipping", "hub")
    assert first.event_time == T0
    with hub_db() as session:
        stored = session.get(TraceEvent, 1)
        assert stored is not None and stored.document == entries[1].document
        epcs = session.scalars(select(TraceEventEpc.epc).where(TraceEventEpc.seq == 1)
                               .order_by(TraceEventEpc.epc)).all()
    assert epcs == ["urn:epc:class:lgtin:0690123.456789.L2611",
                    "urn:epc:id:sgtin:0690123.456789.2", "urn:epc:id:sgtin:0690123.456789.3"]


def test_identifiers_of_aggregation_and_transformation_events() -> None:
    aggregation = {"parentID": "urn:epc:id:sscc:0614141.1234567890",
                   "childEPCs": ["urn:epc:id:sgtin:0614141.107346.2017"],
                   "childQuantityList": [{"epcClass": "urn:epc:idpat:sgtin:4012345.098765.*",
                                          "quantity": 10}]}
    assert ledger.identifiers(aggregation) == [
        "urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sscc:0614141.1234567890",
        "urn:epc:idpat:sgtin:4012345.098765.*"]
    transformation = {"inputEPCList": ["a", "b"], "outputEPCList": ["c", "a"],
                      "inputQuantityList": [{"epcClass": "k"}], "outputQuantityList": []}
    assert ledger.identifiers(transformation) == ["a", "b", "c", "k"]


def test_appending_the_same_event_again_is_idempotent(hub_db: sessionmaker[Session]) -> None:
    first = append(hub_db, [event(0), event(1)])
    again = append(hub_db, [event(1), event(2), event(1)])
    assert [(e.seq, e.new) for e in again] == [(1, False), (2, True), (1, False)]
    assert again[0].document == first[1].document and again[0].leaf_hash == first[1].leaf_hash
    with hub_db() as session:
        assert ledger.ledger_size(session) == 3


def test_an_event_id_with_another_document_is_a_conflict(hub_db: sessionmaker[Session]) -> None:
    append(hub_db, [event(0)])
    with pytest.raises(Conflict, match="already in the ledger with a different document"):
        append(hub_db, [event(1), event(0, temp=9.0)])
    with pytest.raises(Conflict, match="given twice with different documents"):
        append(hub_db, [event(5), event(5, temp=9.0)])
    with hub_db() as session:
        assert ledger.ledger_size(session) == 1  # nothing of the refused batches


@pytest.mark.parametrize(("change", "message"), [
    ({"eventID": None}, "event 0 has no eventID"),
    ({"eventID": "  "}, "event 0 has no eventID"),
    ({"eventID": "x" * 201}, "eventID is longer than 200"),
    ({"type": None}, "has no type"),
    ({"eventTime": None}, "has no eventTime"),
    ({"eventTime": "yesterday"}, "eventTime 'yesterday' is not an ISO 8601"),
    ({"eventTime": "2026-11-20T09:30:00"}, "has no time zone offset"),
    ({"eventTime": "0001-01-01T00:00:00+01:00"}, "eventTime .* outside the accepted range"),
    ({"eventTime": "2100-01-01T00:00:00Z"}, "eventTime .* outside the accepted range"),
    ({"bizStep": 7}, "has no bizStep"),
    ({"epcList": "urn:epc:id:sgtin:1.2.3"}, "epcList is a str, not a list"),
    ({"epcList": ["ok", 5]}, r"epcList\[1\] must be an identifier"),
    ({"quantityList": [{"quantity": 2}]}, r"quantityList\[0\].epcClass must be"),
    ({"parentID": ""}, "parentID must be an identifier"),
    ({"eventID": "urn:x\x00"}, "eventID holds a NUL character"),  # PostgreSQL text refuses it
    ({"epcList": ["urn:epc:\x00"]}, r"epcList\[0\] must be an identifier .*\(no NUL\)"),
    ({"note": "\ud800"}, "is not JSON data"),  # a lone surrogate is no UTF-8
    ({"value": float("nan")}, "is not JSON data"),
    ({"value": object()}, "is not JSON data"),
])
def test_malformed_events_are_refused_naming_the_problem(
        hub_db: sessionmaker[Session], change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        append(hub_db, [event(0, **change)])
    with hub_db() as session:
        assert ledger.ledger_size(session) == 0


def test_not_an_object_and_bad_source_are_refused(hub_db: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidInput, match="event 1 is a list, not a JSON object"):
        append(hub_db, [event(0), []])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match="source must be 1 to 64"):
        append(hub_db, [event(0)], source="")
    assert append(hub_db, []) == []


def test_concurrent_appenders_get_contiguous_seqs(hub_db: sessionmaker[Session],
                                                  database_url: str) -> None:
    """Two writers with their own engines (as two hub processes) append interleaved."""
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(offset: int) -> None:
        engine = make_engine(database_url)
        try:
            factory = session_factory(engine)
            start.wait()
            for b in range(8):
                append(factory, [event(offset + b * 25 + i) for i in range(25)])
        except BaseException as err:  # reported by the test thread
            errors.append(err)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=writer, args=(n * 10_000,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with hub_db() as session:
        seqs = session.scalars(select(TraceEvent.seq).order_by(TraceEvent.seq)).all()
    assert seqs == list(range(400))
    with hub_db.begin() as session:
        ledger.sign_head(session, KEY, T0)
    assert verify(hub_db).ok


def test_an_appender_waits_for_the_ledger_lock(hub_db: sessionmaker[Session],
                                              database_url: str) -> None:
    """While one transaction appends, another cannot even read the next seq."""
    other = make_engine(database_url, connect_args={"timeout": 0.1}) \
        if database_url.startswith("sqlite") else make_engine(database_url)
    try:
        with hub_db.begin() as holder:
            ledger.append_events(holder, [event(0)], source="hub", now=T0)
            with session_factory(other)() as waiter, pytest.raises(OperationalError):
                if other.dialect.name == "postgresql":
                    waiter.execute(select(func.set_config("lock_timeout", "100ms", True)))
                ledger.append_events(waiter, [event(1)], source="hub", now=T0)
    finally:
        other.dispose()


# --- heads and proofs ------------------------------------------------------------------------


def test_ed25519_vector_and_head_encoding() -> None:
    assert raw_public_key(PUBLIC).hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert KEY.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3"
        "9701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    root = bytes(range(32))
    assert head_message(5, root, 1_700_000_000_123) == (
        b"coldloop-tree-head-v1\n" + bytes.fromhex("0000000000000005") + root
        + bytes.fromhex("0000018bcfe5687b"))
    assert key_id(PUBLIC) == key_id(raw_public_key(PUBLIC)) == "21fe31dfa154a261626bf854046fd227"


def test_signed_heads_cover_the_log_and_are_not_repeated(hub_db: sessionmaker[Session]) -> None:
    with hub_db.begin() as session:
        empty = ledger.sign_head(session, KEY, T0)
    assert (empty.tree_size, bytes(empty.root_hash).hex()) == (
        0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    entries = append(hub_db, [event(i) for i in range(7)], KEY)
    with hub_db.begin() as session:
        head = ledger.latest_head(session)
        assert head is not None and head.tree_size == 7
        assert ledger.sign_head(session, KEY, T0 + timedelta(hours=1)) is head  # nothing new
    assert bytes(head.root_hash) == MerkleTree([e.leaf_hash for e in entries]).root()
    signed = ledger.signed_head(head)
    assert signed.problems(PUBLIC) == []
    assert signed.signed_at == T0 + timedelta(minutes=1)
    assert signed.key_id == key_id(PUBLIC) and len(signed.key_id) == 32


def test_heads_are_signed_when_due(hub_db: sessionmaker[Session]) -> None:
    def due(count: int, minutes: float) -> int | None:
        with hub_db.begin() as session:
            head = ledger.sign_head_if_due(session, KEY, T0 + timedelta(minutes=minutes),
                                           every=10, every_s=600)
            return None if head is None else head.tree_size

    assert due(0, 0) is None  # nothing to sign
    append(hub_db, [event(i) for i in range(3)])
    assert due(3, 0) == 3  # the first head
    append(hub_db, [event(i) for i in range(3, 8)])
    assert due(8, 5) is None  # 5 events, 5 minutes: not yet
    assert due(8, 10) == 8  # 10 minutes since the last head
    append(hub_db, [event(i) for i in range(8, 18)])
    assert due(18, 11) == 18  # 10 events


def test_proofs_from_the_database_verify_against_signed_heads(
        hub_db: sessionmaker[Session]) -> None:
    fill(hub_db, 4, 9, KEY)  # heads at 9, 18, 27, 36
    with hub_db() as session:
        heads = {h.tree_size: bytes(h.root_hash) for h in session.scalars(select(LedgerHead))}
        leaves = {e.seq: bytes(e.leaf_hash) for e in session.scalars(select(TraceEvent))}
        for size, root in heads.items():
            for seq in (0, size // 2, size - 1):
                verify_inclusion(leaves[seq], seq, size,
                                 ledger.inclusion_proof(session, seq, size), root)
        verify_consistency(9, 36, heads[9], heads[36], ledger.consistency_proof(session, 9, 36))
        with pytest.raises(InvalidInput, match="the ledger holds 36 events, not 37"):
            ledger.inclusion_proof(session, 36, 37)
        with pytest.raises(InvalidInput, match="no inclusion proof of seq 9 in a tree of 9"):
            ledger.inclusion_proof(session, 9, 9)
        with pytest.raises(InvalidInput, match="no consistency proof from size 27 to 18"):
            ledger.consistency_proof(session, 27, 18)


def test_the_tree_cache_holds_committed_leaves_only(hub_db: sessionmaker[Session]) -> None:
    cache = ledger.TreeCache()
    engine = engine_of(hub_db)
    append(hub_db, [event(i) for i in range(5)])
    assert cache.committed(engine).size == 5
    with hub_db.begin() as session:
        ledger.append_events(session, [event(i) for i in range(5, 9)], source="hub", now=T0)
        assert cache.committed(engine).size == 5  # not committed yet
        head = ledger.sign_head(session, KEY, T0)  # the root over the uncommitted tail
        assert head.tree_size == 9
        assert ledger.inclusion_proof(session, 7, 9)
        session.rollback()
    append(hub_db, [event(i) for i in range(100, 106)], KEY)  # other events at seqs 5..10
    assert cache.committed(engine).size == 11
    assert verify(hub_db).ok


def test_the_cache_starts_over_when_the_database_is_not_what_it_cached(
        hub_db: sessionmaker[Session]) -> None:
    cache = ledger.TreeCache()
    engine = engine_of(hub_db)
    append(hub_db, [event(i) for i in range(4)])
    before = cache.committed(engine).root()
    sql(hub_db, "DELETE FROM trace_events WHERE seq = 3")
    append(hub_db, [event(50)])  # a different event at seq 3
    after = cache.committed(engine)
    assert after.size == 4 and after.root() != before
    with hub_db() as session:
        assert after.root() == MerkleTree(
            [bytes(h) for h in session.scalars(select(TraceEvent.leaf_hash)
                                               .order_by(TraceEvent.seq))]).root()


# --- verifying the whole log, and tampering with it ----------------------------------------------


def test_an_untouched_log_verifies(hub_db: sessionmaker[Session]) -> None:
    fill(hub_db, 3, 10, KEY)
    append(hub_db, [event(30), event(31)])
    report = verify(hub_db)
    assert report.ok and report.summary() == "ok, 32 events, 3 heads"
    assert report.notes == ["2 events after the last signed head (size 30) are not covered "
                            "by a signature yet"]


def test_an_edited_temperature_is_named(hub_db: sessionmaker[Session]) -> None:
    fill(hub_db, 3, 10, KEY)
    sql(hub_db, "UPDATE trace_events SET document = replace(document, :was, :now) "
                "WHERE seq = 14", was='"value":3.5', now='"value":2.5')
    report = verify(hub_db)
    assert not report.ok
    assert str(report.first) == (f"seq 14 (eventID {event(14)['eventID']}): document does not "
                                 "match its leaf hash")


def test_a_deleted_event_is_named(hub_db: sessionmaker[Session]) -> None:
    fill(hub_db, 3, 10, KEY)
    sql(hub_db, "DELETE FROM trace_events WHERE seq = 21")
    report = verify(hub_db)
    assert report.first == ledger.Problem("seq 21 missing: the event was removed", seq=21)
    assert report.summary().startswith("FAILED: seq 21: seq 21 missing")


def test_two_swapped_documents_are_named(hub_db: sessionmaker[Session]) -> None:
    fill(hub_db, 3, 10, KEY)
    a, b = row(hub_db, 12), row(hub_db, 17)
    for target, source in ((12, b), (17, a)):
        sql(hub_db, "UPDATE trace_events SET document = :d, leaf_hash = :h WHERE seq = :s",
            d=source["document"], h=source["leaf_hash"], s=target)
    report = verify(hub_db)
    assert report.first is not None and report.first.seq == 12
    assert "column event_id says" in report.first.message


def test_a_consistent_reorder_is_caught_by_the_signed_head(hub_db: sessionmaker[Session]) -> None:
    """Everything of two events swapped (columns, hashes, EPC index): only the head knows."""
    fill(hub_db, 3, 10, KEY)
    a, b = row(hub_db, 12), row(hub_db, 17)
    sql(hub_db, "DELETE FROM trace_events WHERE seq IN (12, 17)")
    for seq, values in ((12, b), (17, a)):
        sql(hub_db, "INSERT INTO trace_events (seq, event_id, event_type, event_time, biz_step, "
                    "source, document, leaf_hash, recorded_at) VALUES (:seq, :event_id, "
                    ":event_type, :event_time, :biz_step, :source, :document, :leaf_hash, "
                    ":recorded_at)", **{**values, "seq": seq})
        for epc in ledger.identifiers(json.loads(values["document"])):
            sql(hub_db, "INSERT INTO trace_event_epcs (seq, epc) VALUES (:s, :e)", s=seq, e=epc)
    report = verify(hub_db)
    assert report.first is not None
    assert report.first.message == ("root at size 20 does not match the signed head: the first "
                                    "differing event is between seq 10 and seq 19")


def test_a_document_rewritten_with_its_leaf_hash_is_caught_by_the_signed_head(
        hub_db: sessionmaker[Session]) -> None:
    fill(hub_db, 3, 10, KEY)
    forged = ledger.canonical_json(event(25, temp=2.0))
    sql(hub_db, "UPDATE trace_events SET document = :d, leaf_hash = :h WHERE seq = 25",
        d=forged, h=leaf_hash(forged.encode()))
    report = verify(hub_db)
    assert str(report.first) == ("root at size 30 does not match the signed head: the first "
                                 "differing event is between seq 20 and seq 29")


def test_heads_at_every_size_narrow_it_to_one_event(hub_db: sessionmaker[Session]) -> None:
    for n in range(6):
        append(hub_db, [event(n)], KEY)
    forged = ledger.canonical_json(event(4, temp=2.0))
    sql(hub_db, "UPDATE trace_events SET document = :d, leaf_hash = :h WHERE seq = 4",
        d=forged, h=leaf_hash(forged.encode()))
    first = verify(hub_db).first
    assert first is not None and first.seq == 4
    assert first.message.endswith("seq 4 was altered, removed or reordered")


def test_events_removed_from_the_end(hub_db: sessionmaker[Session]) -> None:
    fill(hub_db, 2, 10, KEY)
    append(hub_db, [event(20), event(21)])
    sql(hub_db, "DELETE FROM trace_events WHERE seq >= 21")  # after the last head: unseen
    assert verify(hub_db).ok
    sql(hub_db, "DELETE FROM trace_events WHERE seq >= 18")  # inside a signed head
    report = verify(hub_db)
    assert str(report.first) == ("the signed head at size 20 covers 20 events but the log "
                                 "holds 18: events from seq 18 on were removed")


def test_heads_kept_outside_reveal_deleted_heads_and_truncation(
        hub_db: sessionmaker[Session]) -> None:
    fill(hub_db, 3, 10, KEY)
    with hub_db() as session:
        kept = [ledger.signed_head(h) for h in session.scalars(select(LedgerHead))]
    assert verify(hub_db, kept_heads=kept).ok
    sql(hub_db, "DELETE FROM ledger_heads WHERE tree_size = 30")
    sql(hub_db, "DELETE FROM trace_events WHERE seq >= 25")
    assert verify(hub_db).ok  # what the database alone cannot show
    report = verify(hub_db, kept_heads=kept)
    assert [str(p) for p in report.problems] == [
        "the head kept outside the database at size 30 covers 30 events but the log holds 25: "
        "events from seq 25 on were removed"]


def test_a_forged_head_and_a_foreign_key_are_named(hub_db: sessionmaker[Session]) -> None:
    fill(hub_db, 2, 5, KEY)
    with hub_db() as session:
        signature = bytearray(session.get(LedgerHead, 5).signature)  # type: ignore[union-attr]
    signature[0] ^= 1
    sql(hub_db, "UPDATE ledger_heads SET signature = :s WHERE tree_size = 5",
        s=bytes(signature))
    assert str(verify(hub_db).first) == (
        f"signed head: the signature of the head at size 5 does not verify with public key "
        f"{key_id(PUBLIC)}")
    other = Ed25519PrivateKey.generate().public_key()
    with hub_db() as session:
        report = ledger.verify_log(session, other)
    assert f"signed by key {key_id(PUBLIC)}, which is not among the given public keys" in \
        str(report.first)


def test_no_head_is_signed_over_a_log_that_left_the_previous_head(
        hub_db: sessionmaker[Session]) -> None:
    fill(hub_db, 2, 5, KEY)
    forged = ledger.canonical_json(event(2, temp=2.0))
    sql(hub_db, "UPDATE trace_events SET document = :d, leaf_hash = :h WHERE seq = 2",
        d=forged, h=leaf_hash(forged.encode()))
    ledger.TREES.clear()  # a fresh process: no memory of the leaves as they were
    append(hub_db, [event(10)])
    with hub_db.begin() as session, pytest.raises(
            Conflict, match="no longer gives the root signed at size 10"):
        ledger.sign_head(session, KEY, T0)
    sql(hub_db, "DELETE FROM trace_events WHERE seq >= 8")
    with hub_db.begin() as session, pytest.raises(
            Conflict, match="holds 8 events but a head was signed at size 10"):
        ledger.sign_head(session, KEY, T0)


def test_a_gap_stops_proofs_and_signing(hub_db: sessionmaker[Session]) -> None:
    append(hub_db, [event(i) for i in range(4)])
    sql(hub_db, "DELETE FROM trace_events WHERE seq = 1")
    with hub_db.begin() as session, pytest.raises(Conflict, match="no valid seq 1"):
        ledger.sign_head(session, KEY, T0)
    sql(hub_db, "UPDATE trace_events SET document = 'x' WHERE seq = 2")
    with hub_db.begin() as session, pytest.raises(Conflict, match=r"seq 2 .*does not match"):
        ledger.sign_head(session, KEY, T0)


# --- evidence bundles -----------------------------------------------------------------------------


def bundle_of(factory: sessionmaker[Session], seqs: list[int]) -> dict[str, Any]:
    with factory() as session:
        return ledger.evidence_bundle(session, seqs)


RAW = raw_public_key(PUBLIC)


def flipped(value: str, byte: int) -> str:
    """Hex ``value`` with one bit of byte ``byte`` flipped."""
    raw = bytearray(bytes.fromhex(value))
    raw[byte] ^= 0x01
    return raw.hex()


def test_a_bundle_verifies_offline_and_any_changed_byte_fails(
        hub_db: sessionmaker[Session]) -> None:
    fill(hub_db, 3, 7, KEY)
    bundle = json.loads(json.dumps(bundle_of(hub_db, [3, 20])))  # as read from a file
    assert verify_bundle(bundle, RAW) == []
    assert bundle["head"]["tree_size"] == 21 and len(bundle["events"]) == 2

    def fails(change: Any) -> None:
        copy = json.loads(json.dumps(bundle))
        change(copy)
        assert verify_bundle(copy, RAW) != []

    document = bundle["events"][0]["document"]
    for i in range(len(document)):
        replacement = "#" if document[i] != "#" else "$"

        def edit(b: dict[str, Any], i: int = i, replacement: str = replacement) -> None:
            text = b["events"][0]["document"]
            b["events"][0]["document"] = text[:i] + replacement + text[i + 1:]
        fails(edit)
    proof = bundle["events"][1]["inclusion_proof"]
    for k in range(len(proof)):
        for j in range(32):
            fails(lambda b, k=k, j=j: b["events"][1]["inclusion_proof"].__setitem__(
                k, flipped(b["events"][1]["inclusion_proof"][k], j)))
    for name, size in (("signature", 64), ("root_hash", 32)):
        for j in range(size):
            fails(lambda b, name=name, j=j: b["head"].__setitem__(
                name, flipped(b["head"][name], j)))
    fails(lambda b: b["head"].update(tree_size=22))
    fails(lambda b: b["head"].update(timestamp_ms=b["head"]["timestamp_ms"] + 1,
                                     signed_at=None))
    fails(lambda b: b["events"][0].update(seq=4))
    fails(lambda b: b["events"][0].update(event_id="urn:uuid:someone-else"))
    fails(lambda b: b["head"].update(signature=b["head"]["signature"].upper()))
    other = raw_public_key(Ed25519PrivateKey.generate().public_key())
    problems = verify_bundle(bundle, other)
    assert problems and f"names key {key_id(PUBLIC)}, but the given public key is" in problems[0]


def test_bundle_verification_reports_malformed_bundles() -> None:
    assert verify_bundle({}, RAW) == ["format is None, expected 'coldloop-evidence-v1'"]
    assert verify_bundle({"format": "coldloop-evidence-v1", "head": {}}, RAW) == [
        "head: signed head has no 'tree_size'"]
    assert verify_bundle({}, b"garbage")[0].startswith("public key: not an Ed25519 public key")


def test_bundles_need_a_covering_head_and_an_intact_event(hub_db: sessionmaker[Session]) -> None:
    append(hub_db, [event(i) for i in range(3)])
    with pytest.raises(NotFound, match="no signed head yet"):
        bundle_of(hub_db, [0])
    append(hub_db, [event(3)], KEY)
    append(hub_db, [event(4)])
    with pytest.raises(InvalidInput, match="seq 4 is not covered by the latest signed head"):
        bundle_of(hub_db, [1, 4])
    sql(hub_db, "UPDATE trace_events SET document = replace(document, '3.5', '1.5') "
                "WHERE seq = 2")
    with pytest.raises(Conflict, match=r"seq 2 \(.*\): its document no longer matches"):
        bundle_of(hub_db, [2])
    sql(hub_db, "DELETE FROM trace_events WHERE seq = 1")
    with pytest.raises(NotFound, match="seq 1 is not in the ledger"):
        bundle_of(hub_db, [1])


def test_signed_heads_round_trip_as_json(hub_db: sessionmaker[Session]) -> None:
    append(hub_db, [event(0)], KEY)
    with hub_db() as session:
        head = ledger.signed_head(ledger.latest_head(session))  # type: ignore[arg-type]
    assert SignedHead.from_json(json.loads(json.dumps(head.to_json()))) == head
    with pytest.raises(ValueError, match="signed_at"):
        SignedHead.from_json({**head.to_json(), "signed_at": "2020-01-01T00:00:00.000+00:00"})


# --- keys ----------------------------------------------------------------------------------------


def test_keys_are_written_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "ledger-signing-key.pem"
    key = ledger.write_signing_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert raw_public_key(ledger.load_signing_key(path).public_key()) == \
        raw_public_key(key.public_key())
    assert raw_public_key(ledger.load_public_key(ledger.public_key_path(path))) == \
        raw_public_key(key.public_key())
    with pytest.raises(Conflict, match="already exists"):
        ledger.write_signing_key(path)
    replacement = ledger.write_signing_key(path, force=True)
    kept = path.with_name(f"ledger-signing-key.{key_id(key.public_key())}.pub")
    assert raw_public_key(ledger.load_public_key(kept)) == raw_public_key(key.public_key())
    assert key_id(ledger.load_signing_key(path).public_key()) == \
        key_id(replacement.public_key())


def test_missing_or_garbage_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"no ledger signing key at .*coldloop trace keygen"):
        ledger.load_signing_key(tmp_path / "absent.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a key")
    with pytest.raises(InvalidInput, match=r"garbage\.pem is not an unencrypted PEM private key"):
        ledger.load_signing_key(garbage)
    rsa = tmp_path / "rsa.pem"
    rsa.write_bytes(generate_private_key(65537, 2048).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(InvalidInput, match=r"holds a .*RSAPrivateKey, not an Ed25519 key"):
        ledger.load_signing_key(rsa)
    with pytest.raises(InvalidInput, match="not an Ed25519 public key"):
        ledger.load_public_key(garbage)


# --- schema --------------------------------------------------------------------------------------


def test_migration_matches_the_models(hub_db: sessionmaker[Session]) -> None:
    tables = ("trace_events", "trace_event_epcs", "ledger_heads")
    only = MetaData()
    for model in (TraceEvent, TraceEventEpc, LedgerHead):
        model.__table__.to_metadata(only)  # type: ignore[attr-defined]
    with engine_of(hub_db).connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_name": lambda name, kind, _p: kind != "table" or name in tables})
        assert compare_metadata(context, only) == []


# --- GS1's own examples (tests/data/epcis, vendored with their attribution) -----------------------

GS1_EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "epcis" / "JSON"


def gs1_events(name: str) -> list[dict[str, Any]]:
    """The events of one GS1 example document."""
    document = json.loads((GS1_EXAMPLES / name).read_text("utf-8"))
    events: list[dict[str, Any]] = document["epcisBody"]["eventList"]
    return events


def test_gs1_example_events_are_appended_indexed_and_verified(
        hub_db: sessionmaker[Session]) -> None:
    names = ["Example_9.6.1-ObjectEvent.jsonld", "Example_9.6.3-AggregationEvent.jsonld",
             "Example_9.6.4-TransformationEvent.jsonld",
             "AssociationEvent/AssociationEvent-a.jsonld",
             "WithErrorDeclaration/ErrorDeclarationAndCorrectiveEvent.jsonld",
             "WithSensorData/SensorDataExample1.jsonld",
             "WithSensorData/SensorDataExample8.jsonld"]
    entries = append(hub_db, [e for name in names for e in gs1_events(name)], KEY)
    assert [e.seq for e in entries] == list(range(9))
    with hub_db() as session:
        aggregation = set(session.scalars(select(TraceEventEpc.epc)
                                          .where(TraceEventEpc.seq == 2)))
    assert aggregation == {"urn:epc:id:sscc:0614141.1234567890",
                           "urn:epc:id:sgtin:0614141.107346.2017",
                           "urn:epc:id:sgtin:0614141.107346.2018",
                           "urn:epc:idpat:sgtin:4012345.098765.*",
                           "urn:epc:class:lgtin:4012345.012345.998877"}
    assert verify(hub_db).ok
    assert verify_bundle(bundle_of(hub_db, [2, 3]), RAW) == []
    # GS1's "all possible fields" example reuses the error declaration's eventID.
    with pytest.raises(Conflict, match="urn:uuid:374d95fc-9457-4a51-bd6a-0bba133845a8"):
        append(hub_db, gs1_events("WithFullCombinationOfFields/"
                                  "object_event_all_possible_fields.jsonld"))
    with pytest.raises(InvalidInput, match="event 0 has no eventID"):
        append(hub_db, gs1_events("WithSensorData/SensorDataExample9.jsonld"))



def test_migration_0006_down_and_up(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        command.downgrade(alembic_config(database_url), "0005")
        assert not {"trace_events", "trace_event_epcs", "ledger_heads"} & set(
            inspect(engine).get_table_names())
        migrate(database_url)
        assert {"trace_events", "trace_event_epcs", "ledger_heads"} <= set(
            inspect(engine).get_table_names())
    finally:
        engine.dispose()
