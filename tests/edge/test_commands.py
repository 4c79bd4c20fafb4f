"""The hub's commands at the gateway: manifest, remote config with rollback, models, resync."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge.commands import CommandHandler, Publish
from edge.manifest import Manifest
from edge.model_store import CommandError
from edge.settings import GatewaySettings, MqttSettings
from firmware_sim.clock import VirtualClock
from protocols import topics
from protocols.messages import MAX_PAYLOAD_BYTES, Command, ConfigDocument

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
GRACE = 60.0
REPORTED = topics.config("site-a", "gw-1", "reported")

DEFAULT_INFLIGHT = MqttSettings().inflight  # what a rollback must come back to


@dataclass
class Hooks:
    """What the handler told the gateway."""

    changes: list[GatewaySettings] = field(default_factory=list)
    models: list[Path] = field(default_factory=list)
    resyncs: int = 0
    fail_model: bool = False

    def on_model(self, path: Path) -> None:
        self.models.append(path)
        if self.fail_model:
            raise RuntimeError("interpreter refused the model")

    def resync(self) -> None:
        self.resyncs += 1


@dataclass
class Rig:
    """A handler on a virtual clock, and a way to restart it as after a reboot."""

    settings: GatewaySettings
    clock: VirtualClock
    hooks: Hooks
    manifest: Manifest
    handler: CommandHandler

    def reboot(self) -> CommandHandler:
        self.handler = CommandHandler(self.settings, self.manifest, clock=self.clock,
                                      link_grace_s=GRACE, on_change=self.hooks.changes.append,
                                      on_model=self.hooks.on_model, resync=self.hooks.resync)
        return self.handler


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """A gateway's command handler with recording hooks."""
    settings = GatewaySettings(id="gw-1", site="site-a", data_dir=tmp_path,
                               stations=[{"id": "st-1"}])  # type: ignore[list-item]
    manifest = Manifest(tmp_path / "manifest.db", "site-a")
    rig = Rig(settings, VirtualClock(T0), Hooks(), manifest, None)  # type: ignore[arg-type]
    rig.reboot()
    yield rig
    manifest.close()


def command(args: dict[str, Any], command_id: str = "c-1") -> bytes:
    """A hub command payload."""
    return Command(id=command_id, ts=T0, args=args).encode()


def desired(version: int, settings: dict[str, Any]) -> bytes:
    """A desired configuration payload."""
    return ConfigDocument(version=version, settings=settings).encode()


def answer(published: list[Publish]) -> dict[str, Any]:
    """The one retained cfg/reported document a call produced."""
    assert len(published) == 1
    topic, payload, retain = published[0]
    assert (topic, retain) == (REPORTED, True)
    return dict(json.loads(payload))


