"""Records as the server shows them to devices (pull pages, conflicts, the debt route).

Built from database rows (column names as in migration 0027); JSON in camelCase with money
and weights as decimal strings, exactly as stored.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ServerRecord(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ProductRecord(ServerRecord):
    id: UUID
    name: str
    type: str
    unit: str
    base_price: Decimal
    is_active: bool
    version: int
    updated_at: datetime


class InventoryRecord(ServerRecord):
    product_id: UUID
    quantity: Decimal
    updated_at: datetime


class CustomerRecord(ServerRecord):
    id: UUID
    name: str
    dni: str | None
    phone: str | None
    email: str | None
    address: str | None
    notes: str | None
    created_by: UUID
    debt: Decimal
    version: int
    created_at: datetime
    updated_at: datetime


class DistribucionRecord(ServerRecord):
    id: UUID
    vendedor_id: UUID
    punto_venta: str | None
    kilos_asignados: Decimal
    kilos_vendidos: Decimal
    monto_recaudado: Decimal
    fecha: date
    estado: str
    version: int
    updated_at: datetime


class SaleItemRecord(ServerRecord):
    line_no: int
    product_id: UUID
    product_name: str
    quantity: Decimal
    unit_price: Decimal
    subtotal: Decimal


class SaleRecord(ServerRecord):
    id: UUID
    client_id: UUID | None
    seller_id: UUID
    distribucion_id: UUID | None
    sale_type: str
    total_amount: Decimal
    amount_paid: Decimal
    balance_due: Decimal
    tara: Decimal
    net_weight: Decimal
    currency: str
    sale_date: datetime
    created_at: datetime
    items: list[SaleItemRecord] = []


class AbonoRecord(ServerRecord):
    id: UUID
    client_id: UUID
    seller_id: UUID
    amount: Decimal
    payment_method: str
    notes: str | None
    currency: str
    paid_at: datetime
    created_at: datetime


class VoidRecord(ServerRecord):
    id: UUID
    sale_id: UUID | None
    abono_id: UUID | None
    reason: str
    voided_by: UUID
    created_at: datetime


# Immutable records have one server version; versioned ones carry theirs.
IMMUTABLE_VERSION = 1
