"""Phase 6, offline field-sales push: batches of 500 queued operations through ``PushService.push``,
against the same rows written with plain SQL, one transaction per batch, as the same role.

One deterministic plan (the run's random seed) is rendered for two tenants set up alike
(control_kilos and usar_distribucion on, selling without stock refused; four vendedores, each with
a device and an open distribution holding plenty of kilos; four stocked products; 200 customers
to start with, half with a phone). Each batch is one vendedor's queue of 500 operations:

- ~10% customer creates (half with a phone);
- ~65% sales of 1-3 products counted against the seller's distribution: half credito on a
  customer synced in an earlier batch (most unpaid, some partly paid), half contado (half of
  them with a known customer); a sale to a customer with a phone feeds loyalty (a raw event);
- ~20% abonos on customers owing something (at most the debt);
- ~5% customer updates (a new phone and address) at the version the server holds.

Project: ``PushService(pos_gateway_field connections).push(device, body)`` on the body's bytes
(serialised untimed; parsing is the push's). Baseline (BarePush): ``json.loads`` of the same
body, then the same rows in one transaction per batch, statements pipelined with executemany:
customer inserts and updates, sales, sale items, one inventory decrement per product sold, one
distribution update and (credito) debt update per sale, a raw event per loyalty sale, abonos and
their debt updates, one sync_operations row per operation (same request hash and stored result)
and the device's last_seen_at; no validation, reads, savepoints, advisory lock or idempotency
lookups. Rows counted and totals compared per tenant afterwards.

Batches alternate ABBA after one untimed warm-up batch per side and one more per side traced
with tracemalloc (peak traced bytes of the batch).
"""

import contextlib
import hashlib
import json
import os
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from random import Random
from typing import IO, Any, LiteralString

from psycopg.rows import tuple_row

from bench.database import SET_TENANT, Conn
from bench.measure import BenchError, Row
from local.database import Database
from pos_gateway.field.devices import Device, authenticate
from pos_gateway.field.operations import MAX_OPERATIONS, PushResponse
from pos_gateway.field.push import PushService

FIELD_ROLE = "pos_gateway_field"
BATCH_OPS = MAX_OPERATIONS  # 500: the most one push carries
DEFAULT_BATCHES = 20
QUICK_BATCHES = 3
WARMUP_BATCHES = 1
TRACED_BATCHES = 1
SELLERS = 4
SEEDED_CUSTOMERS = 200
CURRENCY = "PEN"
COUNTRY = "PE"
STOCK = "900000.000"  # per product: never the limit
KILOS_ASIGNADOS = "900000.000"  # per distribution: likewise
# name, type, unit, price: the devices sell at the base price.
PRODUCTS = (
    ("Pollo entero", "pollo", "kg", Decimal("9.90")),
    ("Pollo trozado", "pollo", "kg", Decimal("11.50")),
    ("Huevo", "huevo", "unidad", Decimal("0.50")),
    ("Menudencia", "otro", "kg", Decimal("4.20")),
)
MIX = (("customer_create", 10), ("sale", 65), ("abono", 20), ("customer_update", 5))
PAYMENT_METHODS = ("efectivo", "yape", "plin", "transferencia")
CLOCK = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
CENT = Decimal("0.01")
ZERO = Decimal(0)
MIB = 1024 * 1024

NOTE = """\
field push: {timed} batches of {ops} operations per side timed ({ops_total:,} operations), after {untimed}
untimed (warm-up, then traced), ABBA; {sellers} vendedores' devices in turn. Plan (seed {seed}): {creates}
customer creates, {sales} sales ({loyalty} feeding loyalty), {abonos} abonos, {updates} customer updates;
rows per table and totals (debt, stock, kilos, money) checked equal per tenant. Memory: tracemalloc
peak of one batch (Python allocations only; the body's bytes held already). Load average (1 min) at the
phase's start and end: {load[0]:.1f} / {load[1]:.1f} on {cpus} CPUs."""

