"""The hub's database engine settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.console import main
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


@pytest.mark.parametrize(("url", "message"), [
    ("garbage", "the database URL is not usable: Could not parse SQLAlchemy URL"),
    ("postgresql+psycopg://postgres@127.0.0.1:1/x", "cannot use the database: connection"),
])
def test_a_database_the_hub_cannot_use_is_named_without_a_traceback(
        tmp_path: Path, url: str, message: str) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\nurl = "{url}"\n')
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "hub", "migrate",
                                       "--config", str(config)])
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output

