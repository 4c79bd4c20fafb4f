"""Bulk import of the shop's orders: each line on its own, bad lines named and skipped."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.console import main
from hub.models import Customer, Item, Order
from hub.order_import import import_orders
from protocols.coldchain import FAMILIES
from tests.hub.test_orders_api import ITEM, ORDER


def line(order_id: str, **changes: object) -> bytes:
    return json.dumps({"order_id": order_id, **ORDER, **changes}).encode() + b"\n"


def item(item_id: str, **changes: object) -> dict[str, object]:
    return {**ITEM, "item_id": item_id, **changes}


def lines() -> list[bytes]:
    no_customer = {k: v for k, v in ORDER.items() if k != "customer"}
    return [
        line("O9-1"),                                                     # 1 created
        line("O9-2", items=[item("I9-00002-1")]),                         # 2 created
        b"\n",                                                            # 3 blank: skipped
        line("O9-1"),                                                     # 4 unchanged
        line("O9-3", items=[item("I9-00003-1", gtin="06901234567891")]),  # 5 bad GTIN
        b'{"order_id": "O9-4", "customer_id": ',                          # 6 cut short
        b'{"order_id": "O9-5", "x": "\xff"}\n',                           # 7 not UTF-8
        json.dumps({"order_id": "O9-6", **no_customer, "customer_id": "C-77",
                    "items": [item("I9-00006-1")]}).encode(),             # 8 unknown customer
        json.dumps([1, 2]).encode(),                                      # 9 not an object
        json.dumps({**ORDER, "items": []}).encode(),                      # 10 no order_id
        line("O9-2", items=[item("I9-00002-1", product="Strawberries (promo)")]),  # 11 updated
        line("O9-7", items=[item("I9-00007-1"), item("I9-00007-2", family="mushrooms")]),  # 12
    ]


def test_each_line_is_put_on_its_own_and_bad_lines_are_named(
        hub_db: sessionmaker[Session]) -> None:
    report = import_orders(lines(), hub_db, FAMILIES)

    assert dict(report.outcomes) == {"created": 2, "unchanged": 1, "updated": 1}
    refused = {r.line: str(r) for r in report.refused}
    assert sorted(refused) == [5, 6, 7, 8, 9, 10, 12]
    assert refused[5].startswith("line 5 (order O9-3): items.0.gtin: Value error, not a GTIN")
    assert refused[6].startswith("line 6 (order O9-4): not JSON")
    assert refused[7].startswith("line 7 (order O9-5): not UTF-8 text")
    assert refused[8] == ("line 8 (order O9-6): customer 'C-77' does not exist: put it first "
                          "(PUT /api/v1/customers/C-77) or send it as \"customer\"")
    assert refused[9] == "line 9: not a JSON object but list"
    assert refused[10].startswith("line 10: order_id: required")
    assert "product family 'mushrooms' is not in the cold-chain configuration" in refused[12]
    assert report.summary() == "orders: 2 created, 1 updated, 1 unchanged, 7 refused"
    with hub_db() as session:
        assert session.scalars(select(Order.id).order_by(Order.id)).all() == ["O9-1", "O9-2"]
        # line 12's good item was not stored without the rest of its order
        assert session.scalar(select(func.count()).select_from(Item)) == 2
        promo = session.get(Item, "I9-00002-1")
        assert promo is not None and promo.product == "Strawberries (promo)"
        assert session.get(Customer, "C-77") is None


def test_the_command_reports_refused_lines_and_exits_1(tmp_path: Path) -> None:
    runner = CliRunner()
    root = ["--data-dir", str(tmp_path)]
    assert runner.invoke(main, [*root, "hub", "migrate"]).exit_code == 0
    good = tmp_path / "orders.jsonl"
    good.write_bytes(line("O9-1") + line("O9-2", items=[item("I9-00002-1")]))
    result = runner.invoke(main, [*root, "hub", "import-orders", str(good)])
    assert (result.exit_code, result.output) == (
        0, "orders: 2 created, 0 updated, 0 unchanged, 0 refused\n")
    result = runner.invoke(main, [*root, "hub", "import-orders", "-"],
                           input=line("O9-1") + b"[]\n")
    assert result.exit_code == 1
    assert result.stderr == "line 2: not a JSON object but list\n"
    assert result.stdout == "orders: 0 created, 0 updated, 1 unchanged, 1 refused\n"
