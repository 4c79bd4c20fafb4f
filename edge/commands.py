"""Commands from the hub: manifest, remote configuration, model updates and resync.

The uplink thread hands what arrives on ``cmd/{name}`` and ``cfg/desired`` to
:meth:`CommandHandler.handle` and publishes what comes back; nothing here touches the network
and bad input never raises. Every answer is the retained ``cfg/reported`` snapshot: the last
configuration decision, the overrides in force, the model, the manifest version, and the
answer to the latest command. A remote configuration (allowlisted keys only) stays on
probation until the uplink confirms the link survived it; otherwise it is rolled back.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from edge.errors import EdgeError
from edge.manifest import ApplyStatus, Manifest
from edge.model_store import CommandError, ModelArgs, ModelStore, write_atomically
from edge.recorder import Clock
from edge.settings import GatewaySettings
from protocols import topics
from protocols.config import ConfigError, apply_overrides
from protocols.errors import ProtocolError
from protocols.messages import Command, ConfigDocument, decode_as, describe
from protocols.topics import Kind

logger = logging.getLogger(__name__)

Publish = tuple[str, bytes, bool]  # topic, payload, retain
# Keys the hub may change: tuning only. Identity, broker address, credentials and paths stay
# with the file on the gateway, so a bad remote value can slow the link but not cut it off.
REMOTE_KEYS = frozenset({"mqtt.inflight", "mqtt.ack_timeout_s", "telemetry.interval_s",
                         "telemetry.batch_size", "telemetry.fault_repeat_s"})
REMOTE_PREFIXES = ("grader.thresholds.",)
DEFAULT_LINK_GRACE_S = 120.0
CONFIG_FILE = "remote_config.json"
MODELS_DIR = "models"
_ERROR_CHARS = 500


class CommandStatus(StrEnum):
    """The gateway's answer to one command."""

    APPLIED = "applied"
    REJECTED = "rejected"
    STALE = "stale"  # an older version than the one in force: ignored
    UNCHANGED = "unchanged"  # the version in force already (a redelivery): ignored
    ROLLED_BACK = "rolled_back"
    PROMOTED = "promoted"  # a delivered model passed its shadow run


class _Applied(BaseModel):
    version: int
    settings: dict[str, Any]


class _ConfigState(BaseModel):
    """What ``remote_config.json`` holds: the overrides in force and the last decision."""

    version: int = 0  # of the overrides in force
    settings: dict[str, Any] = Field(default_factory=dict)
    previous: _Applied | None = None  # the confirmed configuration a rollback returns to
    pending: bool = False  # on probation until the uplink confirms the link
    last_version: int = 0  # the last version decided on, whatever the decision
    last_status: Literal["applied", "rejected", "rolled_back"] = "applied"
    last_error: str | None = None


