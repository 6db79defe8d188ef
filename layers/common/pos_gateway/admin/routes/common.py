"""What every admin route reads: the caller, the services, and the shared parameter types."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEventV2

from pos_gateway.admin.listing import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT
from pos_gateway.admin.services import AdminServices
from pos_gateway.auth import Principal, principal_from_event

SERVICES_KEY = "admin_services"

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[
    str | None, Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page")
]
OptionalId = Annotated[UUID | None, Query()]
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
