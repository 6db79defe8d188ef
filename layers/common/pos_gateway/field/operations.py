"""The push contract: the envelope of queued operations, each collection's record shapes, and
the per-operation results a device sets its ``sync_status`` from.

The body is parsed with ``parse_float=Decimal``: an amount never passes through a float. The
envelope is checked as a whole (JSON, 1..500 operations); each operation is then parsed on its
own, so one malformed operation is answered ``error`` and never blocks the others.
"""

import json
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from pos_gateway.http import ApiError, ErrorDetail, validation_fields
from pos_gateway.times import Day, Instant

MAX_OPERATIONS = 500
MAX_ITEMS_PER_SALE = 200

# ---------------------------------------------------------------- value types

Money = Annotated[Decimal, Field(ge=0, max_digits=19, decimal_places=4, allow_inf_nan=False)]
PositiveMoney = Annotated[Decimal, Field(gt=0, max_digits=19, decimal_places=4, allow_inf_nan=False)]
Weight = Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=3, allow_inf_nan=False)]
PositiveWeight = Annotated[Decimal, Field(gt=0, max_digits=10, decimal_places=3, allow_inf_nan=False)]
Version = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
Text255 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
OptionalShort = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None
Notes = Annotated[str, StringConstraints(max_length=2000)] | None
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")]


