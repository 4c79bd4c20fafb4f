"""Commands to gateways (manifest, desired configuration, model, resync) and what they report.

Plain functions over a SQLAlchemy session and a ``publish(topic, payload, retain)`` callable;
they flush but never commit. Publish only after the commit: a version a gateway has seen must
never be handed out again, so pass an :class:`Outbound` and ``send`` it once committed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from hub.command_models import GatewaySync
from hub.errors import InvalidInput
from hub.models import Gateway, Item, Pickup
from protocols import topics
from protocols.errors import TopicError
from protocols.instants import Instant
from protocols.messages import MAX_COUNT, MAX_PAYLOAD_BYTES, Command, ConfigDocument, describe
from protocols.tag import is_valid_gtin

logger = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bool], None]
EXPECTED_PICKUP_STATUSES = ("issued", "collected")
COLD_CHAIN_FIELDS = ("hours_above_limit", "degree_hours", "shelf_life_used_frac")
_PAYLOAD_BUDGET = MAX_PAYLOAD_BYTES - 4096  # room for the command envelope
_CODE = re.compile(r"[A-Z0-9-]+")
_FAMILY = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
_MODEL_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_Printable = Annotated[str, Field(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")]


@dataclass
class Outbound:
    """Collects publications until the transaction has committed; ``send`` hands them on."""

    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)

    def __call__(self, topic: str, payload: bytes, retain: bool) -> None:
        """Keep one publication."""
        self.messages.append((topic, payload, retain))

    def send(self, publish: Publish) -> int:
        """Publish everything collected, in order; return how many."""
        sent, self.messages = self.messages, []
        for topic, payload, retain in sent:
            publish(topic, payload, retain)
        return len(sent)


@dataclass(frozen=True)
class ManifestSent:
    """What :func:`send_manifest` published."""

    version: int  # the gateway's manifest version once it has applied every message
    full: bool
    items: int
    removed: int
    messages: int
    skipped: tuple[str, ...] = ()  # items whose data a gateway would refuse: not sent


class _ShadowVerdict(BaseModel):
    """A model trial's outcome, as the gateway reports it."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    model: _Printable
    scans: Annotated[int, Field(ge=0)]
    agreement: Annotated[float, Field(ge=0, le=1)]


class _ReportedCommand(BaseModel):
    """The gateway's answer to the latest command."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    name: _Printable | None = None
    id: _Printable | None = None
    status: _Printable | None = None
    error: Annotated[str, Field(max_length=1000)] | None = None
    shadow: _ShadowVerdict | None = None


_Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]  # stored as a 32-bit integer


class _Reported(BaseModel):
    """The fields a gateway adds to its ``cfg/reported`` ConfigDocument."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    active_version: _Count | None = None
    pending: bool | None = None
    model_version: _Printable | None = None
    manifest_version: _Count | None = None
    manifest_items: _Count | None = None
    command: _ReportedCommand | None = None
    ts: Instant | None = None


def expected_items(session: Session) -> list[Item]:
    """Items the hub expects back: an issued or collected pickup, and not graded yet."""
    # Pickups do not say which sorting center a return goes to yet: every site gets them all.
    awaited = select(Pickup.item_id).where(Pickup.status.in_(EXPECTED_PICKUP_STATUSES))
    return list(session.scalars(select(Item).where(Item.id.in_(awaited),
                                                   Item.disposition.is_(None)).order_by(Item.id)))


def send_manifest(session: Session, site: str, gateway: str, publish: Publish,
                  full: bool = True, *,
                  summaries: Mapping[str, Mapping[str, float | None]] | None = None,
                  high_risk_families: Collection[str] | None = None,
                  now: datetime | None = None) -> ManifestSent:
    """Send a gateway its manifest: all expected items, or (``full=False``) what changed."""
    topic = _topic(topics.command, site, gateway, "manifest")
    entries, skipped = _entries(expected_items(session), summaries or {}, high_risk_families)
    fingerprints = {item_id: _fingerprint(e) for item_id, e in entries.items()}
    row = _ensure(session, site, gateway)
    known = {} if full else dict(row.manifest_items or {})
    upserts = [e for item_id, e in entries.items() if known.get(item_id) != fingerprints[item_id]]
    removed = sorted(set(known) - set(entries))
    if not full and not upserts and not removed:
        return ManifestSent(row.manifest_version, False, 0, 0, 0, skipped)
    chunks = _chunks(upserts, removed)
    last = _bump(session, row, GatewaySync.manifest_version, len(chunks))
    stamp = _now(now)
    for index, (items, gone) in enumerate(chunks):
        version = last - len(chunks) + 1 + index
        first_full = full and index == 0
        document = {"version": version, "site": site, "full": first_full, "items": items,
                    "removed": gone, **({} if first_full else {"base": version - 1})}
        payload = Command(id=f"manifest-{version}", ts=stamp, args=document).encode()
        publish(topic, payload, False)
    row.manifest_items, row.manifest_sent_at = fingerprints, stamp
    session.flush()
    logger.info("manifest v%d for %s/%s: %d items, %d removed, %d message(s)%s", last, site,
                gateway, len(upserts), len(removed), len(chunks), " (full)" if full else "")
    return ManifestSent(last, full, len(upserts), len(removed), len(chunks), skipped)


