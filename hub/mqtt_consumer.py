"""The hub's MQTT ingest worker: a thin paho adapter over :func:`hub.ingest.store_batch`.

Callbacks only queue what arrives; one thread stores batches. A message is acknowledged twice,
both times only after the database commit: the broker's PUBACK (manual acks), so a hub crash
leaves it queued in the hub's persistent session, and the application :class:`Ack` to the
gateway, so its outbox may let go of it.
"""

from __future__ import annotations

import gc
import logging
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.db import transaction
from hub.errors import HubError
from hub.ingest import IngestResult, Received, quarantine, store_batch
from hub.settings import HubSettings, MqttSettings
from hub.telemetry import TelemetrySink
from protocols import topics
from protocols.config import ConfigError
from protocols.messages import Ack, HubState
from protocols.topics import Kind

logger = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps queuing for a stopped hub this long (v5)
PROBE_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 5.0  # a stopping worker waits this long for the broker to close its side
ACK_ENTRIES_PER_MESSAGE = 500  # keeps an Ack far below brokers' packet size limits
# Young-generation collections every 50,000 net allocations instead of CPython's 700: a
# telemetry batch alone builds 500 reading tuples, and the default cost storing a fifth of
# its CPU in collections that find nearly nothing to free (docs/ingest.md, "Speed").
GC_YOUNG_THRESHOLD = 50_000
_UNSUPPORTED_PROTOCOL = 0x84
_STOP = object()


class BrokerUnavailable(HubError, ConnectionError):
    """The MQTT broker did not answer, or refused the hub's connection."""


@dataclass(frozen=True)
class WorkerCounters:
    """What an ingest worker has done since it started."""

    received: int = 0
    committed: int = 0  # messages in committed batches
    batches: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    readings: int = 0
    states: int = 0
    stale: int = 0
    ignored: int = 0
    acks_published: int = 0
    commit_failures: int = 0


@dataclass(frozen=True)
class _Delivery:
    received: Received
    mid: int
    qos: int
    connection: int  # which connection it came on: PUBACKs go back on that one only


