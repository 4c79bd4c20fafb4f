"""The hub's cold-chain parameters: the shipped file, a hub's own file, and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim.services import REPO
from hub.coldchain_config import DEFAULT, load_coldchain_config
from protocols.config import ConfigError

SHIPPED = REPO / "config" / "coldchain.toml"


def test_the_shipped_file_is_the_built_in_default() -> None:
    config = load_coldchain_config(SHIPPED)
    assert (config.families, config.rules, config.policy) == (
        DEFAULT.families, DEFAULT.rules, DEFAULT.policy)


def test_a_hub_can_tighten_a_limit(tmp_path: Path) -> None:
    own = tmp_path / "coldchain.toml"
    own.write_text(SHIPPED.read_text(encoding="utf-8").replace(
        "limit_c = 4.0", "limit_c = 3.0", 1), encoding="utf-8")
    config = load_coldchain_config(own)
    changed = [name for name, family in config.families.items()
               if family != DEFAULT.families[name]]
    assert len(changed) == 1 and config.families[changed[0]].limit_c == 3.0


@pytest.mark.parametrize(("text", "expected"), [
    ("[families.berries\n", "cannot read it as TOML"),
    ("[families.berries]\nlimit_c = 4.0\n", "families.berries"),
    ("[familes.berries]\nlimit_c = 4.0\n", "unknown table 'familes'"),  # once ignored
    ("a = " + "[" * 100_000, "nested too deeply"),
])
def test_bad_files_are_refused_naming_file_and_key(tmp_path: Path, text: str,
                                                  expected: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected) as caught:
        load_coldchain_config(bad)
    assert str(bad) in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such cold-chain configuration file"):
        load_coldchain_config(tmp_path / "nope.toml")


def test_the_web_app_does_not_start_without_its_coldchain_file(tmp_path: Path) -> None:
    """Once it started, and every trace request was a 500."""
    from hub.settings import DatabaseSettings, HubSettings
    from hub.web import create_app

    settings = HubSettings(database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'h.db'}"),
                           coldchain_file=tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="no such cold-chain configuration file"):
        create_app(settings)