def send_config(session: Session, site: str, gateway: str, overrides: Mapping[str, Any],
                publish: Publish, *, now: datetime | None = None) -> int:
    """Publish a gateway's desired configuration overlay (retained); return its version."""
    topic = _topic(topics.config, site, gateway, "desired")
    if not isinstance(overrides, Mapping) or not all(isinstance(k, str) and k for k in overrides):
        raise InvalidInput("overrides must map setting names such as 'mqtt.inflight' to values")
    try:
        settings = json.loads(json.dumps(dict(overrides), allow_nan=False))
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"overrides must be plain JSON values: {err}") from None
    row = _ensure(session, site, gateway)
    version = _bump(session, row, GatewaySync.config_version)
    payload = ConfigDocument(version=version, settings=settings).encode()
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"the configuration is {len(payload)} bytes; the limit is "
                           f"{MAX_PAYLOAD_BYTES}")
    row.config_desired, row.config_sent_at = settings, _now(now)
    session.flush()
    publish(topic, payload, True)  # retained: a gateway that was away gets it on reconnect
    logger.info("configuration v%d desired for %s/%s: %s", version, site, gateway, settings)
    return version


def send_model(session: Session, site: str, gateway: str, version: str, content: bytes,
               publish: Publish, *, now: datetime | None = None,
               signing_key: bytes | None = None, card: dict[str, Any] | None = None) -> str:
    """Send a model file inline; return its SHA-256. Raise InvalidInput if it does not fit."""
    topic = _topic(topics.command, site, gateway, "model")
    if not isinstance(version, str) or not _MODEL_VERSION.fullmatch(version):
        raise InvalidInput(f"model version {version!r}: use 1-64 of A-Z a-z 0-9 . _ -, "
                           "starting with a letter or digit")
    if not content:
        raise InvalidInput("the model file is empty")
    digest = hashlib.sha256(content).hexdigest()
    stamp = _now(now)
    args = {"version": version, "sha256": digest, "size": len(content),
            "content_b64": base64.b64encode(content).decode()}
    if card is not None:
        args["card"] = card
    if signing_key is not None:  # Ed25519 private key (32-byte seed)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        signature = Ed25519PrivateKey.from_private_bytes(signing_key).sign(content)
        args["signature_b64"] = base64.b64encode(signature).decode()
    payload = Command(id=f"model-{digest[:12]}", ts=stamp, args=args).encode()
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"model {version} is {len(content)} bytes: as base64 in one message "
                           f"it needs {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES} limit")
    row = _ensure(session, site, gateway)
    row.model_desired, row.model_sha256, row.model_sent_at = version, digest, stamp
    session.flush()
    publish(topic, payload, False)
    logger.info("model %s (%d bytes) sent to %s/%s", version, len(content), site, gateway)
    return digest


def send_resync(session: Session, site: str, gateway: str, publish: Publish, *,
                now: datetime | None = None) -> None:
    """Ask a gateway to republish its state and resend everything its outbox holds."""
    topic = _topic(topics.command, site, gateway, "resync")
    stamp = _now(now)
    row = _ensure(session, site, gateway)
    row.resync_sent_at = stamp
    session.flush()
    publish(topic, Command(id=f"resync-{int(stamp.timestamp())}", ts=stamp).encode(), False)


def record_reported(session: Session, site: str, gateway: str, document: ConfigDocument, *,
                    received_at: datetime | None = None) -> GatewaySync:
    """Store what a gateway reported on ``cfg/reported`` (an older report is ignored)."""
    _topic(topics.config, site, gateway, "reported")
    if document.status == "desired":
        raise InvalidInput("a reported configuration cannot have status 'desired'")
    try:
        extra = _Reported.model_validate(document.model_extra or {})
    except ValidationError as err:
        raise InvalidInput(f"reported configuration: {describe(err)}") from None
    row = _ensure(session, site, gateway)
    if extra.ts is not None and row.reported_ts is not None and extra.ts < row.reported_ts:
        logger.info("ignored an older report of %s/%s (%s)", site, gateway, extra.ts)
        return row
    row.reported_config_version = document.version
    row.reported_config_status = document.status
    row.reported_config_error = document.error and document.error.replace("\x00", "\\x00")
    row.reported_settings = dict(document.settings)
    row.reported_active_version, row.reported_pending = extra.active_version, extra.pending
    row.reported_model_version = extra.model_version
    row.reported_manifest_version = extra.manifest_version
    row.reported_manifest_items = extra.manifest_items
    row.reported_command = extra.command.model_dump(exclude_none=True) if extra.command else None
    row.reported_ts = extra.ts
    row.reported_at = _now(received_at)
    if extra.model_version is not None:  # the fleet view shows the model on the gateway row
        session.execute(update(Gateway).where(Gateway.id == gateway)
                        .values(model_version=extra.model_version))
    session.flush()
    return row


