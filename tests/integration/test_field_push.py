"""POST /sync/push's service on real Postgres, as the sync function's role (pos_gateway_field).

Devices push through ``PushService`` with their authenticated ``Device``; the owner connection
arranges and inspects (it bypasses row-level security). Amounts are compared as Decimals.
"""

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from local import seed
from local.database import Database
from pos_gateway.db import ConnectionFactory
from pos_gateway.field.devices import Device
from pos_gateway.field.loyalty_feed import FieldCustomer, FieldSaleEvent
from pos_gateway.field.operations import OperationResult, OperationStatus, PushResponse
from pos_gateway.field.push import PushService
from pos_gateway.http import ApiError
from pos_gateway.loyalty.crediting import CreditingService
from pos_gateway.loyalty.models import ProcessingOutcome
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider
from tests.field_support import (
    NOW,
    FieldBusiness,
    Seller,
    add_device,
    field_business,
    new_abono,
    new_customer,
    new_sale,
    operation,
)
from tests.helpers import count, one

FIELD_ROLE = "pos_gateway_field"


@dataclass
class EnqueueRecorder:
    """The enqueue callback: remembers each request and whether its event was committed by then."""

    owner: psycopg.Connection[Any]
    requests: list[CreditRequest] = field(default_factory=list)
    committed: list[bool] = field(default_factory=list)

    def __call__(self, request: CreditRequest) -> bool:
        self.requests.append(request)
        # The owner is another session: it sees the raw event only once the push committed.
        seen = count(
            self.owner,
            "SELECT count(*) AS n FROM pos.pos_webhook_events_raw WHERE id = %s",
            (request.raw_event_id,),
        )
        self.committed.append(seen == 1)
        return True


@pytest.fixture(scope="module")
def connections(database: Database) -> Iterator[ConnectionFactory]:
    factory = database.connections(FIELD_ROLE)
    yield factory
    factory.close()


@pytest.fixture
def recorder(owner: psycopg.Connection[Any]) -> EnqueueRecorder:
    return EnqueueRecorder(owner)


@pytest.fixture
def service(connections: ConnectionFactory, recorder: EnqueueRecorder) -> PushService:
    return PushService(connections, recorder)


# ---------------------------------------------------------------- helpers


def body_of(*operations: dict[str, Any]) -> bytes:
    return json.dumps({"operations": list(operations)}).encode()


def device_of(connections: ConnectionFactory, seller: Seller) -> Device:
    return seller.device(connections.get())


def push_as(
    service: PushService, connections: ConnectionFactory, seller: Seller, *operations: dict[str, Any]
) -> PushResponse:
    return service.push(device_of(connections, seller), body_of(*operations))


def push_one(
    service: PushService, connections: ConnectionFactory, seller: Seller, op: dict[str, Any]
) -> OperationResult:
    response = push_as(service, connections, seller, op)
    assert len(response.results) == 1
    return response.results[0]


def outcome(result: OperationResult) -> tuple[str, str | None]:
    return result.status.value, result.error.code if result.error else None


def stock(owner: psycopg.Connection[Any], business: FieldBusiness, product: str) -> Decimal:
    row = owner.execute(
        "SELECT quantity FROM field_sales.inventory WHERE tenant_id = %s AND product_id = %s",
        (business.tenant_id, business.products[product]),
    ).fetchone()
    quantity: Decimal = one(row)["quantity"]
    return quantity


def customer_row(
    owner: psycopg.Connection[Any], business: FieldBusiness, customer_id: uuid.UUID
) -> dict[str, Any]:
    row: dict[str, Any] = one(
        owner.execute(
            "SELECT * FROM field_sales.customers WHERE tenant_id = %s AND id = %s",
            (business.tenant_id, customer_id),
        ).fetchone()
    )
    return row


def debt(owner: psycopg.Connection[Any], business: FieldBusiness, customer_id: uuid.UUID) -> Decimal:
    """The kept debt, checked against the records: credit sales − abonos, voided ones excluded."""
    kept: Decimal = customer_row(owner, business, customer_id)["debt"]
    summed = one(
        owner.execute(
            """
            SELECT (SELECT coalesce(sum(s.balance_due), 0) FROM field_sales.sales s
                     WHERE s.tenant_id = %(t)s AND s.client_id = %(c)s AND s.sale_type = 'credito'
                       AND NOT EXISTS (SELECT 1 FROM field_sales.voids v WHERE v.tenant_id = s.tenant_id
                                                                          AND v.sale_id = s.id))
                 - (SELECT coalesce(sum(a.amount), 0) FROM field_sales.abonos a
                     WHERE a.tenant_id = %(t)s AND a.client_id = %(c)s
                       AND NOT EXISTS (SELECT 1 FROM field_sales.voids v WHERE v.tenant_id = a.tenant_id
                                                                          AND v.abono_id = a.id)) AS debt
            """,
            {"t": business.tenant_id, "c": customer_id},
        ).fetchone()
    )["debt"]
    assert kept == summed
    return kept


