"""/admin/tenants: create, list, read, change and delete tenants; /admin/tenants/{id}/members.

DELETE answers 200 with the final state (``deleted_at`` set) rather than 204, so the caller
holds what was deleted; the tenant answers 404 everywhere afterwards.
"""

from typing import Annotated
from uuid import UUID, uuid4

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from pos_gateway.admin import members, tenants
from pos_gateway.admin.access import Permission
from pos_gateway.admin.docs import responses
from pos_gateway.admin.routes.common import DEFAULT_PAGE, Cursor, Limit, changing, reading
from pos_gateway.admin.users import MembershipRole

router = Router()
TAG = ["Tenants"]
MEMBERS_TAG = ["Members"]
BASE = "/admin/tenants"
ONE = f"{BASE}/<tenant_id>"
MAX_SEARCH_LENGTH = 200

Search = Annotated[
    str | None, Query(max_length=MAX_SEARCH_LENGTH, description="Part of the name, matched literally")
]
StatusFilter = Annotated[tenants.TenantStatus | None, Query(description="Only tenants in this status")]
IncludeDeleted = Annotated[bool, Query(description="Also list soft-deleted tenants")]
RoleFilter = Annotated[MembershipRole | None, Query(description="Only members with this role")]


@router.post(
    BASE,
    tags=TAG,
    status_code=201,
    summary="Create a tenant (platform admin)",
    responses=responses(201, "The new tenant", tenants.Tenant),
)
def create_tenant(request: tenants.NewTenant) -> tenants.Tenant:
    tenant_id = uuid4()
    with changing(router, Permission.TENANTS_WRITE, tenant_id=tenant_id, tenant_must_exist=False) as change:
        return tenants.create_tenant(change, tenant_id, request)


@router.get(
    BASE,
    tags=TAG,
    summary="List tenants, newest first (a platform admin sees all; a client its own)",
    responses=responses(200, "A page of tenants", tenants.TenantPage),
)
def list_tenants(
    q: Search = None,
    status: StatusFilter = None,
    include_deleted: IncludeDeleted = False,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> tenants.TenantPage:
    filters = {"q": q, "status": status, "include_deleted": include_deleted, "limit": limit, "cursor": cursor}
    with reading(
        router, Permission.TENANTS_READ, tenant_id=None, resource="tenant", filters=filters
    ) as connection:
        return tenants.list_tenants(
            connection, q=q, status=status, include_deleted=include_deleted, limit=limit, cursor=cursor
        )


@router.get(
    ONE,
    tags=TAG,
    summary="A tenant",
    responses=responses(200, "The tenant", tenants.Tenant, 404),
)
def get_tenant(tenant_id: UUID) -> tenants.Tenant:
    with reading(
        router, Permission.TENANTS_READ, tenant_id=tenant_id, resource="tenant", target_id=tenant_id
    ) as connection:
        return tenants.get_tenant(connection, tenant_id)


@router.patch(
    ONE,
    tags=TAG,
    summary="Change a tenant's name, country, status, POS preference or onboarding profile",
    responses=responses(200, "The tenant after the change", tenants.Tenant, 404),
)
def update_tenant(tenant_id: UUID, request: tenants.TenantPatch) -> tenants.Tenant:
    with changing(router, Permission.TENANTS_WRITE, tenant_id=tenant_id) as change:
        return tenants.update_tenant(change, tenant_id, request)


@router.delete(
    ONE,
    tags=TAG,
    summary="Delete a tenant (soft: it answers 404 from then on)",
    responses=responses(200, "The deleted tenant's final state", tenants.Tenant, 404),
)
def delete_tenant(tenant_id: UUID) -> tenants.Tenant:
    with changing(router, Permission.TENANTS_WRITE, tenant_id=tenant_id) as change:
        return tenants.delete_tenant(change, tenant_id)


@router.get(
    f"{ONE}/members",
    tags=MEMBERS_TAG,
    summary="The tenant's clients and POS operators, newest member first",
    responses=responses(200, "A page of members", members.MemberPage, 404),
)
def list_members(
    tenant_id: UUID, role: RoleFilter = None, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> members.MemberPage:
    with reading(
        router,
        Permission.MEMBERS_READ,
        tenant_id=tenant_id,
        resource="membership",
        filters={"role": role, "limit": limit, "cursor": cursor},
    ) as connection:
        return members.list_members(connection, role=role, limit=limit, cursor=cursor)


@router.post(
    f"{ONE}/members",
    tags=MEMBERS_TAG,
    status_code=201,
    summary="Make a user a client or POS operator of the tenant (revives a removed membership)",
    responses=responses(201, "The member", members.Member, 404, 409),
)
def add_member(tenant_id: UUID, request: members.NewMember) -> members.Member:
    with changing(router, Permission.MEMBERS_WRITE, tenant_id=tenant_id) as change:
        return members.add_member(change, tenant_id, request)


@router.delete(
    f"{ONE}/members/<user_id>",
    tags=MEMBERS_TAG,
    summary="Remove a member from the tenant (soft; refused on their next request)",
    responses=responses(200, "The removed membership", members.RemovedMember, 404),
)
def remove_member(tenant_id: UUID, user_id: UUID) -> members.RemovedMember:
    with changing(router, Permission.MEMBERS_WRITE, tenant_id=tenant_id) as change:
        return members.remove_member(change, tenant_id, user_id)
