"""Field sales (seed 004) as a platform admin or the tenant's client manages them: the business
settings, the sellers (business_users), their devices, the products and their stock.

- Settings: a tenant without a stored row answers the column defaults (``configured: false``);
  a PUT replaces all six settings at once (insert or update).
- Sellers: a seat of an existing account (404 otherwise) in the tenant; one per account (409
  ``seller_exists``). A deactivated seller's devices stop authenticating at once.
- Devices: issuing one answers its credential (``fsd_<device id>_<secret>``) this one time; only
  its SHA-256 is stored, and neither reaches an audit row or a log line. Revoking is final (409
  ``already_revoked`` the second time).
- Products: every accepted change adds one to ``version`` (what devices compare); deleting is
  soft (``deleted_at``; the pull carries a tombstone) and a deleted product answers 409
  ``product_deleted`` to any further change. The stock is set to a counted quantity with a reason.

Money and weights are decimals, never floats: a JSON number or a decimal string comes in (at most
the column's decimal places, else 422) and is stored exactly; answers give them as decimal strings,
as stored (``"9.9000"``).
"""

import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

from pos_gateway.admin.access import not_found
from pos_gateway.admin.audit import changed_fields
from pos_gateway.admin.inputs import PatchBody, Reason, RequestBody
from pos_gateway.admin.listing import fetch_page
from pos_gateway.admin.session import Change
from pos_gateway.admin.users import UserStatus
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.field.devices import SellerRole, issue_credential
from pos_gateway.http import ApiError

_SQL = queries.load(__file__, "field.sql")

# ---------------------------------------------------------------- decimals

_DECIMAL_TEXT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def _exact_decimal(value: object) -> object:
    """A JSON number or a plain decimal string as a Decimal; a float by its shortest repr (what
    the client wrote, e.g. 9.9 -> 9.9), never its binary value. Exponents, whitespace, booleans,
    NaN and infinities are refused."""
    if isinstance(value, bool):
        raise ValueError("must be a number or a decimal string, not a boolean")
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return Decimal(repr(value))
    if isinstance(value, str):
        if not _DECIMAL_TEXT.match(value):
            raise ValueError(
                "must be a decimal string such as 12.50 (digits, an optional point, no exponent)"
            )
        return Decimal(value)
    raise ValueError("must be a number or a decimal string")


def _decimal_schema(
    *, places: int, integer_digits: int, what: str, maximum: int | None = None
) -> dict[str, Any]:
    """How the OpenAPI document describes a decimal input: a number or a decimal string (a float
    cannot state the largest value exactly, so the bound is the next power of ten, excluded)."""
    number: dict[str, Any] = {"type": "number", "minimum": 0}
    if maximum is None:
        number["exclusiveMaximum"] = 10**integer_digits
    else:
        number["maximum"] = maximum
    return {
        "anyOf": [
            number,
            {"type": "string", "pattern": rf"^[0-9]{{1,{integer_digits}}}(\.[0-9]{{1,{places}}})?$"},
        ],
        "description": f"{what}: a JSON number or a decimal string, at least 0, at most {places} "
        "decimal places",
    }


def _decimal_text(value: Decimal) -> str:
    return format(value, "f")  # never an exponent: "0.0000", not "0E-4"


DecimalText = Annotated[
    Decimal,
    PlainSerializer(_decimal_text, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "Exact decimal"}),
]
# Each fits its column: numeric(19,4) money, numeric(10,3) stock, numeric(5,2) commission.
MONEY_MAX = Decimal("999999999999999.9999")
QUANTITY_MAX = Decimal("9999999.999")
Money = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    Field(max_digits=19, decimal_places=4, ge=0, le=MONEY_MAX),
    WithJsonSchema(_decimal_schema(places=4, integer_digits=15, what="Amount")),
]
Quantity = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    Field(max_digits=10, decimal_places=3, ge=0, le=QUANTITY_MAX),
    WithJsonSchema(_decimal_schema(places=3, integer_digits=7, what="Kilos or units (the product's unit)")),
]
CommissionRate = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    Field(max_digits=5, decimal_places=2, ge=0, le=100),
    WithJsonSchema(_decimal_schema(places=2, integer_digits=3, maximum=100, what="Percent of sales")),
]

# ---------------------------------------------------------------- shapes

ModoOperacion = Literal["inventario_propio", "sin_inventario", "pedidos", "mixto"]
ProductType = Literal["pollo", "huevo", "otro"]
ProductUnit = Literal["kg", "unidad"]
SalesPoint = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ProductName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), Field(description="ISO 4217 code")]


class FieldSettings(BaseModel):
    modo_operacion: ModoOperacion
    control_kilos: bool
    usar_distribucion: bool
    permitir_venta_sin_stock: bool
    permitir_saldo_a_favor: bool = Field(description="An abono above the debt leaves a credit balance")
    currency: str
    configured: bool = Field(description="false: nothing stored yet, these are the defaults")
    created_at: datetime | None
    updated_at: datetime | None


