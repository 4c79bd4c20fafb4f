"""The gateway's manifest cache: full and delta documents, versions, validation, durability."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.manifest import (
    ApplyStatus,
    Manifest,
    ManifestError,
    ManifestGap,
    ManifestItem,
    manifest_path,
)
from edge.settings import GatewaySettings

SITE = "site-a"


def entry(item_id: str, **extra: Any) -> dict[str, Any]:
    """A valid manifest item."""
    return {"item_id": item_id, "gtin": "06901234567892", "lot": "L2611", **extra}


def doc(version: int, items: list[dict[str, Any]], *, full: bool = True,
        removed: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A manifest document for SITE."""
    return {"version": version, "site": SITE, "full": full, "items": items,
            "removed": removed or [], **extra}


@pytest.fixture
def manifest(tmp_path: Path) -> Iterator[Manifest]:
    """An empty manifest cache."""
    cache = Manifest(tmp_path / "manifest.db", SITE)
    yield cache
    cache.close()


def test_empty_cache_knows_every_item_until_a_manifest_arrives(manifest: Manifest) -> None:
    assert (manifest.version, manifest.count) == (0, 0)
    assert manifest.lookup("IT-1") is None
    assert manifest.is_known("IT-1")  # no manifest yet: the station cannot say "unexpected"
    manifest.apply(doc(1, [entry("IT-1")]))
    assert manifest.is_known("IT-1") and not manifest.is_known("IT-9")


def test_full_manifest_is_looked_up_with_its_cold_chain_summary(manifest: Manifest) -> None:
    result = manifest.apply(doc(3, [
        entry("IT-1", family="berries", high_risk=True, hours_above_limit=1.5,
              degree_hours=4.25, shelf_life_used_frac=0.4),
        entry("IT-2")]))
    assert (result.status, result.version, result.count) == (ApplyStatus.APPLIED, 3, 2)
    assert manifest.lookup("IT-1") == ManifestItem(
        item_id="IT-1", gtin="06901234567892", lot="L2611", family="berries", high_risk=True,
        hours_above_limit=1.5, degree_hours=4.25, shelf_life_used_frac=0.4)
    plain = manifest.lookup("IT-2")
    assert plain is not None and plain.high_risk is None and plain.degree_hours is None


def test_full_replaces_and_delta_merges(manifest: Manifest) -> None:
    manifest.apply(doc(1, [entry("IT-1"), entry("IT-2"), entry("IT-3")]))
    result = manifest.apply(doc(2, [entry("IT-2", lot="L9"), entry("IT-4")], full=False,
                                removed=["IT-1", "IT-GONE"], base=1))
    assert (result.upserted, result.removed, result.count) == (2, 1, 3)
    assert [i.item_id for i in manifest.items()] == ["IT-2", "IT-3", "IT-4"]
    assert manifest.lookup("IT-2").lot == "L9"  # type: ignore[union-attr]
    manifest.apply(doc(3, [entry("IT-7")]))
    assert [i.item_id for i in manifest.items()] == ["IT-7"]


def test_older_version_is_stale_and_same_version_unchanged(manifest: Manifest) -> None:
    manifest.apply(doc(5, [entry("IT-1")]))
    stale = manifest.apply(doc(4, [entry("IT-2")]))
    again = manifest.apply(doc(5, [entry("IT-3")]))
    assert (stale.status, stale.offered, stale.version) == (ApplyStatus.STALE, 4, 5)
    assert again.status is ApplyStatus.UNCHANGED
    assert [i.item_id for i in manifest.items()] == ["IT-1"]


def test_delta_on_another_base_is_a_gap(manifest: Manifest) -> None:
    manifest.apply(doc(2, [entry("IT-1")]))
    with pytest.raises(ManifestGap, match="extends v3, but this gateway has v2; send a full"):
        manifest.apply(doc(4, [entry("IT-2")], full=False, base=3))
    assert manifest.version == 2 and manifest.count == 1


def test_survives_reopen(tmp_path: Path) -> None:
    first = Manifest(tmp_path / "m.db", SITE)
    first.apply(doc(7, [entry("IT-1", degree_hours=2.0)]))
    first.close()
    second = Manifest(tmp_path / "m.db", SITE)
    assert (second.version, second.count) == (7, 1)
    assert second.lookup("IT-1").degree_hours == 2.0  # type: ignore[union-attr]
    second.close()


@pytest.mark.parametrize(("document", "field"), [
    ({"version": 1, "site": SITE, "items": []}, "full"),
    (doc("2", []), "version"),  # type: ignore[arg-type]
    (doc(0, []), "version"),
    (doc(1, [entry("IT-1", gtin="06901234567891")]), "items.0.gtin"),
    (doc(1, [entry("it-1")]), "items.0.item_id"),
    (doc(1, [entry("IT-1", lot="")]), "items.0.lot"),
    (doc(1, [entry("IT-1", degree_hours=-1)]), "items.0.degree_hours"),
    (doc(1, [entry("IT-1", hours_above_limit="lots")]), "items.0.hours_above_limit"),
    (doc(1, [entry("IT-1"), entry("IT-1")]), "listed twice"),
    (doc(1, [], removed=["IT-1"]), "removed"),
    (doc(1, [entry("IT-1")], full=False, removed=["IT-1"]), "removed"),
    (doc(1, "IT-1"), "items"),  # type: ignore[arg-type]
    ({**doc(1, []), "site": "site-b"}, "site"),
])
def test_garbage_is_refused_naming_the_field(manifest: Manifest, document: dict[str, Any],
                                             field: str) -> None:
    with pytest.raises(ManifestError, match=field.replace(".", r"\.")):
        manifest.apply(document)
    assert (manifest.version, manifest.count) == (0, 0)  # nothing half-applied


def test_not_an_object_is_refused(manifest: Manifest) -> None:
    with pytest.raises(ManifestError, match="expected a JSON object"):
        manifest.apply(["IT-1"])  # type: ignore[arg-type]


def test_unknown_fields_of_a_newer_hub_are_ignored(manifest: Manifest) -> None:
    manifest.apply({**doc(1, [entry("IT-1", colour="red")]), "generated_by": "hub 2"})
    assert manifest.lookup("IT-1") is not None


def test_cache_lives_next_to_the_outbox(tmp_path: Path) -> None:
    settings = GatewaySettings(id="gw-1", site=SITE, data_dir=tmp_path,
                               stations=[{"id": "st-1"}])  # type: ignore[list-item]
    assert manifest_path(settings) == settings.outbox_path.parent / "manifest.db"
