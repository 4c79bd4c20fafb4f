"""Turn the bytes of a TOML file into typed settings, with errors that say how to fix them.

Pure: the caller reads the file. Any string value written as ``"env:NAME"`` is taken from the
environment variable NAME, so secrets stay out of files.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from protocols.errors import ProtocolError

S = TypeVar("S", bound=BaseModel)
ENV_PREFIX = "env:"
# A broker the gateway and the hub can connect to: plain MQTT, a host name or address, a port.
MqttUrl = Annotated[str, Field(
    pattern=r"^mqtt://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?$")]


class ConfigError(ProtocolError):
    """A configuration file that does not describe valid settings."""


def resolve_env(data: Any, source: str, environ: Mapping[str, str], path: str = "") -> Any:
    """Replace ``env:NAME`` strings with the environment's value; raise if it is unset."""
    if isinstance(data, dict):
        return {k: resolve_env(v, source, environ, f"{path}.{k}" if path else k)
                for k, v in data.items()}
    if isinstance(data, list):
        return [resolve_env(v, source, environ, f"{path}[{i}]") for i, v in enumerate(data)]
    if isinstance(data, str) and data.startswith(ENV_PREFIX):
        name = data[len(ENV_PREFIX):]
        if not name:
            raise ConfigError(f"{source}: key '{path}' is 'env:' without a variable name; "
                              "write env:NAME")
        if name not in environ:
            raise ConfigError(f"{source}: key '{path}' refers to environment variable "
                              f"{name}, which is not set")
        return environ[name]
    return data


def parse_settings(model: type[S], data: Mapping[str, Any], source: str,
                   environ: Mapping[str, str] | None = None) -> S:
    """Validate ``data`` as ``model``; a ConfigError names the file, the key and the expectation."""
    resolved = resolve_env(dict(data), source, os.environ if environ is None else environ)
    try:
        return model.model_validate(resolved)
    except ValidationError as err:
        lines = []
        for issue in err.errors(include_url=False):
            key = ".".join(str(p) for p in issue["loc"])
            message = issue["msg"]
            if issue["type"] == "extra_forbidden":
                message = "unknown key (check its spelling and section)"
            got = issue.get("input")
            shown = "" if issue["type"] in ("missing", "extra_forbidden") else f" (got {got!r})"
            lines.append(f"{source}: key '{key}': {message}{shown}")
        raise ConfigError("\n".join(lines)) from None


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None,
                     environ: Mapping[str, str] | None = None) -> str:
    """Pick where every command keeps its data: explicit, else COLDLOOP_DATA_DIR, else ./var."""
    return chosen_data_dir(explicit, environ) or os.path.abspath("var")


def chosen_data_dir(explicit: str | os.PathLike[str] | None = None,
                    environ: Mapping[str, str] | None = None) -> str | None:
    """The data directory the user chose (``--data-dir``, else COLDLOOP_DATA_DIR), or None.

    A choice comes before a settings file's own ``data_dir``; the default ./var after it.
    """
    env = os.environ if environ is None else environ
    chosen = explicit or env.get("COLDLOOP_DATA_DIR")
    return os.path.abspath(os.fspath(chosen)) if chosen else None


def parse_toml(raw: bytes, source: str) -> dict[str, Any]:
    """Parse the bytes of a TOML file; raise ConfigError naming the file."""
    try:
        return tomllib.loads(raw.decode("utf-8-sig"))  # a BOM, as some editors write, is no key
    except UnicodeDecodeError as err:
        raise ConfigError(f"{source}: not UTF-8 text: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML: nested too deeply to read") from None


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any], source: str) -> None:
    """Set dotted keys (``section.key``) in ``data``, e.g. from command-line options."""
    for dotted, value in overrides.items():
        *sections, name = dotted.split(".")
        table = data
        for section in sections:
            table = table.setdefault(section, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{source}: key '{section}' must be a table")
        table[name] = value


def read_settings(model: type[S], raw: bytes | None, source: str,
                  defaults: Mapping[str, Any] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> S:
    """Parse TOML bytes (or nothing), add defaults and overrides, validate as ``model``."""
    data = parse_toml(raw, source) if raw is not None else {}
    for key, value in (defaults or {}).items():
        data.setdefault(key, value)
    apply_overrides(data, overrides or {}, source)
    return parse_settings(model, data, source)

