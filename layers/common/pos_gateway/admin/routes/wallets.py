"""/admin/tenants/{tenant_id}/wallets: read, ledger, freeze / unfreeze, adjustments."""

from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router

from pos_gateway.admin import wallets
from pos_gateway.admin.access import Permission
from pos_gateway.admin.docs import responses
from pos_gateway.admin.routes.common import DEFAULT_PAGE, Cursor, Limit, OptionalId, changing, reading

router = Router()
TAG = ["Wallets"]
BASE = "/admin/tenants/<tenant_id>/wallets"


@router.get(
    BASE,
    tags=TAG,
    summary="List the tenant's wallets",
    responses=responses(200, "A page of wallets", wallets.WalletPage, 404),
)
def list_wallets(
    tenant_id: UUID, user_id: OptionalId = None, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> wallets.WalletPage:
    filters = {"user_id": user_id, "limit": limit, "cursor": cursor}
    with reading(
        router, Permission.WALLETS_READ, tenant_id=tenant_id, resource="wallet", filters=filters
    ) as connection:
        return wallets.list_wallets(connection, user_id=user_id, limit=limit, cursor=cursor)


@router.get(
    f"{BASE}/<wallet_id>",
    tags=TAG,
    summary="A wallet with its balance and version",
    responses=responses(200, "The wallet", wallets.Wallet, 404),
)
def get_wallet(tenant_id: UUID, wallet_id: UUID) -> wallets.Wallet:
    with reading(
        router, Permission.WALLETS_READ, tenant_id=tenant_id, resource="wallet", target_id=wallet_id
    ) as connection:
        return wallets.get_wallet(connection, wallet_id)


@router.get(
    f"{BASE}/<wallet_id>/ledger",
    tags=TAG,
    summary="The wallet's ledger, newest first",
    responses=responses(200, "A page of ledger entries", wallets.LedgerPage, 404),
)
def get_ledger(
    tenant_id: UUID, wallet_id: UUID, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> wallets.LedgerPage:
    with reading(
        router,
        Permission.WALLETS_READ,
        tenant_id=tenant_id,
        resource="wallet_ledger",
        target_id=wallet_id,
        filters={"limit": limit, "cursor": cursor},
    ) as connection:
        return wallets.ledger(connection, wallet_id, limit=limit, cursor=cursor)


@router.post(
    f"{BASE}/<wallet_id>/freeze",
    tags=TAG,
    summary="Freeze a wallet (no earning, no redemption)",
    responses=responses(200, "The frozen wallet", wallets.Wallet, 404, 409),
)
def freeze(tenant_id: UUID, wallet_id: UUID, request: wallets.StatusChange) -> wallets.Wallet:
    with changing(router, Permission.WALLETS_FREEZE, tenant_id=tenant_id) as change:
        return wallets.set_status(change, wallet_id, "frozen", request)


@router.post(
    f"{BASE}/<wallet_id>/unfreeze",
    tags=TAG,
    summary="Unfreeze a wallet",
    responses=responses(200, "The active wallet", wallets.Wallet, 404, 409),
)
def unfreeze(tenant_id: UUID, wallet_id: UUID, request: wallets.StatusChange) -> wallets.Wallet:
    with changing(router, Permission.WALLETS_FREEZE, tenant_id=tenant_id) as change:
        return wallets.set_status(change, wallet_id, "active", request)


@router.post(
    f"{BASE}/<wallet_id>/adjustments",
    tags=TAG,
    status_code=201,
    summary="Credit or debit points by hand, against the wallet version read",
    responses=responses(201, "The ledger entry and the wallet after it", wallets.AdjustmentResult, 404, 409),
)
def adjust(tenant_id: UUID, wallet_id: UUID, request: wallets.Adjustment) -> wallets.AdjustmentResult:
    with changing(router, Permission.WALLETS_ADJUST, tenant_id=tenant_id) as change:
        return wallets.adjust(change, wallet_id, request)
