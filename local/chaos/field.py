"""Offline field sales in the chaos run: the vendedor's simulated device (local/field_device.py)
works several offline sessions of Avícola Don Pepe (the demo's field business) while the webhook
senders run, each ending in a sync through a flaky network; then what the device holds is
compared with what the server answers to a pull."""

import logging
import random
import threading
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests

from local.field_device import CENT, Fault, FlakyNetwork, SimulatedDevice
from local.stack import LocalStack
from pos_gateway.field.loyalty_feed import sale_event_id

logger = logging.getLogger("local.chaos.field")
MEMBER_PHONE = "987 654 321"  # how sellers type the member's mobile (+51987654321)
FAULTS = [Fault.REFUSE, Fault.LOSE_RESPONSE, Fault.UNAVAILABLE, Fault.BAD_GATEWAY_AFTER]


@dataclass
class FieldOutcome:
    """What the field device did and ended with (the run's record takes the ids from here)."""

    tenant_id: uuid.UUID
    pushed: set[str] = field(default_factory=set)  # opIds queued and pushed at least once
    synced: set[str] = field(default_factory=set)  # opIds the device holds as synced
    unsynced: int = 0  # operations still queued + records not synced, after the last sync
    injected: int = 0  # network faults the flaky hop injected
    sessions: int = 0
    replayed: int = 0
    stock_before: Decimal = Decimal(0)
    errors: list[str] = field(default_factory=list)
    member_sales: dict[str, Decimal] = field(default_factory=dict)  # sale id -> total
    sale_events: set[str] = field(default_factory=set)  # raw event ids of sales with a customer
    mismatches: list[str] = field(default_factory=list)


class FieldSeller(threading.Thread):
    """The vendedor's device: ``sessions`` offline sessions, each synced through a FlakyNetwork
    whose plan (a few faults, deterministic from the seed) it meets in turn."""

    def __init__(
        self, stack: LocalStack, seed: int, sessions: int, sales_per_session: int, pause: float
    ) -> None:
        super().__init__(name="chaos-field-seller", daemon=True)
        if stack.demo is None:
            raise RuntimeError("the field device needs the demo data")
        self.stack, self.demo = stack, stack.demo.field
        self.sessions, self.sales_per_session, self.pause = sessions, sales_per_session, pause
        self.stopping = threading.Event()
        self.rng = random.Random(seed * 31 + 4)
        self.device = SimulatedDevice(stack.api_url, self.demo.seller_credential, self.demo.products)
        self.outcome = FieldOutcome(self.demo.tenant_id, stock_before=self._stock())
        self.customers: list[uuid.UUID] = []
        self.members: set[uuid.UUID] = set()

    def run(self) -> None:
        for number in range(self.sessions):
            if number and self.stopping.wait(self.pause * self.rng.uniform(0.5, 1.5)):
                break  # the run stopped waiting for this device: its remaining sessions are skipped
            self._offline_session(number)
            plan = self._plan()
            try:
                with FlakyNetwork(self.stack.api_url, plan) as network:
                    self.device.api_url = network.base_url
                    try:
                        self.device.sync(self.device.session())
                    finally:
                        self.outcome.injected += len(network.injected)
            except Exception as exc:  # the next session (or the final sync) pushes it again
                logger.warning("field session %s did not sync", number, exc_info=True)
                self.outcome.errors.append(f"session {number}: {type(exc).__name__}: {exc}")
            self.outcome.sessions += 1

    def settle(self) -> None:
        """Before the drain: sync whatever a failed session left, straight to the API."""
        device = self.device
        device.api_url = self.stack.api_url
        if not device.queue:
            return
        try:
            device.sync(device.session())
        except requests.RequestException as exc:
            self.outcome.errors.append(f"final sync: {type(exc).__name__}: {exc}")

    def finish(self) -> FieldOutcome:
        """After the drain (nothing running: the pull's horizon has passed every push): pull
        everything new, then compare the device's records with the server's."""
        device, outcome = self.device, self.outcome
        device.api_url = self.stack.api_url
        try:
            device.pull(device.session())
        except requests.RequestException as exc:
            outcome.errors.append(f"final pull: {type(exc).__name__}: {exc}")
        queued = {str(op.op_id) for op in device.queue}
        outcome.synced = outcome.pushed - queued
        outcome.unsynced = len(device.queue) + sum(
            1 for r in device.records.values() if r.sync_status != "synced"
        )
        outcome.replayed = device.replayed
        for record_id, record in device.records.items():
            if record.collection != "sales" or "clientId" not in record.data:
                continue
            outcome.sale_events.add(sale_event_id(self.demo.tenant_id, record_id))
            if uuid.UUID(record.data["clientId"]) in self.members:
                outcome.member_sales[str(record_id)] = Decimal(record.data["totalAmount"])
        outcome.mismatches = compare(device, self.demo.products["pollo"], outcome.stock_before)
        return outcome

    # -- offline work ------------------------------------------------------------------------
    def _offline_session(self, number: int) -> None:
        rng, device = self.rng, self.device
        for n in range(rng.randint(1, 3)):
            if rng.random() < 0.4:
                customer = device.add_customer(f"Socia {number}.{n}", phone=MEMBER_PHONE)
                self.members.add(customer)
            else:
                customer = device.add_customer(
                    f"Cliente {number}.{n}", phone=f"9{rng.randint(0, 10**8 - 1):08d}"
                )
            self.customers.append(customer)
        for _ in range(self.sales_per_session):
            kilos = f"{rng.randint(5, 30) / 10:.3f}"  # 0.5–3 kg
            client = rng.choice(self.customers) if rng.random() < 0.7 else None
            device.sell(kilos, client_id=client)
        for customer in rng.sample(self.customers, k=min(2, len(self.customers))):
            debt = device.expected_debt(customer)
            if debt >= Decimal("1.00"):
                amount = (debt * Decimal(rng.randint(20, 100)) / 100).quantize(CENT)
                device.pay(customer, str(max(amount, CENT)), rng.choice(["efectivo", "yape", "plin"]))
        self.outcome.pushed |= {str(op.op_id) for op in device.queue}

    def _plan(self) -> list[Fault | None]:
        """Two to four faults with a pass or two between them; never enough in a row to exhaust
        the device's retries (10 a request)."""
        plan: list[Fault | None] = []
        for _ in range(self.rng.randint(2, 4)):
            plan.append(self.rng.choice(FAULTS))
            plan.extend([None] * self.rng.randint(0, 2))
        return plan

    def _stock(self) -> Decimal:
        with self.stack.owner_connection() as conn:
            row = conn.execute(
                "SELECT quantity FROM field_sales.inventory WHERE tenant_id = %s AND product_id = %s",
                (self.demo.tenant_id, self.demo.products["pollo"]),
            ).fetchone()
        return Decimal(row["quantity"]) if row else Decimal(0)