class SettingsUpdate(RequestBody):
    """Every setting, each time: a PUT replaces them all."""

    modo_operacion: ModoOperacion
    control_kilos: StrictBool
    usar_distribucion: StrictBool
    permitir_venta_sin_stock: StrictBool
    permitir_saldo_a_favor: StrictBool
    currency: CurrencyCode


class Seller(BaseModel):
    id: UUID = Field(description="The seat (field_sales.business_users.id): a device's seller id")
    user_id: UUID
    email: str | None
    full_name: str | None
    user_status: UserStatus = Field(description="The account's status (not active: its devices are refused)")
    role: SellerRole
    sales_point: str | None
    commission_rate: DecimalText
    is_active: bool
    joined_at: datetime
    updated_at: datetime


class SellerPage(BaseModel):
    items: list[Seller]
    next_cursor: str | None


class NewSeller(RequestBody):
    user_id: UUID
    role: SellerRole
    sales_point: SalesPoint | None = None
    commission_rate: CommissionRate


SELLER_PATCHABLE = ("role", "sales_point", "commission_rate", "is_active")


class SellerPatch(PatchBody):
    """Only the fields present change; ``sales_point: null`` clears it."""

    patchable = SELLER_PATCHABLE
    not_null = frozenset({"role", "commission_rate", "is_active"})

    role: SellerRole | None = None
    sales_point: SalesPoint | None = None
    commission_rate: CommissionRate | None = None
    is_active: StrictBool | None = None


class Device(BaseModel):
    id: UUID
    seller_id: UUID
    label: str
    created_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None


class DevicePage(BaseModel):
    items: list[Device]
    next_cursor: str | None


class IssuedDevice(Device):
    credential: str = Field(
        description="The device's bearer credential (Authorization: Bearer fsd_...). Shown this once: "
        "only its hash is kept; a lost one is replaced by revoking the device and issuing another."
    )


class NewDevice(RequestBody):
    label: Label


class DeviceRevocation(RequestBody):
    reason: Reason


class Product(BaseModel):
    id: UUID
    name: str
    type: ProductType
    unit: ProductUnit
    base_price: DecimalText
    is_active: bool
    version: int = Field(description="Adds one on every change (devices compare it)")
    stock: DecimalText = Field(description="Current stock in the product's unit")
    stock_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class ProductPage(BaseModel):
    items: list[Product]
    next_cursor: str | None


class NewProduct(RequestBody):
    name: ProductName
    type: ProductType
    unit: ProductUnit
    base_price: Money
    stock: Quantity = Decimal(0)


PRODUCT_PATCHABLE = ("name", "base_price", "is_active")


class ProductPatch(PatchBody):
    """Only the fields present change; none may be null."""

    patchable = PRODUCT_PATCHABLE
    not_null = frozenset(PRODUCT_PATCHABLE)

    name: ProductName | None = None
    base_price: Money | None = None
    is_active: StrictBool | None = None


class StockCount(RequestBody):
    quantity: Quantity
    reason: Reason


class FieldConflict(ApiError):
    status_code = 409


# ---------------------------------------------------------------- settings


def get_settings(connection: Connection, tenant_id: UUID) -> FieldSettings:
    row = connection.execute(_SQL.get_settings.sql, {"tenant_id": tenant_id}).fetchone()
    if row is None:
        raise LookupError("get_settings returned no row")
    return FieldSettings(**row)


def _settings_state(settings: FieldSettings) -> dict[str, Any]:
    return settings.model_dump(mode="json", exclude={"configured", "created_at", "updated_at"})


def put_settings(change: Change, request: SettingsUpdate) -> FieldSettings:
    tenant_id = change.tenant
    stored = change.connection.execute(_SQL.lock_settings.sql, {"tenant_id": tenant_id}).fetchone()
    before = get_settings(change.connection, tenant_id)
    change.connection.execute(_SQL.upsert_settings.sql, {"tenant_id": tenant_id, **request.model_dump()})
    after = get_settings(change.connection, tenant_id)
    change.audit(
        "field_settings.update",
        target_type="field_settings",
        target_id=tenant_id,
        before=None if stored is None else _settings_state(before),
        after=_settings_state(after),
    )
    return after


# ---------------------------------------------------------------- sellers


def get_seller(connection: Connection, tenant_id: UUID, seller_id: UUID) -> Seller:
    row = connection.execute(_SQL.get_seller.sql, {"tenant_id": tenant_id, "seller_id": seller_id}).fetchone()
    if row is None:
        raise not_found("seller")
    return Seller(**row)


