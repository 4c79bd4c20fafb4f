"""The shop's customers and orders, as its order system sends them: idempotent upserts.

The hub does not take orders. It keeps a copy of what a complaint, a pickup, a scan and a
trace need: the customer (tier and region route and time the ticket), the order and its tagged
items. The order system puts a customer or an order whenever it changes; putting the same
record again changes nothing. Plain functions over a session: they flush, never commit.

What may change: a customer's name, phone, tier and region; an order's times and status; an
item's product name, family and price. What may not (409): the customer of an order, the
order of an item, and what the item's RFID tag carries (GTIN, lot, packing time) or its tag
UID; a different value there is a different item. Items an update leaves out are kept: an
order sync never deletes what scans, pickups and tickets may refer to.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Customer, Item, Order
from hub.phones import Phone
from hub.queries import as_utc
from protocols.instants import Instant
from protocols.tag import is_valid_gtin

R = TypeVar("R", Customer, Order)
MAX_ITEMS = 200  # per order (a put of 200 items stays under the API's 64 KB body limit)
ORDER_STATUSES = ("placed", "dispatched", "delivered", "cancelled")
# Ids travel in URL paths: letters, digits and . _ - only.
RECORD_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
RECORD_ID_RULE = "1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit"
_TOKEN = r"^[a-z][a-z0-9_-]{0,15}$"


def is_record_id(value: object) -> bool:
    """Whether ``value`` can be a customer or order id (see RECORD_ID_RULE)."""
    return isinstance(value, str) and re.fullmatch(RECORD_ID, value) is not None


def _gtin14(value: str) -> str:
    if not is_valid_gtin(value):
        raise ValueError("not a GTIN: 8, 12, 13 or 14 digits with a correct GS1 check digit")
    return value.zfill(14)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerRecord(_Record):
    """A customer as the order system knows them."""

    name: Annotated[str, Field(min_length=1, max_length=120)]
    phone: Phone | None = None
    tier: Annotated[str, Field(pattern=_TOKEN)] = "standard"
    region: Annotated[str, Field(pattern=r"^([a-z][a-z0-9_-]{0,31})?$")] = ""


class ItemRecord(_Record):
    """One tagged unit of an order: what its RFID tag says, and what the shop sold it as."""

    item_id: Annotated[str, Field(pattern=r"^[A-Z0-9-]{1,16}$")]
    gtin: Annotated[str, AfterValidator(_gtin14)]
    lot: Annotated[str, Field(pattern=r"^[A-Z0-9-]{1,10}$")]
    packed_at: Instant
    product: Annotated[str, Field(min_length=1, max_length=64)]
    family: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    price_cents: Annotated[int, Field(strict=True, ge=0, le=100_000_000)]
    tag_uid: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{8,20}$")] | None = None


class OrderRecord(_Record):
    """An order: its customer (or the customer itself, put on the way), times and items."""

    customer_id: Annotated[str, Field(pattern=RECORD_ID)]
    customer: CustomerRecord | None = None
    placed_at: Instant
    delivered_at: Instant | None = None
    status: Literal[ORDER_STATUSES] = "placed"  # type: ignore[valid-type]
    items: Annotated[list[ItemRecord], Field(max_length=MAX_ITEMS)] = []

    @model_validator(mode="after")
    def _consistent(self) -> OrderRecord:
        if self.delivered_at is not None and self.delivered_at < self.placed_at:
            raise ValueError("delivered_at is before placed_at")
        if self.status == "delivered" and self.delivered_at is None:
            raise ValueError("a delivered order needs delivered_at")
        ids = [item.item_id for item in self.items]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"item ids listed twice: {', '.join(twice)}")
        return self


@dataclass(frozen=True)
class Put:
    """What putting a record did: created it, changed it, or nothing (the same record again)."""

    created: bool
    changed: bool

    @property
    def outcome(self) -> str:
        """"created", "updated" or "unchanged"."""
        return "created" if self.created else "updated" if self.changed else "unchanged"


@dataclass(frozen=True)
class OrderPut:
    """What putting an order did, to the order, its customer and its items."""

    order: Order
    put: Put
    customer: Put | None  # None: the customer was not sent along
    items_added: int
    items_changed: int


def put_customer(session: Session, customer_id: str, record: CustomerRecord) -> Put:
    """Create or update a customer."""
    values = {"name": record.name, "phone": record.phone, "tier": record.tier,
              "region": record.region}
    _write_lock(session, Customer, customer_id)
    customer = session.get(Customer, customer_id)
    created = False
    if customer is None:
        customer, created = _insert(session, Customer(id=customer_id, **values))
    changed = _assign(customer, **values) or created
    session.flush()
    return Put(created=created, changed=changed)


def _write_lock(session: Session, model: type[Customer] | type[Order], row_id: str) -> None:
    """Queue behind other writers of this row: a no-op UPDATE locks it on PostgreSQL, and on
    SQLite opens the write transaction, so the savepoint in ``_insert`` cannot commit alone
    (pysqlite starts a transaction at the first write, not at a SAVEPOINT). It sets a column
    that is no key, so rows referring to this one are not held up."""
    column = Customer.name if model is Customer else Order.status
    session.execute(update(model).where(model.id == row_id).values({column: column})
                    .execution_options(synchronize_session=False))


def _insert(session: Session, row: R) -> tuple[R, bool]:
    """Insert ``row``; if a concurrent request inserted the same id first, return theirs."""
    try:
        with session.begin_nested():
            session.add(row)
        return row, True
    except IntegrityError:
        found: R | None = session.get(type(row), row.id)
        if found is None:
            raise
        return found, False


def put_order(session: Session, order_id: str, record: OrderRecord,
              families: Collection[str]) -> OrderPut:
    """Create or update an order and its items (and its customer, when sent along).

    ``families`` are the product families the cold-chain configuration knows; an item of
    another family is refused, since its trace could not be judged.
    """
    unknown = sorted({i.family for i in record.items} - set(families))
    if unknown:
        raise InvalidInput(f"product family {', '.join(map(repr, unknown))} is not in the "
                           f"cold-chain configuration; known: {', '.join(sorted(families))}")
    customer = None
    if record.customer is not None:
        customer = put_customer(session, record.customer_id, record.customer)
    elif session.get(Customer, record.customer_id) is None:
        raise NotFound(f"customer {record.customer_id!r} does not exist: put it first "
                       f"(PUT /api/v1/customers/{record.customer_id}) or send it as \"customer\"")
    _write_lock(session, Order, order_id)  # as a complaint or a pickup about it does
    values = {"placed_at": record.placed_at, "delivered_at": record.delivered_at,
              "status": record.status}
    found = session.get(Order, order_id)
    created = False
    if found is not None:
        order = found
    else:
        order, created = _insert(session, Order(id=order_id, customer_id=record.customer_id,
                                                **values))
    if order.customer_id != record.customer_id:
        raise Conflict(f"order {order_id!r} belongs to customer {order.customer_id!r}, not "
                       f"{record.customer_id!r}; an order does not change hands")
    order_changed = _assign(order, **values)
    added = changed = 0
    for item_record in record.items:
        outcome = _put_item(session, order_id, item_record)
        added += outcome == "added"
        changed += outcome == "changed"
    session.flush()
    put = Put(created=created, changed=created or order_changed or bool(added or changed))
    return OrderPut(order, put, customer, added, changed)


def _put_item(session: Session, order_id: str, record: ItemRecord) -> str:
    """Add or update one item; return "added", "changed" or "same"."""
    tag_uid = record.tag_uid.lower() if record.tag_uid else None
    item = session.get(Item, record.item_id)
    if item is None:
        session.add(Item(id=record.item_id, order_id=order_id, gtin=record.gtin, lot=record.lot,
                         packed_at=record.packed_at, product=record.product,
                         family=record.family, price_cents=record.price_cents,
                         tag_uid=tag_uid))
        return "added"
    if item.order_id != order_id:
        raise Conflict(f"item {record.item_id!r} belongs to order {item.order_id!r}, not "
                       f"{order_id!r}")
    fixed: dict[str, object] = {"gtin": record.gtin, "lot": record.lot,
                                "packed_at": record.packed_at}
    if item.tag_uid is not None and tag_uid is not None:  # a UID not known before may come
        fixed["tag_uid"] = tag_uid
    clashes = [f"{name} {_shown(getattr(item, name))} (sent {_shown(value)})"
               for name, value in fixed.items() if not _same(getattr(item, name), value)]
    if clashes:
        raise Conflict(f"item {record.item_id!r} already has {', '.join(clashes)}: what its tag "
                       f"carries does not change; a different tag is a different item id")
    changes: dict[str, object] = {"product": record.product, "family": record.family,
                                  "price_cents": record.price_cents}
    if tag_uid is not None:  # left out: kept
        changes["tag_uid"] = tag_uid
    return "changed" if _assign(item, **changes) else "same"


def _assign(row: object, **values: object) -> bool:
    """Set the attributes that differ; return whether any did."""
    changed = False
    for name, value in values.items():
        if not _same(getattr(row, name), value):
            setattr(row, name, value)
            changed = True
    return changed


def _shown(value: object) -> str:
    return repr(as_utc(value).isoformat()) if isinstance(value, datetime) else repr(value)


def _same(stored: object, sent: object) -> bool:
    # SQLite gives back naive UTC datetimes; compare instants, not representations.
    if isinstance(stored, datetime) and isinstance(sent, datetime):
        return as_utc(stored) == as_utc(sent)
    return stored == sent
