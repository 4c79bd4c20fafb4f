"""hub.commands against a real database, checked against what a gateway accepts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.orm import Session, sessionmaker

from edge.commands import CommandHandler
from edge.manifest import Manifest, parse_document
from edge.model_store import CommandError, ModelArgs
from edge.settings import GatewaySettings
from hub import commands
from hub.command_models import GatewaySync
from hub.commands import Outbound
from hub.errors import InvalidInput
from hub.models import Base, Gateway, Item, Pickup
from protocols import topics
from protocols.messages import MAX_PAYLOAD_BYTES, Command, ConfigDocument, decode_as
from tests.hub.conftest import T0

SITE, GW = "site-a", "gw-1"


@pytest.fixture
def factory(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """The shared seed plus pickups: IT-1 issued, IT-2 collected; IT-3 none; IT-4 graded."""
    with factory.begin() as session:
        session.add_all([
            Item(id="IT-3", order_id="O-1", gtin="06901234567892", lot="L2611",
                 product="Blueberries 125 g", family="berries", packed_at=T0),
            Item(id="IT-4", order_id="O-1", gtin="06901234567892", lot="L2611",
                 product="Blueberries 125 g", family="berries", packed_at=T0,
                 disposition="scrap"),
            Item(id="IT-5", order_id="O-1", gtin="06901234567891", lot="L2611",
                 product="Bad tag data", family="berries", packed_at=T0),
        ])
        session.flush()
        session.add_all([pickup("IT-1", "issued"), pickup("IT-2", "collected"),
                         pickup("IT-4", "collected"), pickup("IT-5", "issued")])
    return factory


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session over the seeded database."""
    with factory() as session:
        yield session


@pytest.fixture
def gateway_manifest(tmp_path: Path) -> Iterator[Manifest]:
    """The manifest cache of gateway gw-1 at site-a."""
    manifest = Manifest(tmp_path / "manifest.db", SITE)
    yield manifest
    manifest.close()


def pickup(item_id: str, status: str) -> Pickup:
    """A pickup of an item with a code derived from its id."""
    return Pickup(item_id=item_id, code=item_id.replace("-", "")[:9].ljust(9, "0"),
                  status=status, issued_at=T0)


def commands_sent(out: Outbound) -> list[tuple[str, dict[str, Any], bool]]:
    """Topic, decoded command args and retain flag of each collected publication."""
    return [(topic, decode_as(Command, payload).args, retain)
            for topic, payload, retain in out.messages]


def apply_all(out: Outbound, manifest: Manifest) -> None:
    """Apply every manifest message, in order, as the gateway would."""
    for _topic, args, _retain in commands_sent(out):
        manifest.apply(args)
    out.messages.clear()


# --- manifest --------------------------------------------------------------------------------


def test_manifest_lists_items_expected_back(session: Session,
                                            gateway_manifest: Manifest) -> None:
    out = Outbound()
    sent = commands.send_manifest(session, SITE, GW, out, now=T0,
                                  summaries={"IT-1": {"degree_hours": 3.5,
                                                      "shelf_life_used_frac": 0.25}},
                                  high_risk_families={"berries"})
    session.commit()
    assert (sent.version, sent.full, sent.items, sent.messages) == (1, True, 2, 1)
    assert sent.skipped == ("IT-5",)  # wrong GTIN check digit: a gateway would refuse it all
    [(topic, args, retain)] = commands_sent(out)
    assert topic == topics.command(SITE, GW, "manifest") and retain is False
    document = parse_document(args)
    assert [i.item_id for i in document.items] == ["IT-1", "IT-2"]
    apply_all(out, gateway_manifest)
    first = gateway_manifest.lookup("IT-1")
    assert first is not None and first.high_risk is True and first.degree_hours == 3.5
    assert first.family == "berries" and first.shelf_life_used_frac == 0.25
    spinach = gateway_manifest.lookup("IT-2")
    assert spinach is not None and spinach.high_risk is False
    assert gateway_manifest.lookup("IT-3") is None and gateway_manifest.version == 1


