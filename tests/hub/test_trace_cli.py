"""``coldloop trace``: keygen, sign, head, verify (exit codes, first bad entry), bundles."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from firmware_sim.services import REPO
from hub.console import main
from hub.evidence import SignedHead
from hub.ledger import canonical_json
from hub.merkle import leaf_hash
from tests.hub.ledger_helpers import append, event, sql


@dataclass
class Hub:
    """A hub's data dir and config on the test database, driven through the CLI."""

    data_dir: Path
    config: Path
    factory: sessionmaker[Session]

    def run(self, command: str, *args: str) -> Result:
        """Run ``coldloop trace COMMAND --config ... ARGS``."""
        return CliRunner().invoke(main, ["--data-dir", str(self.data_dir), "trace", command,
                                         "--config", str(self.config), *args])

    def offline(self, *args: str) -> Result:
        """Run ``coldloop trace verify-bundle ARGS`` (it takes no settings)."""
        return CliRunner().invoke(main, ["trace", "verify-bundle", *args])

    @property
    def key(self) -> Path:
        return self.data_dir / "ledger-signing-key.pem"


@pytest.fixture
def hub(database_url: str, hub_db: sessionmaker[Session], tmp_path: Path) -> Hub:
    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[ledger]\nsign_every = 10\n')
    return Hub(tmp_path / "data", config, hub_db)


@pytest.fixture
def signed(hub: Hub) -> Hub:
    """Twenty events, a key, and a head over the first ten (signed through the CLI)."""
    assert hub.run("keygen").exit_code == 0
    append(hub.factory, [event(i) for i in range(10)])
    assert hub.run("sign").exit_code == 0
    append(hub.factory, [event(i) for i in range(10, 20)])
    result = hub.run("sign")
    assert result.exit_code == 0, result.output
    return hub


def test_keygen_writes_a_private_key_once(hub: Hub) -> None:
    result = hub.run("keygen")
    assert result.exit_code == 0, result.output
    assert f"written to {hub.key}" in result.output
    assert stat.S_IMODE(os.stat(hub.key).st_mode) == 0o600
    assert hub.key.with_suffix(".pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY")
    again = hub.run("keygen")
    assert again.exit_code == 1 and "already exists" in again.output
    assert hub.run("keygen", "--force").exit_code == 0


def test_sign_and_head(signed: Hub) -> None:
    result = signed.run("head")
    assert result.exit_code == 0, result.output
    head = SignedHead.from_json(json.loads(result.output))
    assert head.tree_size == 20
    again = signed.run("sign")
    assert again.output.startswith("signed head at size 20")


def test_sign_without_a_key_or_database_tables(hub: Hub, tmp_path: Path) -> None:
    result = hub.run("sign")
    assert result.exit_code == 2
    assert "no ledger signing key at" in result.output and "coldloop trace keygen" in result.output
    bare = tmp_path / "bare.toml"
    bare.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "empty.db"}"\n')
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "trace", "head",
                                       "--config", str(bare)])
    assert result.exit_code == 2 and "run `coldloop hub migrate` first" in result.output


def test_verify_passes_an_untouched_log(signed: Hub) -> None:
    result = signed.run("verify")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "ok, 20 events, 2 heads"


def test_verify_names_an_edited_temperature(signed: Hub) -> None:
    sql(signed.factory, "UPDATE trace_events SET document = replace(document, :was, :now) "
                        "WHERE seq = 13", was='"value":3.5', now='"value":1.5')
    result = signed.run("verify")
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"FAILED: seq 13 (eventID {event(13)['eventID']}): document does not match its leaf "
        "hash (and 1 more problem)")


def test_verify_names_a_deleted_event(signed: Hub) -> None:
    sql(signed.factory, "DELETE FROM trace_events WHERE seq = 4")
    result = signed.run("verify")
    assert result.exit_code == 1
    assert result.output.startswith("FAILED: seq 4: seq 4 missing: the event was removed")


