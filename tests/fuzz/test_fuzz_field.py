"""Offline field-sales devices: the push body and its operations (``parse_push_body``,
``parse_operation``, the record models, and the whole ``PushService.push`` on the module's
database), and the pull's query string and cursor (``parse_pull_query``, ``decode_cursor``).

The rule: a body that is no push is an ApiError (400 malformed_json, 422 validation_failed);
each operation is parsed or refused on its own (OperationRefused), and a refused operation writes
nothing: a push whose results are all refusals leaves the tenant's field_sales rows and raw
events exactly as they were, and every push adds one sync_operations row per operation that
landed, none for a refusal. A pull query is a PullQuery or a 422, a cursor decodes or is 400
invalid_cursor.
"""

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg
import pytest
from hypothesis import assume, event, example, given
from hypothesis import strategies as st
from pydantic import BaseModel

from local.database import Database
from pos_gateway.db import ConnectionFactory
from pos_gateway.field import pull
from pos_gateway.field.context import parse_data
from pos_gateway.field.devices import Device
from pos_gateway.field.operations import (
    Collection,
    CustomerUpdate,
    DistribucionUpdate,
    NewAbono,
    NewCustomer,
    NewDistribucion,
    NewSale,
    OperationRefused,
    OperationStatus,
    OperationType,
    RecordRef,
    op_id_of,
    parse_operation,
    parse_push_body,
)
from pos_gateway.field.pull import (
    InvalidCursor,
    Position,
    Scope,
    decode_cursor,
    encode_cursor,
    parse_pull_query,
)
from pos_gateway.field.push import PushService, request_hash
from pos_gateway.http import ApiError
from tests.field_support import FieldBusiness, field_business
from tests.fuzz.conftest import ANY, NASTY_STRINGS, BodyRecipe, attempt, fuzz, recipes
from tests.helpers import count

CLIENT_CREATED_AT = datetime(2026, 11, 20, 15, 30, tzinfo=UTC).isoformat()
FIELD_VALUES: tuple[Any, ...] = (
    "customers",
    "clientes",
    "ventas",
    "pagos",
    "distribuciones",
    " Sales ",
    "create",
    "update",
    "delete",
    "contado",
    "credito",
    "efectivo",
    "yape",
    "cerrado",
    "0.01",
    "0e999999999",
    "0E-999999999",
    "-0",
    "999999999999999.9999",
    "1000000000000000",
    "9999999.999",
    [],
    {},
)


# ---------------------------------------------------------------- operations as a device queues them


@dataclass(frozen=True)
class Ids:
    """The records an operation may name: products, a customer, a seller, a sale, a distribution."""

    pollo: str
    huevo: str
    customer: str
    seller: str
    sale: str
    distribucion: str


TEMPLATE_IDS = Ids(*(str(uuid.UUID(int=n)) for n in range(1, 7)))


def operation(collection: str, data: dict[str, Any], operation_type: str = "create") -> dict[str, Any]:
    return {
        "opId": str(uuid.uuid4()),
        "operationType": operation_type,
        "collection": collection,
        "data": data,
        "clientCreatedAt": CLIENT_CREATED_AT,
    }


def sale_data(ids: Ids) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "clientId": ids.customer,
        "saleType": "credito",
        "totalAmount": "25.75",
        "amountPaid": "5.00",
        "balanceDue": "20.75",
        "tara": "0.100",
        "netWeight": "2.500",
        "saleDate": CLIENT_CREATED_AT,
        "items": [
            {
                "productId": ids.pollo,
                "productName": "Pollo entero",
                "quantity": "2.500",
                "unitPrice": "9.90",
                "subtotal": "24.75",
            },
            {
                "productId": ids.huevo,
                "productName": "Huevo",
                "quantity": "2",
                "unitPrice": "0.5000",
                "subtotal": "1.00",
            },
        ],
        "syncStatus": "pending",
    }


