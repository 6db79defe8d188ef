"""What the field-sales tests share: a business with sellers, devices and stocked products, and
builders of the operations a device queues."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from local import seed
from pos_gateway.db.connection import Connection
from pos_gateway.field.devices import Device, authenticate
from tests.helpers import unique, unique_email


@dataclass(frozen=True)
class Seller:
    user_id: uuid.UUID
    seller_id: uuid.UUID
    credential: str  # the device's bearer credential
    role: str

    @property
    def authorization(self) -> str:
        return f"Bearer {self.credential}"

    def device(self, connection: Connection) -> Device:
        return authenticate(connection, self.authorization)


@dataclass(frozen=True)
class FieldBusiness:
    tenant_id: uuid.UUID
    owner: Seller  # admin_negocio
    seller: Seller  # vendedor
    products: dict[str, uuid.UUID] = field(default_factory=dict)
    rule_id: uuid.UUID | None = None


def field_business(
    owner: psycopg.Connection[Any],
    *,
    stock: str = "100.000",
    with_rule: bool = True,
    **settings: Any,
) -> FieldBusiness:
    """A tenant with field settings, an admin_negocio and a vendedor (one device each), two products
    (pollo by kg at 9.9000, huevo by unit at 0.5000) with ``stock`` each, and a loyalty rule."""
    tenant_id = seed.create_tenant(owner, unique("Avicola "), country="PE")
    seed.create_field_business(owner, tenant_id, **settings)
    sellers = []
    for role in ("admin_negocio", "vendedor"):
        user_id = seed.create_user(owner, email=unique_email(role), role="client", full_name=role)
        seller_id = seed.add_seller(owner, tenant_id, user_id, role=role)
        sellers.append(Seller(user_id, seller_id, seed.register_device(owner, tenant_id, seller_id), role))
    products = {
        "pollo": seed.create_field_product(owner, tenant_id, "Pollo entero", "9.9000", stock=stock),
        "huevo": seed.create_field_product(
            owner, tenant_id, "Huevo", "0.5000", stock=stock, product_type="huevo", unit="unidad"
        ),
    }
    rule_id = seed.create_rule(owner, tenant_id) if with_rule else None
    return FieldBusiness(tenant_id, sellers[0], sellers[1], products, rule_id)


def add_device(owner: psycopg.Connection[Any], business: FieldBusiness, seller: Seller) -> Seller:
    """Another device of the same seller."""
    credential = seed.register_device(owner, business.tenant_id, seller.seller_id, label=unique("tablet "))
    return Seller(seller.user_id, seller.seller_id, credential, seller.role)


# ---------------------------------------------------------------- operations a device queues

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def operation(
    collection: str, data: dict[str, Any], operation_type: str = "create", op_id: uuid.UUID | None = None
) -> dict[str, Any]:
    return {
        "opId": str(op_id or uuid.uuid4()),
        "operationType": operation_type,
        "collection": collection,
        "data": data,
        "clientCreatedAt": NOW.isoformat(),
    }


def new_customer(customer_id: uuid.UUID | None = None, **fields: Any) -> dict[str, Any]:
    return operation(
        "customers", {"id": str(customer_id or uuid.uuid4()), "name": unique("Cliente "), **fields}
    )


def new_sale(
    business: FieldBusiness,
    *,
    kilos: str = "2.500",
    unit_price: str = "9.90",
    sale_type: str = "contado",
    client_id: uuid.UUID | None = None,
    amount_paid: str | None = None,
    sale_id: uuid.UUID | None = None,
    product: str = "pollo",
    **fields: Any,
) -> dict[str, Any]:
    """A one-line sale of ``kilos`` of a product; a contado sale is paid in full."""
    subtotal = (Decimal(kilos) * Decimal(unit_price)).quantize(Decimal("0.01"))
    data: dict[str, Any] = {
        "id": str(sale_id or uuid.uuid4()),
        "saleType": sale_type,
        "totalAmount": str(subtotal),
        "amountPaid": amount_paid
        if amount_paid is not None
        else (str(subtotal) if sale_type == "contado" else "0"),
        "netWeight": kilos,
        "saleDate": NOW.isoformat(),
        "items": [
            {
                "productId": str(business.products[product]),
                "productName": "Pollo entero" if product == "pollo" else "Huevo",
                "quantity": kilos,
                "unitPrice": unit_price,
                "subtotal": str(subtotal),
            }
        ],
        **fields,
    }
    if client_id is not None:
        data["clientId"] = str(client_id)
    return operation("sales", data)


def new_abono(client_id: uuid.UUID, amount: str, method: str = "efectivo", **fields: Any) -> dict[str, Any]:
    return operation(
        "abonos",
        {
            "id": str(uuid.uuid4()),
            "clientId": str(client_id),
            "amount": amount,
            "paymentMethod": method,
            **fields,
        },
    )
