"""The cold-chain judgement's parameters: product families, excursion rules, attribution policy.

Defaults live in code (protocols.coldchain.FAMILIES, hub.segments.DEFAULT_RULES,
hub.attribution.DEFAULT_POLICY) and are written out with their sources in
``config/coldchain.toml``; a hub reads its own file when ``coldchain_file`` is set in its
settings. Errors name the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from hub.attribution import DEFAULT_POLICY, AttributionPolicy, policy_from_settings
from hub.segments import (
    DEFAULT_RULES,
    ExcursionRules,
    excursion_rules_from_settings,
    family_parameters_from_settings,
)
from protocols.coldchain import FAMILIES, FamilyParameters
from protocols.config import ConfigError


@dataclass(frozen=True)
class ColdChainConfig:
    """Everything the segment statistics and the attribution are judged by."""

    families: dict[str, FamilyParameters] = field(default_factory=lambda: dict(FAMILIES))
    rules: ExcursionRules = DEFAULT_RULES
    policy: AttributionPolicy = DEFAULT_POLICY


DEFAULT = ColdChainConfig()


_TABLES = frozenset({"families", "excursions", "attribution"})


def load_coldchain_config(path: Path) -> ColdChainConfig:
    """Read a coldchain TOML file (see config/coldchain.toml); raise ConfigError naming it."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such cold-chain configuration file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: cannot read it as TOML ({err})") from None
    except RecursionError:
        raise ConfigError(f"{path}: cannot read it as TOML (nested too deeply)") from None
    source = str(path)
    unknown = sorted(set(document) - _TABLES)
    if unknown:
        raise ConfigError(f"{path}: unknown table {unknown[0]!r}; a cold-chain file has "
                          f"{', '.join(sorted(_TABLES))}")
    return ColdChainConfig(family_parameters_from_settings(document, source=source),
                           excursion_rules_from_settings(document, source=source),
                           policy_from_settings(document, source=source))


@lru_cache(maxsize=8)
def coldchain_config(path: Path | None) -> ColdChainConfig:
    """The configuration of ``path`` (defaults for None), read once per process."""
    return DEFAULT if path is None else load_coldchain_config(path)
