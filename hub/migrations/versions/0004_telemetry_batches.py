"""telemetry kept as whole batches plus per-probe windows, instead of one row per reading

Revision ID: 0004
Revises: 0003

Existing readings are regrouped into batches (their document holds the readings only: the
original message was not kept before) and folded into windows; the old table is dropped.
"""
import itertools
import json
import zlib
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from hub.models import UTCDateTime
from hub.telemetry import NewBatch, batch_rows, window_rows

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_MOVE_CHUNK = 200  # batches per insert while moving old readings


def upgrade() -> None:
    batches = op.create_table(
        "telemetry_batches",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("site", sa.String(length=32), nullable=False),
        sa.Column("ts_first", sa.Float(), nullable=False),
        sa.Column("ts_last", sa.Float(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("historical", sa.Boolean(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    op.create_index("ix_telemetry_batches_source_ts", "telemetry_batches",
                    ["source", "ts_first"])
    windows = op.create_table(
        "telemetry_windows",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("probe", sa.String(length=32), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("site", sa.String(length=32), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("sum_c", sa.Float(), nullable=False),
        sa.Column("min_c", sa.Float(), nullable=True),
        sa.Column("max_c", sa.Float(), nullable=True),
        sa.Column("first_ts", sa.Float(), nullable=False),
        sa.Column("last_ts", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("source", "probe", "window_start"),
    )
    op.create_index("ix_telemetry_windows_probe_start", "telemetry_windows",
                    ["probe", "window_start"])
    _move_old_readings(batches, windows)
    op.drop_index("ix_telemetry_probe_ts", table_name="telemetry")
    op.drop_table("telemetry")


def _move_old_readings(batches: sa.Table, windows: sa.Table) -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    old = sa.Table("telemetry", meta, autoload_with=bind)
    gateways = sa.Table("gateways", meta, autoload_with=bind)
    stored = sa.Table("stored_messages", meta, autoload_with=bind)
    sites = dict(bind.execute(sa.select(gateways.c.id, gateways.c.site)).all())
    received = dict(bind.execute(sa.select(stored.c.message_id, stored.c.received_at)).all())
    rows = bind.execute(sa.select(old.c.batch_id, old.c.gateway_id, old.c.probe, old.c.ts,
                                  old.c.temp_c).order_by(old.c.batch_id, old.c.seq))
    pending: list[NewBatch] = []
    for batch_id, group in itertools.groupby(rows, key=lambda r: r.batch_id):
        readings = [(r.probe, r.ts, r.temp_c) for r in group]
        source = _source_of(batch_id)
        at = received.get(batch_id) or datetime.now(UTC)
        at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        pending.append(NewBatch(
            batch_id=batch_id, source=source, site=sites.get(source, ""), readings=readings,
            document=json.dumps({"readings": readings}).encode(),
            received_at=at if at.tzinfo else at.replace(tzinfo=UTC)))
        if len(pending) >= _MOVE_CHUNK:
            _flush(bind, batches, windows, pending)
    _flush(bind, batches, windows, pending)


def _flush(bind: sa.Connection, batches: sa.Table, windows: sa.Table,
           pending: list[NewBatch]) -> None:
    if not pending:
        return
    bind.execute(batches.insert(), batch_rows(pending))
    for row in window_rows(pending):  # the old rows are unique per batch: merge by hand
        key = (windows.c.source == row["source"]) & (windows.c.probe == row["probe"]) & (
            windows.c.window_start == row["window_start"])
        current = bind.execute(sa.select(windows).where(key)).first()
        if current is None:
            bind.execute(windows.insert(), row)
            continue
        known = [v for v in (current.min_c, row["min_c"]) if v is not None]
        high = [v for v in (current.max_c, row["max_c"]) if v is not None]
        bind.execute(windows.update().where(key).values(
            readings=current.readings + row["readings"],
            missing=current.missing + row["missing"], sum_c=current.sum_c + row["sum_c"],
            min_c=min(known) if known else None, max_c=max(high) if high else None,
            first_ts=min(current.first_ts, row["first_ts"]),
            last_ts=max(current.last_ts, row["last_ts"])))
    pending.clear()


def _source_of(batch_id: str) -> str:
    if batch_id.startswith("truck:"):  # truck:<id>:<upload>
        return ":".join(batch_id.split(":")[:2])[:32]
    return batch_id.split(":", 1)[0]


def downgrade() -> None:
    op.create_table(
        "telemetry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("gateway_id", sa.String(length=32), nullable=False),
        sa.Column("probe", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("temp_c", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "seq", name="uq_telemetry_batch_seq"),
    )
    op.create_index("ix_telemetry_probe_ts", "telemetry", ["probe", "ts"])
    bind = op.get_bind()
    meta = sa.MetaData()
    batches = sa.Table("telemetry_batches", meta, autoload_with=bind)
    old = sa.Table("telemetry", meta, autoload_with=bind)
    for record in bind.execute(sa.select(batches.c.batch_id, batches.c.source, batches.c.data)):
        readings = json.loads(zlib.decompress(record.data))["readings"]
        bind.execute(old.insert(), [
            {"batch_id": record.batch_id, "seq": seq, "gateway_id": record.source,
             "probe": probe, "ts": ts, "temp_c": temp}
            for seq, (probe, ts, temp) in enumerate(readings)])
    op.drop_index("ix_telemetry_windows_probe_start", table_name="telemetry_windows")
    op.drop_table("telemetry_windows")
    op.drop_index("ix_telemetry_batches_source_ts", table_name="telemetry_batches")
    op.drop_table("telemetry_batches")
