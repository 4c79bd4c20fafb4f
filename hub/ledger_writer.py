"""Keeps the ledger current in ``coldloop hub serve``: hub records in, heads signed.

Every ``LedgerSettings.sync_every_s`` one round appends the hub's new records (custody changes,
scans, grades) to the ledger as EPCIS events (hub.trace.sync_hub_records, in chunks until none
are left) and signs a tree head when ``sign_every`` events or ``sign_every_s`` seconds have
passed since the last one. Ingest never waits for it: the ledger trails the records by at most
a round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from hub.db import transaction
from hub.ledger import load_signing_key, public_key_path, sign_head_if_due, write_signing_key
from hub.periodic import Periodic
from hub.settings import LedgerSettings
from hub.trace import SYNC_CHUNK, sync_hub_records

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def signing_key(path: Path) -> Ed25519PrivateKey:
    """The hub's ledger key; created (and its public half written beside it) on first use."""
    if not path.exists():
        key = write_signing_key(path)
        logger.warning("created the ledger signing key %s; give auditors %s", path,
                       public_key_path(path))
        return key
    return load_signing_key(path)


class LedgerWriter:
    """Appends hub records to the ledger and signs heads, periodically or on demand."""

    def __init__(self, factory: sessionmaker[Session], settings: LedgerSettings,
                 key: Ed25519PrivateKey, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.factory = factory
        self.settings = settings
        self.key = key
        self.clock = clock
        self._job = Periodic("ledger-writer", settings.sync_every_s, self.run_once)

    def run_once(self) -> tuple[int, int | None]:
        """One round: (events appended, size of the head signed or None)."""
        appended = 0
        while True:
            with transaction(self.factory) as session:
                added = sync_hub_records(session, self.clock())
            appended += added
            if added < SYNC_CHUNK:
                break
        with transaction(self.factory) as session:
            head = sign_head_if_due(session, self.key, self.clock(),
                                    every=self.settings.sign_every,
                                    every_s=self.settings.sign_every_s)
            signed = None if head is None else head.tree_size
        if appended or signed:
            logger.info("ledger: %d hub records appended%s", appended,
                        f", head signed at size {signed}" if signed else "")
        return appended, signed

    def start(self) -> None:
        """Start the background thread (the first round runs at once)."""
        self._job.start()

    def status(self) -> dict[str, Any]:
        """The health check's view of the job (``hub.periodic.Periodic.status``)."""
        return self._job.status()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread after its current round."""
        self._job.stop(timeout)
