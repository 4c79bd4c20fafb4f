"""``coldloop sim``: replay, record and scenario commands as an engineer runs them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from firmware_sim import capture
from hub.console import main
from tests.conftest import CAPTURES


def test_replay_command_prints_the_digest(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = ["--data-dir", str(tmp_path), "sim", "replay", str(CAPTURES / "normal_shift.jsonl"),
            "--broker", broker.url, "--summary", str(tmp_path / "r.json")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["hub_records"]["scans"] == 12 and len(summary["digest"]) == 64


def test_replay_refuses_a_bad_capture_before_running(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text((CAPTURES / "normal_shift.jsonl").read_text().splitlines()[0]
                   + '\n{"t": 1, "kind": "card_removed", "source": "rfid:st-7"}\n')
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "sim", "replay", str(bad)])
    assert result.exit_code == 1
    assert "bad.jsonl:2: unknown station 'st-7'" in result.output


def test_record_command_writes_a_capture(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "gw.toml"
    config.write_text(f'id = "gw-rec"\nsite = "rec-site"\n[mqtt]\nurl = "{broker.url}"\n'
                      '[[stations]]\nid = "st-1"\n')
    out = tmp_path / "rec.jsonl"
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "sim", "record",
                                       "--config", str(config), "--out", str(out),
                                       "--minutes", "0.01"])
    assert result.exit_code == 0, result.output
    recorded = capture.load(out)
    assert recorded.header.gateway == "gw-rec" and recorded.header.stations == ["st-1"]


def test_record_refuses_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text('id = "gw rec"\nsite = "s"\n[[stations]]\nid = "st-1"\n')
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "sim", "record",
                                       "--config", str(config), "--out",
                                       str(tmp_path / "x.jsonl")])
    assert result.exit_code == 1 and "key 'id'" in result.output


def test_a_path_a_command_cannot_write_is_named(tmp_path: Path) -> None:
    out = tmp_path / "no-such-dir" / "deeper" / "shift.jsonl"
    result = CliRunner().invoke(main, ["sim", "make-capture", "normal_shift", str(out)])
    assert result.exit_code == 1
    assert f"{out}: No such file or directory" in result.output


def test_a_gateway_outbox_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(f'id = "g"\nsite = "s"\n[outbox]\npath = "{tmp_path}"\n'
                      '[[stations]]\nid = "st"\n')
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "edge", "run",
                                       "--config", str(config)])
    assert result.exit_code == 1
    assert "cannot use a SQLite database: unable to open database file" in result.output
