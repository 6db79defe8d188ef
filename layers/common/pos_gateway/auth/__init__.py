"""The caller: verified JWT claims read into a Principal, checked against the database."""

from pos_gateway.auth.claims import (
    ROLE_CLAIM,
    SUBJECT_CLAIM,
    TENANT_CLAIM,
    AccessDenied,
    Principal,
    Role,
    principal_from_claims,
    principal_from_event,
)
from pos_gateway.auth.policy import CallerStanding, require_tenant_context, require_tenant_operator

__all__ = [
    "ROLE_CLAIM",
    "SUBJECT_CLAIM",
    "TENANT_CLAIM",
    "AccessDenied",
    "CallerStanding",
    "Principal",
    "Role",
    "principal_from_claims",
    "principal_from_event",
    "require_tenant_context",
    "require_tenant_operator",
]
