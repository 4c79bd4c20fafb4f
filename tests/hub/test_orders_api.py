"""The shop's order system puts customers and orders (hub.orders), and complaints find them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub import orders
from hub.models import Customer, Item, Order
from protocols.coldchain import FAMILIES
from tests.hub.conftest import AUTH
from tests.hub.test_api import error_of
from tests.hub.test_returns import run_while_holding

CUSTOMER = {"name": "Wang Fang", "phone": "+86 138 0000 1111", "tier": "gold",
            "region": "shanghai"}
ITEM = {"item_id": "I9-00001-1", "gtin": "06901234567892", "lot": "L261031-8",
        "packed_at": "2026-10-30T23:49:00+00:00", "product": "Strawberries 250 g",
        "family": "berries", "price_cents": 1290, "tag_uid": "04A1B2C3"}
ORDER = {"customer_id": "C-9", "customer": CUSTOMER, "placed_at": "2026-11-01T06:46:00+08:00",
         "delivered_at": "2026-11-01T12:09:00+00:00", "status": "delivered", "items": [ITEM]}


def put(client: FlaskClient, path: str, body: Any) -> Any:
    return client.put(f"/api/v1/{path}", json=body, headers=AUTH)


def order_with(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(ORDER)
    body.update(changes)
    return body


def item_with(**changes: Any) -> dict[str, Any]:
    return {**ITEM, **changes}


def test_an_order_put_with_its_customer_is_stored_and_a_complaint_finds_it(
        client: FlaskClient, factory: sessionmaker[Session]) -> None:
    response = put(client, "orders/O9-1", ORDER)
    assert response.status_code == 201, response.get_json()
    assert response.get_json() == {"order_id": "O9-1", "outcome": "created",
                                   "customer": "created", "items_added": 1, "items_changed": 0}
    with factory() as session:
        customer = session.get(Customer, "C-9")
        order = session.get(Order, "O9-1")
        item = session.get(Item, "I9-00001-1")
        assert customer is not None and order is not None and item is not None
        assert (customer.name, customer.tier, customer.region) == ("Wang Fang", "gold", "shanghai")
        assert order.customer_id == "C-9" and order.status == "delivered"
        assert order.placed_at.hour == 22  # 06:46 at +08:00 is stored in UTC
        assert (item.order_id, item.tag_uid, item.price_cents) == ("O9-1", "04a1b2c3", 1290)
    # what the order system put is what a complaint about it needs
    response = client.post("/api/v1/intake/app", headers=AUTH, json={
        "message_id": "m-1", "user_id": "C-9", "order_id": "O9-1",
        "item_ids": ["I9-00001-1"], "text": "草莓全烂了，还发霉"})
    assert response.status_code == 201, response.get_json()
    ticket = client.get(f"/api/v1/tickets/{response.get_json()['ticket_id']}",
                        headers=AUTH).get_json()
    assert ticket["context"]["order"]["id"] == "O9-1"
    assert ticket["sla_policy"] == "vip"  # the tier came with the customer


def test_putting_the_same_order_again_changes_nothing(client: FlaskClient) -> None:
    assert put(client, "orders/O9-1", ORDER).status_code == 201
    again = put(client, "orders/O9-1", ORDER)
    assert again.status_code == 200
    assert again.get_json() == {"order_id": "O9-1", "outcome": "unchanged",
                                "customer": "unchanged", "items_added": 0, "items_changed": 0}


def test_an_update_changes_what_may_change_and_keeps_items_left_out(
        client: FlaskClient, factory: sessionmaker[Session]) -> None:
    put(client, "orders/O9-1", order_with(status="dispatched", delivered_at=None))
    second = item_with(item_id="I9-00001-2", product="Bananas 1 kg", family="tropical")
    response = put(client, "orders/O9-1", order_with(
        items=[item_with(product="Strawberries 250 g (promo)", price_cents=990), second]))
    assert response.status_code == 200
    assert response.get_json() == {"order_id": "O9-1", "outcome": "updated",
                                   "customer": "unchanged", "items_added": 1, "items_changed": 1}
    response = put(client, "orders/O9-1", order_with(items=[]))  # items left out stay
    assert response.get_json()["outcome"] == "unchanged"
    response = put(client, "orders/O9-1", order_with(items=[second]))  # as it is
    assert response.get_json()["outcome"] == "unchanged"
    response = put(client, "orders/O9-1", order_with(items=[{**second, "price_cents": 1}]))
    assert (response.get_json()["outcome"], response.get_json()["items_changed"]) == (
        "updated", 1)  # an item's change is the order's
    put(client, "orders/O9-1", order_with(items=[second]))
    with factory() as session:
        order = session.get(Order, "O9-1")
        assert order is not None and order.status == "delivered"
        first = session.get(Item, "I9-00001-1")
        assert first is not None and (first.product, first.price_cents) == (
            "Strawberries 250 g (promo)", 990)
        assert session.get(Item, "I9-00001-2") is not None


def test_a_customer_put_on_its_own_then_an_order_that_names_it(
        client: FlaskClient, factory: sessionmaker[Session]) -> None:
    response = put(client, "customers/C-9", CUSTOMER)
    assert (response.status_code, response.get_json()) == (
        201, {"customer_id": "C-9", "outcome": "created"})
    response = put(client, "customers/C-9", {**CUSTOMER, "tier": "standard", "phone": None})
    assert (response.status_code, response.get_json()["outcome"]) == (200, "updated")
    body = order_with()
    del body["customer"]
    assert put(client, "orders/O9-1", body).get_json()["customer"] is None
    with factory() as session:
        customer = session.get(Customer, "C-9")
        assert customer is not None and (customer.tier, customer.phone) == ("standard", None)


@pytest.mark.parametrize(("path", "body", "status", "says"), [
    ("orders/O9-1", {k: v for k, v in ORDER.items() if k != "customer"}, 404,
     "customer 'C-9' does not exist: put it first"),
    ("orders/O-1", order_with(customer_id="C-1", customer=None, items=[item_with(
        item_id="IT-1")]), 409, "what its tag carries does not change"),
    ("orders/O-1", order_with(), 409, "belongs to customer 'C-1', not 'C-9'"),
    ("orders/O9-1", order_with(items=[item_with(item_id="IT-2")]), 409,
     "item 'IT-2' belongs to order 'O-1', not 'O9-1'"),
    ("orders/O9-1", order_with(items=[item_with(family="mushrooms")]), 422,
     "product family 'mushrooms' is not in the cold-chain configuration; known: berries"),
    ("orders/O9-1", order_with(items=[item_with(gtin="06901234567891")]), 422,
     "not a GTIN: 8, 12, 13 or 14 digits with a correct GS1 check digit"),
    ("orders/O9-1", order_with(items=[item_with(lot="l 1")]), 422, "items.0.lot"),
    ("orders/O9-1", order_with(items=[item_with(price_cents=12.9)]), 422,
     "items.0.price_cents"),
    ("orders/O9-1", order_with(items=[ITEM, ITEM]), 422,
     "item ids listed twice: I9-00001-1"),
    ("orders/O9-1", order_with(delivered_at="2026-10-31T00:00:00+00:00"), 422,
     "delivered_at is before placed_at"),
    ("orders/O9-1", order_with(delivered_at=None), 422, "a delivered order needs delivered_at"),
    ("orders/O9-1", order_with(status="lost"), 422, "status"),
    ("orders/O9-1", order_with(placed_at="2026-11-01T06:46:00"), 422, "placed_at"),
    ("orders/O9-1", order_with(items=[ITEM] * 201), 422, "items: "),
    ("orders/O9-1", order_with(owner="x"), 422, "owner"),
    ("orders/O%209", ORDER, 422, "order id 'O 9'"),
    ("orders/" + "O" * 33, ORDER, 422, "1 to 32 letters"),
    ("customers/C-9", {**CUSTOMER, "tier": "Gold"}, 422, "tier"),
    ("customers/C-9", {**CUSTOMER, "name": ""}, 422, "name"),
    ("customers/C-9", {**CUSTOMER, "phone": "call me"}, 422, "phone"),
    ("customers/C-9", ["not", "an", "object"], 400, "must be a JSON object"),
])
def test_bad_puts_are_refused_naming_what_is_wrong_and_write_nothing(
        client: FlaskClient, factory: sessionmaker[Session], path: str, body: Any,
        status: int, says: str) -> None:
    response = put(client, path, body)
    assert response.status_code == status, response.get_json()
    assert says in error_of(response)
    with factory() as session:  # nothing half-written: no customer, order or item of C-9
        assert session.get(Customer, "C-9") is None
        assert session.get(Order, "O9-1") is None
        assert session.get(Item, "I9-00001-1") is None
        item = session.get(Item, "IT-1")
        assert item is not None and item.gtin == "06901234567892"


def test_puts_need_the_api_token(client: FlaskClient) -> None:
    assert client.put("/api/v1/orders/O9-1", json=ORDER).status_code == 401
    assert client.put("/api/v1/customers/C-9", json=CUSTOMER).status_code == 401


def test_concurrent_puts_of_one_new_order_store_it_once(factory: sessionmaker[Session]) -> None:
    record = orders.OrderRecord.model_validate(ORDER)

    def put_it(session: Session) -> str:
        return orders.put_order(session, "O9-1", record, FAMILIES).put.outcome

    # The second put waits for the first (SQLite's write lock; on PostgreSQL it collides on
    # the new rows' keys and updates the rows the first one committed).
    assert run_while_holding(factory, put_it, put_it) == "unchanged"
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Customer)
                              .where(Customer.id == "C-9")) == 1
        assert session.scalar(select(func.count()).select_from(Item)
                              .where(Item.order_id == "O9-1")) == 1


def test_an_items_tag_uid_may_be_left_out_but_not_changed(
        client: FlaskClient, factory: sessionmaker[Session]) -> None:
    put(client, "orders/O9-1", ORDER)
    without_uid = {k: v for k, v in ITEM.items() if k != "tag_uid"}
    response = put(client, "orders/O9-1", order_with(items=[without_uid]))
    assert (response.status_code, response.get_json()["outcome"]) == (200, "unchanged")
    with factory() as session:
        item = session.get(Item, "I9-00001-1")
        assert item is not None and item.tag_uid == "04a1b2c3"  # kept

    response = put(client, "orders/O9-1", order_with(items=[item_with(tag_uid="04a1b2c4")]))
    assert response.status_code == 409
    assert "tag_uid '04a1b2c3' (sent '04a1b2c4')" in error_of(response)
    response = put(client, "orders/O9-1", order_with(items=[item_with(
        packed_at="2026-10-31T00:49:00+01:00")]))  # the same instant: no change
    assert response.get_json()["outcome"] == "unchanged"
    response = put(client, "orders/O9-1", order_with(items=[item_with(
        packed_at="2026-10-31T00:00:00+00:00")]))
    assert response.status_code == 409
    assert ("packed_at '2026-10-30T23:49:00+00:00' (sent '2026-10-31T00:00:00+00:00')"
            in error_of(response))