class CommandHandler:
    """Applies the hub's commands; every method returns the messages to publish."""

    def __init__(self, settings: GatewaySettings, manifest: Manifest, *,
                 state_dir: Path | None = None, clock: Clock = time.time,
                 link_grace_s: float = DEFAULT_LINK_GRACE_S,
                 on_change: Callable[[GatewaySettings], None] | None = None,
                 on_model: Callable[[Path], None] | None = None,
                 resync: Callable[[], None] | None = None,
                 model_public_key: bytes | None = None) -> None:
        self.model_public_key = model_public_key  # None: checksum-verified models only
        self.base = settings  # as loaded from the gateway's file, without remote overrides
        self.manifest = manifest
        self.clock = clock
        self.link_grace_s = link_grace_s
        self.on_change = on_change
        self.on_model = on_model
        self.resync = resync
        directory = state_dir or settings.outbox_path.parent
        self.models = ModelStore(directory / MODELS_DIR)
        self._config_path = directory / CONFIG_FILE
        self._reported_topic = topics.config(settings.site, settings.id, "reported")
        self._desired_topic = topics.config(settings.site, settings.id, "desired")
        self._last_logged: str | None = None
        self._state = self._load_config()
        self.settings = self._build(self._state.settings)
        # A change still on probation at boot (a power cut before confirmation) gets a new
        # grace period: if that configuration cut the link, it is rolled back after all.
        self._deadline = clock() + link_grace_s if self._state.pending else None

    # --- what the uplink calls -------------------------------------------------------------

    def subscriptions(self) -> list[str]:
        """The topic filters to subscribe to (QoS 1): this gateway's commands and desired config."""
        return [topics.gateway_filter(Kind.COMMAND, site=self.base.site, gateway=self.base.id),
                self._desired_topic]

    def handle(self, topic_leaf: str, payload: bytes) -> list[Publish]:
        """Handle ``cmd/{topic_leaf}`` (or ``cfg/desired`` as "desired"); never raises on input."""
        command_id: str | None = None
        try:
            if topic_leaf == "desired":
                if not payload:
                    return []  # the retained desired configuration was cleared
                return self._apply_config(decode_as(ConfigDocument, payload), "config", None)
            if topic_leaf not in _HANDLERS:
                raise CommandError(f"unknown command {topic_leaf!r}; expected one of "
                                   f"{sorted(_HANDLERS)}")
            command = decode_as(Command, payload)
            command_id = command.id
            return _HANDLERS[topic_leaf](self, command)
        except (ProtocolError, EdgeError, OSError) as err:
            return self._refuse(topic_leaf, command_id, err)

    def report(self) -> list[Publish]:
        """The retained ``cfg/reported`` snapshot; publish it after every (re)connect."""
        return [self._reported(None, None, None, None)]

    def tick(self) -> list[Publish]:
        """Roll back a configuration whose grace period ended unconfirmed; call it often."""
        if self._deadline is not None and self.clock() >= self._deadline:
            return self._roll_back(f"link not confirmed within {self.link_grace_s:g} s")
        return []

    def confirm_link(self, ok: bool) -> list[Publish]:
        """Tell whether the link works with the configuration on probation (no-op otherwise)."""
        if not self._state.pending:
            return []
        if not ok:
            return self._roll_back("the link failed with the new configuration")
        self._commit(self._state.model_copy(update={"pending": False}), must_persist=False)
        self._deadline = None
        logger.info("configuration v%d confirmed by the link", self._state.version)
        return self.report()

    @property
    def pending_confirmation(self) -> bool:
        """Whether a configuration is on probation, waiting for :meth:`confirm_link`."""
        return self._state.pending

    def current_overrides(self) -> dict[str, Any]:
        """The remote overrides in force, as dotted keys (``load_gateway_settings`` takes them)."""
        return dict(self._state.settings)

    def rollback_model(self) -> list[Publish]:
        """Switch back to the previous model; raise CommandError if there is none."""
        path = self.models.rollback()
        self._notify_model(path)
        return [self._reported("model", None, CommandStatus.ROLLED_BACK, None)]

    def model_decided(self, version: str, scans: int, agreement: float,
                      promoted: bool) -> list[Publish]:
        """Report a shadow run's verdict; a rejected model is swapped back out (no reload)."""
        shadow = {"model": version, "scans": scans, "agreement": round(agreement, 4)}
        if promoted:
            return [self._reported("model", None, CommandStatus.PROMOTED, None, shadow=shadow)]
        current = self.models.current()
        if current is not None and current.get("previous"):
            self.models.rollback()
        else:
            self.models.restore(None)  # it was the first model: none in force, rules grade
        return [self._reported("model", None, CommandStatus.ROLLED_BACK,
                               f"shadow run agreed on {agreement:.0%} of {scans} scans",
                               shadow=shadow)]

    # --- commands ----------------------------------------------------------------------------

    def _on_manifest(self, command: Command) -> list[Publish]:
        result = self.manifest.apply(command.args)
        error = None
        if result.status is ApplyStatus.STALE:
            error = f"manifest v{result.offered} is older than v{result.version}: ignored"
            self._log_once(error)
        return [self._reported("manifest", command.id, CommandStatus(result.status), error)]

    def _on_config(self, command: Command) -> list[Publish]:
        try:
            document = ConfigDocument.model_validate(command.args)
        except ValidationError as err:
            raise CommandError(f"config: {describe(err)}") from None
        return self._apply_config(document, "config", command.id)

    def _on_model(self, command: Command) -> list[Publish]:
        try:
            args = ModelArgs.model_validate(command.args)
        except ValidationError as err:
            raise CommandError(f"model: {describe(err)}") from None
        content = args.verified_content()  # before anything touches the disk
        args.check_signature(content, self.model_public_key)
        if self.models.active_version == args.version:
            self.models.check(args.version, args.sha256)
            return [self._reported("model", command.id, CommandStatus.UNCHANGED, None)]
        before = self.models.current()
        path = self.models.install(args.version, content, args.sha256)
        if args.card is not None:  # the grader reads its card next to the model file
            write_atomically(path.with_suffix(".json"), json.dumps(args.card).encode())
        try:
            self._notify_model(path)
        except CommandError:
            self.models.restore(before)
            raise
        return [self._reported("model", command.id, CommandStatus.APPLIED, None)]

    def _on_resync(self, command: Command) -> list[Publish]:
        if self.resync is None:
            raise CommandError("resync: this gateway has no resync hook")
        _call(self.resync)
        logger.info("resync requested by the hub: state republished, outbox due now")
        return [self._reported("resync", command.id, CommandStatus.APPLIED, None)]

    # --- configuration -----------------------------------------------------------------------

    def _apply_config(self, document: ConfigDocument, name: str,
                      command_id: str | None) -> list[Publish]:
        if document.status != "desired":
            raise CommandError(f"config: status must be 'desired', got {document.status!r}")
        state = self._state
        if document.version <= state.last_version:
            stale = document.version < state.last_version
            return [self._reported(name, command_id, CommandStatus.STALE if stale else
                                   CommandStatus.UNCHANGED, None)]
        version = document.version
        try:
            overrides = _flatten(document.settings)
            settings = self._check(overrides)
        except CommandError as err:
            self._commit(state.model_copy(update={
                "last_version": version, "last_status": "rejected", "last_error": _brief(err)}),
                must_persist=False)
            self._log_once(f"configuration v{version} rejected: {err}")
            return [self._reported(name, command_id, CommandStatus.REJECTED, _brief(err))]
        # On probation already: the confirmed configuration stays the one to fall back to.
        previous = state.previous if state.pending else _Applied(version=state.version,
                                                                 settings=state.settings)
        self._commit(state.model_copy(update={  # saved first: a reboot keeps the probation
            "version": version, "settings": overrides, "previous": previous, "pending": True,
            "last_version": version, "last_status": "applied", "last_error": None}))
        self.settings = settings
        self._deadline = self.clock() + self.link_grace_s
        logger.info("configuration v%d applied: %s", version, overrides or "defaults")
        try:
            self._notify_change()
        except CommandError as err:
            return self._roll_back(str(err))
        return [self._reported(name, command_id, CommandStatus.APPLIED, None)]

    def _roll_back(self, reason: str) -> list[Publish]:
        failed, previous = self._state.version, self._state.previous or _Applied(version=0,
                                                                                 settings={})
        self._commit(self._state.model_copy(update={  # in memory even if the disk fails
            "version": previous.version, "settings": previous.settings, "previous": None,
            "pending": False, "last_version": failed, "last_status": "rolled_back",
            "last_error": reason}), must_persist=False)
        self._deadline = None
        self.settings = self._build(previous.settings)
        logger.warning("configuration v%d rolled back to v%d: %s", failed, previous.version,
                       reason)
        try:
            self._notify_change()
        except CommandError as err:  # nothing older to fall back to: keep going, say it
            logger.error("restoring configuration v%d: %s", previous.version, err)
        return [self._reported("config", None, CommandStatus.ROLLED_BACK, reason)]

    def _check(self, overrides: dict[str, Any]) -> GatewaySettings:
        """Return the settings with ``overrides``; raise CommandError naming each bad key."""
        problems = [f"key '{key}' cannot be changed remotely" for key in sorted(overrides)
                    if key not in REMOTE_KEYS and not key.startswith(REMOTE_PREFIXES)]
        problems += [f"key '{key}': must be a number" for key, value in sorted(overrides.items())
                     if not _is_number(value)]
        if problems:
            raise CommandError("; ".join(problems))
        try:
            return self._build(overrides)
        except ValidationError as err:
            raise CommandError(_explain(err)) from None
        except ConfigError as err:
            raise CommandError(str(err)) from None

    def _build(self, overrides: dict[str, Any]) -> GatewaySettings:
        data = self.base.model_dump()
        apply_overrides(data, overrides, "cfg/desired")  # ConfigError if a key is not a table
        return GatewaySettings.model_validate(data)

    def _load_config(self) -> _ConfigState:
        try:
            state = _ConfigState.model_validate_json(self._config_path.read_bytes())
            self._build(state.settings)  # a software update may have tightened a bound
            return state
        except FileNotFoundError:
            return _ConfigState()
        except (OSError, ValueError) as err:  # ValidationError and ConfigError are ValueErrors
            logger.error("ignoring remote configuration %s (%s): using the file's settings",
                         self._config_path, err)
            return _ConfigState()

    def _commit(self, state: _ConfigState, *, must_persist: bool = True) -> None:
        """Save the configuration state, then make it the one in force."""
        try:
            write_atomically(self._config_path, state.model_dump_json(indent=1).encode())
        except OSError as err:
            if must_persist:
                raise
            logger.error("could not save %s (%s): kept in memory only", self._config_path, err)
        self._state = state

    # --- answers and callbacks -----------------------------------------------------------------

    def _reported(self, name: str | None, command_id: str | None, status: CommandStatus | None,
                  error: str | None, **detail: Any) -> Publish:
        state = self._state
        answer = None if name is None else {"name": name, "id": command_id,
                                            "status": status, "error": error, **detail}
        document = ConfigDocument.model_validate({  # extra fields: allowed by the schema
            "version": state.last_version, "settings": state.settings,
            "status": state.last_status, "error": state.last_error,
            "active_version": state.version, "pending": state.pending,
            "model_version": self.models.active_version,
            "manifest_version": self.manifest.version, "manifest_items": self.manifest.count,
            "ts": datetime.fromtimestamp(self.clock(), UTC).isoformat(), "command": answer})
        return self._reported_topic, document.encode(), True

    def _refuse(self, what: str, command_id: str | None, err: Exception) -> list[Publish]:
        self._log_once(f"refused {what}: {err}")
        name = "config" if what == "desired" else what if what in _HANDLERS else "unknown"
        return [self._reported(name, command_id, CommandStatus.REJECTED, _brief(err))]

    def _log_once(self, message: str) -> None:
        # A retained or repeated bad message comes back on every reconnect: say it once.
        if message != self._last_logged:
            logger.warning("%s", message)
            self._last_logged = message

    def _notify_change(self) -> None:
        if self.on_change is not None:
            _call(self.on_change, self.settings)

    def _notify_model(self, path: Path) -> None:
        if self.on_model is not None:
            _call(self.on_model, path)


