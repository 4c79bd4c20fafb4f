"""The ``coldloop`` command: groups ``hub``, ``edge``, ``sim``, ``trace``, the ``demo`` and
``classify``.

Sub-groups load lazily, so a gateway without the hub's dependencies can still run
``coldloop edge ...``.
"""

from __future__ import annotations

import importlib
import logging
import sqlite3
from typing import Any

import click

from protocols.config import ConfigError, chosen_data_dir, resolve_data_dir

_GROUPS = {
    "hub": ("hub.cli", "hub", "Run and administer the hub."),
    "edge": ("edge.cli", "edge", "Run a scan-station gateway."),
    "sim": ("firmware_sim.cli", "sim", "Simulated devices, scenarios and captures."),
    "demo": ("firmware_sim.cli", "demo", "Run the whole loop on real components."),
    "trace": ("hub.trace_cli", "trace", "Traceability ledger: signed heads, verify, evidence."),
    "classify": ("hub.triage.cli", "classify", "Triage complaints: JSON lines in, JSON lines out."),
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_GROUPS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _GROUPS:
            return None
        module, attr, _ = _GROUPS[name]
        try:
            command: click.Command = getattr(importlib.import_module(module), attr)
        except ImportError as err:
            raise click.ClickException(
                f"'coldloop {name}' needs packages that are not installed ({err.name}); "
                "install coldloop with the matching extra, e.g. pip install 'coldloop[hub]'"
            ) from err
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Run the sub-command; a database or file it cannot use ends it with a message
        naming what, instead of a traceback."""
        try:
            return super().invoke(ctx)
        except Exception as err:
            problem = _unusable(err)
            if problem is None:
                raise
            raise click.ClickException(problem) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, _, help_) in sorted(_GROUPS.items())])


_PATH_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                PermissionError)


def _unusable(err: Exception) -> str | None:
    """What could not be used, said plainly (a settings file, a database, a path); None for
    anything else."""
    if isinstance(err, ConfigError):
        return str(err)
    if isinstance(err, _PATH_ERRORS) and err.filename:
        return f"{err.filename}: {err.strerror}"
    if isinstance(err, sqlite3.OperationalError):  # a gateway's outbox, a SQLite hub database
        return f"cannot use a SQLite database: {err}"
    try:
        from sqlalchemy.exc import ArgumentError, OperationalError
    except ImportError:  # a gateway install: no hub database
        return None
    if isinstance(err, OperationalError):
        return f"cannot use the database: {str(err.orig).strip()}"
    if isinstance(err, ArgumentError):
        return f"the database URL is not usable: {err}"
    return None


@click.group(cls=LazyGroup)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where data lives (default: $COLDLOOP_DATA_DIR, else the settings "
                   "file's data_dir, else ./var).")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, data_dir: str | None, verbose: int) -> None:
    """coldloop: after-sales for fresh-produce delivery, from complaint to scan station."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbose < 1:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no request log lines
    ctx.ensure_object(dict)
    ctx.obj["data_dir"] = resolve_data_dir(data_dir)
    ctx.obj["data_dir_chosen"] = chosen_data_dir(data_dir) is not None


def data_dir(ctx: click.Context) -> str:
    """The data directory of the root command: ``--data-dir``, $COLDLOOP_DATA_DIR or ./var."""
    obj: dict[str, Any] = ctx.find_root().obj or {}
    return str(obj.get("data_dir") or resolve_data_dir())


def data_dir_overrides(ctx: click.Context) -> dict[str, object]:
    """Settings overrides for a data directory the user chose: it beats a settings file's own
    ``data_dir``, which beats the default (./var)."""
    obj: dict[str, Any] = ctx.find_root().obj or {}
    chosen = obj["data_dir_chosen"] if "data_dir_chosen" in obj else chosen_data_dir() is not None
    return {"data_dir": data_dir(ctx)} if chosen else {}


if __name__ == "__main__":  # python -m hub.console, as the coldloop script
    main()