def sync_status(session: Session, site: str | None = None) -> list[GatewaySync]:
    """Every gateway's sent and reported command state (of one site), by site and gateway."""
    query = select(GatewaySync).order_by(GatewaySync.site, GatewaySync.gateway_id)
    if site is not None:
        query = query.where(GatewaySync.site == site)
    return list(session.scalars(query))


# --- helpers ---------------------------------------------------------------------------------


def _topic(build: Callable[[str, str, str], str], site: str, gateway: str, leaf: str) -> str:
    try:
        return build(site, gateway, leaf)
    except TopicError as err:
        raise InvalidInput(str(err)) from None


def _entries(items: list[Item], summaries: Mapping[str, Mapping[str, float | None]],
             high_risk_families: Collection[str] | None
             ) -> tuple[dict[str, dict[str, Any]], tuple[str, ...]]:
    """Manifest entries by item id, and the ids skipped because a gateway would refuse them."""
    entries: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for item in items:
        entry = _entry(item, summaries.get(item.id, {}), high_risk_families)
        if entry is None:
            skipped.append(item.id)
        else:
            entries[item.id] = entry
    if skipped:
        logger.warning("manifest leaves out %d item(s) with invalid tag data: %s",
                       len(skipped), ", ".join(skipped[:5]))
    return entries, tuple(skipped)


def _entry(item: Item, summary: Mapping[str, float | None],
           high_risk_families: Collection[str] | None) -> dict[str, Any] | None:
    if (len(item.id) > 16 or not _CODE.fullmatch(item.id) or len(item.lot) > 10
            or not _CODE.fullmatch(item.lot) or len(item.gtin) != 14
            or not is_valid_gtin(item.gtin)):
        return None
    entry: dict[str, Any] = {"item_id": item.id, "gtin": item.gtin, "lot": item.lot}
    if item.family and _FAMILY.fullmatch(item.family):
        entry["family"] = item.family
    if high_risk_families is not None:
        entry["high_risk"] = item.family in high_risk_families
    for name in COLD_CHAIN_FIELDS:
        value = summary.get(name)
        if value is not None:
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                return None
            entry[name] = float(value)
    return entry


def _fingerprint(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()[:16]


def _chunks(items: list[dict[str, Any]], removed: list[str]
            ) -> list[tuple[list[dict[str, Any]], list[str]]]:
    """Split entries and removals into messages that stay under the payload limit."""
    chunks: list[tuple[list[dict[str, Any]], list[str]]] = [([], [])]
    size = 0
    values: list[tuple[int, Any]] = [(0, i) for i in items] + [(1, r) for r in removed]
    for slot, value in values:
        cost = len(json.dumps(value, separators=(",", ":"))) + 1
        if size + cost > _PAYLOAD_BUDGET and (chunks[-1][0] or chunks[-1][1]):
            chunks.append(([], []))
            size = 0
        chunks[-1][slot].append(value)
        size += cost
    return chunks


def _ensure(session: Session, site: str, gateway: str) -> GatewaySync:
    """The gateway's row, inserted if missing (concurrent first inserts do not collide)."""
    row = session.get(GatewaySync, (site, gateway))
    if row is not None:
        return row
    values = {"site": site, "gateway_id": gateway, "manifest_version": 0, "manifest_items": {},
              "config_version": 0, "config_desired": {}}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        session.execute(postgresql_insert(GatewaySync).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(GatewaySync).values(values).on_conflict_do_nothing())
    else:
        session.add(GatewaySync(**values))
        session.flush()
    row = session.get(GatewaySync, (site, gateway))
    assert row is not None
    return row


def _bump(session: Session, row: GatewaySync, column: InstrumentedAttribute[int],
          by: int = 1) -> int:
    """Add ``by`` to a version counter in one UPDATE (it locks the row) and return it."""
    statement = (update(GatewaySync)
                 .where(GatewaySync.site == row.site, GatewaySync.gateway_id == row.gateway_id)
                 .values({column: column + by}).returning(column))
    version = int(session.execute(statement).scalar_one())
    session.refresh(row, [column.key])
    return version


def _now(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        raise InvalidInput("times must be timezone-aware (use datetime.now(UTC))")
    return moment
