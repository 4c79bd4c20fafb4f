"""Settings files: the shipped examples load; mistakes name the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edge.cli import load_settings as load_gateway_settings_for
from edge.settings import load_gateway_settings
from hub.cli import _child_command
from hub.console import main
from hub.settings import load_hub_settings
from protocols.config import ConfigError, chosen_data_dir, resolve_data_dir

CONFIG = Path(__file__).resolve().parent.parent / "config"
SECRETS = {"COLDLOOP_SECRET_KEY": "s" * 32, "COLDLOOP_ADMIN_PASSWORD": "correct horse",
           "COLDLOOP_API_TOKEN": "t" * 32, "COLDLOOP_GATEWAY_PASSWORD": "pw"}


def test_shipped_examples_load_with_secrets_from_environment(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    hub = load_hub_settings(CONFIG / "hub.toml", tmp_path)
    assert hub.web.admin_password == "correct horse"
    assert hub.database_url == f"sqlite:///{tmp_path / 'hub.db'}"
    gateway = load_gateway_settings(CONFIG / "gateway.toml", tmp_path)
    assert gateway.id == "gw-sha-01" and gateway.stations[0].light_pins == (17, 27, 22)
    assert gateway.outbox_path == tmp_path / "gateways" / "gw-sha-01" / "outbox.db"


def test_missing_secret_names_the_variable(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("COLDLOOP_API_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"hub.toml: key 'web.secret_key' refers to "
                                          r"environment variable COLDLOOP_SECRET_KEY"):
        load_hub_settings(CONFIG / "hub.toml", tmp_path)


@pytest.mark.parametrize(("text", "message"), [
    ("[web]\nport = 'eighty'\n", "key 'web.port': Input should be a valid integer"),
    ("[web]\nprot = 80\n", "key 'web.prot': unknown key"),
    ("[mqtt]\nprotocol = '4'\n", "key 'mqtt.protocol'"),
    ("[ingest]\nbatch_size = 0\n", "key 'ingest.batch_size'"),
    ("web = 3\n", "key 'web'"),
    ("[web\n", "not valid TOML"),
    ("a = " + "[" * 100_000, "not valid TOML: nested too deeply"),  # was a RecursionError
])
def test_hub_mistakes_are_named(tmp_path, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "hub.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_hub_settings(path, tmp_path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(("text", "message"), [
    ("site = 's'\n[[stations]]\nid = 'st-1'\n", "key 'id': Field required"),
    ("id = 'GW 1'\nsite = 's'\n[[stations]]\nid = 'st'\n", "key 'id': String should match"),
    ("id = 'g'\nsite = 's'\nstations = []\n", "key 'stations'"),
    ("id = 'g'\nsite = 's'\n[[stations]]\nid = 'st'\nlight_pins = [1, 2]\n",
     "key 'stations.0.light_pins.2': Field required"),
    # once accepted, and a traceback or a silent retry loop at start-up
    ("id = 'g'\nsite = 's'\n[[stations]]\nid = 'st'\nreader = 'bogus'\n",
     "key 'stations.0.reader': String should match"),
    ("id = 'g'\nsite = 's'\n[mqtt]\nurl = 'garbage'\n[[stations]]\nid = 'st'\n",
     "key 'mqtt.url': String should match"),
    ("id = 'g'\nsite = 's'\n[mqtt]\nbackoff_min_s = 100\nbackoff_max_s = 1\n"
     "[[stations]]\nid = 'st'\n", "backoff_min_s .* is above backoff_max_s"),
])
def test_gateway_mistakes_are_named(tmp_path, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "gw.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_gateway_settings(path, tmp_path)


def test_a_byte_order_mark_is_not_part_of_the_first_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "hub.toml"
    path.write_bytes("\ufeff[web]\nport = 8081\n".encode())
    assert load_hub_settings(path, tmp_path).web.port == 8081


def test_env_without_a_name_is_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "hub.toml"
    path.write_text('[web]\napi_token = "env:"\n')
    with pytest.raises(ConfigError, match=r"'web\.api_token' is 'env:' without a variable name"):
        load_hub_settings(path, tmp_path)


def test_missing_file_and_non_utf8(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_hub_settings(tmp_path / "absent.toml", tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_gateway_settings(bad, tmp_path)


def test_data_dir_resolution_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"COLDLOOP_DATA_DIR": str(tmp_path / "env")}
    assert resolve_data_dir(tmp_path / "flag", env) == str(tmp_path / "flag")
    assert resolve_data_dir(None, env) == str(tmp_path / "env")
    assert resolve_data_dir(None, {}).endswith("/var")
    assert chosen_data_dir(tmp_path / "flag", env) == str(tmp_path / "flag")
    assert chosen_data_dir(None, env) == str(tmp_path / "env")
    assert chosen_data_dir(None, {}) is None  # ./var is a default, not a choice


@pytest.mark.parametrize(("flag", "env", "used"), [
    (True, False, "flag"), (True, True, "flag"), (False, True, "env"), (False, False, "file")])
def test_a_chosen_data_dir_comes_before_the_settings_files(
        tmp_path: Path, flag: bool, env: bool, used: str) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f"data_dir = '{tmp_path / 'file'}'\n")
    args = ["--data-dir", str(tmp_path / "flag")] if flag else []
    result = CliRunner().invoke(
        main, [*args, "hub", "migrate", "--config", str(config)],
        env={"COLDLOOP_DATA_DIR": str(tmp_path / "env") if env else None})
    assert result.exit_code == 0, result.output
    assert sorted(d.name for d in tmp_path.iterdir() if (d / "hub.db").exists()) == [used]


def test_gateway_settings_take_the_chosen_data_dir_too(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(f"id = 'gw-1'\nsite = 's'\ndata_dir = '{tmp_path / 'file'}'\n"
                      "[[stations]]\nid = 'st-1'\n")
    for chosen, used in ((True, "flag"), (False, "file")):
        obj = {"data_dir": str(tmp_path / "flag"), "data_dir_chosen": chosen}
        with click.Context(main, obj=obj) as ctx:
            assert load_gateway_settings_for(ctx, str(config)).data_dir == tmp_path / used


def test_ingest_workers_get_the_data_dir_the_hub_uses(tmp_path: Path) -> None:
    # The supervisor's children are started with --data-dir, which a child takes as chosen:
    # it must be the directory the hub itself settled on, the settings file's when unchosen.
    config = tmp_path / "hub.toml"
    config.write_text(f"data_dir = '{tmp_path / 'file'}'\n")
    settings = load_hub_settings(config, tmp_path / "default")
    with click.Context(main, obj={"data_dir": str(tmp_path / "default"),
                                  "data_dir_chosen": False}) as ctx:
        command = _child_command(ctx, settings, str(config))(0)
    assert command[command.index("--data-dir") + 1] == str(tmp_path / "file")


@pytest.mark.parametrize(("stations", "message"), [
    ("[[stations]]\nid = 'st-1'\n[[stations]]\nid = 'st-1'\n", "station ids must be unique"),
    ("[[stations]]\nid = 'a'\nreader = 'spi:0.0'\n[[stations]]\nid = 'b'\nreader = 'spi:0.1'\n",
     "its own rst_pin"),
])
def test_stations_must_not_clash(tmp_path, stations: str, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "gw.toml"
    path.write_text("id = 'g'\nsite = 's'\n" + stations)
    with pytest.raises(ConfigError, match=message):
        load_gateway_settings(path, tmp_path)