def distribution_row(
    owner: psycopg.Connection[Any], business: FieldBusiness, distribucion_id: str
) -> dict[str, Any]:
    row: dict[str, Any] = one(
        owner.execute(
            "SELECT * FROM field_sales.distribuciones WHERE tenant_id = %s AND id = %s",
            (business.tenant_id, distribucion_id),
        ).fetchone()
    )
    return row


TABLES = (
    "customers",
    "sales",
    "sale_items",
    "abonos",
    "voids",
    "distribuciones",
    "inventory",
    "sync_operations",
)


def row_counts(owner: psycopg.Connection[Any], business: FieldBusiness) -> dict[str, int]:
    counts = {
        table: count(
            owner,
            f"SELECT count(*) AS n FROM field_sales.{table} WHERE tenant_id = %s",
            (business.tenant_id,),
        )
        for table in TABLES
    }
    counts["raw_events"] = raw_events(owner, business)
    return counts


def raw_events(owner: psycopg.Connection[Any], business: FieldBusiness) -> int:
    return count(
        owner,
        "SELECT count(*) AS n FROM pos.pos_webhook_events_raw WHERE tenant_id = %s",
        (business.tenant_id,),
    )


def tracked_state(owner: psycopg.Connection[Any], business: FieldBusiness) -> list[dict[str, Any]]:
    """Every change-tracked row of the tenant with its change marker: a replay must move none."""
    return owner.execute(
        """
        SELECT 'customers' AS t, id, change_seq
          FROM field_sales.customers WHERE tenant_id = %(t)s
        UNION ALL SELECT 'inventory', product_id, change_seq
          FROM field_sales.inventory WHERE tenant_id = %(t)s
        UNION ALL SELECT 'distribuciones', id, change_seq
          FROM field_sales.distribuciones WHERE tenant_id = %(t)s
        ORDER BY 1, 2
        """,
        {"t": business.tenant_id},
    ).fetchall()


def distribucion(vendedor: Seller, kilos: str, estado: str = "activo", **fields: Any) -> dict[str, Any]:
    return operation(
        "distribuciones",
        {
            "id": str(uuid.uuid4()),
            "vendedorId": str(vendedor.seller_id),
            "kilosAsignados": kilos,
            "fecha": NOW.date().isoformat(),
            "estado": estado,
            **fields,
        },
    )


def delete(collection: str, record_id: Any, **fields: Any) -> dict[str, Any]:
    return operation(collection, {"id": str(record_id), **fields}, "delete")


def update(collection: str, record_id: Any, version: int, **fields: Any) -> dict[str, Any]:
    return operation(collection, {"id": str(record_id), "version": version, **fields}, "update")


