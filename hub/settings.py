"""The hub's typed settings, loaded once at start-up from a TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocols.config import ConfigError, read_settings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str | None = None  # None: SQLite file hub.db in the data dir


class MqttSettings(_Section):
    url: str = "mqtt://127.0.0.1:1883"
    protocol: Literal["5", "3.1.1"] = "5"  # amqtt (the demo's embedded broker) speaks 3.1.1
    client_id: str = "coldloop-hub"
    username: str | None = None
    password: str | None = None
    share_group: str | None = None  # MQTT v5 shared subscription group; None: plain subscribe
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30


class IngestSettings(_Section):
    batch_size: Annotated[int, Field(ge=1, le=50_000)] = 500
    batch_wait_ms: Annotated[int, Field(ge=0, le=10_000)] = 50


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


class HubSettings(_Section):
    """Everything the hub process needs, built once and passed down."""

    data_dir: Path = Path("var")
    database: DatabaseSettings = DatabaseSettings()
    mqtt: MqttSettings = MqttSettings()
    ingest: IngestSettings = IngestSettings()
    web: WebSettings = WebSettings()
    influx: InfluxSettings | None = None

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