def list_sellers(
    connection: Connection, tenant_id: UUID, *, is_active: bool | None, limit: int, cursor: str | None
) -> SellerPage:
    rows, following = fetch_page(
        connection,
        _SQL.list_sellers.sql,
        {"tenant_id": tenant_id, "is_active": is_active},
        limit=limit,
        cursor=cursor,
        at="joined_at",
    )
    return SellerPage(items=[Seller(**row) for row in rows], next_cursor=following)


def _seller_state(seller: Seller) -> dict[str, Any]:
    return seller.model_dump(
        mode="json", include={"user_id", "role", "sales_point", "commission_rate", "is_active"}
    )


def create_seller(change: Change, request: NewSeller) -> Seller:
    tenant_id = change.tenant
    if change.connection.execute(_SQL.account.sql, {"user_id": request.user_id}).fetchone() is None:
        raise not_found("user")
    row = change.connection.execute(
        _SQL.insert_seller.sql, {"tenant_id": tenant_id, **request.model_dump()}
    ).fetchone()
    if row is None:
        raise FieldConflict(
            "the user already has a seat in this business: change it instead (PATCH)",
            [{"loc": "body.user_id", "type": "seller_exists", "msg": "already a seller of this tenant"}],
            code="seller_exists",
        )
    created = get_seller(change.connection, tenant_id, row["id"])
    change.audit(
        "field_seller.create",
        target_type="field_seller",
        target_id=created.id,
        before=None,
        after=_seller_state(created),
    )
    return created


def _lock_seller(change: Change, seller_id: UUID) -> dict[str, Any]:
    row = change.connection.execute(
        _SQL.lock_seller.sql, {"tenant_id": change.tenant, "seller_id": seller_id}
    ).fetchone()
    if row is None:
        raise not_found("seller")
    return dict(row)


def update_seller(change: Change, seller_id: UUID, patch: SellerPatch) -> Seller:
    tenant_id = change.tenant
    _lock_seller(change, seller_id)
    before = _seller_state(get_seller(change.connection, tenant_id, seller_id))
    parameters = {
        "tenant_id": tenant_id,
        "seller_id": seller_id,
        **patch.set_parameters(),
    }
    change.connection.execute(_SQL.update_seller.sql, parameters)
    updated = get_seller(change.connection, tenant_id, seller_id)
    after = _seller_state(updated)
    old, new = changed_fields(before, after)
    change.audit(
        "field_seller.update", target_type="field_seller", target_id=seller_id, before=old, after=new
    )
    return updated


# ---------------------------------------------------------------- devices


def _get_device(connection: Connection, tenant_id: UUID, device_id: UUID) -> Device:
    row = connection.execute(_SQL.get_device.sql, {"tenant_id": tenant_id, "device_id": device_id}).fetchone()
    if row is None:
        raise not_found("device")
    return Device(**row)


def list_devices(
    connection: Connection, tenant_id: UUID, *, seller_id: UUID | None, limit: int, cursor: str | None
) -> DevicePage:
    rows, following = fetch_page(
        connection,
        _SQL.list_devices.sql,
        {"tenant_id": tenant_id, "seller_id": seller_id},
        limit=limit,
        cursor=cursor,
    )
    return DevicePage(items=[Device(**row) for row in rows], next_cursor=following)


def _device_state(device: Device) -> dict[str, Any]:
    """What the audit trail keeps of a device: never its credential nor the credential's hash."""
    return device.model_dump(mode="json", include={"seller_id", "label", "revoked_at", "revoked_reason"})


def issue_device(change: Change, seller_id: UUID, request: NewDevice) -> IssuedDevice:
    tenant_id = change.tenant
    if not _lock_seller(change, seller_id)["is_active"]:
        raise FieldConflict(
            "the seller is deactivated: reactivate the seat before issuing it a device",
            code="seller_inactive",
        )
    issued = issue_credential(uuid4())  # the id first: the credential names it
    change.connection.execute(
        _SQL.insert_device.sql,
        {
            "id": issued.device_id,
            "tenant_id": tenant_id,
            "seller_id": seller_id,
            "label": request.label,
            "credential_hash": issued.credential_hash,
        },
    )
    device = _get_device(change.connection, tenant_id, issued.device_id)
    change.audit(
        "field_device.issue",
        target_type="field_device",
        target_id=device.id,
        before=None,
        after=_device_state(device),
    )
    return IssuedDevice(**device.model_dump(), credential=issued.credential)