def model_args(version: str, content: bytes, wrong: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """Arguments of cmd/model for ``content``, with ``wrong`` ones substituted."""
    return {"version": version, "sha256": hashlib.sha256(content).hexdigest(),
            "size": len(content), "content_b64": base64.b64encode(content).decode(),
            **(wrong or {})}


def files(directory: Path) -> dict[str, bytes]:
    """Every file under a directory with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# --- configuration -------------------------------------------------------------------------


def test_config_applied_persisted_and_confirmed(rig: Rig) -> None:
    handler = rig.handler
    report = answer(handler.handle("desired", desired(1, {
        "mqtt": {"inflight": 5}, "telemetry.interval_s": 2.5})))
    assert report["status"] == "applied" and report["version"] == 1
    assert report["command"] == {"name": "config", "id": None, "status": "applied",
                                 "error": None}
    assert report["pending"] is True
    assert handler.current_overrides() == {"mqtt.inflight": 5, "telemetry.interval_s": 2.5}
    assert handler.settings.mqtt.inflight == 5 and handler.settings.telemetry.interval_s == 2.5
    assert [s.mqtt.inflight for s in rig.hooks.changes] == [5]
    assert answer(handler.confirm_link(True))["pending"] is False
    assert handler.confirm_link(True) == []  # nothing on probation any more
    rig.clock.advance(10 * GRACE)
    assert handler.tick() == []
    rebooted = rig.reboot()
    assert rebooted.settings.mqtt.inflight == 5 and not rebooted.pending_confirmation


def test_config_command_is_accepted_like_desired(rig: Rig) -> None:
    report = answer(rig.handler.handle("config", command(
        {"version": 4, "settings": {"telemetry.batch_size": 50}}, "cfg-4")))
    assert report["command"]["id"] == "cfg-4" and report["command"]["status"] == "applied"
    assert rig.handler.settings.telemetry.batch_size == 50


@pytest.mark.parametrize(("settings", "error"), [
    ({"mqtt.url": "mqtt://evil:1883"}, "key 'mqtt.url' cannot be changed remotely"),
    ({"mqtt": {"password": "x"}}, "key 'mqtt.password' cannot be changed remotely"),
    ({"grader.model": 1}, "key 'grader.model' cannot be changed remotely"),
    ({"mqtt.inflight": 0}, "key 'mqtt.inflight': Input should be greater than or equal to 1"),
    ({"mqtt.inflight": "env:MQTT_PASSWORD"}, "key 'mqtt.inflight': must be a number"),
    ({"telemetry.interval_s": True}, "key 'telemetry.interval_s': must be a number"),
    ({"grader.thresholds.scrap_above_c": 9.0}, "key 'grader.thresholds'"),
])
def test_config_refused_names_the_key(rig: Rig, settings: dict[str, Any], error: str) -> None:
    before = rig.handler.settings
    report = answer(rig.handler.handle("desired", desired(1, settings)))
    assert report["status"] == "rejected" and report["version"] == 1
    assert error in report["error"] and report["command"]["status"] == "rejected"
    assert rig.handler.settings == before and rig.hooks.changes == []
    assert not rig.handler.pending_confirmation


def test_rolled_back_when_link_not_confirmed_in_grace_period(rig: Rig) -> None:
    handler = rig.handler
    handler.handle("desired", desired(1, {"mqtt.inflight": 50}))
    handler.confirm_link(True)
    handler.handle("desired", desired(2, {"mqtt.inflight": 7, "mqtt.ack_timeout_s": 1}))
    rig.clock.advance(GRACE - 1)
    assert handler.tick() == []
    rig.clock.advance(1)
    report = answer(handler.tick())
    assert report["status"] == "rolled_back" and report["version"] == 2
    assert report["active_version"] == 1 and report["settings"] == {"mqtt.inflight": 50}
    assert "not confirmed within 60 s" in report["error"]
    assert handler.settings.mqtt.inflight == 50 and handler.settings.mqtt.ack_timeout_s == 10
    assert [s.mqtt.inflight for s in rig.hooks.changes] == [50, 7, 50]
    # The retained desired v2 comes back on reconnect: it is not tried again.
    assert answer(handler.handle("desired", desired(2, {"mqtt.inflight": 7})))[
        "command"]["status"] == "unchanged"
    assert answer(handler.handle("desired", desired(1, {})))["command"]["status"] == "stale"
    assert rig.reboot().settings.mqtt.inflight == 50


def test_link_failure_rolls_back_at_once(rig: Rig) -> None:
    rig.handler.handle("desired", desired(1, {"mqtt.inflight": 3}))
    report = answer(rig.handler.confirm_link(False))
    assert report["status"] == "rolled_back" and report["active_version"] == 0
    assert rig.handler.current_overrides() == {}
    assert rig.handler.settings.mqtt.inflight == DEFAULT_INFLIGHT


def test_second_change_on_probation_keeps_confirmed_fallback(rig: Rig) -> None:
    rig.handler.handle("desired", desired(1, {"mqtt.inflight": 10}))
    rig.handler.confirm_link(True)
    rig.handler.handle("desired", desired(2, {"mqtt.inflight": 20}))
    rig.handler.handle("desired", desired(3, {"mqtt.inflight": 30}))
    assert answer(rig.handler.confirm_link(False))["active_version"] == 1


def test_unconfirmed_change_is_rolled_back_after_reboot(rig: Rig) -> None:
    rig.handler.handle("desired", desired(1, {"mqtt.inflight": 9}))
    rig.clock.advance(GRACE / 2)
    handler = rig.reboot()  # power cut before the link confirmed it
    assert handler.pending_confirmation and handler.settings.mqtt.inflight == 9
    rig.clock.advance(GRACE - 1)
    assert handler.tick() == []  # the grace period starts again at boot
    rig.clock.advance(1)
    assert answer(handler.tick())["status"] == "rolled_back"
    assert handler.settings.mqtt.inflight == DEFAULT_INFLIGHT


# --- models --------------------------------------------------------------------------------


def test_model_installed_atomically_and_rolled_back(rig: Rig) -> None:
    handler, models = rig.handler, rig.handler.models.directory
    for version in ("m1", "m2", "m3"):
        report = answer(handler.handle("model", command(model_args(version, version.encode()))))
        assert report["command"]["status"] == "applied" and report["model_version"] == version
    assert set(files(models)) == {"current", "m2.tflite", "m3.tflite"}  # current + previous
    assert json.loads(files(models)["current"])["previous"]["version"] == "m2"
    assert rig.hooks.models == [models / "m1.tflite", models / "m2.tflite", models / "m3.tflite"]
    assert handler.models.active() == models / "m3.tflite"

    report = answer(handler.rollback_model())
    assert report["model_version"] == "m2" and report["command"]["status"] == "rolled_back"
    assert rig.hooks.models[-1] == models / "m2.tflite"
    assert set(files(models)) == {"current", "m2.tflite"}
    with pytest.raises(CommandError, match="no previous model"):
        handler.rollback_model()
    again = answer(handler.handle("model", command(model_args("m2", b"m2"))))
    assert again["command"]["status"] == "unchanged"


@pytest.mark.parametrize(("wrong", "reason"), [
    ({"sha256": "0" * 64}, "sha256: checksum mismatch"),
    ({"size": 3}, "size: got 8 bytes, the command says 3"),
    ({"content_b64": "not base64!"}, "content_b64 is not base64"),
    ({"version": "../../etc/x"}, "version: String should match pattern"),
])
def test_bad_model_refused_and_nothing_changes(rig: Rig, wrong: dict[str, Any],
                                               reason: str) -> None:
    rig.handler.handle("model", command(model_args("m1", b"good one")))
    before = files(rig.handler.models.directory)
    report = answer(rig.handler.handle("model", command(model_args("m2", b"new body", wrong))))
    assert report["command"]["status"] == "rejected" and reason in report["command"]["error"]
    assert report["model_version"] == "m1"
    assert files(rig.handler.models.directory) == before
    assert len(rig.hooks.models) == 1


def test_model_the_grader_cannot_load_is_undone(rig: Rig) -> None:
    rig.handler.handle("model", command(model_args("m1", b"one")))
    rig.hooks.fail_model = True
    report = answer(rig.handler.handle("model", command(model_args("m2", b"two"))))
    assert report["command"]["status"] == "rejected" and "refused the model" in report[
        "command"]["error"]
    assert rig.handler.models.active_version == "m1"
    assert set(files(rig.handler.models.directory)) == {"current", "m1.tflite"}


def test_same_version_with_other_bytes_is_refused(rig: Rig) -> None:
    rig.handler.handle("model", command(model_args("m1", b"one")))
    report = answer(rig.handler.handle("model", command(model_args("m1", b"uno"))))
    assert "publish the model under a new version" in report["command"]["error"]


# --- manifest and resync -------------------------------------------------------------------


def test_manifest_command_applies_and_reports_versions(rig: Rig) -> None:
    item = {"item_id": "IT-1", "gtin": "06901234567892", "lot": "L2611"}
    doc = {"version": 3, "site": "site-a", "full": True, "items": [item]}
    report = answer(rig.handler.handle("manifest", command(doc, "manifest-3")))
    assert report["command"] == {"name": "manifest", "id": "manifest-3", "status": "applied",
                                 "error": None}
    assert (report["manifest_version"], report["manifest_items"]) == (3, 1)
    stale = answer(rig.handler.handle("manifest", command({**doc, "version": 2})))
    assert stale["command"]["status"] == "stale" and "older than v3" in stale["command"]["error"]
    gap = answer(rig.handler.handle("manifest", command(
        {**doc, "version": 5, "full": False, "base": 4})))
    assert gap["command"]["status"] == "rejected" and "send a full manifest" in gap[
        "command"]["error"]
    assert rig.manifest.lookup("IT-1") is not None


def test_resync_calls_the_uplink_hook(rig: Rig) -> None:
    report = answer(rig.handler.handle("resync", command({}, "rs-1")))
    assert rig.hooks.resyncs == 1 and report["command"]["status"] == "applied"
    rig.handler.resync = None
    assert answer(rig.handler.handle("resync", command({})))["command"]["status"] == "rejected"


# --- routing and garbage -------------------------------------------------------------------


def test_subscriptions_and_cleared_desired(rig: Rig) -> None:
    assert rig.handler.subscriptions() == ["coldloop/v1/site-a/gw-1/cmd/+",
                                           "coldloop/v1/site-a/gw-1/cfg/desired"]
    assert rig.handler.handle("desired", b"") == []  # the retained desired was cleared


def test_report_snapshot(rig: Rig) -> None:
    snapshot = answer(rig.handler.report())
    assert snapshot["command"] is None and snapshot["model_version"] is None
    assert (snapshot["version"], snapshot["status"], snapshot["settings"]) == (0, "applied", {})
    assert ConfigDocument.model_validate(snapshot).status == "applied"


@pytest.mark.parametrize(("leaf", "payload"), [
    ("manifest", b"not json"),
    ("manifest", b"\xff\xfe\x00"),
    ("manifest", b"[1, 2]"),
    ("manifest", b'{"v": "1.0"}'),
    ("manifest", b'{"v": "9.0", "id": "x", "ts": "2026-11-20T09:30:00Z"}'),
    ("manifest", command({"version": 1})),
    ("manifest", command({"version": 1, "site": "site-a", "full": True, "items": [{}]})),
    ("bogus", command({})),
    ("reported", command({})),
    ("model", command({})),
    ("model", b"x" * (MAX_PAYLOAD_BYTES + 1)),
    ("config", command({"version": "two"})),
    ("config", command({"version": 1, "settings": {"mqtt.inflight": 5}, "status": "applied"})),
    ("desired", b'{"v": "1.0", "version": -1}'),
    ("desired", b"{" * 100_000),
])
def test_garbage_never_raises_and_is_logged_once(rig: Rig, caplog: pytest.LogCaptureFixture,
                                                 leaf: str, payload: bytes) -> None:
    with caplog.at_level(logging.WARNING, logger="edge.commands"):
        first = answer(rig.handler.handle(leaf, payload))
        second = answer(rig.handler.handle(leaf, payload))
    assert first["command"]["status"] == second["command"]["status"] == "rejected"
    assert first["command"]["error"] and len(first["command"]["error"]) <= 500
    assert len(caplog.records) == 1
    assert rig.handler.settings.mqtt.inflight == DEFAULT_INFLIGHT and rig.manifest.version == 0


def test_deeply_nested_settings_are_refused(rig: Rig) -> None:
    payload = (b'{"v": "1.0", "version": 1, "settings": ' + b'{"a": ' * 600 + b"1"
               + b"}" * 600 + b"}")
    report = answer(rig.handler.handle("desired", payload))
    assert report["status"] == "rejected" and "nest deeper" in report["error"]


def test_gateway_that_cannot_take_the_change_rolls_back_at_once(rig: Rig) -> None:
    def refuse(settings: GatewaySettings) -> None:
        if settings.mqtt.inflight == 1:
            raise RuntimeError("uplink cannot resize its window")

    rig.handler.on_change = refuse
    report = answer(rig.handler.handle("desired", desired(1, {"mqtt.inflight": 1})))
    assert report["status"] == "rolled_back" and "cannot resize" in report["error"]
    assert rig.handler.settings.mqtt.inflight == DEFAULT_INFLIGHT
    assert not rig.handler.pending_confirmation


# --- signed models ---------------------------------------------------------------------------

RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


def _signed_args(version: str, content: bytes, secret: bytes = RFC8032_SECRET) -> dict[str, Any]:
    """Arguments of cmd/model with an Ed25519 signature over the content."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signature = Ed25519PrivateKey.from_private_bytes(secret).sign(content)
    return {**model_args(version, content),
            "signature_b64": base64.b64encode(signature).decode()}


def test_rfc8032_key_pair_matches() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET).public_key()
    assert public.public_bytes(Encoding.Raw, PublicFormat.Raw) == RFC8032_PUBLIC
    # RFC 8032 §7.1 test 1: the empty message's signature
    assert Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET).sign(b"").hex().startswith(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970")


@pytest.mark.parametrize(("args", "status", "error"), [
    (lambda c: _signed_args("m-1", c), "applied", None),
    (lambda c: model_args("m-1", c), "rejected", "unsigned"),
    (lambda c: _signed_args("m-1", c, secret=bytes(32)), "rejected", "does not verify"),
    (lambda c: {**_signed_args("m-1", c), "signature_b64": "%%%"}, "rejected",
     "does not verify"),
])
def test_a_gateway_with_a_key_takes_only_signed_models(rig: Rig, args, status: str,  # type: ignore[no-untyped-def]
                                                       error: str | None) -> None:
    rig.handler.model_public_key = RFC8032_PUBLIC
    models = rig.settings.outbox_path.parent / "models"
    report = answer(rig.handler.handle("model", command(args(b"tflite-bytes"))))
    assert report["command"]["status"] == status
    if error is not None:
        assert error in report["command"]["error"]
        assert not models.exists() or files(models) == {}