def broker_speaks_v5(settings: MqttSettings, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Return whether the broker accepts MQTT v5 (Mosquitto does, amqtt does not)."""
    host, port, tls = _endpoint(settings.url)
    answered = threading.Event()
    codes: list[ReasonCode] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"coldloop-probe-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5, reconnect_on_failure=False)
    _configure(client, settings, tls)

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        codes.append(code)
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=settings.keepalive_s)
    except OSError as err:
        raise BrokerUnavailable(f"MQTT broker at {settings.url} does not answer ({err}); "
                                "start it, or check mqtt.url") from err
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise BrokerUnavailable(f"MQTT broker at {settings.url} sent no CONNACK within "
                                    f"{timeout} s")
    finally:
        client.disconnect()
        client.loop_stop()
    if not codes[0].is_failure:
        return True
    if codes[0].value == _UNSUPPORTED_PROTOCOL:
        return False
    raise BrokerUnavailable(f"MQTT broker at {settings.url} refused the hub: {codes[0]}")


class IngestWorker:
    """Subscribe to what gateways publish, store it in batches, acknowledge after commit."""

    def __init__(self, settings: HubSettings, factory: sessionmaker[Session], *,
                 protocol_v5: bool | None = None, sites: Sequence[str] = ("+",),
                 backoff_s: tuple[float, float] = (0.5, 30.0),
                 sinks: Sequence[TelemetrySink] = (),
                 clock: Callable[[], datetime] | None = None,
                 on_death: Callable[[], None] | None = None) -> None:
        self._settings = settings
        # Stamps receipts, acks and the hub's state; a simulation passes its virtual clock.
        self._clock = clock or _now
        # Called from the storing thread if it dies; the command exits so that it is restarted.
        self._on_death = on_death
        self._died = False
        self._sinks = tuple(sinks)  # told of each newly stored telemetry batch after commit
        self._sites = tuple(sites)  # "+": every site; a regional hub may name its own
        self._factory = factory
        self._v5 = protocol_v5  # None: ask the broker at start()
        self._backoff = backoff_s
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()  # C: cheap per message
        self._client: mqtt.Client | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._halt = threading.Event()  # abandon work without acking: kill, or stop timed out
        self._stopping = False
        self._cond = threading.Condition()
        self._connection = 0
        self._counts = dict.fromkeys((f.name for f in fields(WorkerCounters)), 0)
        self._finished = 0
        self._unconfirmed: set[int] = set()  # our QoS 1 publishes the broker has not PUBACKed
        self._confirmed_early: set[int] = set()  # PUBACKs that beat publish() returning

    @property
    def protocol_v5(self) -> bool | None:
        """Whether the worker speaks MQTT v5 (None until start() has asked the broker)."""
        return self._v5

    @property
    def counters(self) -> WorkerCounters:
        """A snapshot of the worker's counters."""
        with self._cond:
            return WorkerCounters(**self._counts)

    def start(self) -> None:
        """Connect (in the background, reconnecting on loss) and start the storing thread."""
        if self._client is not None:
            raise RuntimeError("this ingest worker was already started")
        mqtt_settings = self._settings.mqtt
        if self._v5 is None:
            self._v5 = broker_speaks_v5(mqtt_settings)
        if mqtt_settings.share_group and not self._v5:
            raise ConfigError(
                f"mqtt.share_group needs MQTT v5, but the broker at {mqtt_settings.url} is "
                "used with 3.1.1: unset share_group or use a v5 broker such as Mosquitto")
        host, port, tls = _endpoint(mqtt_settings.url)
        young, *older = gc.get_threshold()
        if 0 < young < GC_YOUNG_THRESHOLD:  # 0: collection is off; never lower a higher one
            gc.set_threshold(GC_YOUNG_THRESHOLD, *older)
        client = self._client = self._make_client(tls)
        self._thread = threading.Thread(target=self._run, name="coldloop-ingest", daemon=True)
        self._thread.start()
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            client.connect_async(host, port, mqtt_settings.keepalive_s, clean_start=False,
                                 properties=properties)
        else:
            client.connect_async(host, port, mqtt_settings.keepalive_s)
        client.loop_start()
        logger.info("ingest worker %s connecting to %s with MQTT %s", mqtt_settings.client_id,
                    mqtt_settings.url, "5" if self._v5 else "3.1.1")

    def status(self) -> dict[str, Any]:
        """The health check's view: ok while subscribed to the broker with the storing thread
        alive (it stops on an error that is not the database's, acking nothing more)."""
        thread = self._thread
        storing = thread is not None and thread.is_alive() and not self._died
        connected = self._ready.is_set()
        counters = self.counters
        return {"ok": storing and connected, "connected": connected, "storing": storing,
                "received": counters.received, "committed": counters.committed}

    def wait_ready(self, timeout: float) -> bool:
        """Wait until subscribed and announced online; return False on timeout."""
        return self._ready.wait(timeout)

    def wait_idle(self, timeout: float, *, committed: int = 0, readings: int = 0) -> bool:
        """Wait until every received message (at least ``committed``, holding at least
        ``readings`` telemetry readings) is committed and acked. A gateway that drops
        telemetry from its outbox on the broker's PUBACK has drained before the hub has even
        received the last batch: ``readings`` is how to wait for it."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (self._idle() and self._counts["committed"] >= committed
                         and self._counts["readings"] >= readings), timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Announce offline, store and ack what was queued, then disconnect cleanly."""
        client, thread = self._client, self._thread
        if client is None or thread is None or self._stopping:
            return
        self._stopping = True
        self._ready.clear()
        offline = HubState(online=False, ts=self._clock())
        self._publish(topics.HUB_STATE, offline.encode(), retain=True)
        self._queue.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():  # the database is failing: leave the rest to the broker's session
            logger.warning("stopping with messages not committed; the broker will redeliver them")
            self._halt.set()
            thread.join(timeout)
        if client.is_connected():
            with self._cond:
                self._cond.wait_for(lambda: not self._unconfirmed, timeout)
        client.disconnect()
        client.loop_stop()
        logger.info("ingest worker %s stopped", self._settings.mqtt.client_id)

    def kill(self) -> None:
        """Drop the connection without DISCONNECT, as a crash would (the last will fires)."""
        client, thread = self._client, self._thread
        if client is None or thread is None:
            return
        self._stopping = True
        self._halt.set()
        self._queue.put(_STOP)
        client.loop_stop()
        sock = client.socket()
        if sock is not None:
            sock.close()
        thread.join()

    def _make_client(self, tls: bool) -> mqtt.Client:
        settings = self._settings.mqtt
        if self._v5:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                                 protocol=mqtt.MQTTv5, manual_ack=True)
        else:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                                 clean_session=False, protocol=mqtt.MQTTv311, manual_ack=True)
        _configure(client, settings, tls)
        client.will_set(topics.HUB_STATE, HubState(online=False).encode(), qos=1, retain=True)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_socket_close = self._on_socket_close
        return client

    # --- paho callbacks (network thread): record and hand over, nothing more ---------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any,
                    code: ReasonCode, _properties: Any) -> None:
        if code.is_failure:
            logger.error("MQTT broker refused the hub's connection: %s", code)
            return
        with self._cond:
            self._connection += 1
        logger.info("connected to the MQTT broker (session %s)",
                    "resumed" if flags.session_present else "new")
        filters = [topics.gateway_filter(kind, site=site) for site in self._sites
                   for kind in (Kind.STATE, Kind.EVENT, Kind.TELEMETRY, Kind.HEALTH)]
        filters += [topics.gateway_filter(Kind.CONFIG, leaf="reported", site=site)
                    for site in self._sites]
        group = self._settings.mqtt.share_group
        if group:
            filters = [topics.shared(group, f) for f in filters]
        if self._v5:
            # Retained gateway states once per subscription, not again on every reconnect.
            options = SubscribeOptions(
                qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe([(f, options) for f in filters])
        else:
            client.subscribe([(f, 1) for f in filters])

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int,
                      codes: list[ReasonCode], _properties: Any) -> None:
        refused = [str(code) for code in codes if code.is_failure]
        if refused:
            logger.error("MQTT broker refused the hub's subscriptions: %s", ", ".join(refused))
            return
        online = HubState(online=True, ts=self._clock())
        self._publish(topics.HUB_STATE, online.encode(), retain=True)
        self._ready.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any,
                       code: ReasonCode, _properties: Any) -> None:
        self._ready.clear()
        if not self._stopping:
            logger.warning("lost the MQTT broker (%s); reconnecting", code)

    def _on_message(self, _client: mqtt.Client, _userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:  # brokers should refuse these; quarantine it if one did not
            topic = "(topic is not valid UTF-8)"
        with self._cond:
            self._counts["received"] += 1
            connection = self._connection
        received = Received(topic, bytes(message.payload), self._clock())
        self._queue.put(_Delivery(received, message.mid, message.qos, connection))

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int,
                    code: ReasonCode, _properties: Any) -> None:
        if code.is_failure:
            logger.error("MQTT broker refused a hub publication: %s", code)
        with self._cond:
            if mid in self._unconfirmed:
                self._unconfirmed.discard(mid)
            else:
                self._confirmed_early.add(mid)
            self._cond.notify_all()

    def _on_socket_close(self, _client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        if self._stopping:  # after our DISCONNECT, not a lost connection or a kill
            close_gracefully(sock, CLOSE_TIMEOUT_S)

    # --- the storing thread ------------------------------------------------------------------

    def _run(self) -> None:
        finished = False
        try:
            last = False
            while not last and not self._halt.is_set():
                batch, last = self._next_batch()
                if batch and not self._commit_and_ack(batch):
                    break
            finished = True
        finally:
            if not finished:  # the error itself goes to threading.excepthook
                logger.critical("ingest thread died: nothing more is stored or acked")
                self._died = True
                if self._on_death is not None:
                    self._on_death()

    def _next_batch(self) -> tuple[list[_Delivery], bool]:
        """Take up to batch_size deliveries, waiting batch_wait_ms after the first one."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch: list[_Delivery] = [first]
        limits = self._settings.ingest
        deadline = time.monotonic() + limits.batch_wait_ms / 1000
        while len(batch) < limits.batch_size:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit_and_ack(self, batch: Sequence[_Delivery]) -> bool:
        """Store a batch (retrying until it commits), then ack it; False if abandoned."""
        result = self._store_with_retry([d.received for d in batch])
        if result is None:
            return False
        published = 0
        for (site, gateway), entries in result.acks.items():
            for start in range(0, len(entries), ACK_ENTRIES_PER_MESSAGE):
                chunk = entries[start:start + ACK_ENTRIES_PER_MESSAGE]
                ack = Ack(ts=self._clock(), entries=chunk)
                self._publish(topics.ack(site, gateway), ack.encode())
                published += 1
        for sink in self._sinks:
            for stored in result.telemetry:
                sink.submit(stored.site, stored.source, stored.readings)
        with self._cond:
            connection = self._connection
        assert self._client is not None
        for delivery in batch:
            # Not on an earlier connection: the broker redelivers those, and acks that copy.
            if delivery.qos > 0 and delivery.connection == connection:
                self._client.ack(delivery.mid, delivery.qos)
        with self._cond:
            for name in ("stored", "duplicates", "quarantined", "readings", "states", "stale",
                         "ignored"):
                self._counts[name] += getattr(result, name)
            self._counts["committed"] += len(batch)
            self._counts["batches"] += 1
            self._counts["acks_published"] += published
            self._finished += len(batch)
            self._cond.notify_all()
        return True

    def _store_with_retry(self, batch: Sequence[Received]) -> IngestResult | None:
        """Commit the batch, retrying with backoff while the database fails; None if halted."""
        delay, max_delay = self._backoff
        failures = 0
        while not self._halt.is_set():
            try:
                result = self._store(batch)
            except SQLAlchemyError as err:
                failures += 1
                with self._cond:
                    self._counts["commit_failures"] += 1
                if failures == 1:
                    logger.error("cannot commit %d messages (%s); holding them unacked and "
                                 "retrying", len(batch), _brief(err))
                if self._halt.wait(delay):
                    break
                delay = min(delay * 2, max_delay)
                continue
            if failures:
                logger.info("database writes work again after %d failed attempts", failures)
            return result
        return None

    def _store(self, batch: Sequence[Received]) -> IngestResult:
        """Commit a batch; isolate and quarantine a message the database refuses."""
        try:
            with transaction(self._factory) as session:
                return store_batch(session, batch)
        except (IntegrityError, DataError) as err:
            if len(batch) > 1:
                logger.warning("database refused a batch of %d (%s); storing one by one",
                               len(batch), _brief(err))
                result = IngestResult()
                for received in batch:
                    result.merge(self._store([received]))
                return result
            refused = err
        try:  # once more: a concurrent worker's insert of the same id now reads as a duplicate
            with transaction(self._factory) as session:
                return store_batch(session, batch)
        except (IntegrityError, DataError) as err:
            refused = err
        with transaction(self._factory) as session:
            return quarantine(session, batch, f"database refused it: {_brief(refused)}")

    # --- helpers -------------------------------------------------------------------------

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        assert self._client is not None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            logger.error("MQTT client queue full; dropped a publication to %s", topic)
            return
        with self._cond:  # publish() may return after its PUBACK was handled
            if info.mid in self._confirmed_early:
                self._confirmed_early.discard(info.mid)
            else:
                self._unconfirmed.add(info.mid)

    def _idle(self) -> bool:
        return self._finished == self._counts["received"] and not self._unconfirmed


def _endpoint(url: str) -> tuple[str, int, bool]:
    """Split an mqtt:// or mqtts:// URL into host, port and whether to use TLS."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
        raise ValueError(f"mqtt.url must look like mqtt://host:1883 or mqtts://host:8883, "
                         f"got {url!r}")
    tls = parsed.scheme == "mqtts"
    return parsed.hostname, parsed.port or (8883 if tls else 1883), tls


def close_gracefully(sock: socket.socket, timeout: float) -> None:
    """End a connection with a FIN and read it to its end, so closing it sends no reset.

    Closing a socket with unread data makes the kernel reset the connection, and a broker
    that has not yet read our last PUBACKs and DISCONNECT may then drop them: messages we
    committed would be delivered again. So: no more writes, read (and discard: nothing of it
    is acked) until the broker closes its side, then let the caller close.
    """
    deadline = time.monotonic() + timeout
    try:
        sock.shutdown(socket.SHUT_WR)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(1 << 16):
                return
    except OSError:  # timed out, or the connection is gone already: nothing more to do
        return


def _configure(client: mqtt.Client, settings: MqttSettings, tls: bool) -> None:
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if tls:
        client.tls_set()


def _brief(err: SQLAlchemyError) -> str:
    """The database's own message, first line only (not the SQL and its parameters)."""
    text = str(getattr(err, "orig", None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _now() -> datetime:
    return datetime.now(UTC)
