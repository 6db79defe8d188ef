"""/admin/users: search and read accounts, approve, suspend and reactivate them (platform admin)."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from pos_gateway.admin import users
from pos_gateway.admin.access import Permission
from pos_gateway.admin.docs import responses
from pos_gateway.admin.routes.common import DEFAULT_PAGE, Cursor, Limit, changing, reading

router = Router()
TAG = ["Users"]
BASE = "/admin/users"
ONE = f"{BASE}/<user_id>"
MAX_SEARCH_LENGTH = 200

Search = Annotated[
    str | None,
    Query(
        max_length=MAX_SEARCH_LENGTH, description="Part of the email, mobile or full name, matched literally"
    ),
]
StatusFilter = Annotated[users.UserStatus | None, Query(description="Only accounts in this status")]
RoleFilter = Annotated[users.UserRole | None, Query(description="Only accounts with this role")]
OptionalNote = Annotated[users.StatusNote | None, Body(description="Optional: a reason for the audit trail")]


@router.get(
    BASE,
    tags=TAG,
    summary="Search accounts by email, mobile or name, newest first",
    responses=responses(200, "A page of accounts", users.UserPage),
)
def list_users(
    q: Search = None,
    status: StatusFilter = None,
    role: RoleFilter = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> users.UserPage:
    filters = {"q": q, "status": status, "role": role, "limit": limit, "cursor": cursor}
    with reading(
        router, Permission.USERS_READ, tenant_id=None, resource="user", filters=filters
    ) as connection:
        return users.list_users(connection, q=q, status=status, role=role, limit=limit, cursor=cursor)


@router.get(
    ONE,
    tags=TAG,
    summary="An account with its live tenant memberships",
    responses=responses(200, "The account", users.UserDetail, 404),
)
def get_user(user_id: UUID) -> users.UserDetail:
    with reading(
        router, Permission.USERS_READ, tenant_id=None, resource="user", target_id=user_id
    ) as connection:
        return users.get_user(connection, user_id)


@router.post(
    f"{ONE}/approve",
    tags=TAG,
    summary="Approve a pending account",
    responses=responses(200, "The active account", users.User, 404, 409),
)
def approve(user_id: UUID, request: OptionalNote = None) -> users.User:
    with changing(router, Permission.USERS_WRITE, tenant_id=None) as change:
        return users.change_status(change, user_id, users.APPROVE, request.reason if request else None)


@router.post(
    f"{ONE}/suspend",
    tags=TAG,
    summary="Suspend an account, with a reason (refused on its next request)",
    responses=responses(200, "The suspended account", users.User, 404, 409),
)
def suspend(user_id: UUID, request: users.Suspension) -> users.User:
    with changing(router, Permission.USERS_WRITE, tenant_id=None) as change:
        return users.change_status(change, user_id, users.SUSPEND, request.reason)


@router.post(
    f"{ONE}/reactivate",
    tags=TAG,
    summary="Reactivate a suspended account",
    responses=responses(200, "The active account", users.User, 404, 409),
)
def reactivate(user_id: UUID, request: OptionalNote = None) -> users.User:
    with changing(router, Permission.USERS_WRITE, tenant_id=None) as change:
        return users.change_status(change, user_id, users.REACTIVATE, request.reason if request else None)
