"""Who may do what in the admin API: permissions per role, checked against the database.

The claims say who the caller claims to be; the database says whether that still holds (a
token outlives a suspension or a removed membership). Order of the checks, so that a refusal
never tells a caller about another tenant:

1. a tenant role acting on another tenant: 404 ``not_found``, as if the resource did not exist
   (whatever the action: another tenant's resources never answer 403);
2. the role's permissions (claims only): 403 ``role_not_allowed``;
3. the caller's standing in the request's transaction: 403 ``user_suspended`` /
   ``user_not_active`` / ``not_a_member`` / ``tenant_not_active``, 404 for a deleted tenant.
"""

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from pos_gateway.auth import AccessDenied, Principal, Role
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError

_SQL = queries.load(__file__, "access.sql")


class Permission(StrEnum):
    TENANTS_READ = "tenants.read"
    TENANTS_WRITE = "tenants.write"
    USERS_READ = "users.read"
    USERS_WRITE = "users.write"
    MEMBERS_READ = "members.read"
    MEMBERS_WRITE = "members.write"
    WALLETS_READ = "wallets.read"
    WALLETS_FREEZE = "wallets.freeze"
    WALLETS_ADJUST = "wallets.adjust"
    RULES_READ = "rules.read"
    RULES_WRITE = "rules.write"
    CONNECTIONS_READ = "connections.read"
    CONNECTIONS_WRITE = "connections.write"
    SYNC_WRITE = "sync.write"  # start, pause, resume and cancel RPApos sync runs
    OPERATIONS_READ = "operations.read"
    OPERATIONS_WRITE = "operations.write"
    AUDIT_READ = "audit.read"
    FIELD_READ = "field.read"  # field sales: settings, sellers, devices, products, stock
    FIELD_WRITE = "field.write"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.CLIENT: frozenset(
        {
            Permission.TENANTS_READ,
            Permission.MEMBERS_READ,
            Permission.WALLETS_READ,
            Permission.WALLETS_ADJUST,
            Permission.RULES_READ,
            Permission.RULES_WRITE,
            Permission.CONNECTIONS_READ,
            Permission.SYNC_WRITE,
            Permission.OPERATIONS_READ,
            Permission.AUDIT_READ,
            # A merchant manages its own sellers, their devices and its catalog.
            Permission.FIELD_READ,
            Permission.FIELD_WRITE,
        }
    ),
    Role.POS_OPERATOR: frozenset({Permission.WALLETS_READ}),
}


class NotFoundError(ApiError):
    status_code = 404
    code = "not_found"


def not_found(what: str) -> NotFoundError:
    return NotFoundError(f"no such {what}")


@dataclass(frozen=True, slots=True)
class Actor:
    """The authorized caller of one request."""

    user_id: UUID
    role: Role

    @property
    def is_platform_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class CallerStanding:
    user_found: bool
    user_status: str | None
    user_role: str | None
    membership_role: str | None  # the live membership in the context's tenant
    tenant_status: str | None  # None: no such tenant (or deleted), or none asked for


def require_permission(principal: Principal, permission: Permission) -> None:
    if permission not in GRANTS[principal.role]:
        raise AccessDenied(403, "role_not_allowed", f"role {principal.role.value} may not {permission.value}")


def require_admin(principal: Principal) -> None:
    if principal.role is not Role.ADMIN:
        raise AccessDenied(403, "role_not_allowed", "only a platform admin may do this")


def tenant_of_request(principal: Principal, requested: UUID | None) -> UUID | None:
    """The tenant whose context the request runs in. A tenant role always runs in its own
    tenant; naming another one answers 404. An admin runs in the tenant it names, or none."""
    if principal.role is Role.ADMIN:
        return requested
    if requested is not None and requested != principal.tenant_id:
        raise not_found("tenant")
    return principal.tenant_id


def caller_standing(connection: Connection, principal: Principal, tenant_id: UUID | None) -> CallerStanding:
    row = connection.execute(
        _SQL.admin_caller.sql, {"user_id": principal.user_id, "tenant_id": tenant_id}
    ).fetchone()
    if row is None:
        raise LookupError("admin_caller returned no row")
    return CallerStanding(**row)


def enable_platform_read(connection: Connection) -> None:
    """For this transaction only; the caller is an admin whose read was just audited."""
    connection.execute(_SQL.enable_platform_read.sql)


def require_standing(
    principal: Principal, standing: CallerStanding, tenant_id: UUID | None, *, tenant_must_exist: bool = True
) -> Actor:
    if not standing.user_found:
        raise AccessDenied(403, "user_not_active", "the caller's account does not exist")
    if standing.user_status == "suspended":
        raise AccessDenied(403, "user_suspended", "the caller's account is suspended")
    if standing.user_status != "active":
        raise AccessDenied(403, "user_not_active", "the caller's account is not active")
    if principal.role is Role.ADMIN:
        if standing.user_role != Role.ADMIN.value:
            raise AccessDenied(403, "role_not_allowed", "the caller is not a platform admin")
    elif standing.membership_role != principal.role.value:
        raise AccessDenied(403, "not_a_member", f"the caller is not a {principal.role.value} of this tenant")
    if tenant_id is not None and tenant_must_exist:
        if standing.tenant_status is None:
            raise not_found("tenant")
        if standing.tenant_status != "active" and principal.role is not Role.ADMIN:
            raise AccessDenied(403, "tenant_not_active", "the tenant is suspended")
    return Actor(user_id=principal.user_id, role=principal.role)
