"""What the hub sent each gateway (manifest, config, model) and what the gateway reported back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base


class GatewaySync(Base):
    """One row per gateway: versions sent, the desired state, and the last reported state."""

    __tablename__ = "gateway_sync"

    site: Mapped[str] = mapped_column(String(32), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Sent by the hub. Versions only grow; the gateway ignores anything not newer.
    manifest_version: Mapped[int] = mapped_column(Integer, default=0)
    manifest_sent_at: Mapped[datetime | None]
    manifest_items: Mapped[dict[str, Any]] = mapped_column(default=dict)  # id -> fingerprint
    config_version: Mapped[int] = mapped_column(Integer, default=0)
    config_desired: Mapped[dict[str, Any]] = mapped_column(default=dict)
    config_sent_at: Mapped[datetime | None]
    model_desired: Mapped[str | None] = mapped_column(String(64))
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    model_sent_at: Mapped[datetime | None]
    resync_sent_at: Mapped[datetime | None]
    # Reported by the gateway on cfg/reported (retained).
    reported_config_version: Mapped[int | None] = mapped_column(Integer)
    reported_config_status: Mapped[str | None] = mapped_column(String(16))
    reported_config_error: Mapped[str | None] = mapped_column(Text)
    reported_active_version: Mapped[int | None] = mapped_column(Integer)
    reported_pending: Mapped[bool | None] = mapped_column(Boolean)
    reported_settings: Mapped[dict[str, Any] | None]
    reported_model_version: Mapped[str | None] = mapped_column(String(64))
    reported_manifest_version: Mapped[int | None] = mapped_column(Integer)
    reported_manifest_items: Mapped[int | None] = mapped_column(Integer)
    reported_command: Mapped[dict[str, Any] | None]  # the answer to the latest command
    reported_ts: Mapped[datetime | None]  # the gateway's clock
    reported_at: Mapped[datetime | None]  # the hub's clock

    @property
    def manifest_behind(self) -> bool:
        """Whether the gateway reports an older manifest than the hub sent (send a full one)."""
        return (self.reported_manifest_version is not None
                and self.reported_manifest_version < self.manifest_version)

    @property
    def config_behind(self) -> bool:
        """Whether the gateway has not decided on the latest desired configuration yet."""
        return (self.config_version > 0 and (self.reported_config_version or 0)
                < self.config_version)

    @property
    def model_behind(self) -> bool:
        """Whether the gateway runs another model than the one last sent."""
        return self.model_desired is not None and self.reported_model_version != (
            self.model_desired)


class GatewayHealth(Base):
    """A gateway's health report (CPU, disk, queue depth, reader errors), as it sent it."""

    __tablename__ = "gateway_health"
    __table_args__ = (Index("ix_gateway_health_gateway_ts", "gateway_id", "ts"),)

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(32), index=True)
    ts: Mapped[datetime]
    clock: Mapped[str] = mapped_column(String(16))
    historical: Mapped[bool] = mapped_column(Boolean, default=False)
    values: Mapped[dict[str, Any]]
