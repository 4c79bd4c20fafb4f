"""A gateway's typed settings, loaded once at start-up from a TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocols.config import ConfigError, MqttUrl, read_settings

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(_Section):
    url: MqttUrl = "mqtt://127.0.0.1:1883"
    protocol: Literal["5", "3.1.1"] = "5"  # amqtt (the demo's embedded broker) speaks 3.1.1
    username: str | None = None
    password: str | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    inflight: Annotated[int, Field(ge=1, le=65535)] = 500
    ack_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    backoff_min_s: Annotated[float, Field(gt=0)] = 0.5
    backoff_max_s: Annotated[float, Field(gt=0)] = 60.0
    # "puback": telemetry leaves the outbox on the broker's PUBACK (a broker configured not to
    # drop, like the shipped Mosquitto config); "application": on the hub's ack, like events.
    telemetry_ack: Literal["puback", "application"] = "puback"

    @model_validator(mode="after")
    def _backoff_range(self) -> MqttSettings:
        if self.backoff_min_s > self.backoff_max_s:
            raise ValueError(f"backoff_min_s ({self.backoff_min_s}) is above backoff_max_s "
                             f"({self.backoff_max_s})")
        return self


class OutboxSettings(_Section):
    path: Path | None = None  # None: outbox.db in the gateway's data dir
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 20  # then the dead-letter table
    # Disk policy: below telemetry_reserve_mb free, telemetry is kept as per-minute
    # min/max/mean; below event_reserve_mb, new scans are refused (and alarmed) and telemetry
    # is dropped (counted), so the last headroom is kept for acks and the dead-letter table.
    telemetry_reserve_mb: Annotated[float, Field(ge=0)] = 200.0
    event_reserve_mb: Annotated[float, Field(ge=0)] = 50.0


class StationSettings(_Section):
    id: Name
    reader: Annotated[str, Field(pattern=r"^(sim|spi:[0-9]{1,2}\.[0-9]{1,2})$")] = "sim"
    rst_pin: int = 22  # MFRC522 reset, in the mfrc522 driver's BOARD numbering
    probe: str = "sim"  # "sim" or a serial device such as /dev/serial/by-id/...
    probe_index: Annotated[int, Field(ge=1, le=8)] = 1  # which probe of the board is the core
    light_pins: tuple[int, int, int] = (17, 27, 22)  # green, amber, red (BCM numbering)
    buzzer_pin: int = 23
    gate_pin: int | None = 24  # scrap-bin gate; None: the station has none
    damage_pin: int | None = 5  # the worker's "damaged" button; None: the station has none


class TelemetrySettings(_Section):
    interval_s: Annotated[float, Field(gt=0, le=3600)] = 10.0  # commit a batch at least this often
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    fault_repeat_s: Annotated[float, Field(ge=0)] = 60.0  # same fault again: counted, not sent
    health_interval_s: Annotated[float, Field(gt=0)] = 60.0


class GraderSettings(_Section):
    kind: Literal["rule", "tflite"] = "rule"
    # Ed25519 public key (hex) that delivered models must be signed with; None: checksum only
    public_key: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    model: Path | None = None


class GatewaySettings(_Section):
    """Everything one gateway process needs, built once and passed down."""

    id: Name
    site: Name
    data_dir: Path = Path("var")
    software: str = "coldloop-edge/0.1.0"
    mqtt: MqttSettings = MqttSettings()
    outbox: OutboxSettings = OutboxSettings()
    grader: GraderSettings = GraderSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    stations: Annotated[list[StationSettings], Field(min_length=1)]

    @model_validator(mode="after")
    def _distinct_stations(self) -> GatewaySettings:
        ids = [s.id for s in self.stations]
        if len(set(ids)) != len(ids):
            raise ValueError(f"station ids must be unique, got {ids}")
        real = [s for s in self.stations if s.reader != "sim"]
        resets = [s.rst_pin for s in real]
        if len(set(resets)) != len(resets):
            raise ValueError("each station's reader needs its own rst_pin")
        return self

    @property
    def outbox_path(self) -> Path:
        """Where this gateway's durable outbox lives."""
        return self.outbox.path or self.data_dir / "gateways" / self.id / "outbox.db"


def load_gateway_settings(path: str | Path | None, data_dir: str | Path,
                          overrides: dict[str, object] | None = None) -> GatewaySettings:
    """Load gateway settings from a TOML file; raise ConfigError naming the key."""
    try:
        raw, source = (Path(path).read_bytes(), str(path)) if path else (None, "defaults")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    return read_settings(GatewaySettings, raw, source, {"data_dir": str(data_dir)}, overrides)
