"""/admin/tenants/{tenant_id}/pos-connections: status, connect, rotate credentials, disconnect.

Reading is open to the tenant's client; every change is a platform admin's (see
pos_gateway.admin.connections). No answer carries a token.
"""

from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router

from pos_gateway.admin import connections
from pos_gateway.admin.access import Permission
from pos_gateway.admin.docs import responses
from pos_gateway.admin.routes.common import DEFAULT_PAGE, Cursor, Limit, changing, reading, services

router = Router()
TAG = ["POS connections"]
BASE = "/admin/tenants/<tenant_id>/pos-connections"


@router.get(
    BASE,
    tags=TAG,
    summary="List the tenant's POS connections with their status",
    responses=responses(200, "A page of connections", connections.ConnectionPage, 404),
)
def list_connections(
    tenant_id: UUID, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> connections.ConnectionPage:
    with reading(
        router,
        Permission.CONNECTIONS_READ,
        tenant_id=tenant_id,
        resource="pos_connection",
        filters={"limit": limit, "cursor": cursor},
    ) as connection:
        return connections.list_connections(connection, limit=limit, cursor=cursor)


@router.get(
    f"{BASE}/<connection_id>",
    tags=TAG,
    summary="A POS connection's status (token expiry, last sync, last error)",
    responses=responses(200, "The connection", connections.PosConnection, 404),
)
def get_connection(tenant_id: UUID, connection_id: UUID) -> connections.PosConnection:
    with reading(
        router,
        Permission.CONNECTIONS_READ,
        tenant_id=tenant_id,
        resource="pos_connection",
        target_id=connection_id,
    ) as connection:
        return connections.get_connection(connection, connection_id)


@router.post(
    BASE,
    tags=TAG,
    status_code=201,
    summary="Connect a merchant account with its OAuth tokens (sealed at once)",
    responses=responses(201, "The new connection", connections.PosConnection, 404, 409),
)
def create_connection(tenant_id: UUID, request: connections.NewConnection) -> connections.PosConnection:
    with changing(router, Permission.CONNECTIONS_WRITE, tenant_id=tenant_id) as change:
        return connections.create_connection(change, request, services(router).cipher())


@router.put(
    f"{BASE}/<connection_id>/credentials",
    tags=TAG,
    summary="Replace a connection's tokens; it goes back to active",
    responses=responses(200, "The connection after rotation", connections.PosConnection, 404, 409),
)
def rotate_credentials(
    tenant_id: UUID, connection_id: UUID, request: connections.Credentials
) -> connections.PosConnection:
    with changing(router, Permission.CONNECTIONS_WRITE, tenant_id=tenant_id) as change:
        return connections.rotate_credentials(change, connection_id, request, services(router).cipher())


@router.delete(
    f"{BASE}/<connection_id>",
    tags=TAG,
    summary="Disconnect a merchant account (it may be connected again later)",
    responses=responses(200, "The disconnected connection", connections.PosConnection, 404, 409),
)
def disconnect(tenant_id: UUID, connection_id: UUID) -> connections.PosConnection:
    with changing(router, Permission.CONNECTIONS_WRITE, tenant_id=tenant_id) as change:
        return connections.disconnect(change, connection_id)