def id_of(op: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(op["data"]["id"])


# ---------------------------------------------------------------- a full batch and its replay


@dataclass(frozen=True)
class Batch:
    business: FieldBusiness
    body: bytes
    expected: list[tuple[str, str | None, uuid.UUID | None, int | None]]  # status, code, recordId, version
    customers: list[uuid.UUID]
    first: PushResponse


def _mixed_batch(business: FieldBusiness) -> tuple[list[dict[str, Any]], list[Any], list[uuid.UUID]]:
    """500 operations in blocks of ten: five land, five are refused (for reasons that do not
    depend on what landed before them, so a replay answers them alike)."""
    operations: list[dict[str, Any]] = []
    expected: list[Any] = []
    customers: list[uuid.UUID] = []
    for block in range(50):
        customer_id = uuid.uuid4()
        customers.append(customer_id)
        created = new_customer(customer_id)
        credit = new_sale(
            business, kilos="1.000", unit_price="10.00", sale_type="credito", client_id=customer_id
        )
        abono = new_abono(customer_id, "4.00")
        cash = new_sale(business, kilos="0.500", unit_price="9.90")
        bad_subtotal = new_sale(business)
        bad_subtotal["data"]["items"][0]["subtotal"] = "1.00"
        unknown_product = new_sale(business)
        unknown_product["data"]["items"][0]["productId"] = str(uuid.uuid4())
        not_an_operation: dict[str, Any] = (
            {"collection": "customers"} if block % 2 else operation("facturas", {"id": str(uuid.uuid4())})
        )
        changed_sale = update("sales", credit["data"]["id"], 1, amountPaid="1.00")
        oversold = new_sale(business, kilos="5000", unit_price="0.50", product="huevo")
        renamed = update("customers", customer_id, 1, notes=f"bloque {block}")
        operations += [
            created,
            credit,
            abono,
            cash,
            bad_subtotal,
            unknown_product,
            not_an_operation,
            changed_sale,
            oversold,
            renamed,
        ]
        expected += [
            ("synced", None, customer_id, 1),
            ("synced", None, id_of(credit), 1),
            ("synced", None, id_of(abono), 1),
            ("synced", None, id_of(cash), 1),
            ("error", "validation_failed", id_of(bad_subtotal), None),
            ("error", "unknown_reference", id_of(unknown_product), None),
            ("error", "validation_failed", None, None)
            if block % 2
            else ("error", "unknown_collection", id_of(not_an_operation), None),
            ("error", "immutable_record", id_of(changed_sale), None),
            ("error", "insufficient_stock", id_of(oversold), None),
            ("synced", None, customer_id, 2),
        ]
    return operations, expected, customers


@pytest.fixture(scope="module")
def batch(owner: psycopg.Connection[Any], connections: ConnectionFactory) -> Batch:
    business = field_business(owner, stock="1000.000")
    operations, expected, customers = _mixed_batch(business)
    assert len(operations) == 500
    body = body_of(*operations)
    first = PushService(connections).push(device_of(connections, business.seller), body)
    return Batch(business, body, expected, customers, first)


def test_a_500_operation_batch_answers_each_operation_and_writes_only_the_valid_ones(
    owner: psycopg.Connection[Any], batch: Batch
) -> None:
    results = batch.first.results
    assert [result.index for result in results] == list(range(500))
    assert [
        (r.status.value, r.error.code if r.error else None, r.record_id, r.server_version) for r in results
    ] == (batch.expected)
    assert not any(result.replayed for result in results)
    assert batch.first.summary.model_dump() == {"synced": 250, "error": 250, "conflict": 0, "replayed": 0}
    # The operations that could not be read still say which one they were, when they can.
    assert results[6].op_id is not None
    assert results[16].op_id is None
    assert results[4].error is not None
    assert results[4].error.fields[0]["loc"] == "data.items.0"
    assert results[5].error is not None
    assert results[5].error.fields[0]["loc"] == "data.items.0.productId"
    oversold = results[8].error
    assert oversold is not None
    assert oversold.fields == [
        {
            "loc": "data.items.0.quantity",
            "type": "insufficient_stock",
            "msg": "more than the product's stock",
            "productId": str(batch.business.products["huevo"]),
            "available": "1000.000",
            "requested": "5000",
        }
    ]

    business = batch.business
    assert row_counts(owner, business) == {
        "customers": 50,
        "sales": 100,
        "sale_items": 100,
        "abonos": 50,
        "voids": 0,
        "distribuciones": 0,
        "inventory": 2,
        "sync_operations": 250,
        "raw_events": 0,
    }
    assert stock(owner, business, "pollo") == Decimal("925.000")  # 1000 − 50 × 1 − 50 × 0.5
    assert stock(owner, business, "huevo") == Decimal("1000.000")
    for block, customer_id in enumerate(batch.customers):
        assert debt(owner, business, customer_id) == Decimal("6.00")
        row = customer_row(owner, business, customer_id)
        assert (row["version"], row["notes"]) == (2, f"bloque {block}")


def test_the_same_batch_again_is_answered_from_the_first_results_and_writes_nothing(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, batch: Batch
) -> None:
    business = batch.business
    before = (row_counts(owner, business), tracked_state(owner, business))

    again = PushService(connections).push(device_of(connections, business.seller), batch.body)

    assert (row_counts(owner, business), tracked_state(owner, business)) == before
    assert again.summary.model_dump() == {"synced": 250, "error": 250, "conflict": 0, "replayed": 250}
    for first, second in zip(batch.first.results, again.results, strict=True):
        landed = first.status is OperationStatus.SYNCED
        assert second.replayed is landed
        assert second.model_dump(exclude={"replayed"}) == first.model_dump(exclude={"replayed"})


# ---------------------------------------------------------------- two devices at once


def test_interleaved_pushes_from_two_devices_apply_one_after_another(
    owner: psycopg.Connection[Any], database: Database
) -> None:
    business = field_business(owner, stock="1000.000")
    customer_id = uuid.uuid4()
    setup = database.connections(FIELD_ROLE)
    try:
        push_one(PushService(setup), setup, business.owner, new_customer(customer_id))
    finally:
        setup.close()
    sellers = [business.seller, business.owner, add_device(owner, business, business.seller)]
    start = threading.Barrier(len(sellers))

    def sell(seller: Seller) -> list[PushResponse]:
        factory = database.connections(FIELD_ROLE)
        try:
            service = PushService(factory)
            device = seller.device(factory.get())
            start.wait()
            responses = []
            for round_no in range(5):
                operations = []
                for line in range(20):
                    # Both products in every batch, in alternating order: rows locked both ways round.
                    product = ("pollo", "huevo")[(round_no + line) % 2]
                    operations.append(
                        new_sale(
                            business,
                            kilos="1.250",
                            unit_price="2.00",
                            product=product,
                            sale_type="credito",
                            client_id=customer_id,
                            amount_paid="0.50",
                        )
                    )
                responses.append(service.push(device, body_of(*operations)))
            return responses
        finally:
            factory.close()

    with ThreadPoolExecutor(len(sellers)) as pool:
        pushed = [response for responses in pool.map(sell, sellers) for response in responses]

    assert all(response.summary.synced == 20 for response in pushed)
    # 3 devices × 5 batches × 20 sales, half of each product, 1.250 each; 2.00 due on each sale.
    assert stock(owner, business, "pollo") == Decimal("1000.000") - 150 * Decimal("1.250")
    assert stock(owner, business, "huevo") == Decimal("1000.000") - 150 * Decimal("1.250")
    assert debt(owner, business, customer_id) == 300 * Decimal("2.00")


def test_a_retry_sent_while_the_batch_is_still_applying_gets_the_same_results(
    owner: psycopg.Connection[Any], database: Database
) -> None:
    business = field_business(owner, stock="1000.000")
    body = body_of(*(new_sale(business, kilos="1.000") for _ in range(50)))
    start = threading.Barrier(2)

    def send() -> PushResponse:
        factory = database.connections(FIELD_ROLE)
        try:
            device = business.seller.device(factory.get())
            start.wait()
            return PushService(factory).push(device, body)
        finally:
            factory.close()

    with ThreadPoolExecutor(2) as pool:
        first, second = [future.result() for future in [pool.submit(send), pool.submit(send)]]

    assert sorted([first.summary.replayed, second.summary.replayed]) == [0, 50]
    assert [r.model_dump(exclude={"replayed"}) for r in first.results] == [
        r.model_dump(exclude={"replayed"}) for r in second.results
    ]
    assert stock(owner, business, "pollo") == Decimal("950.000")


# ---------------------------------------------------------------- customers


def test_a_stale_customer_update_is_a_conflict_with_the_servers_record(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner)
    customer_id = uuid.uuid4()
    push_one(service, connections, business.seller, new_customer(customer_id, phone="987 654 321"))
    first = push_one(
        service, connections, business.owner, update("customers", customer_id, 1, name="Doña Rosa")
    )

    stale = push_one(
        service, connections, business.seller, update("customers", customer_id, 1, address="Jr. Lima 1")
    )

    assert (first.status, first.server_version) == (OperationStatus.SYNCED, 2)
    assert outcome(stale) == ("conflict", "stale_version")
    assert stale.server_version == 2
    assert stale.record_id == customer_id
    current = one(stale.current)
    assert {key: current[key] for key in ("id", "name", "phone", "address", "version", "debt")} == {
        "id": str(customer_id),
        "name": "Doña Rosa",
        "phone": "987 654 321",
        "address": None,
        "version": 2,
        "debt": "0.0000",
    }
    assert customer_row(owner, business, customer_id)["address"] is None


def test_customer_rules(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner)
    customer_id = uuid.uuid4()
    push_one(service, connections, business.seller, new_customer(customer_id))
    push_one(
        service,
        connections,
        business.seller,
        new_sale(business, sale_type="credito", client_id=customer_id, kilos="1.000", unit_price="5.00"),
    )

    response = push_as(
        service,
        connections,
        business.seller,
        new_customer(customer_id),  # the same id under another opId
        update("customers", customer_id, 1, name=None),
        update("customers", uuid.uuid4(), 1, name="Nadie"),
        delete("customers", customer_id),
        delete("customers", customer_id, version=1),
        new_abono(customer_id, "5.00"),
        delete("customers", customer_id, version=1),
        new_sale(business, client_id=customer_id),
    )

    assert [outcome(result) for result in response.results] == [
        ("error", "record_exists"),
        ("error", "validation_failed"),
        ("error", "unknown_reference"),
        ("error", "validation_failed"),
        ("error", "customer_has_debt"),
        ("synced", None),
        ("synced", None),
        ("error", "unknown_reference"),
    ]
    assert response.results[6].server_version == 2
    assert customer_row(owner, business, customer_id)["deleted_at"] is not None


# ---------------------------------------------------------------- stock and distributions


def test_an_oversell_is_refused_when_the_business_sells_only_what_it_has(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner, stock="100.000")
    before = row_counts(owner, business)

    result = push_one(service, connections, business.seller, new_sale(business, kilos="150.000"))

    assert outcome(result) == ("error", "insufficient_stock")
    assert one(result.error).fields[0] | {"msg": None} == {
        "loc": "data.items.0.quantity",
        "type": "insufficient_stock",
        "msg": None,
        "productId": str(business.products["pollo"]),
        "available": "100.000",
        "requested": "150.000",
    }
    assert stock(owner, business, "pollo") == Decimal("100.000")
    assert row_counts(owner, business) == before


def test_lines_of_one_product_are_added_up_against_its_stock(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner, stock="10.000")
    sale = new_sale(business, kilos="6.000", unit_price="1.00")
    sale["data"]["items"].append(dict(sale["data"]["items"][0]))
    sale["data"]["totalAmount"] = sale["data"]["amountPaid"] = "12.00"

    result = push_one(service, connections, business.seller, sale)

    assert outcome(result) == ("error", "insufficient_stock")
    assert one(result.error).fields[0]["requested"] == "12.000"
    assert stock(owner, business, "pollo") == Decimal("10.000")


@pytest.mark.parametrize(
    ("setting", "stock_after"),
    [
        ({"permitir_venta_sin_stock": True}, "-50.000"),  # selling without stock: it goes negative
        ({"control_kilos": False}, "100.000"),  # without kilo control: the stock is left alone
    ],
    ids=["sells-without-stock", "no-kilo-control"],
)
def test_an_oversell_lands_when_the_settings_allow_it(
    owner: psycopg.Connection[Any],
    connections: ConnectionFactory,
    service: PushService,
    setting: dict[str, bool],
    stock_after: str,
) -> None:
    business = field_business(owner, stock="100.000", **setting)

    result = push_one(service, connections, business.seller, new_sale(business, kilos="150.000"))

    assert outcome(result) == ("synced", None)
    assert stock(owner, business, "pollo") == Decimal(stock_after)


def test_with_distributions_a_sale_counts_against_the_sellers_open_one(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner, stock="100.000", usar_distribucion=True)
    no_distribution = push_one(service, connections, business.seller, new_sale(business, kilos="1.000"))
    assigned = distribucion(business.seller, "30.000")
    assert outcome(push_one(service, connections, business.owner, assigned)) == ("synced", None)
    distribucion_id = assigned["data"]["id"]

    sold = push_one(
        service, connections, business.seller, new_sale(business, kilos="10.000", unit_price="9.90")
    )
    weighed = new_sale(business, kilos="5.000", unit_price="1.00", product="huevo", netWeight="0")
    by_units = push_one(service, connections, business.seller, weighed)
    too_much = push_one(service, connections, business.seller, new_sale(business, kilos="25.000"))

    assert outcome(no_distribution) == ("error", "no_open_distribution")
    assert outcome(sold) == ("synced", None)
    assert outcome(by_units) == ("synced", None)  # units, not kilos: nothing counted
    assert outcome(too_much) == ("error", "insufficient_stock")
    assert one(too_much.error).fields[0] | {"msg": None} == {
        "loc": "data.distribucionId",
        "type": "insufficient_stock",
        "msg": None,
        "distribucionId": distribucion_id,
        "available": "20.000",
        "requested": "25.000",
    }
    row = distribution_row(owner, business, distribucion_id)
    assert (row["kilos_vendidos"], row["monto_recaudado"], row["version"]) == (
        Decimal("10.000"),
        Decimal("104.0000"),
        1,
    )
    assert stock(owner, business, "pollo") == Decimal("90.000")
    sale = one(
        owner.execute(
            "SELECT distribucion_id, distribucion_kilos FROM field_sales.sales"
            " WHERE tenant_id = %s AND id = %s",
            (business.tenant_id, sold.record_id),
        ).fetchone()
    )
    assert sale == {"distribucion_id": uuid.UUID(distribucion_id), "distribucion_kilos": Decimal("10.000")}


def test_distribution_rules(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner, stock="100.000", usar_distribucion=True, permitir_venta_sin_stock=True)
    assigned = distribucion(business.seller, "10.000")
    distribucion_id = assigned["data"]["id"]
    by_seller = push_one(service, connections, business.seller, distribucion(business.seller, "5.000"))
    created = push_one(service, connections, business.owner, assigned)
    second = push_one(service, connections, business.owner, distribucion(business.seller, "5.000"))
    unknown_seller = distribucion(business.seller, "5.000", vendedorId=str(uuid.uuid4()))
    sold = push_one(service, connections, business.seller, new_sale(business, kilos="12.000"))

    response = push_as(
        service,
        connections,
        business.seller,
        update("distribuciones", distribucion_id, 1, kilosAsignados="50.000"),
        update("distribuciones", distribucion_id, 1, estado="en_ruta"),
        update("distribuciones", distribucion_id, 1, estado="cerrado"),
        update("distribuciones", distribucion_id, 2, estado="activo"),
        delete("distribuciones", distribucion_id),
    )
    by_owner = push_as(
        service,
        connections,
        business.owner,
        unknown_seller,
        update("distribuciones", distribucion_id, 2, kilosAsignados="11.000"),
        update("distribuciones", distribucion_id, 2, kilosAsignados="12.000", puntoVenta="Mercado"),
        update("distribuciones", uuid.uuid4(), 1, estado="cerrado"),
    )

    assert [outcome(r) for r in (by_seller, created, second, sold)] == [
        ("error", "forbidden_role"),
        ("synced", None),
        ("error", "distribution_already_open"),
        ("synced", None),  # over the kilos assigned: allowed when selling without stock
    ]
    assert [outcome(result) for result in response.results] == [
        ("error", "forbidden_role"),
        ("synced", None),
        ("conflict", "stale_version"),
        ("error", "invalid_transition"),
        ("error", "unsupported_operation"),
    ]
    current = one(response.results[2].current)
    assert (current["estado"], current["version"], current["kilosVendidos"]) == ("en_ruta", 2, "12.000")
    assert [outcome(result) for result in by_owner.results] == [
        ("error", "unknown_reference"),
        ("error", "validation_failed"),
        ("synced", None),
        ("error", "unknown_reference"),
    ]
    assert one(by_owner.results[1].error).fields[0]["loc"] == "data.kilosAsignados"
    row = distribution_row(owner, business, distribucion_id)
    assert (row["estado"], row["kilos_asignados"], row["punto_venta"], row["version"]) == (
        "en_ruta",
        Decimal("12.000"),
        "Mercado",
        3,
    )


# ---------------------------------------------------------------- debt


def test_a_credit_sale_and_two_abonos_leave_the_exact_debt(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner)
    customer_id = uuid.uuid4()
    credit = new_sale(
        business,
        kilos="2.500",
        unit_price="9.90",
        sale_type="credito",
        client_id=customer_id,
        amount_paid="5.05",
    )

    response = push_as(
        service,
        connections,
        business.seller,
        new_customer(customer_id),
        credit,  # 24.75, 5.05 paid: 19.70 owed
        new_abono(customer_id, "10.10", "yape"),
        new_abono(customer_id, "0.20"),
        new_abono(customer_id, "9.41"),  # one cent more than the 9.40 left
    )

    assert [outcome(result) for result in response.results] == [("synced", None)] * 4 + [
        ("error", "abono_exceeds_debt")
    ]
    assert one(response.results[4].error).fields[0] | {"msg": None} == {
        "loc": "data.amount",
        "type": "abono_exceeds_debt",
        "msg": None,
        "debt": "9.4000",
        "amount": "9.41",
    }
    assert debt(owner, business, customer_id) == Decimal("9.40")
    settled = push_one(service, connections, business.seller, new_abono(customer_id, "9.40"))
    assert outcome(settled) == ("synced", None)
    assert debt(owner, business, customer_id) == Decimal("0")


def test_an_abono_may_leave_a_credit_balance_when_the_business_allows_it(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner, permitir_saldo_a_favor=True)
    customer_id = uuid.uuid4()
    push_one(service, connections, business.seller, new_customer(customer_id))

    result = push_one(service, connections, business.seller, new_abono(customer_id, "20.00"))

    assert outcome(result) == ("synced", None)
    assert debt(owner, business, customer_id) == Decimal("-20.00")


# ---------------------------------------------------------------- voids


def test_voids_are_for_admins_undo_everything_and_happen_once(
    owner: psycopg.Connection[Any],
    connections: ConnectionFactory,
    service: PushService,
    recorder: EnqueueRecorder,
) -> None:
    business = field_business(owner, stock="100.000", usar_distribucion=True)
    customer_id = uuid.uuid4()
    assigned = distribucion(business.seller, "50.000")
    push_one(service, connections, business.owner, assigned)
    credit = new_sale(
        business,
        kilos="4.000",
        unit_price="10.00",
        sale_type="credito",
        client_id=customer_id,
        amount_paid="15.00",
    )
    abono = new_abono(customer_id, "5.00")
    landed = push_as(
        service,
        connections,
        business.seller,
        new_customer(customer_id, email="rosa@example.test"),
        credit,
        abono,
    )
    assert landed.summary.synced == 3
    assert debt(owner, business, customer_id) == Decimal("20.00")
    assert len(recorder.requests) == 1

    by_seller = push_one(service, connections, business.seller, delete("sales", id_of(credit)))
    voided = push_as(
        service,
        connections,
        business.owner,
        delete("sales", id_of(credit), reason="cliente devolvió el pollo"),
        delete("sales", id_of(credit)),
        delete("abonos", id_of(abono)),
        delete("abonos", id_of(abono)),
        delete("sales", uuid.uuid4()),
    )

    assert outcome(by_seller) == ("error", "forbidden_role")
    assert [outcome(result) for result in voided.results] == [
        ("synced", None),
        ("error", "already_voided"),
        ("synced", None),
        ("error", "already_voided"),
        ("error", "unknown_reference"),
    ]
    assert voided.results[0].record_id == id_of(credit)
    assert voided.results[0].server_version == 1
    assert debt(owner, business, customer_id) == Decimal("0")
    assert stock(owner, business, "pollo") == Decimal("100.000")
    row = distribution_row(owner, business, assigned["data"]["id"])
    assert (row["kilos_vendidos"], row["monto_recaudado"]) == (Decimal("0.000"), Decimal("0.0000"))
    void = one(
        owner.execute(
            "SELECT id, reason, voided_by FROM field_sales.voids WHERE tenant_id = %s AND sale_id = %s",
            (business.tenant_id, id_of(credit)),
        ).fetchone()
    )
    assert void == {
        "id": voided.results[0].op_id,
        "reason": "cliente devolvió el pollo",
        "voided_by": business.owner.seller_id,
    }
    # The sale was fed to loyalty: its void is too, once it committed.
    assert len(recorder.requests) == 2
    assert all(recorder.committed)
    event = one(
        owner.execute(
            "SELECT event_type, raw_payload FROM pos.pos_webhook_events_raw WHERE id = %s",
            (recorder.requests[1].raw_event_id,),
        ).fetchone()
    )
    assert event["event_type"] == "field.sale.voided"
    assert event["raw_payload"]["saleId"] == str(id_of(credit))
    assert event["raw_payload"]["totalAmount"] == "40.0000"


# ---------------------------------------------------------------- idempotency


def test_an_op_id_sent_again_with_other_content_is_refused(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner)
    sale = new_sale(business, kilos="1.000")
    push_one(service, connections, business.seller, sale)
    before = row_counts(owner, business)
    changed = json.loads(json.dumps(sale))
    changed["data"]["id"] = str(uuid.uuid4())

    reused = push_one(service, connections, business.seller, changed)
    same = push_one(service, connections, business.seller, sale)

    assert outcome(reused) == ("error", "op_id_reused")
    assert str(reused.op_id) == sale["opId"]
    assert outcome(same) == ("synced", None)
    assert same.replayed
    assert row_counts(owner, business) == before


def test_an_operation_refused_once_is_evaluated_again_when_resent(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner, stock="1.000")
    sale = new_sale(business, kilos="2.000")
    assert outcome(push_one(service, connections, business.seller, sale)) == ("error", "insufficient_stock")
    owner.execute(
        "UPDATE field_sales.inventory SET quantity = 5 WHERE tenant_id = %s AND product_id = %s",
        (business.tenant_id, business.products["pollo"]),
    )

    again = push_one(service, connections, business.seller, sale)

    assert outcome(again) == ("synced", None)
    assert not again.replayed
    assert stock(owner, business, "pollo") == Decimal("3.000")


def test_the_same_op_id_twice_in_one_batch_lands_once(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner)
    sale = new_sale(business, kilos="1.000")

    response = push_as(service, connections, business.seller, sale, sale)

    assert [(outcome(r), r.replayed) for r in response.results] == [
        (("synced", None), False),
        (("synced", None), True),
    ]
    assert stock(owner, business, "pollo") == Decimal("99.000")


# ---------------------------------------------------------------- the loyalty feed


def test_a_sale_to_a_customer_with_a_phone_feeds_loyalty_exactly_once(
    owner: psycopg.Connection[Any],
    connections: ConnectionFactory,
    service: PushService,
    recorder: EnqueueRecorder,
) -> None:
    business = field_business(owner)
    customer_id = uuid.uuid4()
    push_one(service, connections, business.seller, new_customer(customer_id, phone="987 654 321"))
    sale = new_sale(business, kilos="2.500", unit_price="9.90", client_id=customer_id)

    landed = push_one(service, connections, business.seller, sale)
    replayed = push_one(service, connections, business.seller, sale)

    assert outcome(landed) == ("synced", None)
    assert replayed.replayed
    assert raw_events(owner, business) == 1
    row = one(
        owner.execute(
            "SELECT id, provider, event_type, provider_event_id, merchant_account_id, raw_payload, raw_body"
            " FROM pos.pos_webhook_events_raw WHERE tenant_id = %s",
            (business.tenant_id,),
        ).fetchone()
    )
    expected = FieldSaleEvent(
        tenant_id=business.tenant_id,
        sale_id=id_of(sale),
        seller_id=business.seller.seller_id,
        total_amount=Decimal("24.75"),
        currency="PEN",
        sale_date=NOW,
        customer=FieldCustomer(id=customer_id, phone="987 654 321", country="PE"),
    )
    assert row["provider"] == "field"
    assert row["event_type"] == "field.sale.created"
    assert row["provider_event_id"] == expected.provider_event_id
    assert row["merchant_account_id"] == str(business.tenant_id)
    assert FieldSaleEvent.model_validate_json(row["raw_body"]) == expected
    assert FieldSaleEvent.model_validate(row["raw_payload"]) == expected
    assert recorder.requests == [
        CreditRequest(raw_event_id=row["id"], tenant_id=business.tenant_id, provider=Provider.FIELD)
    ]
    assert recorder.committed == [True]


def test_a_synced_sale_is_credited_to_the_members_wallet_once(
    owner: psycopg.Connection[Any],
    connections: ConnectionFactory,
    service: PushService,
    recorder: EnqueueRecorder,
    crediting: CreditingService,
) -> None:
    # Given a member whose mobile the seller types the local way, and a 1 point per sol rule
    business = field_business(owner)
    digits = "9" + str(uuid.uuid4().int)[:8]
    member = seed.create_user(owner, mobile=f"+51{digits}")
    customer_id = uuid.uuid4()
    typed = f"{digits[:3]} {digits[3:6]} {digits[6:]}"
    push_one(service, connections, business.seller, new_customer(customer_id, phone=typed))
    sale = new_sale(business, kilos="4.000", unit_price="9.90", client_id=customer_id, sale_type="credito")

    # When the sale is pushed twice and every enqueued request is delivered twice
    push_one(service, connections, business.seller, sale)
    push_one(service, connections, business.seller, sale)
    results = [crediting.process(request) for request in recorder.requests * 2]

    # Then it earned its 39 points once
    assert [r.outcome for r in results] == [ProcessingOutcome.CREDITED, ProcessingOutcome.ALREADY_PROCESSED]
    balance = one(
        owner.execute(
            "SELECT points_balance FROM loyalty.wallets WHERE tenant_id = %s AND user_id = %s",
            (business.tenant_id, member),
        ).fetchone()
    )["points_balance"]
    assert balance == 39


def test_a_sale_without_a_reachable_customer_feeds_nothing(
    owner: psycopg.Connection[Any],
    connections: ConnectionFactory,
    service: PushService,
    recorder: EnqueueRecorder,
) -> None:
    business = field_business(owner)
    customer_id = uuid.uuid4()

    response = push_as(
        service,
        connections,
        business.seller,
        new_customer(customer_id),  # neither phone nor email
        new_sale(business, client_id=customer_id),
        new_sale(business),
    )

    assert response.summary.synced == 3
    assert raw_events(owner, business) == 0
    assert recorder.requests == []


def test_a_refused_sale_leaves_no_loyalty_event(
    owner: psycopg.Connection[Any],
    connections: ConnectionFactory,
    service: PushService,
    recorder: EnqueueRecorder,
) -> None:
    business = field_business(owner, stock="1.000")
    customer_id = uuid.uuid4()
    push_one(service, connections, business.seller, new_customer(customer_id, email="ana@example.test"))

    result = push_one(
        service, connections, business.seller, new_sale(business, kilos="2.000", client_id=customer_id)
    )

    assert outcome(result) == ("error", "insufficient_stock")
    assert raw_events(owner, business) == 0
    assert recorder.requests == []


# ---------------------------------------------------------------- the envelope, the tenant, the device


def test_a_body_that_is_not_a_push_is_refused_as_a_whole(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner)
    device = device_of(connections, business.seller)

    with pytest.raises(ApiError) as raised:
        service.push(device, b'{"operations": []}')

    assert raised.value.status_code == 422
    assert row_counts(owner, business)["sync_operations"] == 0


def test_a_push_marks_its_device_as_seen(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner)
    device = device_of(connections, business.seller)

    service.push(device, body_of(new_customer()))

    seen = one(
        owner.execute(
            "SELECT last_seen_at FROM field_sales.devices WHERE tenant_id = %s AND id = %s",
            (business.tenant_id, device.device_id),
        ).fetchone()
    )["last_seen_at"]
    assert seen is not None


def test_another_tenants_records_are_unknown(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    ours, theirs = field_business(owner), field_business(owner)
    their_customer = uuid.uuid4()
    push_one(service, connections, theirs.seller, new_customer(their_customer))
    their_sale = push_one(service, connections, theirs.seller, new_sale(theirs))

    response = push_as(
        service,
        connections,
        ours.owner,
        new_sale(theirs, client_id=their_customer),  # their product and their customer
        new_abono(their_customer, "1.00"),
        update("customers", their_customer, 1, name="Ajeno"),
        delete("sales", one(their_sale.record_id)),
    )

    assert [outcome(result) for result in response.results] == [("error", "unknown_reference")] * 4
    assert sorted(field["loc"] for field in one(response.results[0].error).fields) == [
        "data.clientId",
        "data.items.0.productId",
    ]
    assert row_counts(owner, ours)["sync_operations"] == 0
    assert stock(owner, theirs, "pollo") == Decimal("97.500")


def test_without_a_settings_row_the_migrations_defaults_apply(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    business = field_business(owner, stock="10.000", permitir_venta_sin_stock=True)
    owner.execute("DELETE FROM field_sales.business_settings WHERE tenant_id = %s", (business.tenant_id,))

    refused = push_one(service, connections, business.seller, new_sale(business, kilos="11.000"))
    sold = push_one(service, connections, business.seller, new_sale(business, kilos="4.000"))

    assert outcome(refused) == ("error", "insufficient_stock")  # control_kilos, no selling without stock
    assert outcome(sold) == ("synced", None)
    assert stock(owner, business, "pollo") == Decimal("6.000")
    currency = one(
        owner.execute(
            "SELECT currency FROM field_sales.sales WHERE tenant_id = %s AND id = %s",
            (business.tenant_id, sold.record_id),
        ).fetchone()
    )["currency"]
    assert currency == "PEN"


def test_a_sale_that_could_not_be_enqueued_is_still_synced(
    owner: psycopg.Connection[Any], connections: ConnectionFactory
) -> None:
    business = field_business(owner)
    customer_id = uuid.uuid4()

    def failing_enqueue(request: CreditRequest) -> bool:
        raise RuntimeError("SQS is down")

    service = PushService(connections, failing_enqueue)
    response = push_as(
        service,
        connections,
        business.seller,
        new_customer(customer_id, email="lucia@example.test"),
        new_sale(business, client_id=customer_id),
    )

    assert response.summary.synced == 2
    # Stored unprocessed: the outbox sweeper enqueues it later.
    assert raw_events(owner, business) == 1


def test_a_value_the_database_refuses_undoes_that_operation_only(
    owner: psycopg.Connection[Any], connections: ConnectionFactory, service: PushService
) -> None:
    """The stock's column cannot hold what the second sale would leave: its write fails (sent
    without waiting, in the pipeline), it is refused, and the batch goes on around it."""
    business = field_business(owner, stock="-9999998.000", permitir_venta_sin_stock=True)
    first = new_sale(business, kilos="1.000")
    overflowing = new_sale(business, kilos="5.000")
    after = new_sale(business, kilos="0.500")

    response = push_as(service, connections, business.seller, first, overflowing, after)

    assert [outcome(result) for result in response.results] == [
        ("synced", None),
        ("error", "rejected_by_database"),
        ("synced", None),
    ]
    assert stock(owner, business, "pollo") == Decimal("-9999999.500")
    counts = row_counts(owner, business)
    assert (counts["sales"], counts["sale_items"], counts["sync_operations"]) == (2, 2, 2)