# ---------------------------------------------------------------- the plan (side-independent)


@dataclass(frozen=True, slots=True)
class Line:
    product: int  # index in PRODUCTS
    quantity: Decimal
    subtotal: Decimal


@dataclass(frozen=True, slots=True)
class NewCustomer:
    customer_id: uuid.UUID
    name: str
    dni: str
    phone: str | None


@dataclass(frozen=True, slots=True)
class CustomerChange:
    customer_id: uuid.UUID
    version: int  # the server's, as the device last pulled it
    phone: str
    address: str


@dataclass(frozen=True, slots=True)
class Sale:
    sale_id: uuid.UUID
    customer_id: uuid.UUID | None
    credito: bool
    total: Decimal
    paid: Decimal
    kilos: Decimal  # net weight: the kilos of its kg lines
    lines: tuple[Line, ...]
    loyalty_phone: str | None  # the customer's phone when the sale lands: it feeds loyalty


@dataclass(frozen=True, slots=True)
class Abono:
    abono_id: uuid.UUID
    customer_id: uuid.UUID
    amount: Decimal
    method: str


type Action = NewCustomer | CustomerChange | Sale | Abono


@dataclass(frozen=True, slots=True)
class PlannedOp:
    op_id: uuid.UUID
    at: datetime
    action: Action


