"""/admin/tenants/{tenant_id}/rules: reward rule versions (see pos_gateway.admin.rules)."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from pos_gateway.admin import rules
from pos_gateway.admin.access import Permission
from pos_gateway.admin.docs import responses
from pos_gateway.admin.routes.common import DEFAULT_PAGE, Cursor, Limit, changing, reading

router = Router()
TAG = ["Reward rules"]
BASE = "/admin/tenants/<tenant_id>/rules"

VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="The version number")]


@router.get(
    BASE,
    tags=TAG,
    summary="List the tenant's rule versions, newest first",
    responses=responses(200, "A page of rule versions", rules.RuleVersionPage, 404),
)
def list_rule_versions(
    tenant_id: UUID, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> rules.RuleVersionPage:
    with reading(
        router,
        Permission.RULES_READ,
        tenant_id=tenant_id,
        resource="reward_rule",
        filters={"limit": limit, "cursor": cursor},
    ) as connection:
        return rules.list_versions(connection, limit=limit, cursor=cursor)


@router.post(
    BASE,
    tags=TAG,
    status_code=201,
    summary="Create a rule version (inactive until activated)",
    responses=responses(201, "The new, inactive version", rules.RuleVersion, 404, 409),
)
def create_rule_version(tenant_id: UUID, request: rules.NewRuleVersion) -> rules.RuleVersion:
    with changing(router, Permission.RULES_WRITE, tenant_id=tenant_id) as change:
        return rules.create_version(change, request)


@router.post(
    f"{BASE}/<version>/activate",
    tags=TAG,
    summary="Make a version the active one, in force from its effective_from",
    description=(
        "Retires the active version in the same transaction. Refused (409 rule_superseded) when an "
        "activated version with a later effective_from has already taken effect: create a new version "
        "with the wanted config instead. Versions only scheduled after this one are unscheduled "
        "(listed in unscheduled_versions)."
    ),
    responses=responses(200, "The activated version", rules.Activation, 404, 409),
)
def activate_rule_version(tenant_id: UUID, version: VersionNumber) -> rules.Activation:
    with changing(router, Permission.RULES_WRITE, tenant_id=tenant_id) as change:
        return rules.activate(change, version)
