"""A simulated field device (seed 004's offline client) and a flaky network in front of the API
(dev-only, like the fakes: the field-device e2e test and the chaos run drive it).

The device keeps its own records and a queue of operations (the seed's local ``sync_queue``)
while offline; ``sync`` pushes the queue over HTTP through ``requests`` with urllib3's retry
(exponential backoff on connection errors, lost responses and 5xx; every push is safe to repeat
because each operation carries its opId), sets each record's ``sync_status`` from the results,
then pulls until the server has nothing more.

A sale is voided by a ``delete`` of it (``void_sale``; the server takes it from an admin_negocio's
device only). The device keeps the void as a record of its own (collection ``voids``, keyed by
the delete's opId, which is the server's void id) and marks the sale ``voided``; a device whose
sale another device voided learns it from the pull. A voided sale no longer counts in the
device's debts, kilos or money collected.
"""

import itertools
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from http.server import BaseHTTPRequestHandler
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from local.loopback import LoopbackServer

CENT = Decimal("0.01")


class Fault(StrEnum):
    REFUSE = "refuse"  # the connection closes before the request reaches the API
    LOSE_RESPONSE = "lose_response"  # the API applies the request; the answer never arrives
    UNAVAILABLE = "unavailable"  # 503 without reaching the API
    BAD_GATEWAY_AFTER = "bad_gateway_after"  # the API applies it; the device sees a 502


class FlakyNetwork(LoopbackServer):
    """An HTTP hop between the device and the API that injects the planned faults in turn
    (None: pass through), then passes everything once the plan is spent."""

    def __init__(self, upstream: str, plan: Iterable[Fault | None], host: str = "127.0.0.1") -> None:
        self.upstream = upstream.rstrip("/")
        self.injected: list[Fault] = []
        self.forwarded = 0
        self._plan: Iterator[Fault | None] = iter(plan)
        self._lock = threading.Lock()
        super().__init__(_handler(self), host, 0, "flaky-network")

    def next_fault(self) -> Fault | None:
        with self._lock:
            fault = next(self._plan, None)
            if fault is not None:
                self.injected.append(fault)
            return fault

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> requests.Response:
        with self._lock:
            self.forwarded += 1
        return requests.request(method, f"{self.upstream}{path}", headers=headers, data=body, timeout=60)


def _handler(network: FlakyNetwork) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            self._relay()

        def do_POST(self) -> None:
            self._relay()

        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fault = network.next_fault()
            if fault is Fault.REFUSE:
                self.close_connection = True
                return
            if fault is Fault.UNAVAILABLE:
                self._answer(503, b'{"error": {"code": "unavailable", "message": "injected"}}')
                return
            headers = {
                k: v for k, v in self.headers.items() if k.lower() in {"authorization", "content-type"}
            }
            answer = network.forward(self.command, self.path, headers, body)
            if fault is Fault.LOSE_RESPONSE:
                self.close_connection = True
                return
            if fault is Fault.BAD_GATEWAY_AFTER:
                self._answer(502, b'{"error": {"code": "bad_gateway", "message": "injected"}}')
                return
            self._answer(answer.status_code, answer.content)

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@dataclass
class QueuedOperation:
    """The seed's sync_queue row."""

    op_id: uuid.UUID
    operation_type: str
    collection: str
    data: dict[str, Any]
    created_at: datetime
    attempts: int = 0
    last_error: str | None = None

    def wire(self) -> dict[str, Any]:
        return {
            "opId": str(self.op_id),
            "operationType": self.operation_type,
            "collection": self.collection,
            "data": self.data,
            "clientCreatedAt": self.created_at.isoformat(),
        }


@dataclass
class LocalRecord:
    collection: str
    data: dict[str, Any]
    sync_status: str = "pending"
    sync_attempts: int = 0
    server_version: int | None = None
    voided: bool = False  # a sale this device voided, or whose void it pulled


