"""Import a shop's orders in bulk from JSON Lines: ``coldloop hub import-orders FILE``.

Each line is one order as ``PUT /api/v1/orders/<id>`` takes it, plus its ``order_id``. Lines
are put one by one, each in its own transaction, so one bad line neither stops the import
nor leaves half an order: it is refused with its line number and the reason, and the rest
go on. Putting a file twice changes nothing the second time.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import HubError
from hub.orders import RECORD_ID_RULE, OrderRecord, is_record_id, put_order
from protocols.storable import unstorable


@dataclass(frozen=True)
class Refused:
    """A line that was not imported, and why."""

    line: int
    order_id: str | None
    reason: str

    def __str__(self) -> str:
        order = f" (order {self.order_id})" if self.order_id else ""
        return f"line {self.line}{order}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did: orders by outcome (created, updated, unchanged), refused lines."""

    outcomes: Counter[str] = field(default_factory=Counter)
    refused: list[Refused] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the operator."""
        done = ", ".join(f"{self.outcomes[k]} {k}" for k in ("created", "updated", "unchanged"))
        return f"orders: {done}, {len(self.refused)} refused"


def import_orders(lines: Iterable[bytes], factory: sessionmaker[Session],
                  families: Collection[str]) -> ImportReport:
    """Put every order of ``lines`` (bytes of JSON Lines; blank lines are skipped)."""
    report = ImportReport()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            order_id, record = _parse(raw)
        except ValueError as err:
            report.refused.append(Refused(number, _order_id_of(raw), str(err)))
            continue
        try:
            with factory.begin() as session:
                outcome = put_order(session, order_id, record, families).put.outcome
        except HubError as err:
            report.refused.append(Refused(number, order_id, str(err)))
            continue
        report.outcomes[outcome] += 1
    return report


def _parse(raw: bytes) -> tuple[str, OrderRecord]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    except RecursionError:
        raise ValueError("not JSON: nested too deeply to read") from None
    except ValueError as err:
        raise ValueError(f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object but {type(data).__name__}")
    found = unstorable(data, "(line)")
    if found is not None:
        raise ValueError(f"{found[0]}: {found[1]}")
    order_id = data.pop("order_id", None)
    if not is_record_id(order_id):
        raise ValueError(f"order_id: required, {RECORD_ID_RULE}")
    try:
        return order_id, OrderRecord.model_validate(data)
    except ValidationError as err:
        raise ValueError("; ".join(_problem(issue) for issue in err.errors(include_url=False))
                         ) from None


def _problem(issue: Any) -> str:
    where = ".".join(str(part) for part in issue["loc"]) or "(order)"
    return f"{where}: {issue['msg']}"


def _order_id_of(raw: bytes) -> str | None:
    """The order id of a line that could not be read whole, if it shows one (for the report)."""
    found = re.search(rb'"order_id"\s*:\s*"([A-Za-z0-9._-]{1,32})"', raw)
    return found.group(1).decode("ascii") if found else None