@dataclass(frozen=True, slots=True)
class PlannedBatch:
    seller: int  # index of the vendedor whose device pushes it
    ops: tuple[PlannedOp, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    seeded: tuple[NewCustomer, ...]
    batches: tuple[PlannedBatch, ...]

    def actions(self) -> list[Action]:
        return [op.action for batch in self.batches for op in batch.ops]


@dataclass(slots=True)
class _Known:
    """A customer as the planner tracks it (as the server will have it)."""

    customer_id: uuid.UUID
    phone: str | None
    version: int = 1
    debt: Decimal = ZERO


@dataclass(slots=True)
class _Planner:
    rng: Random
    synced: list[_Known] = field(default_factory=list)  # customers of earlier batches
    created: list[_Known] = field(default_factory=list)  # this batch's
    debtors: dict[uuid.UUID, _Known] = field(default_factory=dict)
    clock: datetime = CLOCK
    customers: int = 0

    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def new_customer(self) -> NewCustomer:
        self.customers += 1
        phone = f"9{self.rng.randrange(10**8):08d}" if self.rng.random() < 0.5 else None
        customer = NewCustomer(
            self.new_id(), f"Cliente {self.customers}", f"{self.rng.randrange(10**8):08d}", phone
        )
        self.created.append(_Known(customer.customer_id, phone))
        return customer

    def batch(self, seller: int) -> PlannedBatch:
        kinds = self.rng.choices([kind for kind, _ in MIX], [weight for _, weight in MIX], k=BATCH_OPS)
        ops = []
        for kind in kinds:
            self.clock += timedelta(seconds=7)
            ops.append(PlannedOp(self.new_id(), self.clock, self.action(kind)))
        self.synced += self.created
        self.created = []
        return PlannedBatch(seller, tuple(ops))

    def action(self, kind: str) -> Action:
        if kind == "customer_create":
            return self.new_customer()
        if kind == "customer_update":
            return self.change()
        if kind == "abono" and self.debtors:
            return self.abono()
        return self.sale(credito=kind == "abono" or self.rng.random() < 0.5)

    def change(self) -> CustomerChange:
        known = self.rng.choice(self.synced)
        change = CustomerChange(
            known.customer_id,
            known.version,
            f"9{self.rng.randrange(10**8):08d}",
            f"Jr. Los Pinos {self.rng.randrange(1, 999)}",
        )
        known.version += 1
        known.phone = change.phone
        return change

    def abono(self) -> Abono:
        known = self.rng.choice(list(self.debtors.values()))
        amount = min(known.debt, Decimal(self.rng.randrange(500, 6000)) / 100)
        self._owe(known, -amount)
        return Abono(self.new_id(), known.customer_id, amount, self.rng.choice(PAYMENT_METHODS))

    def sale(self, *, credito: bool) -> Sale:
        lines = tuple(
            self.line(product) for product in self.rng.sample(range(len(PRODUCTS)), self.rng.randint(1, 3))
        )
        total = sum((line.subtotal for line in lines), ZERO)
        known = self.rng.choice(self.synced) if credito or self.rng.random() < 0.5 else None
        paid = total
        if credito:
            paid = ZERO if self.rng.random() < 2 / 3 else (total * self.rng.randint(1, 5) / 10).quantize(CENT)
        if known is not None and total > paid:
            self._owe(known, total - paid)
        kilos = sum((line.quantity for line in lines if PRODUCTS[line.product][2] == "kg"), ZERO)
        customer_id = known.customer_id if known else None
        phone = known.phone if known else None
        return Sale(self.new_id(), customer_id, credito, total, paid, kilos, lines, phone)

    def line(self, product: int) -> Line:
        if PRODUCTS[product][2] == "kg":
            quantity = Decimal(self.rng.randrange(250, 6000)).scaleb(-3)
        else:
            quantity = Decimal(self.rng.randrange(6, 61))
        return Line(product, quantity, (quantity * PRODUCTS[product][3]).quantize(CENT))

    def _owe(self, known: _Known, delta: Decimal) -> None:
        known.debt += delta
        if known.debt > 0:
            self.debtors[known.customer_id] = known
        else:
            self.debtors.pop(known.customer_id, None)


def plan_field(batches: int, rng: Random) -> Plan:
    """The seeded customers and ``batches`` batches of BATCH_OPS operations, sellers in turn."""
    planner = _Planner(rng)
    seeded = tuple(planner.new_customer() for _ in range(SEEDED_CUSTOMERS))
    planner.synced, planner.created = planner.created, []
    return Plan(seeded, tuple(planner.batch(index % SELLERS) for index in range(batches)))


# ---------------------------------------------------------------- the tenants (untimed)


@dataclass(frozen=True, slots=True)
class Business:
    tenant_id: uuid.UUID
    devices: tuple[Device, ...]  # one per vendedor, authenticated as FIELD_ROLE
    distributions: tuple[uuid.UUID, ...]  # each vendedor's open one
    products: tuple[uuid.UUID, ...]  # as PRODUCTS


INSERT_SEEDED_CUSTOMER = """
INSERT INTO field_sales.customers (id, tenant_id, name, dni, phone, created_by)
VALUES (%s, %s, %s, %s, %s, %s)
"""


def field_business(db: Database, label: str, plan: Plan) -> Business:
    """A tenant as the plan needs it: settings, sellers with devices and distributions, products
    with stock and the seeded customers."""
    from local import seed  # after configure_environment: it imports pos_gateway.loyalty

    with db.owner(tuple_row) as owner:
        tenant_id = seed.create_tenant(owner, f"Bench field {label}", country=COUNTRY)
        seed.create_field_business(
            owner, tenant_id, usar_distribucion=True, permitir_venta_sin_stock=False, currency=CURRENCY
        )
        admin = _seat(owner, tenant_id, f"field-{label}-admin", "admin_negocio")
        credentials, distributions = [], []
        for index in range(SELLERS):
            seller_id = _seat(owner, tenant_id, f"field-{label}-seller{index}", "vendedor")
            credentials.append(seed.register_device(owner, tenant_id, seller_id, label=f"phone {index}"))
            distributions.append(
                seed.open_distribution(
                    owner, tenant_id, vendedor_id=seller_id, created_by=admin, kilos=KILOS_ASIGNADOS
                )
            )
        products = tuple(
            seed.create_field_product(
                owner, tenant_id, name, str(price), stock=STOCK, product_type=kind, unit=unit
            )
            for name, kind, unit, price in PRODUCTS
        )
        with owner.cursor() as cursor:
            cursor.executemany(
                INSERT_SEEDED_CUSTOMER,
                [(c.customer_id, tenant_id, c.name, c.dni, c.phone, admin) for c in plan.seeded],
            )
    with db.connect_as(FIELD_ROLE) as conn:
        devices = tuple(authenticate(conn, f"Bearer {credential}") for credential in credentials)
    return Business(tenant_id, devices, tuple(distributions), products)


def _seat(owner: Conn, tenant_id: uuid.UUID, name: str, role: str) -> uuid.UUID:
    from local import seed

    user_id = seed.create_user(owner, email=f"{name}@bench.example", role="client", full_name=name)
    return seed.add_seller(owner, tenant_id, user_id, role=role)


# ---------------------------------------------------------------- the batches as devices send them


@dataclass(frozen=True, slots=True)
class Batch:
    device: Device
    body: bytes
    loyalty_phones: tuple[str | None, ...]  # per operation (the baseline reads no customer)


def render(batch: PlannedBatch, business: Business) -> Batch:
    device = business.devices[batch.seller]
    distribution = str(business.distributions[batch.seller])
    operations = [_operation(op, business, distribution) for op in batch.ops]
    body = json.dumps({"operations": operations}, separators=(",", ":")).encode()
    phones = tuple(op.action.loyalty_phone if isinstance(op.action, Sale) else None for op in batch.ops)
    return Batch(device, body, phones)


def _operation(op: PlannedOp, business: Business, distribution: str) -> dict[str, Any]:
    action = op.action
    operation_type, collection = "create", "customers"
    if isinstance(action, NewCustomer):
        data: dict[str, Any] = {"id": str(action.customer_id), "name": action.name, "dni": action.dni}
        if action.phone is not None:
            data["phone"] = action.phone
    elif isinstance(action, CustomerChange):
        operation_type = "update"
        data = {
            "id": str(action.customer_id),
            "version": action.version,
            "phone": action.phone,
            "address": action.address,
        }
    elif isinstance(action, Sale):
        collection, data = "sales", _sale_data(action, op.at, business, distribution)
    else:
        collection = "abonos"
        data = {
            "id": str(action.abono_id),
            "clientId": str(action.customer_id),
            "amount": str(action.amount),
            "paymentMethod": action.method,
        }
    return {
        "opId": str(op.op_id),
        "operationType": operation_type,
        "collection": collection,
        "data": data,
        "clientCreatedAt": op.at.isoformat(),
    }


def _sale_data(sale: Sale, at: datetime, business: Business, distribution: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(sale.sale_id),
        "distribucionId": distribution,
        "saleType": "credito" if sale.credito else "contado",
        "totalAmount": str(sale.total),
        "amountPaid": str(sale.paid),
        "netWeight": str(sale.kilos),
        "saleDate": at.isoformat(),
        "items": [
            {
                "productId": str(business.products[line.product]),
                "productName": PRODUCTS[line.product][0],
                "quantity": str(line.quantity),
                "unitPrice": str(PRODUCTS[line.product][3]),
                "subtotal": str(line.subtotal),
            }
            for line in sale.lines
        ],
    }
    if sale.customer_id is not None:
        data["clientId"] = str(sale.customer_id)
    return data


# ---------------------------------------------------------------- the baseline

BARE_TOUCH_DEVICE = "UPDATE field_sales.devices SET last_seen_at = now() WHERE tenant_id = %s AND id = %s"
BARE_INSERT_CUSTOMER = """
INSERT INTO field_sales.customers (id, tenant_id, name, dni, phone, email, address, notes, created_by)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
BARE_UPDATE_CUSTOMER = """
UPDATE field_sales.customers SET phone = %s, address = %s, version = version + 1
 WHERE tenant_id = %s AND id = %s
"""
BARE_INSERT_SALE = """
INSERT INTO field_sales.sales (id, tenant_id, client_id, seller_id, distribucion_id, sale_type, total_amount,
                               amount_paid, balance_due, tara, net_weight, currency, sale_date, device_id,
                               stock_decremented, distribucion_kilos)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s, %s, true, %s)
