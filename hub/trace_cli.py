"""``coldloop trace``: the traceability ledger's key, signed heads, audit and evidence bundles.

Exit codes of the checking commands (``verify``, ``verify-bundle``): 0 all good, 1 the log or
bundle failed a check (the first bad entry is named), 2 it could not be checked (no key, no
database, unreadable file). Commands that touch the database share ``ledger_session``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hub.console import data_dir, data_dir_overrides

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from sqlalchemy.orm import Session

    from hub.evidence import SignedHead
    from hub.settings import HubSettings

config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                             default=None, help="Hub settings (TOML); defaults if omitted.")


class CannotCheck(click.ClickException):
    """The check could not be made at all (exit 2, unlike a failed check's 1)."""

    exit_code = 2


def hub_settings(ctx: click.Context, config_path: str | None) -> HubSettings:
    """The hub settings for this command (``--config``, the root's ``--data-dir``)."""
    from hub.settings import load_hub_settings
    from protocols.config import ConfigError

    try:
        return load_hub_settings(config_path, data_dir(ctx), data_dir_overrides(ctx))
    except ConfigError as err:
        raise CannotCheck(str(err)) from None


def key_path(settings: HubSettings) -> Path:
    """Where this hub's ledger signing key is."""
    return settings.ledger.key_path(settings.data_dir)


@contextmanager
def ledger_session(settings: HubSettings, *, write: bool = False) -> Iterator[Session]:
    """A session on the hub database (one transaction, committed if ``write``); HubErrors
    become command errors naming the problem."""
    from sqlalchemy import inspect

    from hub.db import make_engine, session_factory
    from hub.errors import HubError

    engine = make_engine(settings.database_url)
    try:
        if not inspect(engine).has_table("trace_events"):
            raise CannotCheck(f"the database at {engine.url.render_as_string()} has no ledger "
                              "tables: run `coldloop hub migrate` first")
        with session_factory(engine)() as session:
            if write:
                with session.begin():
                    yield session
            else:
                yield session
    except HubError as err:
        raise click.ClickException(str(err)) from None
    finally:
        engine.dispose()


@click.group()
def trace() -> None:
    """Traceability ledger: signing key, signed heads, verify, evidence bundles."""


@trace.command()
@config_option
@click.option("--force", is_flag=True, help="Replace an existing key (its public key is kept).")
@click.pass_context
def keygen(ctx: click.Context, config_path: str | None, force: bool) -> None:
    """Create the ledger's Ed25519 signing key (mode 0600) and its public key file."""
    from hub.errors import HubError
    from hub.evidence import key_id
    from hub.ledger import public_key_path, write_signing_key

    path = key_path(hub_settings(ctx, config_path))
    try:
        key = write_signing_key(path, force=force)
    except HubError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"ledger signing key {key_id(key.public_key())} written to {path}; give "
               f"auditors {public_key_path(path)}")


@trace.command()
@config_option
@click.pass_context
def sign(ctx: click.Context, config_path: str | None) -> None:
    """Sign a tree head over every event appended so far."""
    from hub.errors import HubError
    from hub.ledger import load_signing_key, sign_head

    settings = hub_settings(ctx, config_path)
    try:
        key = load_signing_key(key_path(settings))
    except HubError as err:
        raise CannotCheck(str(err)) from None
    with ledger_session(settings, write=True) as session:
        head = sign_head(session, key, datetime.now(UTC))
        click.echo(f"signed head at size {head.tree_size}, root {bytes(head.root_hash).hex()}")


@trace.command()
@config_option
@click.pass_context
def head(ctx: click.Context, config_path: str | None) -> None:
    """Print the latest signed head as one line of JSON (auditors append it to their file)."""
    from hub.ledger import latest_head, signed_head

    with ledger_session(hub_settings(ctx, config_path)) as session:
        latest = latest_head(session)
        if latest is None:
            raise click.ClickException("no signed head yet: sign one with `coldloop trace sign`")
        click.echo(json.dumps(signed_head(latest).to_json(), sort_keys=True))


