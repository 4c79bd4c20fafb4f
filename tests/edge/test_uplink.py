"""The gateway's MQTT link against a real broker, with a test peer playing the hub."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.outbox import Outbox
from edge.recorder import Recorder
from edge.settings import GatewaySettings, MqttSettings, StationSettings
from edge.uplink import Uplink
from firmware_sim.clock import VirtualClock
from protocols import topics
from protocols.messages import Ack, AckEntry, AckStatus, FaultEvent, HubState

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
WAIT = 20.0


class HubPeer:
    """Plays the hub: says online, records what arrives, answers acks as told."""

    def __init__(self, broker, site: str) -> None:  # type: ignore[no-untyped-def]
        self.site = site
        self.received: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.verdict = AckStatus.STORED
        self.answer = True
        protocol = mqtt.MQTTv5 if broker.speaks_v5 else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"peer-{uuid.uuid4().hex[:8]}", protocol=protocol)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(f"coldloop/v1/{site}/+/evt/+", qos=1)
        self.client.subscribe(f"coldloop/v1/{site}/+/tlm", qos=1)

    def _on_message(self, client, _userdata, message) -> None:  # type: ignore[no-untyped-def]
        payload = json.loads(message.payload)
        self.received.put((message.topic, payload))
        if "/evt/" in message.topic and self.answer:
            gateway = topics.parse(message.topic).gateway
            ack = Ack(ts=T0, entries=[AckEntry(id=payload["id"], status=self.verdict,
                                               reason="bad" if self.verdict == "rejected"
                                               else None)])
            client.publish(topics.ack(self.site, gateway), ack.encode(), qos=1)

    def hub_online(self, online: bool) -> None:
        self.client.publish(topics.HUB_STATE, HubState(online=online).encode(), qos=1,
                            retain=True).wait_for_publish(5)

    def next(self) -> tuple[str, dict[str, Any]]:
        return self.received.get(timeout=WAIT)

    def close(self) -> None:
        self.client.publish(topics.HUB_STATE, b"", qos=1, retain=True).wait_for_publish(5)
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def site() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def peer(broker, site: str) -> Iterator[HubPeer]:  # type: ignore[no-untyped-def]
    hub = HubPeer(broker, site)
    hub.hub_online(False)
    yield hub
    hub.close()


@pytest.fixture
def link(broker, peer: HubPeer, site: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = GatewaySettings(id="gw-1", site=site, data_dir=tmp_path,
                               mqtt=MqttSettings(url=broker.url, ack_timeout_s=30),
                               stations=[StationSettings(id="st-1")])
    outbox = Outbox(settings.outbox_path)
    clock = VirtualClock(T0)
    uplink = Uplink(settings, outbox, outbox.next_boot(), clock, protocol_v5=broker.speaks_v5)
    recorder = Recorder("gw-1", site, uplink.boot, outbox, clock, is_live=uplink.is_live)
    uplink.start()
    yield uplink, recorder, outbox, clock
    uplink.stop()
    peer.client.publish(topics.state(site, "gw-1"), b"", qos=1, retain=True).wait_for_publish(5)


def _fault(recorder: Recorder, code: str = "probe_unplugged") -> FaultEvent:
    event = FaultEvent(**recorder.common(), station="st-1", component="probe", code=code)
    recorder.commit_events([event])
    return event


def test_backlog_waits_for_hub_then_drains_flagged_historical(peer, link) -> None:  # type: ignore[no-untyped-def]
    uplink, recorder, outbox, _clock = link
    events = [_fault(recorder) for _ in range(3)]
    assert all(e.historical for e in events)  # committed while the hub was not online
    assert outbox.depth() == 3
    peer.hub_online(True)
    got = sorted(peer.next()[1]["id"] for _ in range(3))
    assert got == sorted(e.id for e in events)
    assert uplink.wait_drained(WAIT)
    assert uplink.counters.acked == 3


def test_event_stays_until_application_ack_and_is_resent(peer, link) -> None:  # type: ignore[no-untyped-def]
    uplink, recorder, outbox, clock = link
    peer.answer = False
    event = _fault(recorder)
    peer.hub_online(True)
    _, delivered = peer.next()
    assert delivered["id"] == event.id
    assert outbox.depth() == 1  # PUBACK is not storage
    peer.answer = True
    clock.advance(31)  # past ack_timeout_s: due again
    _, again = peer.next()
    assert again["id"] == delivered["id"]
    assert uplink.wait_drained(WAIT)


def test_rejected_event_goes_to_dead_letters(peer, link) -> None:  # type: ignore[no-untyped-def]
    uplink, recorder, outbox, _clock = link
    peer.verdict = AckStatus.REJECTED
    peer.hub_online(True)
    event = _fault(recorder)
    assert peer.next()[1]["id"] == event.id
    assert uplink.wait_drained(WAIT)
    assert outbox.dead_letters() == [(event.id, "rejected by hub: bad")]


def test_telemetry_leaves_on_puback(peer, link) -> None:  # type: ignore[no-untyped-def]
    uplink, recorder, _outbox, _clock = link
    peer.answer = False
    peer.hub_online(True)
    batch = recorder.commit_telemetry([("st-1-core", T0.timestamp(), 2.5)])
    topic, payload = peer.next()
    assert topic.endswith("/tlm") and payload["id"] == batch.id
    assert uplink.wait_drained(WAIT)


def test_settings_change_while_connected(peer, link) -> None:  # type: ignore[no-untyped-def]
    uplink, recorder, _outbox, _clock = link
    peer.hub_online(True)
    assert uplink.wait_live(True, WAIT)
    changed = uplink.settings.model_copy(update={
        "mqtt": uplink.settings.mqtt.model_copy(update={"inflight": 2})})
    uplink.apply_settings(changed)  # paho refuses to resize its window now; ours follows
    events = [_fault(recorder) for _ in range(6)]
    assert sorted(peer.next()[1]["id"] for _ in range(6)) == sorted(e.id for e in events)
    assert uplink.wait_drained(WAIT)