def test_verify_names_swapped_events(signed: Hub) -> None:
    with signed.factory() as session:
        rows = {seq: session.execute(
            text("SELECT document, leaf_hash FROM trace_events WHERE seq = :s"),
            {"s": seq}).one() for seq in (2, 6)}
    for target, source in ((2, 6), (6, 2)):
        sql(signed.factory, "UPDATE trace_events SET document = :d, leaf_hash = :h "
                            "WHERE seq = :s", d=rows[source][0], h=rows[source][1], s=target)
    result = signed.run("verify")
    assert result.exit_code == 1
    assert result.output.startswith(f"FAILED: seq 2 (eventID {event(2)['eventID']}): column "
                                    "event_id says")


def test_verify_catches_a_rewrite_only_the_signed_head_knows(signed: Hub) -> None:
    forged = canonical_json(event(15, temp=2.0))
    sql(signed.factory, "UPDATE trace_events SET document = :d, leaf_hash = :h WHERE seq = 15",
        d=forged, h=leaf_hash(forged.encode()))
    result = signed.run("verify")
    assert result.exit_code == 1
    assert result.output.startswith(
        "FAILED: root at size 20 does not match the signed head: the first differing event is "
        "between seq 10 and seq 19")


def test_verify_with_other_keys_and_kept_heads(signed: Hub, tmp_path: Path) -> None:
    other = tmp_path / "other.pub"
    other.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    result = signed.run("verify", "--public-key", str(other))
    assert result.exit_code == 1 and "not among the given public keys" in result.output
    result = signed.run("verify", "--public-key", str(signed.key.with_suffix(".pub")))
    assert result.exit_code == 0, result.output

    heads = tmp_path / "heads.jsonl"  # what an auditor appends after each `trace head`
    heads.write_text(signed.run("head").output)
    sql(signed.factory, "DELETE FROM ledger_heads WHERE tree_size = 20")
    sql(signed.factory, "DELETE FROM trace_events WHERE seq >= 12")
    assert signed.run("verify").exit_code == 0  # the database alone cannot tell
    result = signed.run("verify", "--head", str(heads))
    assert result.exit_code == 1
    assert result.output.startswith("FAILED: the head kept outside the database at size 20 "
                                    "covers 20 events but the log holds 12")


@pytest.mark.parametrize(("change", "message"), [
    ({"tree_size": 2**70}, "tree_size must be an integer from 0 to 9223372036854775807"),
    ({"timestamp_ms": 10**20}, "timestamp_ms must be an integer from 0 to 4102444800000"),
])
def test_a_head_out_of_range_is_refused_naming_the_field(
        signed: Hub, tmp_path: Path, change: dict[str, int], message: str) -> None:
    heads = tmp_path / "heads.json"
    heads.write_text(json.dumps(json.loads(signed.run("head").output) | change))
    result = signed.run("verify", "--head", str(heads))
    assert result.exit_code == 2 and message in result.output, result.output  # could not check
    heads.write_text("[" * 100_000 + "]" * 100_000)
    result = signed.run("verify", "--head", str(heads))
    assert result.exit_code == 2 and "nested too deeply" in result.output


def test_verify_after_a_key_change_uses_the_replaced_public_key(signed: Hub) -> None:
    assert signed.run("keygen", "--force").exit_code == 0
    append(signed.factory, [event(20)])
    assert signed.run("sign").exit_code == 0
    result = signed.run("verify")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok, 21 events, 3 heads")


def test_verify_cannot_check_without_a_key(hub: Hub) -> None:
    result = hub.run("verify")
    assert result.exit_code == 2
    assert "(or pass --public-key FILE)" in result.output


def test_a_bundle_verifies_offline(signed: Hub, tmp_path: Path) -> None:
    result = signed.run("bundle", "--seq", "3", "--seq", "17")
    assert result.exit_code == 0, result.output
    bundle = tmp_path / "bundle.json"
    bundle.write_text(result.output)
    public = str(signed.key.with_suffix(".pub"))
    checked = signed.offline(str(bundle), "--public-key", public)
    assert checked.exit_code == 0, checked.output
    assert checked.output.startswith("ok, 2 events proven by the head at size 20 signed ")

    data = json.loads(result.output)
    proof = data["events"][1]["inclusion_proof"]
    proof[0] = ("0" if proof[0][0] != "0" else "1") + proof[0][1:]
    bundle.write_text(json.dumps(data))
    failed = signed.offline(str(bundle), "--public-key", public)
    assert failed.exit_code == 1
    assert failed.output.startswith(f"FAILED: event seq 17 ('{event(17)['eventID']}'): the "
                                    "document is not proven by the signed head")
    bundle.write_text("{not json")
    assert signed.offline(str(bundle), "--public-key", public).exit_code == 2


