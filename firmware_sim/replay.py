"""Replay a sensor capture into simulated devices under a real gateway and hub.

Events are applied in order on a virtual clock; after each one the gateway polls its devices
once, exactly as its polling loop would. A link change stops or restarts the hub's ingest (the
gateway sees the hub's retained state go offline and back) and the replay waits until the
gateway has noticed, so the same capture always produces the same messages. ``hub_digest``
summarises what the hub stored for the replayed gateway; it is equal across replays.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from edge.gateway import Gateway
from firmware_sim.capture import (
    Capture,
    CardPresented,
    CardRemoved,
    Event,
    LinkChange,
    PinChange,
    SerialBytes,
    station_of,
)
from firmware_sim.clock import VirtualClock
from firmware_sim.devices import SimulatedHardware
from firmware_sim.stack import Stack
from hub import models

SETTLE_S = 30.0  # longest wait for the gateway to notice a link change or drain its backlog


class ReplayError(RuntimeError):
    """The replay could not keep the stack in step with the capture."""


@dataclass
class ReplayResult:
    """What a replay did and what the hub ended up with."""

    events: int = 0
    scans: int = 0
    faults: int = 0
    pin_mismatches: list[str] = field(default_factory=list)
    hub_records: dict[str, int] = field(default_factory=dict)
    digest: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {"events": self.events, "scans": self.scans, "faults": self.faults,
                "pin_mismatches": self.pin_mismatches, "hub_records": self.hub_records,
                "digest": self.digest}


class Replayer:
    """Feeds a capture to a gateway built on ``SimulatedHardware`` with a ``VirtualClock``."""

    def __init__(self, capture: Capture, stack: Stack, gateway: Gateway,
                 hardware: SimulatedHardware, clock: VirtualClock) -> None:
        self.capture = capture
        self.stack = stack
        self.gateway = gateway
        self.hardware = hardware
        self.clock = clock
        self.start = capture.header.started_at

    def run(self, speed: float = 0.0,
            progress: Callable[[int], None] | None = None) -> ReplayResult:
        """Apply every event; ``speed`` > 0 paces them at that multiple of real time."""
        result = ReplayResult()
        self.clock.advance_to(self.start)
        self._wait(True)
        began = time.monotonic()
        for event in self.capture.events:
            if speed > 0:
                _pace(began + event.t / speed)
            self.clock.advance_to(self.start + timedelta(seconds=event.t))
            self._apply(event, result)
            for outcome in self.gateway.poll_once():
                result.scans += outcome.scan is not None
                result.faults += outcome.fault is not None
            result.events += 1
            if progress is not None:
                progress(1)
        self.gateway.telemetry.flush()
        if not self.gateway.uplink.wait_drained(SETTLE_S):
            raise ReplayError(f"the gateway did not drain its outbox within {SETTLE_S} s")
        if not self.stack.ingest.wait_idle(SETTLE_S):
            raise ReplayError(f"the hub did not settle within {SETTLE_S} s")
        result.hub_records, result.digest = hub_digest(self.stack.factory, self.gateway)
        return result

    def _apply(self, event: Event, result: ReplayResult) -> None:
        station = station_of(event)
        devices = self.hardware.stations[station] if station is not None else None
        if isinstance(event, CardPresented):
            devices.present_tag(event.uid, data=bytes.fromhex(event.data))  # type: ignore[union-attr]
        elif isinstance(event, CardRemoved):
            devices.remove_tag()  # type: ignore[union-attr]
        elif isinstance(event, SerialBytes):
            devices.board.send_raw(event.raw)  # type: ignore[union-attr]
        elif isinstance(event, PinChange):
            state = devices.pin_state(event.pin)  # type: ignore[union-attr]
            if state != event.state:
                result.pin_mismatches.append(
                    f"t={event.t}: {event.source} pin {event.pin} is {state}, "
                    f"captured {event.state}")
        elif isinstance(event, LinkChange):
            self._link(event.up)

    def _link(self, up: bool) -> None:
        if up:
            self.stack.start_ingest()
        else:
            self.stack.stop_ingest()
        self._wait(up)

    def _wait(self, live: bool) -> None:
        if not self.gateway.uplink.wait_live(live, SETTLE_S):
            state = "online" if live else "offline"
            raise ReplayError(f"the gateway did not see the hub {state} within {SETTLE_S} s")


def _pace(until: float) -> None:
    delay = until - time.monotonic()
    if delay > 0:
        threading.Event().wait(delay)


def hub_digest(factory: sessionmaker[Session], gateway: Gateway) -> tuple[dict[str, int], str]:
    """Count and hash what the hub stored from this gateway boot (stable across replays)."""
    prefix = f"{gateway.settings.id}:{gateway.boot}:"
    tables: dict[str, list[dict[str, Any]]] = {}
    with factory() as session:
        for name, model, columns in _DIGESTED:
            key = model.batch_id if model is models.TelemetryReading else model.message_id
            order = ((model.batch_id, model.seq) if model is models.TelemetryReading
                     else (model.message_id,))
            rows = session.execute(select(*(getattr(model, c) for c in columns))
                                   .where(key.like(prefix + "%")).order_by(*order))
            tables[name] = [dict(zip(columns, _plain(row), strict=True)) for row in rows]
    blob = json.dumps(tables, sort_keys=True, separators=(",", ":")).encode()
    return {name: len(rows) for name, rows in tables.items()}, hashlib.sha256(blob).hexdigest()


def _plain(row: Any) -> list[Any]:
    return [v.isoformat() if hasattr(v, "isoformat") else v for v in row]


_DIGESTED = [
    ("scans", models.Scan, ["message_id", "station", "item_id", "tag_uid", "lot", "gtin",
                            "core_temp_c", "ts", "clock", "historical"]),
    ("grades", models.GradeRecord, ["message_id", "item_id", "scan_id", "grade",
                                    "model_version", "rule", "scores", "features", "ts",
                                    "historical"]),
    ("faults", models.FaultRecord, ["message_id", "station", "component", "code",
                                    "severity", "detail", "ts", "historical"]),
    ("telemetry", models.TelemetryReading, ["batch_id", "seq", "probe", "ts", "temp_c"]),
]
