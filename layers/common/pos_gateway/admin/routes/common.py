"""What every admin route reads: the caller, the services, its transaction, and the shared
parameter types."""

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEventV2
from pydantic import AwareDatetime

from pos_gateway.admin.access import Permission
from pos_gateway.admin.listing import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT
from pos_gateway.admin.services import AdminServices
from pos_gateway.admin.session import Change
from pos_gateway.auth import Principal, principal_from_event
from pos_gateway.db.connection import Connection

SERVICES_KEY = "admin_services"

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[
    str | None, Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page")
]
OptionalId = Annotated[UUID | None, Query()]
FromTime = Annotated[
    AwareDatetime | None, Query(alias="from", description="From this instant on (inclusive, with its offset)")
]
ToTime = Annotated[
    AwareDatetime | None, Query(alias="to", description="Before this instant (exclusive); not before from")
]
DEFAULT_PAGE = DEFAULT_LIMIT


def caller(router: Router) -> Principal:
    """The verified claims the JWT authorizer passed on (the handler never reads the token)."""
    event = router.current_event
    if not isinstance(event, APIGatewayProxyEventV2):
        raise TypeError("the admin API is an HTTP API (payload 2.0)")
    return principal_from_event(event)


def services(router: Router) -> AdminServices:
    found = router.context.get(SERVICES_KEY)
    if not isinstance(found, AdminServices):
        raise RuntimeError("admin services are not configured for this resolver")
    return found


def reading(
    router: Router,
    permission: Permission,
    *,
    tenant_id: UUID | None,
    resource: str,
    target_id: str | UUID | None = None,
    filters: Mapping[str, Any] | None = None,
) -> AbstractContextManager[Connection]:
    """The caller's read transaction (``AdminDatabase.read``)."""
    return services(router).database.read(
        caller(router),
        permission,
        tenant_id=tenant_id,
        resource=resource,
        target_id=target_id,
        filters=filters,
    )


def changing(
    router: Router, permission: Permission, *, tenant_id: UUID | None, tenant_must_exist: bool = True
) -> AbstractContextManager[Change]:
    """The caller's change transaction (``AdminDatabase.change``)."""
    return services(router).database.change(
        caller(router), permission, tenant_id=tenant_id, tenant_must_exist=tenant_must_exist
    )
