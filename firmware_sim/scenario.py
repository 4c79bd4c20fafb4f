"""Seeded, reproducible after-sales scenarios: customers, orders, tagged items and complaints."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from protocols.tag import TagRecord, gtin_check_digit

EPOCH = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # a Monday morning shift


@dataclass(frozen=True)
class Product:
    """A product the shop sells, with its family and price."""

    name: str
    family: str
    gtin: str
    price_cents: int
    high_risk: bool = False


def _gtin(body12: str) -> str:
    body13 = "0" + body12
    return body13 + str(gtin_check_digit(body13))


PRODUCTS = (
    Product("Strawberries 250 g", "berries", _gtin("690123400011"), 2590, high_risk=True),
    Product("Crisphead lettuce", "leafy", _gtin("690123400028"), 690, high_risk=True),
    Product("Baby spinach 200 g", "leafy", _gtin("690123400035"), 1290, high_risk=True),
    Product("Bananas 1 kg", "tropical", _gtin("690123400042"), 990),
    Product("Vine tomatoes 500 g", "fruit_veg", _gtin("690123400059"), 1490),
    Product("Chilled chicken breast 400 g", "poultry", _gtin("690123400066"), 3290,
            high_risk=True),
)

COMPLAINTS = {
    "spoiled": ["草莓到手就发霉了，烂了一半", "The strawberries arrived mouldy and smelly",
                "菜叶都蔫了，一点都不新鲜"],
    "damaged": ["包装破了，番茄都压烂了", "Box was crushed and the tomatoes leaked"],
    "temperature": ["鸡胸肉送到的时候是温的，冰袋都化了", "Chicken arrived warm, ice packs melted"],
}
CHANNELS = ("app", "mini_program", "hotline", "social")


@dataclass(frozen=True)
class ScenarioItem:
    """One tagged unit in an order."""

    item_id: str
    tag_uid: str
    product: Product
    lot: str
    packed_at: datetime

    @property
    def tag(self) -> TagRecord:
        """The record written on the item's RFID tag."""
        return TagRecord(self.item_id, self.lot, self.product.gtin, self.packed_at,
                         self.product.high_risk)


@dataclass(frozen=True)
class ScenarioOrder:
    """An order delivered to a customer."""

    order_id: str
    customer_id: str
    customer_name: str
    tier: str
    placed_at: datetime
    delivered_at: datetime
    items: tuple[ScenarioItem, ...]


@dataclass(frozen=True)
class Complaint:
    """A customer's complaint about one item, and how the returned item will measure."""

    order: ScenarioOrder
    item: ScenarioItem
    channel: str
    text: str
    at: datetime
    core_temp_c: float  # what the probe will read when the item is scanned


@dataclass(frozen=True)
class Scenario:
    """A reproducible day at the sorting center."""

    seed: int
    orders: tuple[ScenarioOrder, ...]
    complaints: tuple[Complaint, ...]


def generate(seed: int, minutes: int, returns_per_hour: float = 30.0) -> Scenario:
    """Generate a scenario: orders delivered before the shift, complaints spread over it."""
    if minutes < 1:
        raise ValueError(f"minutes must be at least 1, got {minutes}")
    rng = random.Random(seed)
    n_returns = max(1, round(minutes * returns_per_hour / 60.0))
    n_orders = max(n_returns, n_returns * 2)
    orders = tuple(_order(rng, i) for i in range(n_orders))
    picked = rng.sample(orders, n_returns)
    complaints = []
    for k, order in enumerate(sorted(picked, key=lambda o: o.order_id)):
        item = rng.choice(order.items)
        category = rng.choice(sorted(COMPLAINTS))
        at = EPOCH + timedelta(minutes=minutes * (k + rng.random()) / n_returns)
        temp = {"temperature": rng.uniform(7.0, 14.0), "spoiled": rng.uniform(3.0, 9.0),
                "damaged": rng.uniform(0.5, 4.5)}[category]
        complaints.append(Complaint(order, item, rng.choice(CHANNELS),
                                    rng.choice(COMPLAINTS[category]), at, round(temp, 2)))
    return Scenario(seed, orders, tuple(sorted(complaints, key=lambda c: c.at)))


def _order(rng: random.Random, index: int) -> ScenarioOrder:
    placed = EPOCH - timedelta(hours=rng.uniform(20, 44))
    delivered = placed + timedelta(hours=rng.uniform(2, 6))
    order_id = f"O{index + 1:06d}"
    items = []
    for j in range(rng.randint(1, 4)):
        product = rng.choice(PRODUCTS)
        packed = placed - timedelta(hours=rng.uniform(4, 30))
        items.append(ScenarioItem(
            item_id=f"IT-{index + 1:06d}-{j + 1}",
            tag_uid=f"{rng.getrandbits(32):08x}",
            product=product,
            lot=f"L{packed:%y%m%d}-{rng.randint(1, 9)}",
            packed_at=packed.replace(microsecond=0),
        ))
    customer = rng.randint(1, 400)
    return ScenarioOrder(order_id, f"C{customer:05d}", f"Customer {customer}",
                         rng.choice(("standard", "standard", "silver", "gold")),
                         placed.replace(microsecond=0), delivered.replace(microsecond=0),
                         tuple(items))
