"""The migrations build exactly the schema the models describe, and come back down cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

import hub.command_models
import hub.tickets.models
import hub.trace_models  # noqa: F401 - every model module, so the metadata is complete
from hub.db import alembic_config, make_engine, migrate
from hub.models import Base


def test_head_matches_the_models(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_every_migration_goes_down_and_up_again(database_url: str) -> None:
    migrate(database_url)
    command.downgrade(alembic_config(database_url), "base")
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    migrate(database_url)


def test_stored_phones_are_brought_to_e164(database_url: str) -> None:
    migrate(database_url, "0014")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO customers (id, name, phone, tier, region) VALUES "
                              "('C-1', 'Li', '+86 138 0000 0001', 'gold', 'sh'), "
                              "('C-2', 'Wu', 'ask at the desk', 'gold', 'sh'), "
                              "('C-3', 'He', NULL, 'gold', 'sh')"))
            for key in ("phone:139-1111-2222", "hotline:13911112222", "user:C-1",
                        "social:weibo:13911112222", "phone:unreadable"):
                conn.execute(text("INSERT INTO tickets (channel, text, category, status, "
                                  "created_at, customer_key, urgency, keywords, priority, "
                                  "context) VALUES ('app', 't', 'other', 'new', :at, :key, "
                                  "'P3', '[]', 'P3', '{}')"),
                             {"key": key, "at": "2026-11-02 06:00:00"})
        migrate(database_url)
        with engine.connect() as conn:
            phones = {customer_id: phone for customer_id, phone in
                      conn.execute(text("SELECT id, phone FROM customers"))}
            keys = list(conn.execute(text("SELECT customer_key FROM tickets ORDER BY id"))
                        .scalars())
    finally:
        engine.dispose()
    assert phones == {"C-1": "+8613800000001", "C-2": "ask at the desk", "C-3": None}
    assert keys == ["phone:+8613911112222", "hotline:+8613911112222", "user:C-1",
                    "social:weibo:13911112222", "phone:unreadable"]
