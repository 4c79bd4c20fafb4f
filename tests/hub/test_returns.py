"""hub.returns against a real database: complaint -> ticket + pickup code -> driver collects."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub import returns
from hub.errors import Conflict, HubError, InvalidInput, NotFound
from hub.models import CustodyRecord, Item, Order, Pickup, Ticket
from hub.queries import as_utc
from protocols import pickup_code
from tests.hub.conftest import T0


@pytest.fixture
def factory(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """The shared seed plus a second order O-2 of the same customer, with item IT-3."""
    with factory.begin() as session:
        session.add(Order(id="O-2", customer_id="C-1", placed_at=T0 - timedelta(days=5),
                          delivered_at=T0 - timedelta(days=4)))
        session.flush()
        session.add(Item(id="IT-3", order_id="O-2", gtin="06901234567892", lot="L2611",
                         product="Blueberries 125 g", family="berries",
                         packed_at=T0 - timedelta(days=3)))
    return factory


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session over the seeded database, committed by the test when it needs to."""
    with factory() as session:
        yield session


def complain(session: Session, item_id: str = "IT-1", *, order_id: str = "O-1",
             channel: str = "app", text: str = "The strawberries are mouldy.",
             now: datetime = T0, seed: int = 7) -> tuple[Ticket, Pickup]:
    """Open a return with test defaults."""
    return returns.open_return(session, order_id=order_id, item_id=item_id, channel=channel,
                               text=text, now=now, rng=random.Random(seed))


def count(session: Session, model: type[object]) -> int:
    """Count the rows of a table."""
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- open_return ---------------------------------------------------------------------------


def test_open_return_creates_ticket_and_pickup_with_valid_code(session: Session) -> None:
    ticket, pickup = complain(session)
    session.commit()

    assert (ticket.order_id, ticket.customer_id, ticket.channel) == ("O-1", "C-1", "app")
    assert ticket.status == "new"
    assert ticket.text == "The strawberries are mouldy."
    assert (pickup.item_id, pickup.ticket_id, pickup.status) == ("IT-1", ticket.id, "issued")
    assert pickup_code.validate(pickup.code) == pickup.code
    assert pickup.code[4] == "-"


def test_second_complaint_about_the_order_attaches_to_the_open_ticket(session: Session) -> None:
    first, _ = complain(session, text="Mouldy strawberries.")
    second, _ = complain(session, "IT-2", channel="hotline", text="Spinach is slimy too.",
                         now=T0 + timedelta(hours=1))
    session.commit()

    assert second.id == first.id
    assert count(session, Ticket) == 1
    assert second.text.startswith("Mouldy strawberries.")
    assert "--- 2026-11-20T10:30:00+00:00 via hotline ---\nSpinach is slimy too." in second.text


def test_second_complaint_about_the_item_reuses_its_pickup(session: Session) -> None:
    _, first = complain(session, seed=1)
    _, second = complain(session, seed=2, text="Still waiting for the driver.")
    session.commit()

    assert second.id == first.id
    assert second.code == first.code
    assert count(session, Pickup) == 1


def test_each_item_gets_its_own_pickup_on_the_same_ticket(session: Session) -> None:
    ticket_1, pickup_1 = complain(session, "IT-1", seed=1)
    ticket_2, pickup_2 = complain(session, "IT-2", seed=2)

    assert ticket_1.id == ticket_2.id
    assert pickup_1.id != pickup_2.id
    assert pickup_2.ticket_id == ticket_1.id


def test_a_resolved_ticket_is_not_reopened(session: Session) -> None:
    old, _ = complain(session)
    old.status = "resolved"
    new, _ = complain(session, "IT-2", text="Spinach is slimy.")

    assert new.id != old.id
    assert new.text == "Spinach is slimy."