def operations(ids: Ids) -> dict[str, dict[str, Any]]:
    """One operation of each kind a device sends, naming ``ids``' records."""
    return {
        "customer_create": operation(
            "customers",
            {
                "id": str(uuid.uuid4()),
                "name": "Cliente Fuzz",
                "dni": "12345678",
                "phone": "+51 999 888 777",
                "email": "cliente@example.com",
                "address": "Av. Siempre Viva 742",
                "notes": "entrega temprano",
            },
        ),
        "customer_update": operation(
            "clientes", {"id": ids.customer, "version": 1, "phone": "999111222", "notes": None}, "update"
        ),
        "customer_delete": operation("customers", {"id": ids.customer, "version": 1}, "delete"),
        "sale_create": operation("ventas", sale_data(ids)),
        "sale_void": operation("sales", {"id": ids.sale, "reason": "error de digitación"}, "delete"),
        "abono_create": operation(
            "pagos",
            {"id": str(uuid.uuid4()), "clientId": ids.customer, "amount": "1.50", "paymentMethod": "yape"},
        ),
        "distribucion_create": operation(
            "distribuciones",
            {
                "id": str(uuid.uuid4()),
                "vendedorId": ids.seller,
                "puntoVenta": "Carro B",
                "kilosAsignados": "10.000",
                "fecha": "2026-11-20",
                "estado": "cerrado",
            },
        ),
        "distribucion_update": operation(
            "distribuciones", {"id": ids.distribucion, "version": 1, "estado": "en_ruta"}, "update"
        ),
    }


KINDS = tuple(operations(TEMPLATE_IDS))
# Aware instants whose UTC falls before year 1 or after 9999 (NASTY_STRINGS holds them).
OUT_OF_RANGE_INSTANTS = (
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:59:59-23:59",
)


def push_body(ids: Ids, kind: str) -> dict[str, Any]:
    return {"operations": [operations(ids)[kind]]}


def push_recipes(kind: str, *, whole_body: bool) -> st.SearchStrategy[tuple[str, BodyRecipe]]:
    template = push_body(TEMPLATE_IDS, kind)
    under = () if whole_body else ("operations", 0)
    made = recipes(template, ANY, extra=FIELD_VALUES, under=under, whole_body=whole_body)
    return st.tuples(st.just(kind), made)


any_push = st.one_of(*(push_recipes(kind, whole_body=True) for kind in KINDS))
# Bodies that pass the envelope's checks: one operation changed (the database test's subject).
operation_pushes = st.one_of(*(push_recipes(kind, whole_body=False) for kind in KINDS))

MODELS: dict[tuple[Collection, OperationType], type[BaseModel]] = {
    (Collection.CUSTOMERS, OperationType.CREATE): NewCustomer,
    (Collection.CUSTOMERS, OperationType.UPDATE): CustomerUpdate,
    (Collection.CUSTOMERS, OperationType.DELETE): RecordRef,
    (Collection.SALES, OperationType.CREATE): NewSale,
    (Collection.SALES, OperationType.DELETE): RecordRef,
    (Collection.ABONOS, OperationType.CREATE): NewAbono,
    (Collection.ABONOS, OperationType.DELETE): RecordRef,
    (Collection.DISTRIBUCIONES, OperationType.CREATE): NewDistribucion,
    (Collection.DISTRIBUCIONES, OperationType.UPDATE): DistribucionUpdate,
}


# ---------------------------------------------------------------- parsing, without a database


@fuzz(300)
@given(pushed=st.one_of(any_push, operation_pushes))
def test_a_push_body_is_operations_or_an_api_error_and_each_operation_parses_or_is_refused(
    pushed: tuple[str, BodyRecipe],
) -> None:
    kind, recipe = pushed
    items = attempt(lambda: parse_push_body(recipe.body(push_body(TEMPLATE_IDS, kind))), ApiError)
    if isinstance(items, ApiError):
        event(f"body refused {items.code}")
        assert (items.status_code, items.code) in {(400, "malformed_json"), (422, "validation_failed")}
        return
    for item in items:
        request_hash(item)
        op_id_of(item)
        parsed = attempt(partial(parse_record, item), OperationRefused)
        if isinstance(parsed, OperationRefused):
            event(f"operation refused {parsed.detail.code}")
            assert parsed.status is OperationStatus.ERROR
        else:
            event("operation parsed")


def parse_record(item: Any) -> BaseModel | None:
    """The operation, then its data by the record model of its collection and type."""
    pushed_operation = parse_operation(item)
    target = pushed_operation.target
    model = None if target is None else MODELS.get((target, pushed_operation.operation_type))
    return None if model is None else parse_data(model, pushed_operation.data)


# ---------------------------------------------------------------- the pull's query and cursor

TENANT = uuid.UUID(int=7)
SELLER = uuid.UUID(int=8)
A_CURSOR = encode_cursor(Position(123_456, 42), Scope.OWN, TENANT, SELLER)