def revoke_device(change: Change, device_id: UUID, request: DeviceRevocation) -> Device:
    tenant_id = change.tenant
    row = change.connection.execute(
        _SQL.lock_device.sql, {"tenant_id": tenant_id, "device_id": device_id}
    ).fetchone()
    if row is None:
        raise not_found("device")
    if row["revoked_at"] is not None:
        raise FieldConflict(
            f"the device was revoked at {row['revoked_at'].isoformat()}", code="already_revoked"
        )
    before = _get_device(change.connection, tenant_id, device_id)
    change.connection.execute(
        _SQL.revoke_device.sql, {"tenant_id": tenant_id, "device_id": device_id, "reason": request.reason}
    )
    after = _get_device(change.connection, tenant_id, device_id)
    change.audit(
        "field_device.revoke",
        target_type="field_device",
        target_id=device_id,
        before=_device_state(before),
        after=_device_state(after),
        reason=request.reason,
    )
    return after


# ---------------------------------------------------------------- products and stock


def get_product(connection: Connection, tenant_id: UUID, product_id: UUID) -> Product:
    row = connection.execute(
        _SQL.get_product.sql, {"tenant_id": tenant_id, "product_id": product_id}
    ).fetchone()
    if row is None:
        raise not_found("product")
    return Product(**row)


def list_products(
    connection: Connection, tenant_id: UUID, *, include_deleted: bool, limit: int, cursor: str | None
) -> ProductPage:
    rows, following = fetch_page(
        connection,
        _SQL.list_products.sql,
        {"tenant_id": tenant_id, "include_deleted": include_deleted},
        limit=limit,
        cursor=cursor,
    )
    return ProductPage(items=[Product(**row) for row in rows], next_cursor=following)


def _product_state(product: Product) -> dict[str, Any]:
    return product.model_dump(
        mode="json",
        include={"name", "type", "unit", "base_price", "is_active", "version", "stock", "deleted_at"},
    )


def create_product(change: Change, request: NewProduct) -> Product:
    tenant_id = change.tenant
    row = change.connection.execute(
        _SQL.insert_product.sql,
        {
            "tenant_id": tenant_id,
            "name": request.name,
            "type": request.type,
            "unit": request.unit,
            "base_price": request.base_price,
        },
    ).fetchone()
    if row is None:
        raise LookupError("INSERT ... RETURNING gave no row")
    change.connection.execute(
        _SQL.set_inventory.sql, {"tenant_id": tenant_id, "product_id": row["id"], "quantity": request.stock}
    )
    created = get_product(change.connection, tenant_id, row["id"])
    change.audit(
        "field_product.create",
        target_type="field_product",
        target_id=created.id,
        before=None,
        after=_product_state(created),
    )
    return created


def _lock_live_product(change: Change, product_id: UUID) -> None:
    row = change.connection.execute(
        _SQL.lock_product.sql, {"tenant_id": change.tenant, "product_id": product_id}
    ).fetchone()
    if row is None:
        raise not_found("product")
    if row["deleted_at"] is not None:
        raise FieldConflict(
            f"the product was deleted at {row['deleted_at'].isoformat()}", code="product_deleted"
        )


def update_product(change: Change, product_id: UUID, patch: ProductPatch) -> Product:
    tenant_id = change.tenant
    _lock_live_product(change, product_id)
    before = _product_state(get_product(change.connection, tenant_id, product_id))
    parameters = {
        "tenant_id": tenant_id,
        "product_id": product_id,
        **patch.set_parameters(),
    }
    change.connection.execute(_SQL.update_product.sql, parameters)
    updated = get_product(change.connection, tenant_id, product_id)
    after = _product_state(updated)
    old, new = changed_fields(before, after)
    change.audit(
        "field_product.update", target_type="field_product", target_id=product_id, before=old, after=new
    )
    return updated


def delete_product(change: Change, product_id: UUID) -> Product:
    tenant_id = change.tenant
    _lock_live_product(change, product_id)
    before = get_product(change.connection, tenant_id, product_id)
    change.connection.execute(_SQL.delete_product.sql, {"tenant_id": tenant_id, "product_id": product_id})
    after = get_product(change.connection, tenant_id, product_id)
    change.audit(
        "field_product.delete",
        target_type="field_product",
        target_id=product_id,
        before={"version": before.version, "deleted_at": None},
        after={"version": after.version, "deleted_at": after.model_dump(mode="json")["deleted_at"]},
    )
    return after


def set_stock(change: Change, product_id: UUID, request: StockCount) -> Product:
    tenant_id = change.tenant
    _lock_live_product(change, product_id)
    parameters = {"tenant_id": tenant_id, "product_id": product_id}
    held = change.connection.execute(_SQL.lock_inventory.sql, parameters).fetchone()
    change.connection.execute(_SQL.set_inventory.sql, {**parameters, "quantity": request.quantity})
    after = get_product(change.connection, tenant_id, product_id)
    change.audit(
        "field_inventory.set",
        target_type="field_product",
        target_id=product_id,
        before={"quantity": None if held is None else _decimal_text(held["quantity"])},
        after={"quantity": _decimal_text(after.stock)},
        reason=request.reason,
    )
    return after
