"""The push contract (pos_gateway.field.operations): what a device may send, parsed without a
database. Amounts are Decimals from the JSON text on; the rules a sale's amounts obey; unknown
fields refused; the seed's Spanish collection names."""

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from pos_gateway.field.operations import (
    MAX_OPERATIONS,
    Collection,
    CustomerUpdate,
    DistribucionUpdate,
    NewAbono,
    NewCustomer,
    NewSale,
    NewSaleItem,
    OperationRefused,
    OperationResult,
    OperationStatus,
    OperationType,
    invalid,
    op_id_of,
    parse_operation,
    parse_push_body,
)
from pos_gateway.field.push import request_hash
from pos_gateway.http import ApiError

SOLD_AT = "2026-11-20T15:30:00+00:00"


def item(
    quantity: Any = "2.500", unit_price: Any = "9.90", subtotal: Any = "24.75", **fields: Any
) -> dict[str, Any]:
    return {
        "productId": str(uuid.uuid4()),
        "productName": "Pollo entero",
        "quantity": quantity,
        "unitPrice": unit_price,
        "subtotal": subtotal,
        **fields,
    }


def sale(*items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    lines = list(items) or [item()]
    total = sum((Decimal(str(line["subtotal"])) for line in lines), Decimal(0))
    return {
        "id": str(uuid.uuid4()),
        "saleType": "contado",
        "totalAmount": str(total),
        "amountPaid": str(total),
        "saleDate": SOLD_AT,
        "items": lines,
        **fields,
    }


def envelope(**fields: Any) -> dict[str, Any]:
    return {
        "opId": str(uuid.uuid4()),
        "operationType": "create",
        "collection": "sales",
        "data": sale(),
        "clientCreatedAt": SOLD_AT,
        **fields,
    }


def errors_of(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    return [(".".join(map(str, error["loc"])), error["type"]) for error in raised.value.errors()]


def messages_of(model: type[BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    return str(raised.value)


def through_the_wire(data: str) -> dict[str, Any]:
    """A body's JSON text, parsed as the push parses it."""
    operations = parse_push_body(('{"operations": [' + data + "]}").encode())
    parsed: dict[str, Any] = operations[0]
    return parsed


# ---------------------------------------------------------------- the envelope


def test_a_body_that_is_not_json_is_a_400() -> None:
    with pytest.raises(ApiError) as raised:
        parse_push_body(b'{"operations": [')
    assert (raised.value.status_code, raised.value.code) == (400, "malformed_json")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"ops": []}',
        b'{"operations": [], "device": "x"}',
        b'{"operations": {}}',
        b'"operations"',
    ],
)
def test_a_body_that_is_not_a_push_is_a_422(body: bytes) -> None:
    with pytest.raises(ApiError) as raised:
        parse_push_body(body)
    assert (raised.value.status_code, raised.value.code) == (422, "validation_failed")


@pytest.mark.parametrize("size", [0, MAX_OPERATIONS + 1])
def test_a_push_carries_1_to_500_operations(size: int) -> None:
    with pytest.raises(ApiError) as raised:
        parse_push_body(json.dumps({"operations": [{}] * size}).encode())
    assert (raised.value.status_code, raised.value.code) == (422, "validation_failed")
    assert len(parse_push_body(json.dumps({"operations": [{}] * MAX_OPERATIONS}).encode())) == MAX_OPERATIONS


def test_each_operation_is_parsed_on_its_own() -> None:
    """The envelope only checks the list: a malformed operation is that operation's error."""
    operations = parse_push_body(json.dumps({"operations": ["nonsense", envelope()]}).encode())
    with pytest.raises(OperationRefused) as raised:
        parse_operation(operations[0])
    assert raised.value.detail.code == "validation_failed"
    assert parse_operation(operations[1]).target is Collection.SALES


def test_an_envelope_with_unknown_fields_or_a_naive_time_is_refused_where_it_is_wrong() -> None:
    with pytest.raises(OperationRefused) as raised:
        parse_operation(envelope(clientCreatedAt="2026-11-20T15:30:00", extra=1))
    assert sorted((field["loc"], field["type"]) for field in raised.value.detail.fields) == [
        ("clientCreatedAt", "timezone_aware"),
        ("extra", "extra_forbidden"),
    ]


def test_the_devices_queue_bookkeeping_is_accepted_and_ignored() -> None:
    parsed = parse_operation(envelope(attempts=3, lastError="timeout"))
    assert parsed.operation_type is OperationType.CREATE
    assert "attempts" not in parsed.model_dump()
    customer = NewCustomer.model_validate(
        {"id": str(uuid.uuid4()), "name": "Rosa", "syncStatus": "pending", "syncAttempts": 2}
    )
    assert "sync_status" not in customer.model_dump()


def test_op_id_of_reads_the_op_id_of_an_operation_that_does_not_parse() -> None:
    op_id = uuid.uuid4()
    assert op_id_of({"opId": str(op_id), "collection": 7}) == op_id
    assert op_id_of({"opId": "not-a-uuid"}) is None
    assert op_id_of({"opId": 12}) is None
    assert op_id_of(["opId"]) is None


@pytest.mark.parametrize(
    ("sent", "collection"),
    [
        ("customers", Collection.CUSTOMERS),
        ("clientes", Collection.CUSTOMERS),
        ("ventas", Collection.SALES),
        (" Ventas ", Collection.SALES),
        ("pagos", Collection.ABONOS),
        ("abonos", Collection.ABONOS),
        ("DISTRIBUCIONES", Collection.DISTRIBUCIONES),
        ("facturas", None),
        ("", None),
    ],
)
def test_collections_answer_to_the_seeds_spanish_names(sent: str, collection: Collection | None) -> None:
    assert parse_operation(envelope(collection=sent)).target is collection


# ---------------------------------------------------------------- money is never a float


def test_json_numbers_arrive_as_exact_decimals() -> None:
    """0.1 + 0.2 is 0.3 only if no float was involved: the sale's total checks exactly."""
    operation = through_the_wire(
        '{"opId": "6f1d5c1e-1111-4111-8111-111111111111", "operationType": "create", "collection": "ventas",'
        ' "clientCreatedAt": "2026-11-20T15:30:00Z", "data": {"id": "6f1d5c1e-2222-4111-8111-111111111111",'
        ' "saleType": "contado", "totalAmount": 0.3, "amountPaid": 0.3, "saleDate": "2026-11-20T15:30:00Z",'
        ' "items": [{"productId": "6f1d5c1e-3333-4111-8111-111111111111", "productName": "Huevo",'
        ' "quantity": 1, "unitPrice": 0.1, "subtotal": 0.1},'
        ' {"productId": "6f1d5c1e-3333-4111-8111-111111111111",'
        ' "productName": "Huevo", "quantity": 2, "unitPrice": 0.1, "subtotal": 0.2}]}}'
    )
    assert isinstance(operation["data"]["totalAmount"], Decimal)
    parsed = NewSale.model_validate(parse_operation(operation).data)
    assert parsed.total_amount == Decimal("0.3")
    assert all(type(line.unit_price) is Decimal and type(line.quantity) is Decimal for line in parsed.items)


@pytest.mark.parametrize(
    ("amount", "kind"),
    [
        ("10.12345", "decimal_max_places"),
        ("1234567890123456", "decimal_whole_digits"),
        ("NaN", "finite_number"),
        ("Infinity", "finite_number"),
        ("-1", "greater_than"),
        ("0", "greater_than"),
        (True, "decimal_type"),
    ],
)
def test_an_abono_amount_fits_numeric_19_4_and_is_positive(amount: Any, kind: str) -> None:
    data = {"id": str(uuid.uuid4()), "clientId": str(uuid.uuid4()), "amount": amount, "paymentMethod": "yape"}
    assert errors_of(NewAbono, data) == [("amount", kind)]


def test_a_quantity_fits_numeric_10_3() -> None:
    assert errors_of(NewSaleItem, item(quantity="1.2345", subtotal="12.22")) == [
        ("quantity", "decimal_max_places")
    ]
    assert errors_of(NewSaleItem, item(quantity="0", subtotal="0")) == [("quantity", "greater_than")]


# ---------------------------------------------------------------- a sale's amounts


@pytest.mark.parametrize("subtotal", ["25.29", "25.30", "25.2945"])
def test_a_line_subtotal_is_quantity_times_price_to_the_cent(subtotal: str) -> None:
    line = NewSaleItem.model_validate(item(quantity="2.555", unit_price="9.90", subtotal=subtotal))
    assert line.subtotal == Decimal(subtotal)


@pytest.mark.parametrize("subtotal", ["25.28", "25.31", "0"])
def test_a_line_subtotal_more_than_a_cent_off_is_refused(subtotal: str) -> None:
    assert "subtotal must be quantity × unitPrice" in messages_of(
        NewSaleItem, item(quantity="2.555", unit_price="9.90", subtotal=subtotal)
    )


def test_the_total_is_the_sum_of_the_subtotals_exactly() -> None:
    lines = [item(), item(quantity="1", unit_price="0.50", subtotal="0.50")]
    assert NewSale.model_validate(sale(*lines)).total_amount == Decimal("25.25")
    assert "totalAmount must be the sum" in messages_of(
        NewSale, sale(*lines, totalAmount="25.26", amountPaid="25.26")
    )


def test_a_contado_sale_is_paid_in_full() -> None:
    assert "paid in full" in messages_of(NewSale, sale(amountPaid="20.00"))


def test_a_credito_sale_needs_a_customer_and_may_leave_a_balance() -> None:
    assert "needs a clientId" in messages_of(NewSale, sale(saleType="credito", amountPaid="0"))
    credit = NewSale.model_validate(
        sale(saleType="credito", amountPaid="5.05", clientId=str(uuid.uuid4()), balanceDue="19.70")
    )
    assert credit.due == Decimal("19.70")


def test_paid_and_balance_agree_with_the_total() -> None:
    client = str(uuid.uuid4())
    assert "cannot exceed totalAmount" in messages_of(
        NewSale, sale(saleType="credito", amountPaid="30.00", clientId=client)
    )
    assert "balanceDue must be" in messages_of(
        NewSale, sale(saleType="credito", amountPaid="5.00", clientId=client, balanceDue="20.00")
    )


def test_a_sale_has_1_to_200_lines() -> None:
    assert errors_of(NewSale, sale() | {"items": []}) == [("items", "too_short")]
    assert errors_of(NewSale, sale(*[item() for _ in range(201)])) == [("items", "too_long")]


# ---------------------------------------------------------------- unknown fields


def test_unknown_fields_are_refused_in_records_and_lines() -> None:
    assert errors_of(NewCustomer, {"id": str(uuid.uuid4()), "name": "Rosa", "colour": "azul"}) == [
        ("colour", "extra_forbidden")
    ]
    assert errors_of(NewSale, sale(item(discount="1.00"))) == [("items.0.discount", "extra_forbidden")]


def test_validation_errors_point_into_data_without_echoing_values() -> None:
    with pytest.raises(ValidationError) as raised:
        NewCustomer.model_validate({"id": str(uuid.uuid4()), "name": "Rosa", "email": "secret-not-an-email"})
    refusal = invalid(raised.value)
    assert refusal.detail.code == "validation_failed"
    assert [(field["loc"], field["type"]) for field in refusal.detail.fields] == [
        ("data.email", "string_pattern_mismatch")
    ]
    assert "secret-not-an-email" not in json.dumps(refusal.detail.fields)


# ---------------------------------------------------------------- updates


def test_a_customer_update_changes_only_what_it_names() -> None:
    update = CustomerUpdate.model_validate(
        {"id": str(uuid.uuid4()), "version": 3, "phone": None, "notes": "x"}
    )
    assert update.changes() == {"phone": None, "notes": "x"}
    assert "at least one field" in messages_of(CustomerUpdate, {"id": str(uuid.uuid4()), "version": 3})
    assert "name cannot be cleared" in messages_of(
        CustomerUpdate, {"id": str(uuid.uuid4()), "version": 3, "name": None}
    )


@pytest.mark.parametrize("version", ["1", True, 0, 1.0])
def test_a_version_is_a_positive_json_integer(version: Any) -> None:
    assert (
        errors_of(CustomerUpdate, {"id": str(uuid.uuid4()), "version": version, "notes": "x"})[0][0]
        == "version"
    )


@pytest.mark.parametrize("field", ["estado", "kilosAsignados"])
def test_a_distribution_update_cannot_clear_a_required_field(field: str) -> None:
    assert f"{field} cannot be cleared" in messages_of(
        DistribucionUpdate, {"id": str(uuid.uuid4()), "version": 1, field: None}
    )
    assert DistribucionUpdate.model_validate({"id": str(uuid.uuid4()), "version": 1, "puntoVenta": None})


# ---------------------------------------------------------------- results and the request hash


def test_a_result_is_camel_case_json() -> None:
    result = OperationResult(index=0, op_id=None, status=OperationStatus.SYNCED, server_version=2)
    assert json.loads(result.model_dump_json(by_alias=True)) == {
        "index": 0,
        "opId": None,
        "status": "synced",
        "recordId": None,
        "serverVersion": 2,
        "error": None,
        "current": None,
        "replayed": False,
    }


def test_the_request_hash_is_of_the_content_not_of_its_spelling() -> None:
    operation = through_the_wire('{"b": 1.50, "a": {"y": [1, 2], "x": "z"}}')
    reordered = through_the_wire('{"a": {"x": "z", "y": [1, 2]}, "b": "1.50"}')
    changed = through_the_wire('{"a": {"x": "z", "y": [1, 2]}, "b": 1.5}')
    assert request_hash(operation) == request_hash(reordered)
    assert request_hash(operation) != request_hash(changed)
    assert len(request_hash(operation)) == 64