"""
BARE_INSERT_SALE_ITEM = """
INSERT INTO field_sales.sale_items (tenant_id, sale_id, line_no, product_id, product_name, quantity,
                                    unit_price, subtotal)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""
BARE_TAKE_STOCK = """
UPDATE field_sales.inventory SET quantity = quantity - %s WHERE tenant_id = %s AND product_id = %s
"""
BARE_COUNT_SALE = """
UPDATE field_sales.distribuciones
   SET kilos_vendidos = kilos_vendidos + %s, monto_recaudado = monto_recaudado + %s
 WHERE tenant_id = %s AND id = %s
"""
BARE_ADD_DEBT = "UPDATE field_sales.customers SET debt = debt + %s WHERE tenant_id = %s AND id = %s"
BARE_INSERT_RAW_EVENT = """
INSERT INTO pos.pos_webhook_events_raw (tenant_id, provider, event_type, provider_event_id,
                                        merchant_account_id, raw_payload, raw_body)
VALUES (%s, 'field', 'field.sale.created', %s, %s, %s::text::jsonb, %s)
"""
BARE_INSERT_ABONO = """
INSERT INTO field_sales.abonos (id, tenant_id, client_id, seller_id, amount, payment_method, notes, currency,
                                paid_at, device_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
BARE_INSERT_OPERATION = """
INSERT INTO field_sales.sync_operations (tenant_id, op_id, device_id, collection, operation_type, record_id,
                                         request_hash, result, client_created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s::text::jsonb, %s)
