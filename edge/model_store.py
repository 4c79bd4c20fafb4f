"""Model files delivered by the hub: verified before they touch the disk, swapped atomically.

``models/<version>.tflite`` files and a ``current`` pointer (JSON: version, previous) that is
replaced with ``os.replace``; only the current and previous models are kept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from edge.errors import EdgeError
from protocols.messages import MAX_PAYLOAD_BYTES

logger = logging.getLogger(__name__)


class CommandError(EdgeError):
    """A command the gateway refuses; the message says why."""


class ModelArgs(BaseModel):
    """The arguments of ``cmd/model``: a small model file, inline."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, Field(ge=1, le=MAX_PAYLOAD_BYTES, strict=True)]
    content_b64: Annotated[str, Field(min_length=4, max_length=MAX_PAYLOAD_BYTES)]
    signature_b64: Annotated[str, Field(max_length=200)] | None = None  # Ed25519 over content
    card: dict[str, Any] | None = None  # the model card (inputs, outputs, metrics, sha256)

    def check_signature(self, content: bytes, public_key: bytes | None) -> None:
        """Refuse an unsigned or badly signed model when the gateway holds a public key."""
        if public_key is None:
            return  # this gateway accepts checksum-verified models (no key configured)
        if self.signature_b64 is None:
            raise CommandError(f"model {self.version}: unsigned, and this gateway only takes "
                               "signed models; nothing was changed")
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            signature = base64.b64decode(self.signature_b64, validate=True)
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, content)
        except (ValueError, InvalidSignature):
            raise CommandError(f"model {self.version}: the signature does not verify with "
                               "this gateway's key; nothing was changed") from None

    def verified_content(self) -> bytes:
        """Decode the content; raise CommandError unless its size and SHA-256 match."""
        try:
            content = base64.b64decode(self.content_b64, validate=True)
        except ValueError as err:  # binascii.Error is a ValueError
            raise CommandError(f"model {self.version}: content_b64 is not base64: {err}") from None
        digest = hashlib.sha256(content).hexdigest()
        if len(content) != self.size:
            problem = f"size: got {len(content)} bytes, the command says {self.size}"
        elif digest != self.sha256:
            problem = f"sha256: checksum mismatch (got {digest[:12]}…)"
        else:
            return content
        raise CommandError(f"model {self.version}: {problem}; nothing was changed")


class ModelStore:
    """Model files in one directory and a ``current`` pointer switched atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pointer = directory / "current"

    @property
    def active_version(self) -> str | None:
        """The version of the model in force, or None."""
        current = self.current()
        return None if current is None else str(current["version"])

    def active(self) -> Path | None:
        """The file of the model in force (for the grader at start-up), or None."""
        version = self.active_version
        return None if version is None else self.path(version)

    def path(self, version: str) -> Path:
        """Where a model version lives."""
        return self.directory / f"{version}.tflite"

    def check(self, version: str, digest: str) -> None:
        """Raise CommandError unless the stored file of ``version`` has ``digest``."""
        path = self.path(version)
        try:
            found = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            raise CommandError(f"model {version}: file {path} is missing") from None
        if found != digest:
            raise CommandError(f"model {version}: {path} has another checksum ({found[:12]}…); "
                               "publish the model under a new version")

    def install(self, version: str, content: bytes, digest: str) -> Path:
        """Store a verified model (temp file, fsync, rename) and make it current."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(version)
        if path.exists():
            self.check(version, digest)  # the same bytes: nothing to write
        else:
            write_atomically(path, content)
        current = self.current()
        previous = current and {"version": current["version"], "sha256": current["sha256"]}
        self._switch({"version": version, "sha256": digest, "previous": previous})
        logger.info("model %s installed (previous: %s)", version, current and current["version"])
        return path

    def rollback(self) -> Path:
        """Make the previous model current again; raise CommandError if there is none."""
        current = self.current()
        previous = current and current.get("previous")
        if not previous:
            raise CommandError("model: there is no previous model to roll back to")
        self.check(previous["version"], previous["sha256"])
        self._switch({**previous, "previous": None})
        logger.warning("model rolled back from %s to %s", current and current["version"],
                       previous["version"])
        return self.path(previous["version"])

    def restore(self, pointer: dict[str, Any] | None) -> None:
        """Put back a pointer read with :meth:`current` (None: no model in force)."""
        self._switch(pointer)

    def _switch(self, pointer: dict[str, Any] | None) -> None:
        if pointer is None:
            self.pointer.unlink(missing_ok=True)
        else:
            write_atomically(self.pointer, json.dumps(pointer).encode())
        keep = {f"{p['version']}.tflite" for p in (pointer, pointer and pointer.get("previous"))
                if p}
        for stale in self.directory.glob("*.tflite"):
            if stale.name not in keep:  # only current and previous: the card stays small
                stale.unlink(missing_ok=True)

    def current(self) -> dict[str, Any] | None:
        """The pointer: version and sha256 of the model in force and of the previous one."""
        try:
            data = json.loads(self.pointer.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            logger.error("model pointer %s unreadable (%s): no model in force", self.pointer, err)
            return None
        return data if isinstance(data, dict) and "version" in data else None


def write_atomically(path: Path, data: bytes) -> None:
    """Write a temp file in the same directory, fsync it, rename it over ``path``, fsync dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)
