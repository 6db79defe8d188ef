"""Offline field sales in the chaos run: two devices of Avícola Don Pepe (the demo's field
business) work offline sessions while the webhook senders run, each session ending in a sync
through a flaky network of its own (local/field_device.py), their pushes at the same time:

- the vendedor's (Rosa's) device sells from her distribution to her customers (some of them the
  loyalty member) and takes abonos from those who are not the member;
- the admin_negocio's (Pepe's) device, in a thread of its own, assigns itself a distribution in
  its first session, sells to its own customers, takes an abono, and voids sales: some of its
  own, and some of the vendedor's it learned by pulling. Of hers it voids only cash sales and
  sales to the member, which no abono of hers depends on: an abono she computed offline against
  a debt the admin's void lowered meanwhile would be refused (abono_exceeds_debt), a conflict
  for a person to settle, not a fault.

Then what both devices hold is compared with what the server answers to a pull (``compare_devices``)."""

import logging
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests

from local.field_device import CENT, Fault, FlakyNetwork, LocalRecord, SimulatedDevice
from local.stack import LocalStack
from pos_gateway.field.devices import bearer_credential
from pos_gateway.field.loyalty_feed import sale_event_id, void_event_id

logger = logging.getLogger("local.chaos.field")
MEMBER_PHONE = "987 654 321"  # how sellers type the member's mobile (+51987654321)
FAULTS = [Fault.REFUSE, Fault.LOSE_RESPONSE, Fault.UNAVAILABLE, Fault.BAD_GATEWAY_AFTER]
ADMIN_KILOS = "150.000"  # the admin's own distribution (its sales: at most 3 kg each)
VOID_REASON = "el cliente devolvió el pollo"


@dataclass
class FieldOutcome:
    """What the field devices did and ended with (the run's record takes the ids from here)."""

    tenant_id: uuid.UUID
    pushed: set[str] = field(default_factory=set)  # opIds queued and pushed at least once (both devices)
    synced: set[str] = field(default_factory=set)  # opIds the devices hold as synced
    unsynced: int = 0  # operations still queued + records not synced, after the last sync
    injected: int = 0  # network faults the flaky hops injected
    sessions: int = 0  # the vendedor's
    replayed: int = 0
    stock_before: Decimal = Decimal(0)
    errors: list[str] = field(default_factory=list)
    member_sales: dict[str, Decimal] = field(default_factory=dict)  # sale id -> total (voided too)
    # Raw event ids of sales with a customer, and of the voids of such sales.
    sale_events: set[str] = field(default_factory=set)
    mismatches: list[str] = field(default_factory=list)
    admin_sessions: int = 0
    voided: set[str] = field(default_factory=set)  # sale ids the admin's device voided
    vendedor_voided: set[str] = field(default_factory=set)  # of them, the vendedor's sales


class DeviceSessions:
    """One device's sessions: offline work, then a sync through a FlakyNetwork of its own whose
    plan (a few faults, deterministic from the seed) it meets in turn."""

    def __init__(
        self,
        name: str,
        stack: LocalStack,
        device: SimulatedDevice,
        rng: random.Random,
        stopping: threading.Event,
        pause: float,
    ) -> None:
        self.name, self.stack, self.device, self.rng = name, stack, device, rng
        self.stopping, self.pause = stopping, pause
        self.pushed: set[str] = set()
        self.injected = 0
        self.sessions = 0
        self.errors: list[str] = []

    @property
    def _label(self) -> str:
        return f"{self.name} " if self.name else ""

    def work(self, sessions: int, offline: Callable[[int], None]) -> None:
        for number in range(sessions):
            if number and self.stopping.wait(self.pause * self.rng.uniform(0.5, 1.5)):
                break  # the run stopped waiting for this device: its remaining sessions are skipped
            offline(number)
            self.pushed |= {str(op.op_id) for op in self.device.queue}
            self._sync(number)
            self.sessions += 1

    def settle(self) -> None:
        """Sync whatever a failed session left, straight to the API."""
        device = self.device
        device.api_url = self.stack.api_url
        if not device.queue:
            return
        try:
            device.sync(device.session())
        except requests.RequestException as exc:
            self.errors.append(f"{self._label}final sync: {type(exc).__name__}: {exc}")

    def pull(self) -> None:
        device = self.device
        device.api_url = self.stack.api_url
        try:
            device.pull(device.session())
        except requests.RequestException as exc:
            self.errors.append(f"{self._label}final pull: {type(exc).__name__}: {exc}")

    def _sync(self, number: int) -> None:
        plan = self._plan()
        try:
            with FlakyNetwork(self.stack.api_url, plan) as network:
                self.device.api_url = network.base_url
                try:
                    self.device.sync(self.device.session())
                finally:
                    self.injected += len(network.injected)
        except Exception as exc:  # the next session (or the final sync) pushes it again
            logger.warning("field %ssession %s did not sync", self._label, number, exc_info=True)
            self.errors.append(f"{self._label}session {number}: {type(exc).__name__}: {exc}")

    def _plan(self) -> list[Fault | None]:
        """Two to four faults with a pass or two between them; never enough in a row to exhaust
        the device's retries (10 a request)."""
        plan: list[Fault | None] = []
        for _ in range(self.rng.randint(2, 4)):
            plan.append(self.rng.choice(FAULTS))
            plan.extend([None] * self.rng.randint(0, 2))
        return plan