"""


@dataclass(slots=True)
class _Rows:
    """One batch's parameter rows, by statement, in the order they are sent."""

    customers: list[tuple[Any, ...]] = field(default_factory=list)
    changes: list[tuple[Any, ...]] = field(default_factory=list)
    sales: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[tuple[Any, ...]] = field(default_factory=list)
    stock: list[tuple[Any, ...]] = field(default_factory=list)
    counted: list[tuple[Any, ...]] = field(default_factory=list)
    debts: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    abonos: list[tuple[Any, ...]] = field(default_factory=list)
    operations: list[tuple[Any, ...]] = field(default_factory=list)

    def statements(self) -> list[tuple[LiteralString, list[tuple[Any, ...]]]]:
        return [
            (BARE_INSERT_CUSTOMER, self.customers),
            (BARE_UPDATE_CUSTOMER, self.changes),
            (BARE_INSERT_SALE, self.sales),
            (BARE_INSERT_SALE_ITEM, self.items),
            (BARE_TAKE_STOCK, self.stock),
            (BARE_COUNT_SALE, self.counted),
            (BARE_ADD_DEBT, self.debts),
            (BARE_INSERT_RAW_EVENT, self.events),
            (BARE_INSERT_ABONO, self.abonos),
            (BARE_INSERT_OPERATION, self.operations),
        ]


