"""The gateway's MQTT link: drains the outbox to the hub once the hub says it is online.

paho's callbacks run on its network thread and only hand work to a queue; one uplink thread
owns the outbox reads, the publishing window and the bookkeeping of acks.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from edge.backoff import Backoff
from edge.commands import CommandHandler
from edge.outbox import MessageClass, Outbox, Pending
from edge.recorder import Clock
from edge.settings import GatewaySettings
from protocols import topics
from protocols.errors import ProtocolError
from protocols.messages import Ack, AckStatus, ClockState, GatewayState, HubState, decode_as

logger = logging.getLogger(__name__)
INFLIGHT_CEILING = 65535  # the most mqtt.inflight may be set to


@dataclass
class UplinkCounters:
    """What the link has done since start."""

    published: int = 0
    acked: int = 0
    rejected: int = 0
    pubacks: int = 0
    connects: int = 0


class Uplink:
    """Publishes outbox messages over MQTT and removes them when acknowledged."""

    def __init__(self, settings: GatewaySettings, outbox: Outbox, boot: int,
                 clock: Clock = time.time, protocol_v5: bool = True,
                 rng: random.Random | None = None,
                 clock_state: Callable[[], ClockState] | None = None,
                 on_progress: Callable[[], None] | None = None,
                 commands: CommandHandler | None = None) -> None:
        import paho.mqtt.client as mqtt  # the only module that imports paho on the gateway
        from paho.mqtt.enums import CallbackAPIVersion

        self._mqtt = mqtt
        self.settings = settings
        self.outbox = outbox
        self.boot = boot
        self.clock = clock
        self.counters = UplinkCounters()
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._inflight: dict[int, Pending] = {}  # paho mid -> message awaiting PUBACK
        self._connected = threading.Event()
        self._hub_online = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()
        self._alarms: set[str] = set()
        self._waiters = 0
        self.clock_state = clock_state or (lambda: ClockState.SYNCED)
        self.on_progress = on_progress or (lambda: None)  # the watchdog's heartbeat
        self.commands = commands
        self._state_topic = topics.state(settings.site, settings.id)
        self._ack_topic = topics.ack(settings.site, settings.id)
        protocol = mqtt.MQTTv5 if protocol_v5 else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.id,
                                  protocol=protocol)
        if settings.mqtt.username:
            self.client.username_pw_set(settings.mqtt.username, settings.mqtt.password)
        # paho cannot change this once connected; our own window (mqtt.inflight) governs.
        self.client.max_inflight_messages_set(INFLIGHT_CEILING)
        self.backoff = Backoff(settings.mqtt.backoff_min_s, settings.mqtt.backoff_max_s,
                               rng or random.Random())
        self._schedule_reconnect()
        self.client.will_set(self._state_topic, self._state(online=False), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_connect_fail = lambda *_: self._schedule_reconnect()

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Connect (retrying in the background) and start draining."""
        url = urlparse(self.settings.mqtt.url)
        self.client.connect_async(url.hostname or "127.0.0.1", url.port or 1883,
                                  keepalive=self.settings.mqtt.keepalive_s)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name=f"uplink-{self.settings.id}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Say offline, disconnect cleanly and stop the threads."""
        self._stop.set()
        self._inbox.put(("stop", None))
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._connected.is_set():
            self.client.publish(self._state_topic, self._state(online=False), qos=1,
                                retain=True).wait_for_publish(timeout=5)
        self.client.disconnect()
        self.client.loop_stop()

    def is_live(self) -> bool:
        """True when connected and the hub says it is online: new events are not backlog."""
        return self._connected.is_set() and self._hub_online.is_set()

    def wait_live(self, live: bool, timeout: float) -> bool:
        """Block until ``is_live()`` equals ``live``; False if ``timeout`` passed first."""
        return self.wait_until(lambda: self.is_live() == live, timeout)

    def wait_drained(self, timeout: float) -> bool:
        """Block until the outbox is empty (tests and shutdown use it instead of sleeping)."""
        return self.wait_until(lambda: self.outbox.depth() == 0, timeout)

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Block until ``condition()`` holds after the uplink thread handled something."""
        with self._changed:
            self._waiters += 1
            try:
                self._inbox.put(("poke", None))
                return self._changed.wait_for(condition, timeout)
            finally:
                self._waiters -= 1

    def _schedule_reconnect(self) -> None:
        # paho waits its "min delay" before the next attempt: give it ours, jittered.
        delay = self.backoff.next_delay()
        self.client.reconnect_delay_set(delay, delay)  # type: ignore[arg-type]

    @property
    def alarms(self) -> frozenset[str]:
        """The alarms the gateway's retained state carries."""
        return frozenset(self._alarms)

    def state_message(self) -> GatewayState:
        """The state the gateway announces while connected."""
        return decode_as(GatewayState, self._state(online=True))

    def set_alarms(self, alarms: set[str]) -> None:
        """Raise or clear alarms: the retained state is republished when they change."""
        if alarms != self._alarms:
            self._alarms = set(alarms)
            self._inbox.put(("state", None))

    def _state(self, online: bool) -> bytes:
        return GatewayState(online=online, boot=self.boot, software=self.settings.software,
                            backlog=self.outbox.depth() if online else 0,
                            clock=self.clock_state(), alarms=sorted(self._alarms)).encode()

    # --- paho callbacks (network thread): hand over, never work ----------------------------

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any,
                    _props: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            logger.warning("gateway %s: broker refused connection: %s", self.settings.id, reason)
            return
        self.backoff.reset()
        self._schedule_reconnect()
        extra = self.commands.subscriptions() if self.commands is not None else []
        client.subscribe([(topics.HUB_STATE, 1), (self._ack_topic, 1)] + [(f, 1) for f in extra])
        client.publish(self._state_topic, self._state(online=True), qos=1, retain=True)
        self._inbox.put(("connected", None))

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any,
                       _props: Any = None) -> None:
        self._inbox.put(("disconnected", str(reason)))

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        self._inbox.put(("message", (message.topic, bytes(message.payload))))

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, _reason: Any,
                    _props: Any = None) -> None:
        self._inbox.put(("puback", mid))

    # --- uplink thread ---------------------------------------------------------------------

    def send_later(self, messages: list[tuple[str, bytes, bool]]) -> None:
        """Publish from the uplink thread (for callers on other threads)."""
        self._inbox.put(("send", messages))

    def resync(self) -> None:
        """Send the state again and every waiting message now (the hub asked for a resync)."""
        self._inbox.put(("resync", None))

    def apply_settings(self, settings: GatewaySettings) -> None:
        """Take remotely changed settings (called in the uplink thread by the command handler)."""
        self.settings = settings  # the publishing window follows settings.mqtt.inflight

    def _send(self, messages: list[tuple[str, bytes, bool]]) -> None:
        for topic, payload, retain in messages:
            self.client.publish(topic, payload, qos=1, retain=retain)

    def _run(self) -> None:
        self.outbox.relax_this_thread()
        while not self._stop.is_set():
            self.on_progress()
            if self.commands is not None and self._connected.is_set():
                self._send(self.commands.tick())
            self._publish_due()
            try:
                kind, value = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            # Under the waiters' lock: a condition of wait_until sees what was handled whole,
            # never an ack half applied (the outbox emptied, its counter not yet raised).
            with self._changed:
                self._handle(kind, value)
                while True:  # take everything queued before publishing again
                    try:
                        kind, value = self._inbox.get_nowait()
                    except queue.Empty:
                        break
                    self._handle(kind, value)
                if self._waiters:  # only wake waiters (tests, shutdown) when someone waits
                    self._changed.notify_all()

    def _handle(self, kind: str, value: Any) -> None:
        if kind == "send":
            self._send(value)
        elif kind in ("state", "resync") and self._connected.is_set():
            if kind == "resync":
                self._inflight.clear()
                logger.info("gateway %s: resync, %d messages due again", self.settings.id,
                            self.outbox.make_all_due())
            self.client.publish(self._state_topic, self._state(online=True), qos=1, retain=True)
        elif kind == "connected":
            self._connected.set()
            if self.commands is not None:
                self._send(self.commands.report())
            self.counters.connects += 1
            logger.info("gateway %s: connected to broker", self.settings.id)
        elif kind == "disconnected":
            if self._connected.is_set():
                logger.warning("gateway %s: link lost (%s)", self.settings.id, value)
            self._connected.clear()
            self._hub_online.clear()
            self._inflight.clear()  # unacked messages are resent after the ack timeout
        elif kind == "puback":
            self._on_puback(value)
        elif kind == "message":
            self._on_hub_message(*value)

    def _on_puback(self, mid: int) -> None:
        pending = self._inflight.pop(mid, None)
        self.counters.pubacks += 1
        if (pending is not None and pending.cls is MessageClass.TELEMETRY
                and self.settings.mqtt.telemetry_ack == "puback"):
            self.outbox.remove([pending.msg_id])

    def _on_hub_message(self, topic: str, payload: bytes) -> None:
        try:
            if topic == topics.HUB_STATE:
                online = bool(payload) and decode_as(HubState, payload).online
                if online and not self._hub_online.is_set():
                    logger.info("gateway %s: hub online, sending backlog of %d",
                                self.settings.id, self.outbox.depth())
                (self._hub_online.set if online else self._hub_online.clear)()
            elif topic == self._ack_topic:
                self._apply_ack(decode_as(Ack, payload))
            elif self.commands is not None:  # cmd/{name} or cfg/desired
                self._send(self.commands.handle(topics.parse(topic).leaf or "", payload))
        except ProtocolError as err:
            logger.warning("gateway %s: ignoring bad message on %s: %s",
                           self.settings.id, topic, err)

    def _apply_ack(self, ack: Ack) -> None:
        if self.commands is not None and self.commands.pending_confirmation:
            self._send(self.commands.confirm_link(True))  # the hub still hears us
        done = [e.id for e in ack.entries if e.status is not AckStatus.REJECTED]
        self.counters.acked += self.outbox.remove(done)
        for entry in ack.entries:
            if entry.status is AckStatus.REJECTED:
                self.counters.rejected += 1
                self.outbox.dead_letter(entry.id, f"rejected by hub: {entry.reason}",
                                        self.clock())

    def _publish_due(self) -> None:
        if not self.is_live():
            return
        room = self.settings.mqtt.inflight - len(self._inflight)
        if room <= 0 or (self._inflight and room < self.settings.mqtt.inflight // 8):
            return  # refill the window in chunks: one outbox round per chunk, not per PUBACK
        awaiting = {p.seq for p in self._inflight.values()}
        due = self.outbox.due(room, self.clock(), self.settings.mqtt.ack_timeout_s, awaiting)
        if not due:
            return
        sent = []
        for pending in due:
            info = self.client.publish(pending.topic, pending.payload, qos=1)
            if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
                break  # link went down: the rest stays due
            self._inflight[info.mid] = pending
            sent.append(pending.seq)
        self.counters.published += len(sent)
        self.outbox.mark_sent(sent, self.clock())
