"""Seeded cold-chain histories of items: who held them, for how long, at what temperature.

Each history is split at custody changes (supplier -> warehouse -> truck -> customer) and
sampled every few minutes. Setpoints follow USDA storage tables (COLDCHAIN.md); faults are
the ones that produce complaints: a warm supplier intake, a warehouse door left open, a truck
whose reefer failed, and a customer who left the bag on the doorstep.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

CUSTODIANS = ("supplier", "warehouse", "truck", "customer")
# Normal holding temperature of each custodian, by product family (°C).
SETPOINTS: dict[str, tuple[float, float, float, float]] = {
    "berries": (1.0, 1.0, 2.0, 6.0),
    "leafy": (1.0, 1.0, 2.5, 6.0),
    "tropical": (13.5, 13.5, 13.5, 18.0),  # bananas: chilling injury below 12-13 °C
    "fruit_veg": (12.5, 12.5, 12.5, 18.0),
    "poultry": (1.5, 2.0, 3.0, 6.0),
}
FAULTS = ("none", "supplier_warm", "warehouse_door", "truck_reefer", "customer_doorstep")
# A failed reefer warms the load at least this long before delivery (or the whole leg, when
# shorter): a shorter excursion stays inside the 30-minute tolerance and would leave the
# complaint it was seeded for unexplained.
REEFER_LEAD_S = 3600.0


@dataclass(frozen=True)
class Segment:
    """One custodian's time with the item, with its sampled temperatures."""

    custodian: str
    start: datetime
    end: datetime
    readings: tuple[tuple[datetime, float], ...]

    @property
    def max_c(self) -> float:
        """Highest reading of the segment."""
        return max(temp for _, temp in self.readings)


@dataclass(frozen=True)
class ColdChainHistory:
    """An item's custody segments and the fault (if any) the generator put into them."""

    segments: tuple[Segment, ...]
    fault: str


def generate_history(rng: random.Random, family: str, packed_at: datetime,
                     delivered_at: datetime, fault: str, sample_min: int = 15
                     ) -> ColdChainHistory:
    """Generate a history from packing to delivery (plus 2 h at the customer's)."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")
    setpoints = SETPOINTS.get(family, SETPOINTS["berries"])
    span = (delivered_at - packed_at).total_seconds()
    # Supplier 15 %, warehouse 60 %, truck 25 % of the time before delivery.
    cuts = [packed_at, packed_at + timedelta(seconds=span * 0.15),
            packed_at + timedelta(seconds=span * 0.75), delivered_at,
            delivered_at + timedelta(hours=2)]
    segments = []
    for index, custodian in enumerate(CUSTODIANS):
        start, end = cuts[index], cuts[index + 1]
        segments.append(Segment(custodian, start, end, tuple(
            _sample(rng, setpoints[index], start, end, sample_min,
                    fault if _fault_owner(fault) == custodian else "none"))))
    return ColdChainHistory(tuple(segments), fault)


def _fault_owner(fault: str) -> str:
    return {"supplier_warm": "supplier", "warehouse_door": "warehouse",
            "truck_reefer": "truck", "customer_doorstep": "customer"}.get(fault, "")


def _sample(rng: random.Random, setpoint: float, start: datetime, end: datetime,
            every_min: int, fault: str) -> list[tuple[datetime, float]]:
    total = (end - start).total_seconds()
    steps = max(1, int(total // (every_min * 60)))
    fault_at = rng.uniform(0.2, 0.6)  # where in the segment the fault starts
    if fault == "truck_reefer":  # a failure a complaint is about: warming long before delivery
        fault_at = min(fault_at, max(0.0, 1 - REEFER_LEAD_S / total))
    out = []
    for i in range(steps + 1):
        frac = i / steps
        temp = setpoint + 0.4 * math.sin(2 * math.pi * i / 3) + rng.gauss(0, 0.15)
        if fault == "supplier_warm":
            temp += 9.0 * math.exp(-3 * frac)  # field heat never pulled down properly
        elif fault == "warehouse_door" and fault_at <= frac < fault_at + 0.1:
            temp += 7.0
        elif fault == "truck_reefer" and frac >= fault_at:
            temp += min(12.0, 20.0 * (frac - fault_at))  # compressor failed: warms steadily
        elif fault == "customer_doorstep":
            temp += 14.0 * (1 - math.exp(-4 * frac))
        out.append((start + timedelta(seconds=total * frac), round(temp, 2)))
    return out
