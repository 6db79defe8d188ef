"""The caller, read from the claims the API Gateway JWT authorizer verified.

The authorizer has checked the token (signature, issuer, audience, expiry) before the handler
runs; HTTP APIs pass its claims in payload 2.0 events at ``requestContext.authorizer.jwt.claims``,
every value as a string. The handler never sees or parses the token itself.

Claims contract:

- ``sub``: the caller's ``identity.users.id`` (uuid).
- ``role``: ``admin`` (platform), ``client`` or ``pos_operator`` (tenant roles).
- ``tenant_id``: the tenant the caller acts in (uuid). Required for tenant roles; an admin
  carries it to act in one tenant. Every tenant-scoped request runs under row-level security
  for exactly this tenant.

Other claims (iss, aud, exp, scope, ...) are ignored here.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEventV2
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from pos_gateway.http import ApiError, validation_fields

SUBJECT_CLAIM = "sub"
ROLE_CLAIM = "role"
TENANT_CLAIM = "tenant_id"


class Role(StrEnum):
    ADMIN = "admin"
    CLIENT = "client"
    POS_OPERATOR = "pos_operator"


TENANT_ROLES = frozenset({Role.CLIENT, Role.POS_OPERATOR})


class AccessDenied(ApiError):
    """The request may not proceed: 401 when the caller is unknown, 403 when not allowed."""

    metric_prefix = "Denied"

    def __init__(
        self, status_code: int, code: str, message: str, fields: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message, fields, status_code=status_code, code=code)


class Claims(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sub: UUID
    role: Role
    tenant_id: UUID | None = None

    @field_validator("tenant_id", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _tenant_roles_have_a_tenant(self) -> "Claims":
        if self.role in TENANT_ROLES and self.tenant_id is None:
            raise ValueError(f"role {self.role.value} requires a {TENANT_CLAIM} claim")
        return self


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: UUID
    role: Role
    tenant_id: UUID | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def principal_from_claims(claims: Mapping[str, Any] | None) -> Principal:
    if not claims:
        raise AccessDenied(401, "unauthenticated", "the request carries no verified claims")
    try:
        parsed = Claims.model_validate(dict(claims))
    except ValidationError as exc:
        raise AccessDenied(
            401, "invalid_claims", "the token's claims do not fit the contract", validation_fields(exc)
        ) from exc
    return Principal(user_id=parsed.sub, role=parsed.role, tenant_id=parsed.tenant_id)


def principal_from_event(event: APIGatewayProxyEventV2) -> Principal:
    """The caller of an HTTP API (payload 2.0) request behind the JWT authorizer."""
    return principal_from_claims(event.request_context.authorizer.jwt_claim)
