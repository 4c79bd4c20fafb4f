"""The ledger writer of `hub serve`: hub records appended in rounds, heads signed when due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from hub.ledger import load_public_key, public_key_path, verify_log
from hub.ledger_writer import LedgerWriter, signing_key
from hub.models import Scan
from hub.settings import LedgerSettings

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def scans(factory: sessionmaker[Session], first: int, count: int) -> None:
    with factory.begin() as session:
        session.add_all(Scan(message_id=f"gw-1:1:{n}", gateway_id="gw-1", station="st-1",
                             item_id="IT-1", tag_uid="04a1b2c3", lot="L2611",
                             gtin="06901234567892", core_temp_c=3.0,
                             ts=T0 + timedelta(seconds=n), clock="synced")
                        for n in range(first, first + count))


def test_rounds_append_new_records_once_and_sign_when_due(factory: sessionmaker[Session],
                                                          tmp_path: Path) -> None:
    now = [T0]
    key = signing_key(tmp_path / "ledger.pem")  # created on first use, public half beside it
    writer = LedgerWriter(factory, LedgerSettings(sign_every=5, sign_every_s=60), key,
                          clock=lambda: now[0])
    scans(factory, 1, 3)

    assert writer.run_once() == (3, 3)  # the first head is signed at once
    assert writer.run_once() == (0, None)
    scans(factory, 4, 2)
    assert writer.run_once() == (2, None)  # 2 new events: fewer than sign_every, too soon
    now[0] = T0 + timedelta(seconds=61)
    assert writer.run_once() == (0, 5)  # a minute later the head catches up

    with factory() as session:
        report = verify_log(session, load_public_key(public_key_path(tmp_path / "ledger.pem")))
    assert report.ok, report.summary()
    assert signing_key(tmp_path / "ledger.pem").public_key().public_bytes_raw() == \
        key.public_key().public_bytes_raw()  # loaded, not replaced