query_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(NASTY_STRINGS),
    st.sampled_from(["0", "1", "500", "501", "-1", "1.0", "1e2", " 5", "5 ", "0x10", "١٢", "9" * 30]),
    st.just(A_CURSOR),
)
queries = st.dictionaries(
    st.sampled_from(["limit", "cursor", "Limit", "limit ", "offset", ""]) | st.text(max_size=10),
    query_values,
    max_size=4,
)


def cursor_edits(cursor: str) -> st.SearchStrategy[str]:
    """A cursor issued by the API, changed: truncated, extended, one character replaced, padded."""
    alphabet = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ .é\x00")
    position = st.integers(0, len(cursor))
    return st.one_of(
        st.builds(lambda n: cursor[:n], position),
        st.builds(lambda extra: cursor + extra, st.text(alphabet, min_size=1, max_size=80)),
        st.builds(lambda n, c: cursor[:n] + c + cursor[n + 1 :], position, alphabet),
        st.just(cursor + "=="),
        st.just(cursor.replace("-", "+").replace("_", "/")),
        st.just(base64.urlsafe_b64encode(b"\x01\x00" + b"\xff" * 16 + b"\x00" * 8).decode()),
        st.text(max_size=70),
    )


@fuzz(300)
@given(parameters=queries)
def test_a_pull_query_is_parsed_or_422(parameters: dict[str, str]) -> None:
    query = attempt(lambda: parse_pull_query(parameters), ApiError)
    if isinstance(query, ApiError):
        assert (query.status_code, query.code) == (422, "validation_failed")
        return
    assert 1 <= query.limit <= 500
    if query.cursor:
        try_cursor(query.cursor)


@fuzz(300)
@given(cursor=cursor_edits(A_CURSOR), tenant=st.sampled_from([TENANT, uuid.UUID(int=9)]))
def test_a_cursor_decodes_or_is_invalid_cursor(cursor: str, tenant: uuid.UUID) -> None:
    decoded = try_cursor(cursor, tenant)
    if decoded is not None:
        event("decoded")
        assert decoded == (Scope.OWN, Position(123_456, 42)), "an edited cursor moved the position"
        assert tenant == TENANT, "another tenant's cursor was accepted"


def try_cursor(cursor: str, tenant: uuid.UUID = TENANT) -> tuple[Scope, Position] | None:
    decoded = attempt(lambda: decode_cursor(cursor, tenant, SELLER), InvalidCursor)
    if isinstance(decoded, InvalidCursor):
        assert (decoded.status_code, decoded.code) == (400, "invalid_cursor")
        return None
    return decoded


# ---------------------------------------------------------------- the whole push, on the database

FIELD_TABLES = (
    "abonos",
    "business_settings",
    "business_users",
    "customers",
    "distribuciones",
    "inventory",
    "products",
    "sale_items",
    "sales",
    "sync_operations",
    "voids",
)


@dataclass(frozen=True)
class Business:
    field: FieldBusiness
    ids: Ids
    connections: ConnectionFactory

    def device(self, admin: bool) -> Device:
        seller = self.field.owner if admin else self.field.seller
        return seller.device(self.connections.get())


@pytest.fixture(scope="module")
def business(database: Database, owner: psycopg.Connection[Any]) -> Iterator[Business]:
    field = field_business(owner, stock="100000.000", control_kilos=True)
    connections = database.connections("pos_gateway_field")
    service = PushService(connections)
    seller = field.seller.device(connections.get())
    customer_id, sale_id = uuid.uuid4(), uuid.uuid4()
    ids = Ids(
        str(field.products["pollo"]),
        str(field.products["huevo"]),
        str(customer_id),
        str(field.seller.seller_id),
        str(sale_id),
        str(uuid.uuid4()),
    )
    arranged = operations(ids)
    arranged["customer_create"]["data"]["id"] = str(customer_id)
    arranged["sale_create"]["data"]["id"] = str(sale_id)
    answer = service.push(
        seller, push_bytes({"operations": [arranged["customer_create"], arranged["sale_create"]]})
    )
    assert [r.status for r in answer.results] == [OperationStatus.SYNCED] * 2, answer
    try:
        yield Business(field, ids, connections)
    finally:
        connections.close()


