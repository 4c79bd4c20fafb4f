"""The hub's database engine settings."""

from __future__ import annotations

from pathlib import Path

from hub.db import make_engine


def test_sqlite_commits_are_on_disk_before_they_are_acked(tmp_path: Path) -> None:
    # The hub acks messages after commit, and the gateway then forgets them: under WAL,
    # synchronous=NORMAL could lose the last commits on a power cut; FULL (2) cannot.
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