class FieldSeller(threading.Thread):
    """The vendedor's device (this thread) and the admin_negocio's (a thread of its own, started
    and awaited by this one): ``sessions`` offline sessions each."""

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
        self.admin_rng = random.Random(seed * 31 + 5)
        products = self.demo.products
        self.device = SimulatedDevice(
            stack.api_url,
            self.demo.seller_credential,
            products,
            seller_id=self._seller(self.demo.seller_credential),
        )
        self.admin = SimulatedDevice(
            stack.api_url,
            self.demo.owner_credential,
            products,
            seller_id=self._seller(self.demo.owner_credential),
        )
        self.outcome = FieldOutcome(self.demo.tenant_id, stock_before=self._stock())
        self.customers: list[uuid.UUID] = []  # the vendedor's
        self.members: set[uuid.UUID] = set()  # the vendedor's customers with the member's phone
        self.admin_customers: list[uuid.UUID] = []
        self.admin_members: set[uuid.UUID] = set()
        self._member_voided = False  # the admin voided a sale to the member already
        self.vendedor_work = DeviceSessions("", stack, self.device, self.rng, self.stopping, pause)
        self.admin_work = DeviceSessions("admin", stack, self.admin, self.admin_rng, self.stopping, pause)
        self._admin_thread = threading.Thread(target=self._admin_run, name="chaos-field-admin", daemon=True)

    def run(self) -> None:
        self._admin_thread.start()
        try:
            self.vendedor_work.work(self.sessions, self._offline_session)
        finally:
            self._admin_thread.join()

    def settle(self) -> None:
        """Before the drain: sync whatever a failed session left (both devices), straight to the API."""
        self.vendedor_work.settle()
        self.admin_work.settle()

    def finish(self) -> FieldOutcome:
        """After the drain (nothing running: the pull's horizon has passed every push): both
        devices pull everything new, then their records are compared with the server's."""
        self.vendedor_work.pull()
        self.admin_work.pull()
        outcome = self.outcome
        self._tally(outcome)
        self._loyalty(outcome)
        outcome.mismatches = compare_devices(
            {"vendedor": self.device, "admin": self.admin},
            self.demo.products["pollo"],
            outcome.stock_before,
            outcome.voided,
        )
        return outcome

    def _tally(self, outcome: FieldOutcome) -> None:
        devices = (self.device, self.admin)
        works = (self.vendedor_work, self.admin_work)
        outcome.pushed = set().union(*(work.pushed for work in works))
        outcome.synced = outcome.pushed - {str(op.op_id) for device in devices for op in device.queue}
        outcome.unsynced = sum(
            len(device.queue) + sum(1 for r in device.records.values() if r.sync_status != "synced")
            for device in devices
        )
        outcome.replayed = sum(device.replayed for device in devices)
        outcome.injected = sum(work.injected for work in works)
        outcome.sessions = self.vendedor_work.sessions
        outcome.admin_sessions = self.admin_work.sessions
        outcome.errors = [error for work in works for error in work.errors]

    def _loyalty(self, outcome: FieldOutcome) -> None:
        """The raw events the sales with a customer (and their voids) fed to loyalty, and the
        member's sales (voided ones too: each was credited, and its void reversed it)."""
        tenant_id = self.demo.tenant_id
        members = self.members | self.admin_members
        sales = {**self.device.sales(voided=None), **self.admin.sales(voided=None)}
        for sale_id, record in sales.items():
            if "clientId" not in record.data:
                continue
            outcome.sale_events.add(sale_event_id(tenant_id, sale_id))
            if uuid.UUID(record.data["clientId"]) in members:
                outcome.member_sales[str(sale_id)] = Decimal(record.data["totalAmount"])
        for void_id, record in self.admin.records.items():
            sale = sales.get(uuid.UUID(record.data["saleId"])) if record.collection == "voids" else None
            if sale is not None and "clientId" in sale.data:
                outcome.sale_events.add(void_event_id(tenant_id, void_id))

    # -- the vendedor's offline work -------------------------------------------------------------
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
        # Not the member: the admin may void her sales to the member meanwhile.
        payers = [customer for customer in self.customers if customer not in self.members]
        for customer in rng.sample(payers, k=min(2, len(payers))):
            _pay_part(device, rng, customer)

    # -- the admin's ---------------------------------------------------------------------------
    def _admin_run(self) -> None:
        try:
            self.admin_work.work(self.sessions, self._admin_session)
        except Exception as exc:  # a defect of the run itself: reported, not swallowed
            logger.exception("the admin's field device stopped")
            self.admin_work.errors.append(f"admin device stopped: {type(exc).__name__}: {exc}")

    def _admin_session(self, number: int) -> None:
        rng, device = self.admin_rng, self.admin
        if number == 0 and device.seller_id is not None:
            device.assign_distribution(device.seller_id, ADMIN_KILOS, punto_venta="Casa")
            member = device.add_customer("Socia Casa", phone=MEMBER_PHONE)
            self.admin_members.add(member)
            regular = device.add_customer("Cliente Casa", phone=f"9{rng.randint(0, 10**8 - 1):08d}")
            self.admin_customers += [member, regular]
        for _ in range(max(1, self.sales_per_session // 2)):
            kilos = f"{rng.randint(5, 30) / 10:.3f}"
            client = rng.choice(self.admin_customers) if rng.random() < 0.7 else None
            device.sell(kilos, client_id=client)
        _pay_part(device, rng, rng.choice(self.admin_customers))
        if rng.random() < 0.7:
            self._void_own(rng)
        self._void_vendedors(rng)

    def _void_own(self, rng: random.Random) -> None:
        """One of the admin's own sales (synced or still queued), not one whose void would take
        its customer's debt below zero (an abono paid part of it): a sale to the member while no
        sale to the member is voided yet, then one to the member more likely than not."""
        device = self.admin
        candidates = [sale_id for sale_id, record in device.sales().items() if _voidable(device, record)]
        members = {str(member) for member in self.admin_members}
        to_member = [
            sale_id for sale_id in candidates if device.records[sale_id].data.get("clientId") in members
        ]
        choices = to_member if to_member and (not self._member_voided or rng.random() < 0.6) else candidates
        if choices:
            sale_id = rng.choice(choices)
            device.void_sale(sale_id)
            self.outcome.voided.add(str(sale_id))
            self._member_voided |= sale_id in to_member

    def _void_vendedors(self, rng: random.Random) -> None:
        """One of the vendedor's sales the admin's device has pulled: a cash sale or one to the
        member (to the member rather, when there is one)."""
        server, seller = self.admin.server, str(self.admin.seller_id)
        voided = self.outcome.voided | {
            data["saleId"] for (collection, _), data in server.items() if collection == "voids"
        }
        members = {
            key
            for (collection, key), data in server.items()
            if collection == "customers" and data.get("phone") == MEMBER_PHONE
        }
        candidates = sorted(
            key
            for (collection, key), data in server.items()
            if collection == "sales"
            and data["sellerId"] != seller
            and key not in voided
            and (data.get("clientId") is None or data["clientId"] in members)
        )
        to_member = [key for key in candidates if server[("sales", key)].get("clientId")]
        choices = to_member if to_member and rng.random() < 0.6 else candidates
        if choices:
            sale_id = rng.choice(choices)
            self.admin.void_sale(uuid.UUID(sale_id), VOID_REASON)
            self.outcome.voided.add(sale_id)
            self.outcome.vendedor_voided.add(sale_id)
            self._member_voided |= sale_id in to_member

    # -- the database, as the devices know it ------------------------------------------------------
    def _seller(self, credential: str) -> uuid.UUID:
        """The seller a device credential signs in (the app knows who is signed in)."""
        device_id, _ = bearer_credential(f"Bearer {credential}")
        with self.stack.owner_connection() as conn:
            row = conn.execute(
                "SELECT business_user_id FROM field_sales.devices WHERE tenant_id = %s AND id = %s",
                (self.demo.tenant_id, device_id),
            ).fetchone()
        if row is None:
            raise RuntimeError("the demo's field device credential names no device")
        return uuid.UUID(str(row["business_user_id"]))

    def _stock(self) -> Decimal:
        with self.stack.owner_connection() as conn:
            row = conn.execute(
                "SELECT quantity FROM field_sales.inventory WHERE tenant_id = %s AND product_id = %s",
                (self.demo.tenant_id, self.demo.products["pollo"]),
            ).fetchone()
        return Decimal(row["quantity"]) if row else Decimal(0)


def _pay_part(device: SimulatedDevice, rng: random.Random, customer: uuid.UUID) -> None:
    """An abono of part of the customer's debt (by the device's records), when it owes a sol or more."""
    debt = device.expected_debt(customer)
    if debt >= Decimal("1.00"):
        amount = (debt * Decimal(rng.randint(20, 100)) / 100).quantize(CENT)
        device.pay(customer, str(max(amount, CENT)), rng.choice(["efectivo", "yape", "plin"]))


def _voidable(device: SimulatedDevice, sale: LocalRecord) -> bool:
    client = sale.data.get("clientId")
    if client is None:
        return True
    due = Decimal(sale.data["totalAmount"]) - Decimal(sale.data["amountPaid"])
    return device.expected_debt(uuid.UUID(client)) - due >= 0


# ---------------------------------------------------------------- device vs server


def compare(device: SimulatedDevice, pollo: uuid.UUID, stock_before: Decimal) -> list[str]:
    """One device alone against the server (``compare_devices``): the sales voided are those the
    device knows voided."""
    return compare_devices({"": device}, pollo, stock_before, device.voided_sales())


def compare_devices(
    devices: dict[str, SimulatedDevice], pollo: uuid.UUID, stock_before: Decimal, voided: set[str]
) -> list[str]:
    """Every way the server's records (as each device pulled them) differ from the devices' own:
    each record is on the server; each sale's total and kilos, and whether it is voided (the
    device's mark against ``voided``, the run's account, and the server's voids against it too);
    each customer's debt (voided sales excluded); each abono's amount; each void's sale and
    reason; each device's own distribution's kilos sold and money collected; and, as each device
    sees it, the stock of pollo: before − the kilos of every device's sales not voided."""
    differences: list[str] = []
    sold = Decimal(0)
    for name, device in devices.items():
        label = f"field ({name})" if name else "field"
        differences += _records(label, device, voided)
        differences += _distribution(label, device, voided)
        sold += sum(
            (
                Decimal(r.data["netWeight"])
                for i, r in device.sales(voided=None).items()
                if str(i) not in voided
            ),
            Decimal(0),
        )
    differences += _voids(devices, voided)
    for name, device in devices.items():
        stock = device.server.get(("inventory", str(pollo)))
        held = _amount(stock, "quantity") if stock else None
        if held != stock_before - sold:
            seen = f" ({name})" if name else ""
            differences.append(
                f"field{seen}: pollo stock is {held} on the server,"
                f" {stock_before} - {sold} sold by the device(s)"
            )
    return differences


def _records(label: str, device: SimulatedDevice, voided: set[str]) -> list[str]:
    differences: list[str] = []
    for record_id, record in sorted(device.records.items()):
        key = str(record_id)
        pulled: dict[str, Any] | None = device.server.get((record.collection, key))
        if pulled is None:
            differences.append(f"{label}: {record.collection} {key} is not on the server")
        elif record.collection == "sales":
            differences += _sale(label, key, record, pulled, voided)
        elif record.collection == "customers":
            debt, expected = _amount(pulled, "debt"), device.expected_debt(record_id)
            if debt != expected:
                differences.append(
                    f"{label}: customer {key} owes {expected} by the device, {debt} by the server"
                )
        elif record.collection == "abonos" and _amount(pulled, "amount") != Decimal(record.data["amount"]):
            differences.append(
                f"{label}: abono {key} is {record.data['amount']}, the server holds {pulled.get('amount')}"
            )
        elif record.collection == "voids" and _void_differs(record.data, pulled):
            differences.append(
                f"{label}: void {key} is of sale {record.data['saleId']} ({record.data['reason']}),"
                f" the server's of {pulled.get('saleId')} ({pulled.get('reason')})"
            )
    return differences


def _sale(label: str, key: str, record: LocalRecord, pulled: dict[str, Any], voided: set[str]) -> list[str]:
    data, differences = record.data, []
    total, quantity = _amount(pulled, "totalAmount", "total_amount"), _quantity(pulled)
    if total != Decimal(data["totalAmount"]) or quantity != Decimal(data["netWeight"]):
        differences.append(
            f"{label}: sale {key} is {data['totalAmount']} for {data['netWeight']} kg on the device,"
            f" {total} for {quantity} kg on the server"
        )
    if record.voided != (key in voided):
        differences.append(
            f"{label}: sale {key} is {'' if record.voided else 'not '}voided on the device,"
            f" {'' if key in voided else 'not '}voided by the run"
        )
    return differences


def _void_differs(data: dict[str, Any], pulled: dict[str, Any]) -> bool:
    return bool(pulled.get("saleId") != data["saleId"] or pulled.get("reason") != data["reason"])


def _distribution(label: str, device: SimulatedDevice, voided: set[str]) -> list[str]:
    """The device's seller's distribution (when the device knows its seller): kilos sold and
    money collected = its sales not voided."""
    if device.seller_id is None:
        return []
    seller = str(device.seller_id)
    own = [
        d for (c, _), d in device.server.items() if c == "distribuciones" and d.get("vendedorId") == seller
    ]
    if len(own) != 1:
        return [f"{label}: the seller has {len(own)} distribution(s) on the server, one expected"]
    sales = [r.data for i, r in device.sales(voided=None).items() if str(i) not in voided]
    kilos = sum((Decimal(data["netWeight"]) for data in sales), Decimal(0))
    collected = sum((Decimal(data["amountPaid"]) for data in sales), Decimal(0))
    held = (_amount(own[0], "kilosVendidos"), _amount(own[0], "montoRecaudado"))
    if held != (kilos, collected):
        return [
            f"{label}: the distribution holds {held[0]} kg sold and {held[1]} collected,"
            f" the device's sales not voided {kilos} kg and {collected}"
        ]
    return []


def _voids(devices: dict[str, SimulatedDevice], voided: set[str]) -> list[str]:
    """The sales the server shows voided (any device's view) are exactly those voided."""
    shown = {
        data["saleId"]
        for device in devices.values()
        for (collection, _), data in device.server.items()
        if collection == "voids" and data.get("saleId")
    }
    differences = [
        f"field: sale {key} was voided; the server shows no void of it" for key in sorted(voided - shown)
    ]
    differences += [
        f"field: the server shows sale {key} voided; no device voided it" for key in sorted(shown - voided)
    ]
    return differences


def _amount(data: dict[str, Any], *names: str) -> Decimal | None:
    for name in names:
        if data.get(name) is not None:
            return Decimal(str(data[name]))
    return None


def _quantity(sale: dict[str, Any]) -> Decimal | None:
    items = sale.get("items") or []
    return Decimal(str(items[0]["quantity"])) if len(items) == 1 else None
