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
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from edge.gateway import Gateway, build_gateway
from edge.settings import GatewaySettings
from firmware_sim.capture import (
    Capture,
    CardPresented,
    CardRemoved,
    Event,
    LinkChange,
    PinChange,
    PortChange,
    SerialBytes,
    station_of,
)
from firmware_sim.clock import VirtualClock
from firmware_sim.devices import SimulatedHardware
from firmware_sim.stack import Stack, start_stack
from hub import models
from hub.telemetry import iter_batches

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
        # Telemetry left the gateway on the broker's PUBACK: wait until the hub has it all.
        self._wait_for_hub(self.gateway.telemetry.batches_committed)
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
        elif isinstance(event, PortChange):
            if event.open:
                devices.board.reconnect(reboot=False)  # type: ignore[union-attr]
            else:
                devices.board.disconnect()  # type: ignore[union-attr]
        elif isinstance(event, PinChange):
            state = devices.pin_state(event.pin)  # type: ignore[union-attr]
            if state != event.state:
                result.pin_mismatches.append(
                    f"t={event.t}: {event.source} pin {event.pin} is {state}, "
                    f"captured {event.state}")
        elif isinstance(event, LinkChange):
            self._link(event.up)

    def _wait_for_hub(self, batches: int) -> None:
        prefix = f"{self.gateway.settings.id}:{self.gateway.boot}:%"
        query = select(func.count()).select_from(models.StoredMessage).where(
            models.StoredMessage.kind == "tlm", models.StoredMessage.message_id.like(prefix))
        deadline = time.monotonic() + SETTLE_S
        while True:
            if not self.stack.ingest.wait_idle(SETTLE_S):
                raise ReplayError(f"the hub did not settle within {SETTLE_S} s")
            with self.stack.factory() as session:
                if (session.scalar(query) or 0) >= batches:
                    return
            if time.monotonic() > deadline:
                raise ReplayError(f"the hub did not store all {batches} telemetry batches")
            threading.Event().wait(0.02)  # messages still crossing the broker

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
            key = getattr(model, columns[0])
            rows = session.execute(select(*(getattr(model, c) for c in columns))
                                   .where(key.like(prefix + "%")).order_by(key))
            tables[name] = [dict(zip(columns, _plain(row), strict=True)) for row in rows]
        tables["telemetry"] = [
            {"batch_id": record.batch_id, "seq": seq, "probe": probe, "ts": ts, "temp_c": temp}
            for record, readings in iter_batches(session)
            if record.batch_id.startswith(prefix)
            for seq, (probe, ts, temp) in enumerate(readings)]
        tables["telemetry"].sort(key=lambda row: (row["batch_id"], row["seq"]))
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
]


def replay_gateway_settings(capture: Capture, data_dir: Path,
                            mqtt: dict[str, Any]) -> GatewaySettings:
    """Settings of the gateway that replays a capture: the captured gateway, site and stations."""
    header = capture.header
    return GatewaySettings.model_validate({
        "id": header.gateway, "site": header.site, "data_dir": data_dir, "mqtt": mqtt,
        "stations": [{"id": s} for s in header.stations]})


def replay_capture(capture: Capture, data_dir: Path, *, broker: str | None = None,
                   speed: float = 0.0, progress: Callable[[int], None] | None = None
                   ) -> ReplayResult:
    """Replay ``capture`` on a fresh stack in ``data_dir`` and return what the hub stored."""
    clock = VirtualClock(capture.header.started_at)
    stack = start_stack(data_dir, sites=[capture.header.site], broker=broker, clock=clock.now)
    try:
        hardware = SimulatedHardware(clock, emit_frames=False)
        settings = replay_gateway_settings(capture, data_dir, stack.gateway_mqtt())
        gateway = build_gateway(settings, hardware, clock=clock)
        stack.on_stop(gateway.stop)
        gateway.start(poll_interval_s=None)
        return Replayer(capture, stack, gateway, hardware, clock).run(speed, progress)
    finally:
        stack.stop()
