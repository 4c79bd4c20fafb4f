"""The EPCIS documents partners would send the hub about a complained-of item.

A scenario's cold-chain history is what really happened; these are the records of it that
reach the hub from outside: the supplier's (packing, dispatch with its logger's readings), the
warehouse's (receipt with intake QC, storage readings from the cold room, loading onto a
truck), and the carrier's (arrival at the customer, and at pickup the readings of the insulated
bag's logger). The truck's own temperature log reaches the hub separately, uploaded by the
driver's device. All are valid EPCIS 2.0 (hub/epcis.py builds them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from firmware_sim.coldchain import Segment
from firmware_sim.scenario import Complaint
from hub import epcis
from protocols.coldchain import FAMILIES

Document = dict[str, Any]


def truck_id(complaint: Complaint) -> str:
    """The reefer truck that delivered the complaint's order (one route per order)."""
    return f"TRK-{complaint.order.order_id}"


def supplier_id(complaint: Complaint) -> str:
    """The farm or packhouse that packed the item."""
    return f"farm-{complaint.item.product.gtin[-5:-1]}"


def documents(complaint: Complaint, created: datetime) -> list[tuple[str, Document]]:
    """(sender, document) for each partner that handled the complaint's item."""
    item, history = complaint.item, complaint.history
    segments = {s.custodian: s for s in history.segments}
    epc = epcis.item_epc(item.product.gtin, item.item_id)
    key = f"{complaint.order.order_id}:{item.item_id}"
    supplier = epcis.location("supplier", supplier_id(complaint))
    warehouse = epcis.location("warehouse", "wh-1")
    truck = epcis.location("delivery", truck_id(complaint))
    customer = epcis.location("customer", complaint.order.customer_id)

    def event(kind: str, at: datetime, step: str, place: str, **extra: Any) -> dict[str, Any]:
        return epcis.object_event(event_id=f"urn:coldloop:partner:{key}:{kind}", at=at,
                                  epcs=[epc], biz_step=step, read_point=place,
                                  biz_location=place, **extra)

    farm, store, ride, home = (segments[c] for c in ("supplier", "warehouse", "truck",
                                                     "customer"))
    limit = FAMILIES[item.product.family].limit_c if item.product.family in FAMILIES else 4.0
    intake = store.readings[0][1]
    qc = "conformant" if intake <= limit else "non_conformant"
    return [
        ("supplier", epcis.document([
            event("packed", farm.start, "commissioning", supplier, action="ADD",
                  disposition="active"),
            event("shipped", farm.end, "shipping", supplier, disposition="in_transit",
                  sensors=[_logger(farm, f"urn:coldloop:logger:{supplier_id(complaint)}")]),
        ], created=created)),
        ("warehouse", epcis.document([
            event("received", store.start, "receiving", warehouse,
                  disposition="in_progress"),
            event("intake-qc", store.start + timedelta(minutes=5), "inspecting", warehouse,
                  disposition=qc, sensors=[_core(store.start + timedelta(minutes=5), intake)]),
            event("stored", store.end, "storing", warehouse, disposition="sellable_accessible",
                  sensors=[_logger(store, "urn:coldloop:logger:wh-1-room-3")]),
            event("loaded", ride.start, "loading", truck, disposition="in_transit"),
        ], created=created)),
        ("carrier", epcis.document([
            event("delivered", home.start, "arriving", customer, disposition="in_progress"),
            event("bag-logger", complaint.at, "sensor_reporting", customer,
                  sensors=[_logger(home, f"urn:coldloop:bag:{complaint.order.order_id}")]),
        ], created=created)),
    ]


def _logger(segment: Segment, device: str) -> dict[str, Any]:
    return epcis.temperature_element(start=segment.start, end=segment.end, device=device,
                                     readings=list(segment.readings))


def _core(at: datetime, temp: float) -> dict[str, Any]:
    return {"sensorMetadata": {"time": epcis.timestamp(at), "deviceID": "urn:coldloop:qc-probe"},
            "sensorReport": [{"type": "Temperature", "value": temp, "uom": "CEL"}]}


def all_documents(complaints: Sequence[Complaint], created: datetime
                  ) -> list[tuple[str, Document]]:
    """Every partner document of a scenario's complaints."""
    return [doc for complaint in complaints for doc in documents(complaint, created)]