class BarePush:
    """The rows a push writes, from the same body, with plain SQL and nothing read back."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    def push(self, batch: Batch) -> None:
        device = batch.device
        rows = _Rows()
        for item, phone in zip(json.loads(batch.body)["operations"], batch.loyalty_phones, strict=True):
            collection, data = item["collection"], item["data"]
            if collection == "customers" and item["operationType"] == "create":
                version = _customer(rows, device, data)
            elif collection == "customers":
                version = _change(rows, device, data)
            elif collection == "sales":
                version = _sale(rows, device, data, phone)
            else:
                version = _abono(rows, device, data, item["clientCreatedAt"])
            result = {
                "opId": item["opId"],
                "status": "synced",
                "recordId": data["id"],
                "serverVersion": version,
            }
            rows.operations.append(
                (
                    device.tenant_id,
                    item["opId"],
                    device.device_id,
                    collection,
                    item["operationType"],
                    data["id"],
                    _request_hash(item),
                    json.dumps(result),
                    item["clientCreatedAt"],
                )
            )
        conn = self._conn
        with conn.transaction():
            conn.execute(SET_TENANT, (str(device.tenant_id),))
            with conn.pipeline(), conn.cursor() as cursor:
                cursor.execute(BARE_TOUCH_DEVICE, (device.tenant_id, device.device_id))
                for statement, params in rows.statements():
                    if params:
                        cursor.executemany(statement, params)


def _request_hash(item: dict[str, Any]) -> str:
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _customer(rows: _Rows, device: Device, data: dict[str, Any]) -> int:
    rows.customers.append(
        (
            data["id"],
            device.tenant_id,
            data["name"],
            data.get("dni"),
            data.get("phone"),
            data.get("email"),
            data.get("address"),
            data.get("notes"),
            device.seller_id,
        )
    )
    return 1


def _change(rows: _Rows, device: Device, data: dict[str, Any]) -> int:
    rows.changes.append((data["phone"], data["address"], device.tenant_id, data["id"]))
    version: int = data["version"] + 1
    return version


def _sale(rows: _Rows, device: Device, data: dict[str, Any], phone: str | None) -> int:
    tenant_id, sale_id, client_id = device.tenant_id, data["id"], data.get("clientId")
    total, paid = Decimal(data["totalAmount"]), Decimal(data["amountPaid"])
    due = total - paid
    rows.sales.append(
        (
            sale_id,
            tenant_id,
            client_id,
            device.seller_id,
            data["distribucionId"],
            data["saleType"],
            total,
            paid,
            due,
            data["netWeight"],
            device.currency,
            data["saleDate"],
            device.device_id,
            data["netWeight"],
        )
    )
    for line_no, item in enumerate(data["items"], start=1):
        product_id, quantity = item["productId"], item["quantity"]
        rows.items.append(
            (
                tenant_id,
                sale_id,
                line_no,
                product_id,
                item["productName"],
                quantity,
                item["unitPrice"],
                item["subtotal"],
            )
        )
        rows.stock.append((quantity, tenant_id, product_id))
    rows.counted.append((data["netWeight"], paid, tenant_id, data["distribucionId"]))
    if data["saleType"] == "credito" and due > 0:
        rows.debts.append((due, tenant_id, client_id))
    if phone is not None:
        event_id = f"{tenant_id}:sale:{sale_id}"
        customer = {"id": client_id, "email": None, "phone": phone, "country": device.country}
        payload = {
            "kind": "sale",
            "tenantId": str(tenant_id),
            "saleId": sale_id,
            "sellerId": str(device.seller_id),
            "totalAmount": data["totalAmount"],
            "currency": device.currency,
            "saleDate": data["saleDate"],
            "customer": customer,
        }
        raw = json.dumps(payload, separators=(",", ":"))
        rows.events.append((tenant_id, event_id, str(tenant_id), raw, raw))
    return 1


def _abono(rows: _Rows, device: Device, data: dict[str, Any], client_created_at: str) -> int:
    tenant_id, amount = device.tenant_id, Decimal(data["amount"])
    rows.abonos.append(
        (
            data["id"],
            tenant_id,
            data["clientId"],
            device.seller_id,
            amount,
            data["paymentMethod"],
            data.get("notes"),
            device.currency,
            data.get("paidAt") or client_created_at,
            device.device_id,
        )
    )
    rows.debts.append((-amount, tenant_id, data["clientId"]))
    return 1


# ---------------------------------------------------------------- measuring


@dataclass(slots=True)
class Timings:
    batches: list[float] = field(default_factory=list)  # seconds of each timed batch
    peak: int = 0  # traced bytes


def bench_field_push(db: Database, batches: int, rng: Random, sink: IO[str]) -> tuple[list[Row], str]:
    """The push rows, and the note saying how they were measured."""
    if batches < 1:
        raise BenchError("the field push bench needs at least one timed batch")
    load_before = os.getloadavg()[0]
    seed = rng.randrange(2**32)
    plan = plan_field(WARMUP_BATCHES + TRACED_BATCHES + batches, Random(seed))
    project, baseline = field_business(db, "project", plan), field_business(db, "baseline", plan)
    project_batches = [render(batch, project) for batch in plan.batches]
    baseline_batches = [render(batch, baseline) for batch in plan.batches]
    connections = db.connections(FIELD_ROLE)
    try:
        service = PushService(connections)
        # The push's log lines (none on the happy path) go where Lambda's would: a sink.
        with contextlib.redirect_stdout(sink), db.connect_as(FIELD_ROLE, tuple_row) as conn:
            bare = BarePush(conn)
            measured = _race(
                lambda batch: _through_push(service, batch),
                bare.push,
                project_batches,
                baseline_batches,
            )
    finally:
        connections.close()
    _check(db, project, baseline, plan)
    actions = plan.actions()
    note = NOTE.format(
        timed=batches,
        ops=BATCH_OPS,
        ops_total=batches * BATCH_OPS,
        untimed=WARMUP_BATCHES + TRACED_BATCHES,
        sellers=SELLERS,
        seed=seed,
        creates=sum(isinstance(action, NewCustomer) for action in actions),
        sales=sum(isinstance(action, Sale) for action in actions),
        loyalty=sum(isinstance(action, Sale) and action.loyalty_phone is not None for action in actions),
        abonos=sum(isinstance(action, Abono) for action in actions),
        updates=sum(isinstance(action, CustomerChange) for action in actions),
        load=(load_before, os.getloadavg()[0]),
        cpus=os.cpu_count(),
    )
    return _rows(*measured), note


def _through_push(service: PushService, batch: Batch) -> None:
    response = service.push(batch.device, batch.body)
    _require_landed(response)


def _require_landed(response: PushResponse) -> None:
    summary = response.summary
    if summary.error or summary.conflict or summary.synced != BATCH_OPS or summary.replayed:
        refused = [result.model_dump(mode="json") for result in response.results if result.error][:3]
        raise BenchError(f"field push: {summary}, first refusals {refused}")


def _race(
    project: Callable[[Batch], None],
    baseline: Callable[[Batch], None],
    project_batches: Sequence[Batch],
    baseline_batches: Sequence[Batch],
) -> tuple[Timings, Timings]:
    """Batch after batch on each side: warm-up, traced, then timed in ABBA order."""
    sides = [(project, project_batches, Timings()), (baseline, baseline_batches, Timings())]
    for index in range(len(project_batches)):
        order = sides if index % 2 == 0 else sides[::-1]
        for work, batches, timings in order:
            traced = WARMUP_BATCHES <= index < WARMUP_BATCHES + TRACED_BATCHES
            if traced:
                tracemalloc.start()
            began = time.perf_counter()
            work(batches[index])
            elapsed = time.perf_counter() - began
            if traced:
                timings.peak = max(timings.peak, tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
            elif index >= WARMUP_BATCHES + TRACED_BATCHES:
                timings.batches.append(elapsed)
    return sides[0][2], sides[1][2]


# ---------------------------------------------------------------- checks and rows

COUNTS = """
SELECT (SELECT count(*) FROM field_sales.customers WHERE tenant_id = %(t)s) AS customers,
       (SELECT count(*) FROM field_sales.sales WHERE tenant_id = %(t)s) AS sales,
       (SELECT count(*) FROM field_sales.sale_items WHERE tenant_id = %(t)s) AS sale_items,
       (SELECT count(*) FROM field_sales.abonos WHERE tenant_id = %(t)s) AS abonos,
       (SELECT count(*) FROM field_sales.voids WHERE tenant_id = %(t)s) AS voids,
       (SELECT count(*) FROM field_sales.inventory WHERE tenant_id = %(t)s) AS inventory,
       (SELECT count(*) FROM field_sales.distribuciones WHERE tenant_id = %(t)s) AS distribuciones,
       (SELECT count(*) FROM field_sales.sync_operations WHERE tenant_id = %(t)s) AS sync_operations,
       (SELECT count(*) FROM pos.pos_webhook_events_raw WHERE tenant_id = %(t)s) AS raw_events