def test_bundle_errors_are_named(hub: Hub) -> None:
    append(hub.factory, [event(0)])
    result = hub.run("bundle", "--seq", "0")
    assert result.exit_code == 1 and "no signed head yet" in result.output


def test_verify_bundle_needs_no_database_layer(signed: Hub, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text(signed.run("bundle", "--seq", "0").output)
    probe = ("import sys\nfrom hub.console import main\n"
             "try:\n    main(['trace', 'verify-bundle', sys.argv[1], '--public-key', "
             "sys.argv[2]])\nexcept SystemExit as e:\n    code = e.code\n"
             "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
             "('sqlalchemy', 'flask', 'alembic') or m in ('hub.ledger', 'hub.db'))\n"
             "print('exit', code, 'loaded', loaded)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(bundle),
                           str(signed.key.with_suffix(".pub"))], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "exit 0 loaded []", done.stdout + done.stderr


def test_a_bundle_cannot_be_checked_without_a_readable_key(signed: Hub, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text(signed.run("bundle", "--seq", "0").output)
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("not a key")
    result = signed.offline(str(bundle), "--public-key", str(garbage))
    assert result.exit_code == 2, result.output  # could not check, not FAILED (1)
    assert "the public key" in result.output and "FAILED" not in result.output



# --- export, import, show --------------------------------------------------------------------


@pytest.fixture
def partner_documents(hub: Hub, tmp_path: Path) -> tuple[str, list[Path]]:
    """A seeded order's item and the three partner documents about it, as files."""
    from datetime import UTC, datetime

    from firmware_sim import epcis_docs
    from firmware_sim.demo import seed_hub
    from firmware_sim.scenario import generate

    scenario = generate(3, 60)
    seed_hub(hub.factory, scenario)
    complaint = scenario.complaints[0]
    paths = []
    for sender, document in epcis_docs.documents(complaint, datetime(2026, 11, 21, tzinfo=UTC)):
        path = tmp_path / f"{sender}.jsonld"
        path.write_text(json.dumps(document))
        paths.append(path)
    return complaint.item.item_id, paths


def test_import_appends_once_and_export_gives_valid_epcis(
        hub: Hub, partner_documents: tuple[str, list[Path]]) -> None:
    from hub import epcis

    item_id, paths = partner_documents
    first = hub.run("import", str(paths[0]))
    again = hub.run("import", str(paths[0]), "--name", "farm")
    for path in paths[1:]:
        assert hub.run("import", str(path)).exit_code == 0
    exported = hub.run("export", "--item", item_id)
    shown = hub.run("show", "--item", item_id)

    assert first.exit_code == 0 and first.output == "2 of 2 events appended, seq 0..1\n"
    assert again.output == "0 of 2 events appended (all were already in the ledger)\n"
    document = json.loads(exported.output)
    assert epcis.problems(document) == []
    assert len(document["epcisBody"]["eventList"]) == 8
    assert shown.exit_code == 0, shown.output
    assert "responsible: " in shown.output and "supplier segment" in shown.output


def test_an_invalid_import_fails_with_the_schema_error(
        hub: Hub, partner_documents: tuple[str, list[Path]], tmp_path: Path) -> None:
    _, paths = partner_documents
    document = json.loads(paths[0].read_text())
    document["epcisBody"]["eventList"][0]["action"] = "SMASH"
    bad = tmp_path / "bad.jsonld"
    bad.write_text(json.dumps(document))

    result = hub.run("import", str(bad))

    assert result.exit_code == 1
    assert "bad.jsonld: not a valid EPCIS 2.0 document: epcisBody/eventList/0" in result.output
    assert "SMASH" in result.output
    assert hub.run("export", "--since", "2000-01-01").output.count('"eventID"') == 0


def test_export_needs_to_know_what(hub: Hub) -> None:
    result = hub.run("export")
    assert result.exit_code == 2 and "--order, --item or --since" in result.output
    missing = hub.run("export", "--item", "NOPE")
    assert missing.exit_code == 1 and "no such item: NOPE" in missing.output