def push_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def snapshot(owner: psycopg.Connection[Any], tenant_id: uuid.UUID) -> dict[str, tuple[int, str]]:
    """Every field_sales row of the tenant (devices aside: a push touches last_seen_at) and its
    raw events, as a row count and a digest of the rows' text."""
    tables = [f"field_sales.{name}" for name in FIELD_TABLES] + ["pos.pos_webhook_events_raw"]
    found: dict[str, tuple[int, str]] = {}
    for table in tables:
        row = owner.execute(
            f"SELECT count(*) AS n, coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') AS h"
            f" FROM {table} t WHERE tenant_id = %s",
            (tenant_id,),
        ).fetchone()
        assert row is not None
        found[table] = (row["n"], row["h"])
    return found


@fuzz(40)
@given(
    pushed=st.one_of(operation_pushes, operation_pushes, any_push),
    admin=st.booleans(),
    copies=st.sampled_from([1, 1, 1, 2]),
)
def test_a_push_answers_per_operation_and_a_refused_operation_writes_nothing(
    business: Business,
    owner: psycopg.Connection[Any],
    pushed: tuple[str, BodyRecipe],
    admin: bool,
    copies: int,
) -> None:
    kind, recipe = pushed
    base = push_body(business.ids, kind)
    document = recipe.document(base)
    assume(within_year_1_to_9999(document))
    if copies == 2 and isinstance(document, dict) and isinstance(document.get("operations"), list):
        document = {**document, "operations": document["operations"] * 2}  # the same opId twice
    body = recipe.body(base) if copies == 1 else recipe.framing.encode(document)
    device = business.device(admin)
    before = snapshot(owner, business.field.tenant_id)
    operations_before = sync_operations(owner, business)
    response = attempt(lambda: PushService(business.connections).push(device, body), ApiError)
    if isinstance(response, ApiError):
        event(f"body refused {response.code}")
        assert response.status_code in {400, 422}, response
        assert snapshot(owner, business.field.tenant_id) == before, "a refused push body wrote something"
        return
    landed = [r for r in response.results if r.status is OperationStatus.SYNCED and not r.replayed]
    for result in response.results:
        event(f"{result.status.value} {result.error.code if result.error else ''}".strip())
        if result.status is not OperationStatus.SYNCED:
            assert result.error is not None, result
            assert result.error.code, result
    assert sync_operations(owner, business) - operations_before == len(landed), response
    if not landed:
        assert snapshot(owner, business.field.tenant_id) == before, "a refused operation wrote something"
        return
    # What landed is served back: the tenant's devices still pull.
    pull.pull(business.connections, business.device(admin=True), None, pull.MAX_LIMIT)


def within_year_1_to_9999(document: Any) -> bool:
    """False for the instants outside 0001..9999 UTC of test_an_instant_outside_years_1_to_9999..."""
    text = json.dumps(document, default=str)
    return not any(mark in text for mark in OUT_OF_RANGE_INSTANTS)


def sync_operations(owner: psycopg.Connection[Any], business: Business) -> int:
    return count(
        owner,
        "SELECT count(*) AS n FROM field_sales.sync_operations WHERE tenant_id = %s",
        (business.field.tenant_id,),
    )


# ---------------------------------------------------------------- findings


@fuzz(6)
@given(
    instant=st.sampled_from(OUT_OF_RANGE_INSTANTS),
    where=st.sampled_from(["sale_create.saleDate", "abono_create.clientCreatedAt"]),
)
@example(instant="0001-01-01T00:00:00+14:00", where="sale_create.saleDate")
def test_an_instant_outside_years_1_to_9999_is_refused_or_still_pulls(
    database: Database, owner: psycopg.Connection[Any], instant: str, where: str
) -> None:
    field = field_business(owner, stock="1000.000")  # a tenant of its own: what lands poisons its pulls
    connections = database.connections("pos_gateway_field")
    try:
        device = field.seller.device(connections.get())
        customer_id = uuid.uuid4()
        ids = Ids(str(field.products["pollo"]), str(field.products["huevo"]), str(customer_id), "", "", "")
        arranged = operations(ids)
        arranged["customer_create"]["data"]["id"] = str(customer_id)
        kind, name = where.split(".")
        target = arranged[kind]
        (target["data"] if name in target["data"] else target)[name] = instant
        answer = PushService(connections).push(
            device, push_bytes({"operations": [arranged["customer_create"], target]})
        )
        assert answer.results[0].status is OperationStatus.SYNCED, answer
        if answer.results[1].status is not OperationStatus.SYNCED:
            return  # refused at the edge, as it should be
        pull.pull(connections, device, None, pull.MAX_LIMIT)
    finally:
        connections.close()
