"""A whole coldloop in one process, on real components: broker, hub (database, ingest, web).

The demo and capture replays run on it. Pieces stop in reverse order of start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.db import make_engine, migrate, session_factory
from hub.settings import HubSettings, load_hub_settings

logger = logging.getLogger(__name__)


@dataclass
class Stack:
    """The running hub side; ``stop()`` tears it down."""

    settings: HubSettings
    broker_url: str
    engine: Engine
    factory: sessionmaker[Session]
    sites: list[str]
    ingest: Any = None  # hub.mqtt_consumer.IngestWorker
    # The ingest's receipt clock: a scenario's virtual clock, or None for the wall clock.
    clock: Callable[[], datetime] | None = None
    web_url: str | None = None
    _stoppers: list[Callable[[], None]] = field(default_factory=list)

    def gateway_mqtt(self) -> dict[str, Any]:
        """MQTT settings for a gateway on this stack's broker."""
        return {"url": self.broker_url, "protocol": self.settings.mqtt.protocol,
                "ack_timeout_s": 5,
                # amqtt may drop a QoS 1 message around a hub restart: wait for the hub's ack.
                "telemetry_ack": "puback" if self.protocol_v5 else "application"}

    @property
    def protocol_v5(self) -> bool:
        """Whether the broker speaks MQTT v5."""
        return self.settings.mqtt.protocol == "5"

    def start_ingest(self) -> None:
        """Start (or restart after ``stop_ingest``) the hub's ingest worker."""
        from hub.mqtt_consumer import IngestWorker

        self.ingest = IngestWorker(self.settings, self.factory, protocol_v5=self.protocol_v5,
                                   sites=self.sites, clock=self.clock)
        self.ingest.start()

    def stop_ingest(self) -> None:
        """Stop ingest cleanly: the hub's retained state says offline (a hub outage)."""
        if self.ingest is not None:
            self.ingest.stop()
            self.ingest = None

    def start_web(self, port: int, world: dict[str, Any] | None = None) -> str:
        """Serve the web UI and API on ``port`` (0: a free one); return its URL."""
        from werkzeug.serving import make_server

        from hub.web import create_app

        app = create_app(self.settings, factory=self.factory, test_config=world)
        server = make_server(self.settings.web.host, port, app, threaded=True)
        threading.Thread(target=server.serve_forever, name="hub-web", daemon=True).start()
        self._stoppers.append(server.shutdown)
        self.web_url = f"http://{self.settings.web.host}:{server.server_port}"
        return self.web_url

    def on_stop(self, stop: Callable[[], None]) -> None:
        """Register something else to stop with the stack (a gateway, say)."""
        self._stoppers.append(stop)

    def stop(self) -> None:
        """Stop everything, last started first."""
        self.stop_ingest()
        for stop in reversed(self._stoppers):
            try:
                stop()
            except (OSError, RuntimeError) as err:
                logger.warning("error while stopping: %s", err)
        self._stoppers.clear()


def start_stack(data_dir: Path, *, sites: list[str], broker: str | None = None,
                config: Path | None = None, clock: Callable[[], datetime] | None = None
                ) -> Stack:
    """Start a broker (embedded amqtt unless ``broker`` is given) and the hub's database/ingest.

    ``clock`` stamps what the ingest receives (a gateway's last seen, telemetry batches) and
    its acks: pass the scenario's virtual clock so that the hub and the gateway share one
    timeline; None is the wall clock.
    """
    from hub.mqtt_consumer import broker_speaks_v5

    stoppers: list[Callable[[], None]] = []
    broker_url = broker
    if broker_url is None:
        from hub.embedded_broker import EmbeddedBroker

        embedded = EmbeddedBroker().start()
        stoppers.append(embedded.stop)
        broker_url = embedded.url
    try:
        # A client id per site set: a persistent session on a shared broker keeps its
        # subscriptions, so another stack's session must not be resumed by this one.
        client_id = "coldloop-hub-" + "-".join(sites)
        # The stack's data_dir is its caller's decision, so it beats a settings file's own.
        settings = load_hub_settings(config, data_dir, {"data_dir": str(data_dir),
                                                        "mqtt.url": broker_url,
                                                        "mqtt.client_id": client_id[:64]})
        # amqtt speaks 3.1.1 only; any other broker is asked.
        v5 = broker is not None and broker_speaks_v5(settings.mqtt)
        settings = settings.model_copy(update={
            "mqtt": settings.mqtt.model_copy(update={"protocol": "5" if v5 else "3.1.1"})})
        migrate(settings.database_url)
    except BaseException:
        for stop in stoppers:
            stop()
        raise
    engine = make_engine(settings.database_url)
    stoppers.append(engine.dispose)
    stack = Stack(settings, broker_url, engine, session_factory(engine), sites, clock=clock,
                  _stoppers=stoppers)
    stack.start_ingest()
    return stack
