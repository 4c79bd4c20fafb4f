"""An item's trace from partners' EPCIS documents, truck logs and the hub's own records."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from firmware_sim import epcis_docs
from firmware_sim.coldchain import generate_history
from firmware_sim.demo import seed_hub
from firmware_sim.scenario import Complaint, Scenario, generate
from hub import epcis, trucks
from hub.epcis import EpcisError
from hub.errors import Conflict, NotFound
from hub.models import CustodyRecord, GradeRecord, Item, Scan
from hub.trace import export_events, import_document, item_chain, item_trace, sync_hub_records
from hub.trace_models import TraceEvent

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(hub_db: sessionmaker[Session]) -> Scenario:
    scenario = generate(3, 120)
    seed_hub(hub_db, scenario)
    return scenario


def with_fault(scenario: Scenario, fault: str, index: int = 0) -> Complaint:
    complaint = scenario.complaints[index]
    history = generate_history(random.Random(7), complaint.item.product.family,
                               complaint.item.packed_at, complaint.order.delivered_at, fault)
    return dataclasses.replace(complaint, history=history)


def record(factory: sessionmaker[Session], complaint: Complaint, *, truck_log: bool = True,
           skip: tuple[str, ...] = ()) -> None:
    """What reaches the hub: partners' documents, and the driver's upload of the truck log."""
    with factory.begin() as session:
        for sender, doc in epcis_docs.documents(complaint, NOW):
            if sender not in skip:
                import_document(session, json.dumps(doc), name=f"{sender}.jsonld", now=NOW)
        if truck_log:
            truck = next(s for s in complaint.history.segments if s.custodian == "truck")
            trucks.store_truck_log(
                session, truck_id=epcis_docs.truck_id(complaint), upload="route-1", now=NOW,
                readings=[trucks.TruckReading("main", at, temp) for at, temp in truck.readings])


@pytest.mark.parametrize(("fault", "party"), [
    ("supplier_warm", "supplier"), ("warehouse_door", "warehouse"),
    ("truck_reefer", "delivery"), ("customer_doorstep", "customer")])
def test_each_fault_is_traced_to_its_party(hub_db: sessionmaker[Session], world: Scenario,
                                           fault: str, party: str) -> None:
    complaint = with_fault(world, fault)
    record(hub_db, complaint)

    with hub_db() as session:
        trace = item_trace(session, complaint.item.item_id)

    assert trace.attribution is not None and trace.report is not None
    assert trace.attribution.party == party, trace.attribution.summary
    assert [s.party for s in trace.chain.spans] == ["supplier", "warehouse", "delivery",
                                                    "customer"]
    assert 0 < trace.attribution.confidence <= 1
    # the bag's logger stops two hours after delivery: the rest is a gap, said out loud
    assert any(r.code == "record_gap" and "customer" in r.text
               for r in trace.attribution.reasons)


def test_the_truck_segment_uses_the_uploaded_log(hub_db: sessionmaker[Session],
                                                 world: Scenario) -> None:
    complaint = with_fault(world, "truck_reefer")
    record(hub_db, complaint)
    truck = next(s for s in complaint.history.segments if s.custodian == "truck")

    with hub_db() as session:
        chain = item_chain(session, complaint.item.item_id)

    delivery = chain.spans[2]
    assert delivery.sensor.source == f"truck:{epcis_docs.truck_id(complaint)}"
    assert [t for _, t in delivery.readings] == [t for _, t in truck.readings]
    assert chain.qc_checks and chain.qc_checks[0].party == "warehouse"


def test_a_missing_truck_log_is_a_reason_not_a_silent_pass(hub_db: sessionmaker[Session],
                                                           world: Scenario) -> None:
    complaint = with_fault(world, "truck_reefer")
    record(hub_db, complaint, truck_log=False)

    with hub_db() as session:
        trace = item_trace(session, complaint.item.item_id)

    assert trace.attribution is not None and trace.report is not None
    assert trace.report.segments[2].n_readings == 0
    assert trace.attribution.party != "delivery" or trace.attribution.confidence < 0.5
    texts = " ".join(r.text for r in trace.attribution.reasons)
    assert "no temperature record" in texts


def test_hub_records_join_the_ledger_once_and_end_the_forward_chain(
        hub_db: sessionmaker[Session], world: Scenario) -> None:
    complaint = with_fault(world, "none")
    record(hub_db, complaint)
    item = complaint.item
    picked = (complaint.at + timedelta(minutes=30)).replace(microsecond=0)  # EPCIS: ms
    with hub_db.begin() as session:
        session.add(CustodyRecord(message_id="driver:9", item_id=item.item_id,
                                  action="picked_up", actor="driver-07", location="route 12",
                                  ts=picked))
        session.add(Scan(message_id="gw-1:1:5", gateway_id="gw-1", station="st-1",
                         item_id=item.item_id, tag_uid=item.tag_uid, lot=item.lot,
                         gtin=item.product.gtin, core_temp_c=6.5,
                         ts=picked + timedelta(hours=1), clock="synced"))
        session.flush()
        session.add(GradeRecord(message_id="gw-1:1:6", gateway_id="gw-1", station="st-1",
                                item_id=item.item_id, scan_id="gw-1:1:5", grade="discount",
                                model_version="rule-1", scores={}, features={},
                                ts=picked + timedelta(hours=1), clock="synced"))
    with hub_db.begin() as session:
        first = sync_hub_records(session, NOW)
    with hub_db.begin() as session:
        again = sync_hub_records(session, NOW)
    with hub_db() as session:
        steps = [(e.biz_step, e.source) for e in session.scalars(
            select(TraceEvent).where(TraceEvent.source == "hub").order_by(TraceEvent.seq))]
        chain = item_chain(session, item.item_id)

    assert (first, again) == (3, 0)
    assert steps == [("collecting", "hub"), ("inspecting", "hub"), ("inspecting", "hub")]
    assert chain.spans[-1].party == "customer"
    assert chain.spans[-1].end == picked  # the return leg is not the customer's time
    assert len(chain.events) == 11  # 8 partner events + 3 hub events


def test_export_is_valid_epcis_with_the_items_events(hub_db: sessionmaker[Session],
                                                     world: Scenario) -> None:
    complaint = with_fault(world, "none")
    other = with_fault(world, "none", index=1)
    record(hub_db, complaint)
    record(hub_db, other)

    with hub_db() as session:
        events = export_events(session, item_ids=[complaint.item.item_id])
        with pytest.raises(NotFound, match="no such item: NOPE"):
            export_events(session, item_ids=["NOPE"])

    doc = epcis.document(events, created=NOW)
    assert epcis.problems(doc) == []
    assert len(events) == 8
    item_epc = epcis.item_epc(complaint.item.product.gtin, complaint.item.item_id)
    assert all(item_epc in e["epcList"] for e in events)


def test_an_invalid_import_is_refused_with_the_schema_error_and_stores_nothing(
        hub_db: sessionmaker[Session], world: Scenario) -> None:
    _, doc = epcis_docs.documents(with_fault(world, "none"), NOW)[0]
    doc["epcisBody"]["eventList"][1]["eventTime"] = "last tuesday"

    with hub_db.begin() as session, pytest.raises(EpcisError) as caught:
        import_document(session, json.dumps(doc), name="supplier.jsonld", now=NOW)

    assert "epcisBody/eventList/1/eventTime: 'last tuesday' is not a 'date-time'" in str(
        caught.value)
    with hub_db() as session:
        assert session.scalars(select(TraceEvent)).all() == []


def test_a_changed_resend_of_an_event_is_a_conflict(hub_db: sessionmaker[Session],
                                                    world: Scenario) -> None:
    complaint = with_fault(world, "none")
    _, doc = epcis_docs.documents(complaint, NOW)[0]
    with hub_db.begin() as session:
        import_document(session, json.dumps(doc), name="supplier.jsonld", now=NOW)
        import_document(session, json.dumps(doc), name="supplier.jsonld", now=NOW)  # same: ok
    doc["epcisBody"]["eventList"][0]["disposition"] = "damaged"
    with hub_db.begin() as session, pytest.raises(Conflict, match="never changed"):
        import_document(session, json.dumps(doc), name="supplier.jsonld", now=NOW)


def test_an_item_without_records_has_no_chain_to_judge(hub_db: sessionmaker[Session],
                                                       world: Scenario) -> None:
    with hub_db() as session:
        trace = item_trace(session, world.complaints[0].item.item_id)
        with pytest.raises(NotFound):
            item_trace(session, "NOPE")
    assert (trace.report, trace.attribution, trace.chain.spans) == (None, None, [])


def test_an_unknown_product_family_is_a_note_not_a_crash(hub_db: sessionmaker[Session],
                                                          world: Scenario) -> None:
    complaint = with_fault(world, "truck_reefer")
    record(hub_db, complaint)
    with hub_db.begin() as session:
        session.get_one(Item, complaint.item.item_id).family = "durian"

    with hub_db() as session:
        trace = item_trace(session, complaint.item.item_id)

    assert (trace.report, trace.attribution) == (None, None)
    assert len(trace.chain.spans) == 4
    assert any("product family 'durian' has no cold-chain parameters" in n
               for n in trace.chain.notes)