def compare(device: SimulatedDevice, pollo: uuid.UUID, stock_before: Decimal) -> list[str]:
    """Every way the server's records (as pulled) differ from the device's own: each sale's total
    and kilos, each customer's debt, each abono's amount, and the stock of pollo."""
    server, differences = device.server, []
    kilos = Decimal(0)
    for record_id, record in sorted(device.records.items()):
        key, data = str(record_id), record.data
        pulled: dict[str, Any] | None = server.get((record.collection, key))
        if pulled is None:
            differences.append(f"field: {record.collection} {key} is not on the server")
            continue
        if record.collection == "sales":
            kilos += Decimal(data["netWeight"])
            total, quantity = _amount(pulled, "totalAmount", "total_amount"), _quantity(pulled)
            if total != Decimal(data["totalAmount"]) or quantity != Decimal(data["netWeight"]):
                differences.append(
                    f"field: sale {key} is {data['totalAmount']} for {data['netWeight']} kg on the device,"
                    f" {total} for {quantity} kg on the server"
                )
        elif record.collection == "customers":
            debt, expected = _amount(pulled, "debt"), device.expected_debt(record_id)
            if debt != expected:
                differences.append(
                    f"field: customer {key} owes {expected} by the device, {debt} by the server"
                )
        elif record.collection == "abonos" and _amount(pulled, "amount") != Decimal(data["amount"]):
            differences.append(
                f"field: abono {key} is {data['amount']}, the server holds {pulled.get('amount')}"
            )
    stock = server.get(("inventory", str(pollo)))
    held = _amount(stock, "quantity") if stock else None
    if held != stock_before - kilos:
        differences.append(
            f"field: pollo stock is {held} on the server, {stock_before} - {kilos} sold by the device"
        )
    return differences


def _amount(data: dict[str, Any], *names: str) -> Decimal | None:
    for name in names:
        if data.get(name) is not None:
            return Decimal(str(data[name]))
    return None


def _quantity(sale: dict[str, Any]) -> Decimal | None:
    items = sale.get("items") or []
    return Decimal(str(items[0]["quantity"])) if len(items) == 1 else None