def test_versions_increase_and_deltas_carry_changes(session: Session,
                                                    gateway_manifest: Manifest) -> None:
    out = Outbound()
    assert commands.send_manifest(session, SITE, GW, out, now=T0).version == 1
    apply_all(out, gateway_manifest)
    unchanged = commands.send_manifest(session, SITE, GW, out, full=False, now=T0)
    assert (unchanged.version, unchanged.messages) == (1, 0) and out.messages == []

    session.add(pickup("IT-3", "issued"))
    session.get(Item, "IT-1").disposition = "resell"  # type: ignore[union-attr]
    session.flush()
    delta = commands.send_manifest(session, SITE, GW, out, full=False, now=T0)
    assert (delta.version, delta.items, delta.removed) == (2, 1, 1)
    [(_topic, args, _retain)] = commands_sent(out)
    assert (args["full"], args["base"], args["removed"]) == (False, 1, ["IT-1"])
    apply_all(out, gateway_manifest)
    assert [i.item_id for i in gateway_manifest.items()] == ["IT-2", "IT-3"]

    assert commands.send_manifest(session, SITE, GW, out, now=T0).version == 3
    assert commands.send_manifest(session, SITE, "gw-2", out, now=T0).version == 1
    session.commit()
    row = session.get(GatewaySync, (SITE, GW))
    assert row is not None and row.manifest_version == 3 and set(row.manifest_items) == {
        "IT-2", "IT-3"}


def test_large_manifest_is_split_under_the_payload_limit(session: Session,
                                                         gateway_manifest: Manifest) -> None:
    ids = [f"IT-B{n:05d}" for n in range(2500)]
    session.add_all([Item(id=i, order_id="O-1", gtin="06901234567892", lot="L2611",
                          product="Strawberries", family="berries", packed_at=T0) for i in ids])
    session.flush()
    session.add_all([Pickup(item_id=i, code=f"{n:09d}", status="issued", issued_at=T0)
                     for n, i in enumerate(ids)])
    session.flush()
    summary = {"hours_above_limit": 1.25, "degree_hours": 12.5, "shelf_life_used_frac": 0.5}
    out = Outbound()
    sent = commands.send_manifest(session, SITE, GW, out, now=T0,
                                  summaries=dict.fromkeys(ids, summary))
    assert sent.messages >= 2 and sent.version == sent.messages
    assert all(len(payload) <= MAX_PAYLOAD_BYTES for _t, payload, _r in out.messages)
    flags = [(args["full"], args.get("base")) for _t, args, _r in commands_sent(out)]
    assert flags[0] == (True, None) and all(f == (False, n) for n, f in enumerate(flags[1:], 1))
    apply_all(out, gateway_manifest)
    assert gateway_manifest.count == 2502 and gateway_manifest.version == sent.version


# --- configuration, model, resync ------------------------------------------------------------


def test_config_is_retained_and_versioned(session: Session) -> None:
    out = Outbound()
    assert commands.send_config(session, SITE, GW, {"mqtt.inflight": 20}, out, now=T0) == 1
    assert commands.send_config(session, SITE, GW, {"telemetry": {"interval_s": 5}}, out) == 2
    (topic, first, retain), (_, second, _) = out.messages
    assert topic == topics.config(SITE, GW, "desired") and retain is True
    assert decode_as(ConfigDocument, first).settings == {"mqtt.inflight": 20}
    assert decode_as(ConfigDocument, second).version == 2
    row = session.get(GatewaySync, (SITE, GW))
    assert row is not None and row.config_desired == {"telemetry": {"interval_s": 5}}
    with pytest.raises(InvalidInput, match="plain JSON"):
        commands.send_config(session, SITE, GW, {"mqtt.inflight": float("nan")}, out)
    with pytest.raises(InvalidInput, match="not a valid name"):
        commands.send_config(session, SITE, "GW 1", {}, out)


def test_model_is_sent_verifiably(session: Session) -> None:
    out = Outbound()
    content = bytes(range(256)) * 40
    digest = commands.send_model(session, SITE, GW, "grade-2026.11", content, out, now=T0)
    [(topic, args, retain)] = commands_sent(out)
    assert topic == topics.command(SITE, GW, "model") and retain is False
    assert ModelArgs.model_validate(args).verified_content() == content
    row = session.get(GatewaySync, (SITE, GW))
    assert row is not None and (row.model_desired, row.model_sha256) == ("grade-2026.11", digest)
    with pytest.raises(InvalidInput, match="over the 262144 limit"):
        commands.send_model(session, SITE, GW, "huge", b"x" * 200_000, out)
    with pytest.raises(InvalidInput, match="model version"):
        commands.send_model(session, SITE, GW, "../x", content, out)
    assert len(out.messages) == 1


