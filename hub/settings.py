"""The hub's typed settings, loaded once at start-up from a TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocols.config import ConfigError, MqttUrl, read_settings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str | None = None  # None: SQLite file hub.db in the data dir


class MqttSettings(_Section):
    url: MqttUrl = "mqtt://127.0.0.1:1883"
    protocol: Literal["5", "3.1.1"] = "5"  # amqtt (the demo's embedded broker) speaks 3.1.1
    client_id: str = "coldloop-hub"
    username: str | None = None
    password: str | None = None
    share_group: str | None = None  # MQTT v5 shared subscription group; None: plain subscribe
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30


MAX_INGEST_WORKERS = 16


class IngestSettings(_Section):
    batch_size: Annotated[int, Field(ge=1, le=50_000)] = 500
    batch_wait_ms: Annotated[int, Field(ge=0, le=10_000)] = 50
    # Worker processes on one shared subscription; above 1 needs mqtt.share_group (MQTT v5).
    workers: Annotated[int, Field(ge=1, le=MAX_INGEST_WORKERS)] = 1


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    secret_key: Annotated[str, Field(min_length=16)] = "coldloop-dev-secret-change-me"
    admin_user: str = "admin"
    admin_password: Annotated[str, Field(min_length=8)] = "coldloop-admin"
    api_token: Annotated[str, Field(min_length=16)] = "coldloop-dev-api-token"


class InfluxSettings(_Section):
    """The optional InfluxDB copy of telemetry (``hub.influx.InfluxSink``)."""

    url: str
    org: str
    bucket: str
    token: str = ""
    batch_size: Annotated[int, Field(ge=1, le=50_000)] = 5_000  # points per HTTP write
    flush_interval_ms: Annotated[int, Field(ge=0, le=60_000)] = 1_000  # wait to fill a write
    queue_limit: Annotated[int, Field(ge=1, le=10_000_000)] = 200_000  # readings; beyond: dropped
    max_retries: Annotated[int, Field(ge=0, le=100)] = 5  # per write, then its points are failed
    retry_interval_ms: Annotated[int, Field(ge=1, le=60_000)] = 1_000  # first backoff, doubling
    max_retry_delay_ms: Annotated[int, Field(ge=1, le=600_000)] = 30_000
    timeout_ms: Annotated[int, Field(ge=100, le=300_000)] = 10_000  # one HTTP request


TELEMETRY_WINDOW_S = 300  # hub.telemetry.WINDOW_S (not imported: no SQLAlchemy here)


class FleetSettings(_Section):
    """The fleet registry's recent window and the alarm thresholds (docs/fleet.md)."""

    evaluate_every_s: Annotated[float, Field(ge=1, le=3600)] = 30.0  # background evaluator
    # "Recent": scans, reader error rates, probes' missing share and the drift look-back.
    window_s: Annotated[int, Field(ge=300, le=86_400)] = 3600
    silent_after_s: Annotated[float, Field(ge=10, le=86_400)] = 180.0  # gateway or probe quiet
    offline_after_s: Annotated[float, Field(ge=0, le=86_400)] = 60.0  # offline state this long
    drift_c: Annotated[float, Field(gt=0, le=50)] = 2.0  # off the gateway's probe median by more
    drift_windows: Annotated[int, Field(ge=1, le=288)] = 3  # ... in each of this many windows
    reader_error_pct: Annotated[float, Field(gt=0, le=100)] = 5.0  # errors per 100 reads, above
    reader_min_attempts: Annotated[int, Field(ge=1, le=1_000_000)] = 20  # reads before judging
    disk_free_min_mb: Annotated[float, Field(ge=0)] = 500.0  # health report: free below this
    disk_used_max_pct: Annotated[float, Field(gt=0, le=100)] = 90.0  # ... or used at least this
    forget_after_s: Annotated[int, Field(ge=3600, le=90 * 86_400)] = 86_400  # stations, probes

    @model_validator(mode="after")
    def _drift_fits_the_window(self) -> FleetSettings:
        needed = self.drift_windows * TELEMETRY_WINDOW_S
        if needed > self.window_s:
            raise ValueError(
                f"drift_windows = {self.drift_windows} windows of {TELEMETRY_WINDOW_S} s do "
                f"not fit in window_s = {self.window_s} s: raise window_s to at least {needed} "
                "or lower drift_windows")
        return self


class LedgerSettings(_Section):
    """The traceability ledger's signing key and how often heads are signed (docs/ledger.md)."""

    signing_key: Path | None = None  # Ed25519 PEM; None: ledger-signing-key.pem in the data dir
    sign_every: Annotated[int, Field(ge=1, le=10_000_000)] = 1000  # events between heads ...
    sign_every_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0  # ... or seconds, if sooner
    sync_every_s: Annotated[float, Field(ge=0.1, le=3600)] = 5.0  # hub records into the ledger

    def key_path(self, data_dir: Path) -> Path:
        """Where the signing key is, given the hub's data directory."""
        return self.signing_key or Path(data_dir) / "ledger-signing-key.pem"


class HubSettings(_Section):
    """Everything the hub process needs, built once and passed down."""

    data_dir: Path = Path("var")
    database: DatabaseSettings = DatabaseSettings()
    mqtt: MqttSettings = MqttSettings()
    ingest: IngestSettings = IngestSettings()
    web: WebSettings = WebSettings()
    influx: InfluxSettings | None = None
    fleet: FleetSettings = FleetSettings()
    coldchain_file: Path | None = None  # families, excursion rules, attribution policy (TOML)
    ledger: LedgerSettings = LedgerSettings()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the hub database."""
        return self.database.url or f"sqlite:///{self.data_dir / 'hub.db'}"


def load_hub_settings(path: str | Path | None, data_dir: str | Path,
                      overrides: dict[str, object] | None = None) -> HubSettings:
    """Load hub settings from ``path`` (defaults when None); raise ConfigError naming the key."""
    try:
        raw, source = (Path(path).read_bytes(), str(path)) if path else (None, "defaults")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    return read_settings(HubSettings, raw, source, {"data_dir": str(data_dir)}, overrides)
