"""The hub's view of its gateways: their last reported state, newest boot wins.

The registry built on it (stations, probes, rates) is hub.fleet_view; its alarms, hub.alarms.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import Gateway
from protocols.messages import GatewayState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StateUpdate:
    """A gateway state as received on ``coldloop/v1/{site}/{gateway}/state``."""

    site: str
    gateway: str
    state: GatewayState
    received_at: datetime


def record_states(session: Session, updates: Sequence[StateUpdate]) -> tuple[int, int]:
    """Upsert gateway rows in order, ignoring states of an older boot; return (applied, stale)."""
    ids = {u.gateway for u in updates}
    boots: dict[str, int] = dict(
        session.execute(select(Gateway.id, Gateway.boot).where(Gateway.id.in_(ids))).all())
    final: dict[str, dict[str, Any]] = {}
    applied = stale = 0
    for update in updates:
        current = boots.get(update.gateway)
        if current is not None and update.state.boot < current:
            stale += 1
            logger.info("ignored stale state of gateway %s: boot %d < %d",
                        update.gateway, update.state.boot, current)
            continue
        boots[update.gateway] = update.state.boot
        row = _row(update)
        earlier = final.get(update.gateway)
        if earlier is not None:  # a state that omits software/model keeps what was known
            for column in ("software", "model_version"):
                if row[column] is None:
                    row[column] = earlier[column]
        final[update.gateway] = row
        applied += 1
    if final:
        _upsert(session, list(final.values()))
    return applied, stale


def _row(update: StateUpdate) -> dict[str, Any]:
    state = update.state
    return {"id": update.gateway, "site": update.site, "online": state.online,
            "boot": state.boot, "last_seen": update.received_at.astimezone(UTC),
            "software": state.software, "model_version": state.model_version,
            "backlog": state.backlog, "clock": state.clock.value,
            "alarms": sorted(set(state.alarms))}


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert or update gateway rows in one statement; a newer boot in the table wins."""
    dialect = session.get_bind().dialect.name
    statement: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        statement = postgresql_insert(Gateway)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(Gateway)
    else:
        _upsert_portably(session, rows)
        return
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[Gateway.id],
        set_={
            "site": new.site, "online": new.online, "boot": new.boot,
            "last_seen": new.last_seen, "backlog": new.backlog, "clock": new.clock,
            "alarms": new.alarms,
            "software": func.coalesce(new.software, Gateway.software),
            "model_version": func.coalesce(new.model_version, Gateway.model_version),
        },
        # Checked again in the database: another ingest worker may have written meanwhile.
        where=Gateway.boot <= new.boot,
    )
    session.execute(statement.execution_options(render_nulls=True), rows)


def _upsert_portably(session: Session, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        gateway = session.get(Gateway, row["id"], with_for_update=True)
        if gateway is None:
            session.add(Gateway(**row))
        elif gateway.boot <= row["boot"]:
            for column, value in row.items():
                if value is not None or column not in ("software", "model_version"):
                    setattr(gateway, column, value)
    session.flush()
