"""Seeded, reproducible after-sales scenarios: customers, orders, tagged items and complaints."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from firmware_sim.coldchain import ColdChainHistory, generate_history
from protocols.tag import TagRecord, gtin_check_digit

EPOCH = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # a Monday morning shift


@dataclass(frozen=True)
class Product:
    """A product the shop sells, with its family and price."""

    name: str
    name_zh: str
    family: str
    gtin: str
    price_cents: int
    high_risk: bool = False


def _gtin(body12: str) -> str:
    body13 = "0" + body12
    return body13 + str(gtin_check_digit(body13))


PRODUCTS = (
    Product("Strawberries 250 g", "草莓", "berries", _gtin("690123400011"), 2590, high_risk=True),
    Product("Crisphead lettuce", "生菜", "leafy", _gtin("690123400028"), 690, high_risk=True),
    Product("Baby spinach 200 g", "菠菜", "leafy", _gtin("690123400035"), 1290, high_risk=True),
    Product("Bananas 1 kg", "香蕉", "tropical", _gtin("690123400042"), 990),
    Product("Vine tomatoes 500 g", "番茄", "fruit_veg", _gtin("690123400059"), 1490),
    Product("Chilled chicken breast 400 g", "冰鲜鸡胸肉", "poultry", _gtin("690123400066"), 3290,
            high_risk=True),
)

# {zh} / {en}: the product's Chinese and English names.
COMPLAINTS = {
    "spoiled": ["{zh}到手就发霉了，烂了一半", "The {en} arrived mouldy and smelly",
                "{zh}一点都不新鲜，有股怪味"],
    "damaged": ["包装破了，{zh}都压烂了", "Box was crushed and the {en} leaked"],
    "temperature": ["{zh}送到的时候是温的，冰袋都化了", "The {en} arrived warm, ice packs melted"],
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

    @property
    def customer_phone(self) -> str:
        """The customer's mobile, as the order system writes it: made up from the customer
        number, so each customer has one of their own."""
        return f"+86 139 2026 {int(self.customer_id.removeprefix('C')):04d}"


@dataclass(frozen=True)
class Complaint:
    """A customer's complaint about one item, and how the returned item will measure."""

    order: ScenarioOrder
    item: ScenarioItem
    channel: str
    text: str
    at: datetime
    core_temp_c: float  # what the probe will read when the item is scanned
    station: str  # where the returned item will be scanned
    history: ColdChainHistory  # the item's cold chain up to the complaint


@dataclass(frozen=True)
class Scenario:
    """A reproducible day at the sorting center."""

    seed: int
    orders: tuple[ScenarioOrder, ...]
    complaints: tuple[Complaint, ...]
    stations: tuple[str, ...] = ("st-1",)
    probes: tuple[str, ...] = ("st-1-core",)  # one core probe per station, then ambient ones


# Which cold-chain faults can lie behind each kind of complaint.
FAULTS_BEHIND = {
    "spoiled": ("none", "supplier_warm", "warehouse_door"),
    "damaged": ("none",),
    "temperature": ("truck_reefer", "customer_doorstep"),
}


def generate(seed: int, minutes: int, returns_per_hour: float = 30.0, day: int = 1,
             stations: int = 1, ambient_probes: int = 0) -> Scenario:
    """Generate a scenario: orders delivered before the shift, complaints spread over it.

    ``day`` numbers the shift: day N starts N-1 days after EPOCH and its ids carry N, so
    several days can live in one hub. Returns are spread over ``stations`` scan stations;
    each has a core probe, and ``ambient_probes`` more probes watch the rooms.
    """
    if stations < 1 or ambient_probes < 0:
        raise ValueError("a sorting center needs at least one station and no negative probes")
    if minutes < 1:
        raise ValueError(f"minutes must be at least 1, got {minutes}")
    if not 1 <= day <= 99:
        raise ValueError(f"day must be 1..99, got {day}")
    rng = random.Random(seed)
    start = shift_start(day)
    n_returns = max(1, round(minutes * returns_per_hour / 60.0))
    n_orders = max(n_returns, n_returns * 2)
    orders = tuple(_order(rng, i, day) for i in range(n_orders))
    picked = rng.sample(orders, n_returns)
    complaints = []
    for k, order in enumerate(sorted(picked, key=lambda o: o.order_id)):
        item = rng.choice(order.items)
        category = rng.choice(sorted(COMPLAINTS))
        at = start + timedelta(minutes=minutes * (k + rng.random()) / n_returns)
        temp = {"temperature": rng.uniform(7.0, 14.0), "spoiled": rng.uniform(3.0, 9.0),
                "damaged": rng.uniform(0.5, 4.5)}[category]
        station = f"st-{rng.randrange(stations) + 1}"
        history = generate_history(rng, item.product.family, item.packed_at,
                                   order.delivered_at, rng.choice(FAULTS_BEHIND[category]))
        english = re.sub(r" \d+ k?g$", "", item.product.name).lower()
        text = rng.choice(COMPLAINTS[category]).format(zh=item.product.name_zh, en=english)
        complaints.append(Complaint(order, item, rng.choice(CHANNELS), text, at,
                                    round(temp, 2), station, history))
    names = tuple(f"st-{i + 1}" for i in range(stations))
    probes = tuple(f"{s}-core" for s in names) + tuple(
        f"room-{i + 1}" for i in range(ambient_probes))
    return Scenario(seed, orders, tuple(sorted(complaints, key=lambda c: c.at)), names, probes)


def shift_start(day: int) -> datetime:
    """When the shift of ``day`` starts."""
    return EPOCH + timedelta(days=day - 1)


def _nuid(rng: random.Random) -> str:
    """A random 4-byte NUID, never starting with 0x88 (the cascade tag of longer UIDs)."""
    uid = rng.getrandbits(32)
    if uid >> 24 == 0x88:
        uid ^= 1 << 24  # 0x89...: still one draw, so a seed's later values do not move
    return f"{uid:08x}"


def _order(rng: random.Random, index: int, day: int) -> ScenarioOrder:
    placed = shift_start(day) - timedelta(hours=rng.uniform(20, 44))
    delivered = placed + timedelta(hours=rng.uniform(2, 6))
    order_id = f"O{day:02d}-{index + 1:05d}"
    items = []
    for j in range(rng.randint(1, 4)):
        product = rng.choice(PRODUCTS)
        packed = placed - timedelta(hours=rng.uniform(4, 30))
        items.append(ScenarioItem(
            item_id=f"I{day:02d}-{index + 1:05d}-{j + 1}",
            tag_uid=_nuid(rng),
            product=product,
            lot=f"L{packed:%y%m%d}-{rng.randint(1, 9)}",
            packed_at=packed.replace(microsecond=0),
        ))
    customer = rng.randint(1, 400)
    return ScenarioOrder(order_id, f"C{customer:05d}", f"Customer {customer}",
                         rng.choice(("standard", "standard", "silver", "gold")),
                         placed.replace(microsecond=0), delivered.replace(microsecond=0),
                         tuple(items))