def test_a_code_collision_draws_another_code(session: Session) -> None:
    _, first = complain(session, "IT-1", seed=42)
    _, second = complain(session, "IT-2", seed=42)  # same rng: the first draw collides

    assert first.code != second.code
    assert pickup_code.validate(second.code) == second.code


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"order_id": "O-404"}, NotFound, "order 'O-404' does not exist"),
        ({"item_id": "IT-404"}, NotFound, "item 'IT-404' does not exist"),
        ({"item_id": "IT-3"}, InvalidInput, "item 'IT-3' is not part of order 'O-1'"),
        ({"channel": "fax"}, InvalidInput, "channel 'fax' is not one of app, hotline"),
        ({"text": "   "}, InvalidInput, "text must be a non-empty string"),
        ({"text": "x" * 4001}, InvalidInput, "text is 4001 characters long"),
        ({"order_id": ""}, InvalidInput, "order_id must be a non-empty string"),
    ],
    ids=["unknown-order", "unknown-item", "item-of-other-order", "bad-channel", "blank-text",
         "long-text", "empty-order-id"],
)
def test_open_return_rejects_bad_input(session: Session, kwargs: dict[str, str],
                                       error: type[HubError], message: str) -> None:
    args = {"order_id": "O-1", "item_id": "IT-1", "channel": "app", "text": "Mouldy."} | kwargs
    with pytest.raises(error, match=message.replace("(", r"\(")):
        returns.open_return(session, order_id=args["order_id"], item_id=args["item_id"],
                            channel=args["channel"], text=args["text"], now=T0,
                            rng=random.Random(1))
    assert count(session, Ticket) == 0


def test_no_new_pickup_for_an_item_already_collected(session: Session) -> None:
    _, pickup = complain(session)
    returns.collect(session, code=pickup.code, driver="driver-7", location="Minhang", now=T0)

    with pytest.raises(Conflict, match=f"already collected with pickup code {pickup.code}"):
        complain(session, text="Where is my refund?")


# --- collect -------------------------------------------------------------------------------


def test_collect_marks_the_pickup_collected_and_records_custody(session: Session) -> None:
    _, pickup = complain(session)
    later = T0 + timedelta(hours=3)

    record = returns.collect(session, code=pickup.code, driver="driver-7",
                             location="Minhang depot", now=later)
    session.commit()

    assert record.message_id == f"driver:{pickup.id}"
    assert (record.item_id, record.action, record.actor, record.location) == (
        "IT-1", "picked_up", "driver-7", "Minhang depot")
    assert record.pickup_code == pickup.code
    assert (pickup.status, pickup.driver) == ("collected", "driver-7")
    assert pickup.collected_at == later