class OperationType(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Collection(StrEnum):
    CUSTOMERS = "customers"
    SALES = "sales"
    ABONOS = "abonos"
    DISTRIBUCIONES = "distribuciones"


# The seed's device queue names collections in Spanish (ventas, clientes, ...).
COLLECTION_NAMES: dict[str, Collection] = {
    **{c.value: c for c in Collection},
    "clientes": Collection.CUSTOMERS,
    "ventas": Collection.SALES,
    "pagos": Collection.ABONOS,
}


class SaleType(StrEnum):
    CONTADO = "contado"
    CREDITO = "credito"


class PaymentMethod(StrEnum):
    EFECTIVO = "efectivo"
    YAPE = "yape"
    PLIN = "plin"
    TRANSFERENCIA = "transferencia"


class DistribucionEstado(StrEnum):
    ACTIVO = "activo"
    EN_RUTA = "en_ruta"
    CERRADO = "cerrado"


class Record(BaseModel):
    """A record's data as a device sends it: camelCase, unknown fields refused. The seed's
    device-side bookkeeping (syncStatus, syncAttempts) is accepted and ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    sync_status: Literal["pending", "synced", "error"] | None = Field(default=None, exclude=True)
    sync_attempts: int | None = Field(default=None, exclude=True)


# ---------------------------------------------------------------- customers


class NewCustomer(Record):
    id: UUID
    name: Text255
    dni: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] | None = None
    email: Email | None = None
    address: Annotated[str, StringConstraints(max_length=1000)] | None = None
    notes: Notes = None


class CustomerUpdate(Record):
    """Only the fields given change; ``version`` is the server version the device last saw."""

    id: UUID
    version: Version
    name: Text255 | None = None
    dni: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] | None = None
    email: Email | None = None
    address: Annotated[str, StringConstraints(max_length=1000)] | None = None
    notes: Notes = None

    @model_validator(mode="after")
    def _changes_something(self) -> "CustomerUpdate":
        if not self.changes():
            raise ValueError("an update changes at least one field")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be cleared")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the device set (None clears an optional field)."""
        return {
            name: getattr(self, name)
            for name in self.model_fields_set
            if name not in {"id", "version", "sync_status", "sync_attempts"}
        }


class RecordRef(Record):
    """A delete: the record and (for versioned records) the version the device last saw."""

    id: UUID
    version: Version | None = None
    reason: Reason | None = None


# ---------------------------------------------------------------- sales and abonos


class NewSaleItem(Record):
    product_id: UUID
    # The name and unit price the device showed at the time of the sale (the snapshot).
    product_name: Text255
    quantity: PositiveWeight
    unit_price: Money
    subtotal: Money

    @model_validator(mode="after")
    def _subtotal_is_quantity_times_price(self) -> "NewSaleItem":
        # Devices round a line to the cent; more than a cent off is an error, not rounding.
        if abs(self.subtotal - self.quantity * self.unit_price) >= Decimal("0.01"):
            raise ValueError("subtotal must be quantity × unitPrice (to the cent)")
        return self


class NewSale(Record):
    id: UUID
    client_id: UUID | None = None
    distribucion_id: UUID | None = None
    sale_type: SaleType
    total_amount: Money
    amount_paid: Money
    balance_due: Money | None = None  # derived; when given it must agree
    tara: Weight = Decimal(0)
    net_weight: Weight = Decimal(0)
    sale_date: Instant
    items: list[NewSaleItem] = Field(min_length=1, max_length=MAX_ITEMS_PER_SALE)

    @model_validator(mode="after")
    def _amounts_agree(self) -> "NewSale":
        if sum((item.subtotal for item in self.items), Decimal(0)) != self.total_amount:
            raise ValueError("totalAmount must be the sum of the items' subtotals")
        if self.amount_paid > self.total_amount:
            raise ValueError("amountPaid cannot exceed totalAmount")
        if self.sale_type is SaleType.CONTADO and self.amount_paid != self.total_amount:
            raise ValueError("a contado sale is paid in full (amountPaid = totalAmount)")
        if self.sale_type is SaleType.CREDITO and self.client_id is None:
            raise ValueError("a credito sale needs a clientId")
        if self.balance_due is not None and self.balance_due != self.total_amount - self.amount_paid:
            raise ValueError("balanceDue must be totalAmount − amountPaid")
        return self

    @property
    def due(self) -> Decimal:
        return self.total_amount - self.amount_paid


class NewAbono(Record):
    id: UUID
    client_id: UUID
    amount: PositiveMoney
    payment_method: PaymentMethod
    notes: Notes = None
    paid_at: Instant | None = None  # defaults to the operation's clientCreatedAt


# ---------------------------------------------------------------- distributions


class NewDistribucion(Record):
    id: UUID
    vendedor_id: UUID
    punto_venta: OptionalShort = None
    kilos_asignados: Weight
    fecha: Day
    estado: DistribucionEstado = DistribucionEstado.ACTIVO


class DistribucionUpdate(Record):
    id: UUID
    version: Version
    estado: DistribucionEstado | None = None
    kilos_asignados: Weight | None = None
    punto_venta: OptionalShort = None

    @model_validator(mode="after")
    def _changes_something(self) -> "DistribucionUpdate":
        if not self.model_fields_set - {"id", "version", "sync_status", "sync_attempts"}:
            raise ValueError("an update changes at least one field")
        # Both columns are NOT NULL: null is no value for them, not a change.
        for name, alias in (("estado", "estado"), ("kilos_asignados", "kilosAsignados")):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{alias} cannot be cleared")
        return self


# ---------------------------------------------------------------- envelope and results


class PushedOperation(BaseModel):
    """One queued operation: the envelope parsed; ``data`` parsed by its collection later."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    op_id: UUID
    operation_type: OperationType
    collection: str
    data: dict[str, Any]
    client_created_at: Instant
    # The device's own bookkeeping of the queue entry (seed 004 sync_queue); ignored.
    attempts: int | None = Field(default=None, exclude=True)
    last_error: str | None = Field(default=None, exclude=True)

    @property
    def target(self) -> Collection | None:
        return COLLECTION_NAMES.get(self.collection.strip().lower())


class OperationStatus(StrEnum):
    SYNCED = "synced"
    ERROR = "error"
    CONFLICT = "conflict"


class OperationResult(BaseModel):
    """What became of one operation; results come back in the order the operations were sent."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    index: int
    op_id: UUID | None
    status: OperationStatus
    record_id: UUID | None = None
    server_version: int | None = None
    error: ErrorDetail | None = None
    # With a conflict: the server's current record, for the device to merge and resend.
    current: dict[str, Any] | None = None
    # True when the opId had already landed and this is its stored result.
    replayed: bool = False


class PushSummary(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    synced: int
    error: int
    conflict: int
    replayed: int


class PushResponse(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    results: list[OperationResult]
    summary: PushSummary


class OperationRefused(Exception):
    """An operation answered ``error`` (or ``conflict``): nothing of it was written."""

    def __init__(
        self,
        code: str,
        message: str,
        fields: list[dict[str, Any]] | None = None,
        *,
        status: OperationStatus = OperationStatus.ERROR,
        current: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.detail = ErrorDetail(code=code, message=message, fields=fields or [])
        self.status = status
        self.current = current


def invalid(error: ValidationError, prefix: str = "data") -> OperationRefused:
    return OperationRefused(
        "validation_failed", "the operation is not valid", validation_fields(error, prefix)
    )


def parse_push_body(body: bytes) -> list[Any]:
    """The operations array of a push body (each item still unparsed); 400 / 422 for a body
    that is not a push at all."""
    try:
        document = json.loads(body, parse_float=Decimal) if body else None
    except (ValueError, RecursionError) as error:
        raise ApiError("the body is not valid JSON", code="malformed_json") from error
    if not isinstance(document, dict) or set(document) != {"operations"}:
        raise ApiError(
            'the body must be {"operations": [...]}',
            [{"loc": "operations", "type": "missing", "msg": "the only field is operations"}],
            status_code=422,
            code="validation_failed",
        )
    operations = document["operations"]
    if not isinstance(operations, list) or not 1 <= len(operations) <= MAX_OPERATIONS:
        raise ApiError(
            f"operations must be a list of 1 to {MAX_OPERATIONS} operations",
            [{"loc": "operations", "type": "length", "msg": f"1 to {MAX_OPERATIONS} operations"}],
            status_code=422,
            code="validation_failed",
        )
    return operations


def parse_operation(item: Any) -> PushedOperation:
    try:
        return PushedOperation.model_validate(item)
    except ValidationError as error:
        raise invalid(error, prefix="") from error


def op_id_of(item: Any) -> UUID | None:
    """The opId of an operation that failed to parse, when it has a readable one."""
    if isinstance(item, dict) and isinstance(item.get("opId"), str):
        try:
            return UUID(item["opId"])
        except ValueError:
            return None
    return None
