"""Who may act on a tenant's wallets: the claims are checked against the database's standing.

A token outlives a suspension or a removed membership, so the claims alone never suffice: the
user must exist, be active, and (for a POS operator) still be an operator of the claimed
tenant; an admin must still be an admin. The tenant itself must be active.
"""

from dataclasses import dataclass
from uuid import UUID

from pos_gateway.auth.claims import TENANT_CLAIM, AccessDenied, Principal, Role


@dataclass(frozen=True, slots=True)
class CallerStanding:
    """What the database says about the caller, read in the claimed tenant's context."""

    user_found: bool  # exists and is not deleted
    user_status: str | None  # active | pending_approval | suspended
    user_role: str | None  # identity.users.role
    is_pos_operator: bool  # a live pos_operator membership of the tenant
    tenant_status: str | None  # None when the tenant does not exist (or is deleted)


OPERATOR_ROLES = frozenset({Role.POS_OPERATOR, Role.ADMIN})


def require_tenant_context(principal: Principal) -> UUID:
    """What the claims alone decide, before any query: an operator role and a tenant to act in."""
    if principal.role not in OPERATOR_ROLES:
        raise AccessDenied(403, "role_not_allowed", f"role {principal.role.value} may not operate wallets")
    if principal.tenant_id is None:
        raise AccessDenied(403, "tenant_required", f"this operation needs a {TENANT_CLAIM} claim")
    return principal.tenant_id


def require_tenant_operator(principal: Principal, standing: CallerStanding) -> None:
    """Allow an active POS operator of the tenant, or an active admin acting in it."""
    require_tenant_context(principal)
    _require_active_user(standing)
    if principal.is_admin:
        if standing.user_role != Role.ADMIN.value:
            raise AccessDenied(403, "role_not_allowed", "the caller is not an admin")
    elif not standing.is_pos_operator:
        raise AccessDenied(403, "not_a_tenant_operator", "the caller is not a POS operator of this tenant")
    if standing.tenant_status != "active":
        raise AccessDenied(403, "tenant_not_active", "the tenant is suspended or does not exist")


def _require_active_user(standing: CallerStanding) -> None:
    if not standing.user_found:
        raise AccessDenied(403, "user_not_active", "the caller's account does not exist")
    if standing.user_status == "suspended":
        raise AccessDenied(403, "user_suspended", "the caller's account is suspended")
    if standing.user_status != "active":
        raise AccessDenied(403, "user_not_active", "the caller's account is not active")
