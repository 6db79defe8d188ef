"""/admin/tenants/{tenant_id}/field/...: field sales settings, sellers, their devices, products
and stock (see pos_gateway.admin.field).

A platform admin and the tenant's client both read (field.read) and change (field.write) them: a
merchant manages its own sellers and devices. A device's credential is answered once, by the
route that issues it, and never again.
"""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from pos_gateway.admin import field
from pos_gateway.admin.access import Permission
from pos_gateway.admin.docs import responses
from pos_gateway.admin.routes.common import DEFAULT_PAGE, Cursor, Limit, OptionalId, changing, reading

router = Router()
TAG = ["Field sales"]
BASE = "/admin/tenants/<tenant_id>/field"
SELLERS = f"{BASE}/sellers"
SELLER = f"{SELLERS}/<seller_id>"
DEVICES = f"{BASE}/devices"
PRODUCTS = f"{BASE}/products"
PRODUCT = f"{PRODUCTS}/<product_id>"

IsActive = Annotated[bool | None, Query(description="Only active (true) or deactivated (false) sellers")]
IncludeDeleted = Annotated[bool, Query(description="Also list soft-deleted products")]


# ---------------------------------------------------------------- settings


@router.get(
    f"{BASE}/settings",
    tags=TAG,
    summary="The tenant's field sales settings (the defaults while none are stored)",
    responses=responses(200, "The settings", field.FieldSettings, 404),
)
def get_settings(tenant_id: UUID) -> field.FieldSettings:
    with reading(router, Permission.FIELD_READ, tenant_id=tenant_id, resource="field_settings") as connection:
        return field.get_settings(connection, tenant_id)


@router.put(
    f"{BASE}/settings",
    tags=TAG,
    summary="Replace the tenant's field sales settings (all of them; stored on the first PUT)",
    responses=responses(200, "The settings as stored", field.FieldSettings, 404),
)
def put_settings(tenant_id: UUID, request: field.SettingsUpdate) -> field.FieldSettings:
    with changing(router, Permission.FIELD_WRITE, tenant_id=tenant_id) as change:
        return field.put_settings(change, request)


# ---------------------------------------------------------------- sellers


