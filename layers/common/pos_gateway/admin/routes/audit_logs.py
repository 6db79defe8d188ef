"""/admin/audit-logs: the audit trail, newest first.

A platform admin reads every tenant's rows and the tenant-less platform actions (or one
tenant's, with tenant_id); a client reads its own tenant's rows only.
"""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from pos_gateway.admin import audit_log
from pos_gateway.admin.access import Permission
from pos_gateway.admin.docs import responses
from pos_gateway.admin.operations import TimeWindow
from pos_gateway.admin.routes.common import DEFAULT_PAGE, Cursor, FromTime, Limit, OptionalId, ToTime, reading

router = Router()
TAG = ["Audit"]


@router.get(
    "/admin/audit-logs",
    tags=TAG,
    summary="List audit log entries, newest first",
    responses=responses(200, "A page of audit log entries", audit_log.AuditLogPage, 404),
)
def list_audit_logs(
    tenant_id: OptionalId = None,
    actor_user_id: Annotated[UUID | None, Query()] = None,
    action: Annotated[
        str | None, Query(min_length=1, max_length=100, description="e.g. wallet.adjust")
    ] = None,
    target_type: Annotated[
        str | None, Query(min_length=1, max_length=100, description="target_entity_type, e.g. wallet")
    ] = None,
    target_id: Annotated[
        str | None, Query(min_length=1, max_length=200, description="target_entity_id")
    ] = None,
    from_time: FromTime = None,
    to_time: ToTime = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> audit_log.AuditLogPage:
    filters = audit_log.AuditLogFilter(
        tenant_id=tenant_id,
        actor_user_id=actor_user_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        window=TimeWindow(from_time, to_time),
    )
    with reading(
        router,
        Permission.AUDIT_READ,
        tenant_id=tenant_id,
        resource="audit_log",
        filters={**filters.parameters(), "limit": limit, "cursor": cursor},
    ) as connection:
        return audit_log.list_audit_logs(connection, filters, limit=limit, cursor=cursor)