def test_collect_twice_returns_the_first_record(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        _, pickup = complain(session)
        code = pickup.code
    with factory.begin() as session:
        first = returns.collect(session, code=code, driver="driver-7", location="Minhang",
                                now=T0 + timedelta(hours=1))
        first_ts = first.ts
    with factory.begin() as session:  # the driver's app retried from elsewhere, later
        again = returns.collect(session, code=code, driver="driver-7", location="Xuhui",
                                now=T0 + timedelta(hours=2))
        assert again.message_id == first.message_id
        assert again.location == "Minhang"
        assert as_utc(again.ts) == as_utc(first_ts)  # SQLite hands back naive UTC
        assert count(session, CustodyRecord) == 1


@pytest.mark.parametrize("typed", ["{code}", "{lower}", "{bare}", " {code} ", "{spaced}"])
def test_collect_accepts_the_ways_a_driver_types_a_code(session: Session, typed: str) -> None:
    _, pickup = complain(session)
    code = pickup.code
    text = typed.format(code=code, lower=code.lower(), bare=code.replace("-", ""),
                        spaced=code.replace("-", " "))

    record = returns.collect(session, code=text, driver="driver-7", location="Minhang", now=T0)

    assert record.pickup_code == code


def test_collect_rejects_a_typo_with_the_check_message(session: Session) -> None:
    _, pickup = complain(session)
    code = pickup.code
    wrong = pickup_code.ALPHABET[(pickup_code.ALPHABET.index(code[0]) + 1) % 31]
    typo = wrong + code[1:]

    with pytest.raises(InvalidInput, match="check failed: a character is mistyped"):
        returns.collect(session, code=typo, driver="driver-7", location="Minhang", now=T0)
    assert pickup.status == "issued"


def test_collect_rejects_swapped_characters(session: Session) -> None:
    _, pickup = complain(session, seed=3)
    bare = pickup.code.replace("-", "")
    i = next(i for i in range(len(bare) - 1) if bare[i] != bare[i + 1])
    swapped = bare[:i] + bare[i + 1] + bare[i] + bare[i + 2:]

    with pytest.raises(InvalidInput, match="check failed"):
        returns.collect(session, code=swapped, driver="driver-7", location="Minhang", now=T0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"code": "7K3M"}, InvalidInput, "wrong length"),
        ({"code": "UUUU-UUUU"}, InvalidInput, "U and V are not used"),
        ({"code": 12345678}, InvalidInput, "code must be a string"),
        ({"code": pickup_code.make_code(123)}, NotFound, "was never issued"),
        ({"driver": " "}, InvalidInput, "driver must be a non-empty string"),
        ({"location": "x" * 65}, InvalidInput, "location is 65 characters long"),
    ],
    ids=["short", "bad-letters", "not-a-string", "never-issued", "blank-driver", "long-location"],
)
def test_collect_rejects_bad_input(session: Session, kwargs: dict[str, object],
                                   error: type[HubError], message: str) -> None:
    _, pickup = complain(session)
    args: dict[str, object] = {"code": pickup.code, "driver": "driver-7",
                               "location": "Minhang"} | kwargs
    with pytest.raises(error, match=message):
        returns.collect(session, now=T0, **args)  # type: ignore[arg-type]
    assert count(session, CustodyRecord) == 0


def test_collect_by_another_driver_is_a_conflict(session: Session) -> None:
    _, pickup = complain(session)
    returns.collect(session, code=pickup.code, driver="driver-7", location="Minhang", now=T0)

    with pytest.raises(Conflict, match="already collected by driver-7"):
        returns.collect(session, code=pickup.code, driver="driver-9", location="Minhang",
                        now=T0)


# --- concurrent requests -------------------------------------------------------------------


def run_while_holding(factory: sessionmaker[Session], first: Callable[[Session], object],
                      second: Callable[[Session], object]) -> object:
    """Run ``second`` in a thread while ``first``'s transaction is open; return its result."""
    results: list[object] = []
    with factory() as holder:
        first(holder)
        holder.flush()

        def other() -> None:
            with factory.begin() as session:
                results.append(second(session))

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=0.5)  # gives the other request time to race, if it could
        holder.commit()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return results[0]


def test_concurrent_complaints_about_one_order_share_a_ticket(
        factory: sessionmaker[Session]) -> None:
    opened: list[Ticket] = []

    second = run_while_holding(
        factory, lambda s: opened.append(complain(s, "IT-1", seed=1)[0]),
        lambda s: complain(s, "IT-2", channel="hotline", text="Spinach too.", seed=2)[0].id)

    assert second == opened[0].id
    with factory() as session:
        assert count(session, Ticket) == 1


def test_concurrent_collects_of_one_code_write_one_record(
        factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        code = complain(session)[1].code

    def collect(session: Session) -> str:
        return returns.collect(session, code=code, driver="driver-7", location="Minhang",
                               now=T0).message_id

    assert run_while_holding(factory, collect, collect) == collect_id(factory, code)
    with factory() as session:
        assert count(session, CustodyRecord) == 1


def collect_id(factory: sessionmaker[Session], code: str) -> str:
    """Return the custody message id the pickup with ``code`` is recorded under."""
    with factory() as session:
        pickup = session.scalars(select(Pickup).where(Pickup.code == code)).one()
        return returns.custody_message_id(pickup)