@router.get(
    SELLERS,
    tags=TAG,
    summary="List the tenant's sellers (business users), newest seat first",
    responses=responses(200, "A page of sellers", field.SellerPage, 404),
)
def list_sellers(
    tenant_id: UUID, is_active: IsActive = None, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> field.SellerPage:
    with reading(
        router,
        Permission.FIELD_READ,
        tenant_id=tenant_id,
        resource="field_seller",
        filters={"is_active": is_active, "limit": limit, "cursor": cursor},
    ) as connection:
        return field.list_sellers(connection, tenant_id, is_active=is_active, limit=limit, cursor=cursor)


@router.post(
    SELLERS,
    tags=TAG,
    status_code=201,
    summary="Give an existing account a seat (admin_negocio or vendedor) in the tenant's business",
    responses=responses(201, "The new seller", field.Seller, 404, 409),
)
def create_seller(tenant_id: UUID, request: field.NewSeller) -> field.Seller:
    with changing(router, Permission.FIELD_WRITE, tenant_id=tenant_id) as change:
        return field.create_seller(change, request)


@router.get(
    SELLER,
    tags=TAG,
    summary="A seller",
    responses=responses(200, "The seller", field.Seller, 404),
)
def get_seller(tenant_id: UUID, seller_id: UUID) -> field.Seller:
    with reading(
        router, Permission.FIELD_READ, tenant_id=tenant_id, resource="field_seller", target_id=seller_id
    ) as connection:
        return field.get_seller(connection, tenant_id, seller_id)


@router.patch(
    SELLER,
    tags=TAG,
    summary="Change a seller's role, sales point, commission or standing (deactivated: devices refused)",
    responses=responses(200, "The seller after the change", field.Seller, 404),
)
def update_seller(tenant_id: UUID, seller_id: UUID, request: field.SellerPatch) -> field.Seller:
    with changing(router, Permission.FIELD_WRITE, tenant_id=tenant_id) as change:
        return field.update_seller(change, seller_id, request)


# ---------------------------------------------------------------- devices


@router.post(
    f"{SELLER}/devices",
    tags=TAG,
    status_code=201,
    summary="Issue a device to a seller: its credential is in this answer only, never shown again",
    responses=responses(201, "The device and its credential", field.IssuedDevice, 404, 409),
)
def issue_device(tenant_id: UUID, seller_id: UUID, request: field.NewDevice) -> field.IssuedDevice:
    with changing(router, Permission.FIELD_WRITE, tenant_id=tenant_id) as change:
        return field.issue_device(change, seller_id, request)


@router.get(
    DEVICES,
    tags=TAG,
    summary="List the tenant's devices, newest first (revoked ones too; never a credential)",
    responses=responses(200, "A page of devices", field.DevicePage, 404),
)
def list_devices(
    tenant_id: UUID, seller_id: OptionalId = None, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> field.DevicePage:
    with reading(
        router,
        Permission.FIELD_READ,
        tenant_id=tenant_id,
        resource="field_device",
        filters={"seller_id": seller_id, "limit": limit, "cursor": cursor},
    ) as connection:
        return field.list_devices(connection, tenant_id, seller_id=seller_id, limit=limit, cursor=cursor)


@router.post(
    f"{DEVICES}/<device_id>/revoke",
    tags=TAG,
    summary="Revoke a device: its credential is refused from now on (for good)",
    responses=responses(200, "The revoked device", field.Device, 404, 409),
)
def revoke_device(tenant_id: UUID, device_id: UUID, request: field.DeviceRevocation) -> field.Device:
    with changing(router, Permission.FIELD_WRITE, tenant_id=tenant_id) as change:
        return field.revoke_device(change, device_id, request)


# ---------------------------------------------------------------- products and stock


@router.get(
    PRODUCTS,
    tags=TAG,
    summary="List the tenant's products with their stock, newest first",
    responses=responses(200, "A page of products", field.ProductPage, 404),
)
def list_products(
    tenant_id: UUID,
    include_deleted: IncludeDeleted = False,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> field.ProductPage:
    with reading(
        router,
        Permission.FIELD_READ,
        tenant_id=tenant_id,
        resource="field_product",
        filters={"include_deleted": include_deleted, "limit": limit, "cursor": cursor},
    ) as connection:
        return field.list_products(
            connection, tenant_id, include_deleted=include_deleted, limit=limit, cursor=cursor
        )


@router.post(
    PRODUCTS,
    tags=TAG,
    status_code=201,
    summary="Create a product and its stock (default 0)",
    responses=responses(201, "The new product, version 1", field.Product, 404),
)
def create_product(tenant_id: UUID, request: field.NewProduct) -> field.Product:
    with changing(router, Permission.FIELD_WRITE, tenant_id=tenant_id) as change:
        return field.create_product(change, request)


@router.get(
    PRODUCT,
    tags=TAG,
    summary="A product with its stock (a deleted one too: deleted_at says so)",
    responses=responses(200, "The product", field.Product, 404),
)
def get_product(tenant_id: UUID, product_id: UUID) -> field.Product:
    with reading(
        router, Permission.FIELD_READ, tenant_id=tenant_id, resource="field_product", target_id=product_id
    ) as connection:
        return field.get_product(connection, tenant_id, product_id)


@router.patch(
    PRODUCT,
    tags=TAG,
    summary="Change a product's name, base price or active flag (a new version)",
    responses=responses(200, "The product after the change", field.Product, 404, 409),
)
def update_product(tenant_id: UUID, product_id: UUID, request: field.ProductPatch) -> field.Product:
    with changing(router, Permission.FIELD_WRITE, tenant_id=tenant_id) as change:
        return field.update_product(change, product_id, request)


@router.delete(
    PRODUCT,
    tags=TAG,
    summary="Soft-delete a product (a new version; devices get a tombstone on their next pull)",
    responses=responses(200, "The deleted product", field.Product, 404, 409),
)
def delete_product(tenant_id: UUID, product_id: UUID) -> field.Product:
    with changing(router, Permission.FIELD_WRITE, tenant_id=tenant_id) as change:
        return field.delete_product(change, product_id)


@router.put(
    f"{PRODUCT}/inventory",
    tags=TAG,
    summary="Set a product's stock to a counted quantity (the reason is kept in the audit trail)",
    responses=responses(200, "The product with its new stock", field.Product, 404, 409),
)
def set_stock(tenant_id: UUID, product_id: UUID, request: field.StockCount) -> field.Product:
    with changing(router, Permission.FIELD_WRITE, tenant_id=tenant_id) as change:
        return field.set_stock(change, product_id, request)