_HANDLERS: dict[str, Callable[[CommandHandler, Command], list[Publish]]] = {
    "manifest": CommandHandler._on_manifest,
    "config": CommandHandler._on_config,
    "model": CommandHandler._on_model,
    "resync": CommandHandler._on_resync,
}


def _call(hook: Callable[..., object], *args: Any) -> None:
    """Run a gateway hook; its failure becomes a CommandError (the uplink thread must live)."""
    name = getattr(hook, "__name__", "hook")
    try:
        hook(*args)
    except Exception as err:  # any error of the gateway's own hook: reported, not raised
        logger.exception("%s failed", name)
        raise CommandError(f"{name} failed: {err}") from err


def _flatten(settings: dict[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """``{"mqtt": {"inflight": 5}}`` and ``{"mqtt.inflight": 5}`` both become the latter."""
    if depth > 4:
        raise CommandError(f"key '{prefix.rstrip('.')}': settings nest deeper than sections do")
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{dotted}.", depth + 1))
        else:
            flat[dotted] = value
    return flat


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _explain(err: ValidationError) -> str:
    """Name each bad key and what it needs, without echoing values (they may be long)."""
    return "; ".join(f"key '{'.'.join(str(p) for p in issue['loc'])}': {issue['msg']}"
                     for issue in err.errors(include_url=False)[:5])


def _brief(err: Exception | str) -> str:
    text = str(err)
    return text if len(text) <= _ERROR_CHARS else text[:_ERROR_CHARS - 1] + "…"