def test_signed_model_verifies_at_the_gateway(session: Session) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    secret = bytes(range(32))
    public = Ed25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    out = Outbound()
    content = b"model bytes " * 10
    commands.send_model(session, SITE, GW, "m8", content, out, now=T0, signing_key=secret)
    [(_topic, args, _retain)] = commands_sent(out)
    model = ModelArgs.model_validate(args)
    model.check_signature(model.verified_content(), public)  # what the gateway does
    with pytest.raises(CommandError, match="does not verify"):
        model.check_signature(content + b"!", public)


def test_resync_command(session: Session) -> None:
    out = Outbound()
    commands.send_resync(session, SITE, GW, out, now=T0)
    [(topic, args, _retain)] = commands_sent(out)
    assert topic == topics.command(SITE, GW, "resync") and args == {}
    assert session.get(GatewaySync, (SITE, GW)).resync_sent_at == T0  # type: ignore[union-attr]


# --- what gateways report --------------------------------------------------------------------


def test_reported_status_is_stored(session: Session, gateway_manifest: Manifest,
                                   tmp_path: Path) -> None:
    session.add(Gateway(id=GW, site=SITE))
    out = Outbound()
    commands.send_manifest(session, SITE, GW, out, now=T0)
    commands.send_config(session, SITE, GW, {"mqtt.inflight": 0}, out, now=T0)
    commands.send_model(session, SITE, GW, "m7", b"model bytes", out, now=T0)
    settings = GatewaySettings(id=GW, site=SITE, data_dir=tmp_path,
                               stations=[{"id": "st-1"}])  # type: ignore[list-item]
    clock = iter(range(1_800_000_000, 1_800_000_100))
    handler = CommandHandler(settings, gateway_manifest, clock=lambda: float(next(clock)))
    reports = [handler.handle(topics.parse(topic).leaf or "", payload)[-1]
               for topic, payload, _retain in out.messages]
    rows = [commands.record_reported(session, SITE, GW,
                                     decode_as(ConfigDocument, payload), received_at=T0)
            for _topic, payload, _retain in reports]
    row = rows[-1]
    assert (row.reported_manifest_version, row.reported_manifest_items) == (1, 2)
    assert (row.reported_config_version, row.reported_config_status) == (1, "rejected")
    assert "key 'mqtt.inflight'" in (row.reported_config_error or "")
    assert row.reported_model_version == "m7" and not row.model_behind
    assert row.reported_command is not None
    assert (row.reported_command["name"], row.reported_command["status"]) == ("model", "applied")
    assert not row.manifest_behind and not row.config_behind
    assert session.get(Gateway, GW).model_version == "m7"  # type: ignore[union-attr]

    older = decode_as(ConfigDocument, reports[0][1])  # a late copy of the first report
    assert commands.record_reported(session, SITE, GW, older).reported_model_version == "m7"
    commands.send_manifest(session, SITE, GW, out, now=T0 + timedelta(hours=1))
    assert row.manifest_behind
    session.commit()
    assert [r.gateway_id for r in commands.sync_status(session, SITE)] == [GW]


def test_bad_reports_are_refused(session: Session) -> None:
    with pytest.raises(InvalidInput, match="status 'desired'"):
        commands.record_reported(session, SITE, GW, ConfigDocument(version=1))
    bad = ConfigDocument.model_validate({"version": 1, "status": "applied",
                                         "manifest_version": "many"})
    with pytest.raises(InvalidInput, match="manifest_version"):
        commands.record_reported(session, SITE, GW, bad)


def test_migration_matches_the_model(factory: sessionmaker[Session]) -> None:
    engine = factory.kw["bind"]
    only = MetaData()
    GatewaySync.__table__.to_metadata(only)  # type: ignore[attr-defined]
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": lambda name, kind, _p:
                                                         kind != "table" or name ==
                                                         "gateway_sync"})
        assert compare_metadata(context, only) == []
    assert "gateway_sync" in Base.metadata.tables
