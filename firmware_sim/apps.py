"""The phones and systems in the loop: the shop's order system putting orders, a customer's
app filing a complaint, a driver's app collecting it, partners and agents.

They talk to the hub's JSON API over real HTTP, as the devices do.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from firmware_sim.scenario import ScenarioOrder


class ApiError(Exception):
    """The hub answered with an error; the message is the hub's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass(frozen=True)
class ApiClient:
    """A minimal JSON client of the hub API."""

    base_url: str
    token: str
    timeout_s: float = 10.0

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body and return the JSON answer; raise ApiError on 4xx/5xx."""
        return self._send("POST", path, json.dumps(body).encode())

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT a JSON body and return the JSON answer; raise ApiError on 4xx/5xx."""
        return self._send("PUT", path, json.dumps(body).encode())

    def get(self, path: str) -> dict[str, Any]:
        """GET a JSON document."""
        return self._send("GET", path, None)

    def _send(self, method: str, path: str, data: bytes | None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.base_url.rstrip('/')}/api/v1{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as err:
            body = err.read().decode(errors="replace")
            try:
                message = json.loads(body).get("error", body)
            except ValueError:
                message = body
            raise ApiError(err.code, str(message)) from None


def order_body(order: ScenarioOrder) -> dict[str, Any]:
    """The order as the shop's order system puts it to the hub (``PUT /orders/<id>``)."""
    return {
        "customer_id": order.customer_id,
        "customer": {"name": order.customer_name, "phone": order.customer_phone,
                     "tier": order.tier, "region": "shanghai"},
        "placed_at": order.placed_at.isoformat(), "delivered_at": order.delivered_at.isoformat(),
        "status": "delivered",
        "items": [{"item_id": item.item_id, "gtin": item.product.gtin, "lot": item.lot,
                   "packed_at": item.packed_at.isoformat(), "product": item.product.name,
                   "family": item.product.family, "price_cents": item.product.price_cents,
                   "tag_uid": item.tag_uid} for item in order.items]}


@dataclass(frozen=True)
class OrderSystem:
    """The shop's order system: puts each order, with its customer and items, to the hub."""

    api: ApiClient

    def put(self, order: ScenarioOrder) -> dict[str, Any]:
        """Put one order; a repeat changes nothing."""
        return self.api.put(f"/orders/{order.order_id}", order_body(order))


@dataclass(frozen=True)
class CustomerApp:
    """A customer's app: files a complaint about one item of an order, answers the survey."""

    api: ApiClient

    def complain(self, order_id: str, item_id: str, channel: str, text: str) -> dict[str, Any]:
        """File a complaint; the answer carries the ticket id and the pickup code."""
        return self.api.post("/tickets", {"order_id": order_id, "item_id": item_id,
                                          "channel": channel, "text": text})


    def answer_survey(self, ticket_id: int, score: int, comment: str,
                      recommend: int | None = None) -> dict[str, Any]:
        """Answer the satisfaction survey the hub sent when the ticket was resolved."""
        detail = self.api.get(f"/tickets/{ticket_id}")
        links = [m["text"] for m in detail["messages"] if m["author"] == "survey"]
        found = re.search(r"/survey/(\S+)", links[-1]) if links else None
        if found is None:
            raise ApiError(404, f"ticket {ticket_id} has no survey link")
        answer: dict[str, Any] = {"score": score, "comment": comment}
        if recommend is not None:
            answer["recommend"] = recommend
        return self.api.post(f"/surveys/{found[1]}", answer)


@dataclass(frozen=True)
class DriverApp:
    """A driver's app: proves collection of a return by the customer's pickup code."""

    api: ApiClient
    driver: str

    def collect(self, code: str, location: str) -> dict[str, Any]:
        """Post a pickup code typed by the driver."""
        return self.api.post("/pickups/collect", {"code": code, "driver": self.driver,
                                                  "location": location})

    def upload_truck_log(self, truck_id: str, upload_id: str,
                         readings: list[tuple[datetime, float | None]],
                         compartment: str = "main") -> dict[str, Any]:
        """Upload the reefer truck's temperature log (safe to retry with the same upload id)."""
        return self.api.post(f"/trucks/{truck_id}/temperature-log", {
            "upload_id": upload_id,
            "readings": [{"compartment": compartment, "ts": ts.isoformat(), "temp_c": temp}
                         for ts, temp in readings]})


@dataclass(frozen=True)
class PartnerSystem:
    """A supplier's, warehouse's or carrier's system sending the hub EPCIS 2.0 documents."""

    api: ApiClient
    name: str

    def send(self, document: dict[str, Any]) -> dict[str, Any]:
        """Post one EPCIS document; the answer says how many events were new to the ledger."""
        return self.api.post(f"/trace/import?name={self.name}", document)


@dataclass(frozen=True)
class AgentDesk:
    """A support agent's desk: signs on, contacts the customers of new tickets assigned to
    them and confirms each (new -> confirming), and refunds returns once graded, through the
    hub API."""

    api: ApiClient
    agent_id: str

    def sign_on(self, name: str, languages: list[str]) -> dict[str, Any]:
        """Register the agent (every category) and start a shift, online."""
        try:
            self.api.post(f"/agents/{self.agent_id}", {"name": name, "languages": languages,
                                                       "capacity": 20})
        except ApiError as err:
            if err.status != 409:  # registered by an earlier run on this data dir
                raise
        return self.api.post(f"/agents/{self.agent_id}/shift",
                             {"on_shift": True, "online": True})

    def work(self) -> int:
        """Contact and confirm every new ticket assigned to this agent; return how many."""
        listed = self.api.get(f"/tickets?status=new&assignee={self.agent_id}")
        for ticket in listed["tickets"]:
            self.api.post(f"/tickets/{ticket['id']}/messages", {
                "author": self.agent_id, "kind": "message",
                "text": "We are sorry about your order. A driver will collect the item; "
                        "we will tell you what we can offer."})
            self.api.post(f"/tickets/{ticket['id']}/transitions", {
                "to": "confirming", "actor": self.agent_id, "reason": "customer contacted"})
        return len(listed["tickets"])

    def resolve_graded(self) -> list[int]:
        """Refund every confirming ticket of this agent whose returned item was graded at the
        sorting center; return the tickets resolved."""
        listed = self.api.get(f"/tickets?status=confirming&assignee={self.agent_id}")
        resolved = []
        for ticket in listed["tickets"]:
            order = self.api.get(f"/orders/{ticket['order_id']}")
            if not any(item["latest_grade"] for item in order["items"]):
                continue  # the return has not reached the sorting center yet
            path = f"/tickets/{ticket['id']}/transitions"
            self.api.post(path, {"to": "handling", "actor": self.agent_id,
                                 "handling": "simple", "reason": "return graded"})
            self.api.post(path, {"to": "resolved", "actor": self.agent_id,
                                 "resolution": "refund", "reason": "refunded the item"})
            resolved.append(ticket["id"])
        return resolved