@trace.command()
@config_option
@click.option("--public-key", "public_keys", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Public key(s) to check heads with (default: this hub's key and the keys "
                   "it replaced).")
@click.option("--head", "head_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Heads kept outside the database (JSON lines of `coldloop trace head`).")
@click.pass_context
def verify(ctx: click.Context, config_path: str | None, public_keys: tuple[str, ...],
           head_files: tuple[str, ...]) -> None:
    """Re-check every stored event and signed head; exit 1 naming the first bad entry."""
    from hub.ledger import verify_log

    settings = hub_settings(ctx, config_path)
    keys = _public_keys(settings, public_keys)
    kept = [h for name in head_files for h in _read_heads(Path(name))]
    with ledger_session(settings) as session:
        report = verify_log(session, keys, kept_heads=kept)
    click.echo(report.summary())
    for problem in report.problems[1:20]:
        click.echo(f"  also: {problem}")
    for note in report.notes:
        click.echo(f"note: {note}")
    if not report.ok:
        ctx.exit(1)


@trace.command()
@config_option
@click.option("--seq", "seqs", type=click.IntRange(min=0), multiple=True, required=True,
              help="An event's seq (repeat for more).")
@click.pass_context
def bundle(ctx: click.Context, config_path: str | None, seqs: tuple[int, ...]) -> None:
    """Print an evidence bundle: the events, their proofs and the latest signed head."""
    from hub.ledger import evidence_bundle

    with ledger_session(hub_settings(ctx, config_path)) as session:
        click.echo(json.dumps(evidence_bundle(session, seqs), indent=2))


@trace.command("verify-bundle")
@click.argument("bundle_file", type=click.Path(dir_okay=False))
@click.option("--public-key", "public_key", required=True,
              type=click.Path(dir_okay=False), help="The ledger's public key file.")
@click.pass_context
def verify_bundle_command(ctx: click.Context, bundle_file: str, public_key: str) -> None:
    """Check an evidence bundle offline, with only the public key (no database)."""
    from hub.evidence import SignedHead, public_key_from_bytes, verify_bundle

    data: Any = _read_json(Path(bundle_file), "evidence bundle")
    try:
        key_bytes = Path(public_key).read_bytes()
    except OSError as err:
        raise CannotCheck(f"cannot read the public key {public_key}: {err.strerror}") from None
    try:
        public_key_from_bytes(key_bytes)
    except ValueError as err:  # no key, no check: not a failed one
        raise CannotCheck(f"the public key {public_key}: {err}") from None
    problems = verify_bundle(data, key_bytes)
    if problems:
        click.echo(f"FAILED: {problems[0]}")
        for problem in problems[1:20]:
            click.echo(f"  also: {problem}")
        ctx.exit(1)
    head = SignedHead.from_json(data["head"])
    click.echo(f"ok, {len(data['events'])} events proven by the head at size {head.tree_size} "
               f"signed {head.signed_at:%Y-%m-%d %H:%M:%S} UTC by key {head.key_id}")


def _public_keys(settings: HubSettings, files: tuple[str, ...]) -> list[Ed25519PublicKey]:
    from hub.errors import HubError
    from hub.ledger import load_public_key, load_signing_key

    try:
        if files:
            return [load_public_key(Path(name)) for name in files]
        path = key_path(settings)
        replaced = sorted(path.parent.glob(f"{path.stem}.*.pub"))
        return [load_signing_key(path).public_key(), *map(load_public_key, replaced)]
    except HubError as err:
        raise CannotCheck(f"{err} (or pass --public-key FILE)") from None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as err:
        raise CannotCheck(f"cannot read the {what} {path}: {err.strerror}") from None
    except ValueError as err:
        raise CannotCheck(f"{path} is not a JSON {what}: {err}") from None
    except RecursionError:
        raise CannotCheck(f"{path} is not a JSON {what}: nested too deeply to read") from None


def _read_heads(path: Path) -> list[SignedHead]:
    """Heads from a file: one JSON object, a list, or JSON lines."""
    from hub.evidence import SignedHead

    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CannotCheck(f"cannot read the heads file {path}: {err}") from None
    try:
        whole = json.loads(text)
        items = whole if isinstance(whole, list) else [whole]
    except RecursionError:
        raise CannotCheck(f"{path}: nested too deeply to read") from None
    except ValueError:
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except (ValueError, RecursionError) as err:
                    raise CannotCheck(f"{path}:{number}: not JSON ({err!s:.200})") from None
    try:
        return [SignedHead.from_json(item) for item in items]
    except ValueError as err:
        raise CannotCheck(f"{path}: {err}") from None


# --- EPCIS in and out ----------------------------------------------------------------------


@trace.command("export")
@config_option
@click.option("--order", "order_id", help="Every item of this order.")
@click.option("--item", "item_ids", multiple=True, help="An item id (repeat for more).")
@click.option("--since", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
              help="Events that happened since, e.g. 2026-11-20 (UTC) or an ISO time.")
@click.pass_context
def export_command(ctx: click.Context, config_path: str | None, order_id: str | None,
                   item_ids: tuple[str, ...], since: datetime | None) -> None:
    """Print an EPCIS 2.0 document of an order's, items' or a period's events."""
    from hub import epcis
    from hub.trace import export_events, order_items

    if not (order_id or item_ids or since):
        raise click.UsageError("say what to export: --order, --item or --since")
    moment = None if since is None else (since if since.tzinfo else since.replace(tzinfo=UTC))
    with ledger_session(hub_settings(ctx, config_path)) as session:
        items = [*item_ids, *(order_items(session, order_id) if order_id else [])]
        events = export_events(session, item_ids=items, since=moment)
    document = epcis.document(events, created=datetime.now(UTC))
    epcis.validate(document)  # what we hand out must be valid; a failure here is a hub bug
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@trace.command("import")
@config_option
@click.argument("document_file", type=click.Path(dir_okay=False))
@click.option("--name", help="Who sent it (default: the file's name); stored as the source.")
@click.pass_context
def import_command(ctx: click.Context, config_path: str | None, document_file: str,
                   name: str | None) -> None:
    """Validate a partner's EPCIS 2.0 document and append its events to the ledger."""
    from hub.epcis import EpcisError
    from hub.trace import import_document

    path = Path(document_file)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise click.ClickException(f"cannot read {path}: {err.strerror}") from None
    try:
        with ledger_session(hub_settings(ctx, config_path), write=True) as session:
            appended = import_document(session, data, name=name or path.name,
                                       now=datetime.now(UTC))
    except EpcisError as err:
        for problem in err.problems[1:20]:
            click.echo(f"  also: {problem}", err=True)
        raise click.ClickException(str(err)) from None
    new = [entry for entry in appended if entry.new]
    seqs = f", seq {new[0].seq}..{new[-1].seq}" if new else ""
    click.echo(f"{len(new)} of {len(appended)} events appended{seqs}"
               f"{'' if new else ' (all were already in the ledger)'}")


@trace.command("show")
@config_option
@click.option("--item", "item_id", required=True, help="The item to trace.")
@click.pass_context
def show_command(ctx: click.Context, config_path: str | None, item_id: str) -> None:
    """Print an item's custody segments and who is responsible, with the reasons."""
    from hub.coldchain_config import coldchain_config
    from hub.trace import item_trace
    from protocols.config import ConfigError

    settings = hub_settings(ctx, config_path)
    try:
        config = coldchain_config(settings.coldchain_file)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    with ledger_session(settings) as session:
        found = item_trace(session, item_id, config)
    click.echo(f"{item_id}: {len(found.chain.events)} events")
    for segment in found.report.segments if found.report else ():
        click.echo(f"  {segment.label}: {segment.start:%Y-%m-%d %H:%M} to "
                   f"{segment.end:%Y-%m-%d %H:%M}, {segment.n_readings} readings, "
                   f"max {_c(segment.max_c)}, {segment.shelf_life_consumed:.0%} of shelf life")
    verdict = found.attribution
    if verdict is None:
        click.echo("no custody record: nothing to attribute")
        return
    click.echo(f"responsible: {verdict.party} (confidence {verdict.confidence:.0%})")
    for reason in verdict.reasons:
        click.echo(f"  - {reason.text}")
    for note in found.chain.notes:
        click.echo(f"note: {note}")


def _c(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} °C"