@dataclass
class SimulatedDevice:
    api_url: str
    credential: str
    products: dict[str, uuid.UUID]
    batch_size: int = 500
    records: dict[uuid.UUID, LocalRecord] = field(default_factory=dict)
    queue: list[QueuedOperation] = field(default_factory=list)
    server: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # what pull returned
    cursor: str | None = None
    pushes: int = 0
    replayed: int = 0  # results the server answered from its operation log (the opId had landed)
    seller_id: uuid.UUID | None = None  # the seller signed in, when known (their distribution)
    _clock: Iterator[int] = field(default_factory=itertools.count)

    # ---------------------------------------------------------------- offline work

    def add_customer(self, name: str, phone: str | None = None) -> uuid.UUID:
        customer_id = uuid.uuid4()
        data = {"id": str(customer_id), "name": name, **({"phone": phone} if phone else {})}
        self._record("customers", customer_id, data, "create")
        return customer_id

    def rename_customer(self, customer_id: uuid.UUID, name: str) -> None:
        record = self.records[customer_id]
        record.data["name"] = name
        # The version this device last saw; a queued create counts as version 1.
        version = record.server_version or 1
        self._enqueue("customers", "update", {"id": str(customer_id), "version": version, "name": name})
        record.sync_status = "pending"

    def sell(self, kilos: str, unit_price: str = "9.90", client_id: uuid.UUID | None = None) -> uuid.UUID:
        """A one-line sale of chicken: on credit when it has a customer, else cash."""
        sale_id = uuid.uuid4()
        subtotal = (Decimal(kilos) * Decimal(unit_price)).quantize(CENT)
        data: dict[str, Any] = {
            "id": str(sale_id),
            "saleType": "credito" if client_id else "contado",
            "totalAmount": str(subtotal),
            "amountPaid": "0" if client_id else str(subtotal),
            "netWeight": kilos,
            "saleDate": self._now().isoformat(),
            "items": [
                {
                    "productId": str(self.products["pollo"]),
                    "productName": "Pollo entero",
                    "quantity": kilos,
                    "unitPrice": unit_price,
                    "subtotal": str(subtotal),
                }
            ],
        }
        if client_id:
            data["clientId"] = str(client_id)
        self._record("sales", sale_id, data, "create")
        return sale_id

    def pay(self, client_id: uuid.UUID, amount: str, method: str = "yape") -> uuid.UUID:
        abono_id = uuid.uuid4()
        data = {"id": str(abono_id), "clientId": str(client_id), "amount": amount, "paymentMethod": method}
        self._record("abonos", abono_id, data, "create")
        return abono_id

    def void_sale(self, sale_id: uuid.UUID, reason: str | None = None) -> uuid.UUID:
        """A void of a sale (this device's own or one it pulled): the delete the server expects,
        queued; returns its opId, the void's id on the server."""
        data: dict[str, Any] = {"id": str(sale_id), **({"reason": reason} if reason else {})}
        operation = self._enqueue("sales", "delete", data)
        void = {"id": str(operation.op_id), "saleId": str(sale_id), "reason": reason or "voided on device"}
        self.records[operation.op_id] = LocalRecord("voids", void)
        if (sale := self.records.get(sale_id)) is not None:
            sale.voided = True
        return operation.op_id

    def assign_distribution(
        self, vendedor_id: uuid.UUID, kilos: str, punto_venta: str | None = None, fecha: date | None = None
    ) -> uuid.UUID:
        """An admin_negocio's distribution of ``kilos`` to a seller (open: activo)."""
        distribucion_id = uuid.uuid4()
        data: dict[str, Any] = {
            "id": str(distribucion_id),
            "vendedorId": str(vendedor_id),
            "kilosAsignados": kilos,
            "fecha": (fecha or self._now().date()).isoformat(),
            **({"puntoVenta": punto_venta} if punto_venta else {}),
        }
        self._record("distribuciones", distribucion_id, data, "create")
        return distribucion_id

    def sales(self, *, voided: bool | None = False) -> dict[uuid.UUID, LocalRecord]:
        """This device's sales: not voided (default), voided (True) or all (None)."""
        return {
            record_id: r
            for record_id, r in self.records.items()
            if r.collection == "sales" and (voided is None or r.voided == voided)
        }

    def voided_sales(self) -> set[str]:
        """Every sale this device knows voided: its own so marked and those it voided."""
        own = {str(record_id) for record_id in self.sales(voided=True)}
        return own | {r.data["saleId"] for r in self.records.values() if r.collection == "voids"}

    def kilos_sold(self) -> Decimal:
        """The kilos of this device's sales, voided ones excluded."""
        return sum((Decimal(r.data["netWeight"]) for r in self.sales().values()), Decimal(0))

    def collected(self) -> Decimal:
        """The money this device's sales collected (amountPaid), voided ones excluded."""
        return sum((Decimal(r.data["amountPaid"]) for r in self.sales().values()), Decimal(0))

    def expected_debt(self, client_id: uuid.UUID) -> Decimal:
        """The customer's debt by this device's own records (voided sales excluded)."""
        key = str(client_id)
        sales = sum(
            (
                Decimal(r.data["totalAmount"]) - Decimal(r.data["amountPaid"])
                for r in self.sales().values()
                if r.data.get("clientId") == key
            ),
            Decimal(0),
        )
        abonos = sum(
            (
                Decimal(r.data["amount"])
                for r in self.records.values()
                if r.collection == "abonos" and r.data["clientId"] == key
            ),
            Decimal(0),
        )
        return sales - abonos

    # ---------------------------------------------------------------- sync

    def session(self, retries: int = 10) -> requests.Session:
        session = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=retries,
            backoff_factor=0.05,  # 0.05, 0.1, 0.2, ... s: short for a test, exponential all the same
            backoff_max=2,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=None,  # POST too: a push repeats safely (opIds)
            raise_on_status=False,
        )
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.headers["Authorization"] = f"Bearer {self.credential}"
        return session

    def sync(self, session: requests.Session) -> None:
        """Push the queue in batches, settle each record's sync_status, then pull everything new."""
        while self.queue:
            batch = self.queue[: self.batch_size]
            for operation in batch:
                operation.attempts += 1
            answer = session.post(
                f"{self.api_url}/sync/push", json={"operations": [op.wire() for op in batch]}, timeout=60
            )
            self.pushes += 1
            answer.raise_for_status()
            self._settle(batch, answer.json()["results"])
            self.queue = [op for op in self.queue if op not in batch or op.last_error is not None]
            if any(op.last_error for op in batch):
                break  # errors need a person (seed 004: manual intervention)
        self.pull(session)

    def pull(self, session: requests.Session) -> None:
        while True:
            params = {"cursor": self.cursor} if self.cursor else {}
            answer = session.get(f"{self.api_url}/sync/pull", params=params, timeout=60)
            answer.raise_for_status()
            page = answer.json()
            for change in page["changes"]:
                key = (change["collection"], change["id"])
                if change["deleted"]:
                    self.server.pop(key, None)
                else:
                    self.server[key] = {**change["data"], "serverVersion": change["serverVersion"]}
                    self._learn_void(change["collection"], change["data"])
            self.cursor = page["nextCursor"]
            if not page["hasMore"]:
                return

    def _settle(self, batch: list[QueuedOperation], results: list[dict[str, Any]]) -> None:
        if [r["opId"] for r in results] != [str(op.op_id) for op in batch]:
            raise RuntimeError("push results out of order")
        for operation, result in zip(batch, results, strict=True):
            # A void is its own record (keyed by its opId); any other operation names its record.
            record = self.records.get(operation.op_id) or self.records[uuid.UUID(operation.data["id"])]
            if result.get("replayed"):
                self.replayed += 1
            if result["status"] == "synced":
                record.sync_status = "synced"
                record.server_version = result["serverVersion"]
                operation.last_error = None
            else:
                record.sync_status = "error"
                record.sync_attempts += 1
                operation.last_error = result["error"]["code"]

    # ---------------------------------------------------------------- internals

    def _record(
        self, collection: str, record_id: uuid.UUID, data: dict[str, Any], operation_type: str
    ) -> None:
        self.records[record_id] = LocalRecord(collection, dict(data))
        self._enqueue(collection, operation_type, data)

    def _enqueue(self, collection: str, operation_type: str, data: dict[str, Any]) -> QueuedOperation:
        operation = QueuedOperation(uuid.uuid4(), operation_type, collection, dict(data), self._now())
        self.queue.append(operation)
        return operation

    def _learn_void(self, collection: str, data: dict[str, Any]) -> None:
        """A pulled void of one of this device's sales marks the sale voided."""
        if collection == "voids" and data.get("saleId"):
            sale = self.records.get(uuid.UUID(data["saleId"]))
            if sale is not None and sale.collection == "sales":
                sale.voided = True

    def _now(self) -> datetime:
        # Deterministic, increasing device time.
        return datetime(2026, 11, 20, 8, 0, tzinfo=UTC).replace(second=next(self._clock) % 60)