"""
TOTALS = """
SELECT (SELECT sum(debt) FROM field_sales.customers WHERE tenant_id = %(t)s) AS debt,
       (SELECT sum(version) FROM field_sales.customers WHERE tenant_id = %(t)s) AS versions,
       (SELECT count(*) FROM field_sales.customers WHERE tenant_id = %(t)s AND phone IS NOT NULL) AS phones,
       (SELECT sum(quantity) FROM field_sales.inventory WHERE tenant_id = %(t)s) AS stock,
       (SELECT sum(kilos_vendidos) FROM field_sales.distribuciones WHERE tenant_id = %(t)s) AS kilos,
       (SELECT sum(monto_recaudado) FROM field_sales.distribuciones WHERE tenant_id = %(t)s) AS monto,
       (SELECT sum(total_amount) FROM field_sales.sales WHERE tenant_id = %(t)s) AS sold,
       (SELECT sum(amount) FROM field_sales.abonos WHERE tenant_id = %(t)s) AS paid
"""


def _check(db: Database, project: Business, baseline: Business, plan: Plan) -> None:
    """Both tenants hold the plan's rows, table by table, and the same totals."""
    actions = plan.actions()
    sales = [action for action in actions if isinstance(action, Sale)]
    expected = {
        "customers": SEEDED_CUSTOMERS + sum(isinstance(action, NewCustomer) for action in actions),
        "sales": len(sales),
        "sale_items": sum(len(sale.lines) for sale in sales),
        "abonos": sum(isinstance(action, Abono) for action in actions),
        "voids": 0,
        "inventory": len(PRODUCTS),
        "distribuciones": SELLERS,
        "sync_operations": len(actions),
        "raw_events": sum(sale.loyalty_phone is not None for sale in sales),
    }
    with db.owner() as owner:
        counts = [
            dict(owner.execute(COUNTS, {"t": b.tenant_id}).fetchone() or {}) for b in (project, baseline)
        ]
        totals = [
            dict(owner.execute(TOTALS, {"t": b.tenant_id}).fetchone() or {}) for b in (project, baseline)
        ]
    if counts[0] != expected or counts[1] != expected:
        raise BenchError(f"field push rows: project {counts[0]}, baseline {counts[1]}, expected {expected}")
    if totals[0] != totals[1]:
        raise BenchError(f"field push totals differ: project {totals[0]}, baseline {totals[1]}")


def _rows(project: Timings, baseline: Timings) -> list[Row]:
    def per_second(timings: Timings) -> float:
        return BATCH_OPS * len(timings.batches) / sum(timings.batches)

    def ms(timings: Timings, quantile: float) -> float:
        return 1000 * _quantile(timings.batches, quantile)

    return [
        Row(f"field push, {BATCH_OPS}-op batches (ops/s)", per_second(project), per_second(baseline)),
        Row("field push batch p50 (ms)", ms(project, 0.5), ms(baseline, 0.5), precision=1),
        Row("field push batch p95 (ms)", ms(project, 0.95), ms(baseline, 0.95), precision=1),
        Row("field push batch, traced peak (MiB)", project.peak / MIB, baseline.peak / MIB, precision=1),
    ]


def _quantile(values: Sequence[float], quantile: float) -> float:
    """Linear interpolation between the closest ranks (the median for 0.5)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(quantile * 100) - 1]
