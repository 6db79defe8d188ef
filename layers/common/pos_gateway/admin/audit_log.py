"""The audit trail as operators read it: every change and every platform admin's read, newest
first. Rows are append-only (triggers refuse UPDATE, DELETE and TRUNCATE, even to the owner);
their states were redacted when written."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, JsonValue

from pos_gateway.admin.listing import fetch_page
from pos_gateway.admin.operations import TimeWindow
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.http import plain_json

_SQL = queries.load(__file__, "audit_log.sql")


class AuditLogEntry(BaseModel):
    id: UUID
    actor_user_id: UUID
    tenant_id: UUID | None
    action: str
    target_entity_type: str | None
    target_entity_id: str | None
    before_state: JsonValue
    after_state: JsonValue
    reason: str | None
    created_at: datetime


class AuditLogPage(BaseModel):
    items: list[AuditLogEntry]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class AuditLogFilter:
    tenant_id: UUID | None
    actor_user_id: UUID | None
    action: str | None
    target_type: str | None
    target_id: str | None
    window: TimeWindow

    def parameters(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "actor_user_id": self.actor_user_id,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            **self.window.parameters(),
        }


def _entry(row: dict[str, Any]) -> AuditLogEntry:
    return AuditLogEntry(
        **{
            **row,
            "before_state": plain_json(row["before_state"]),
            "after_state": plain_json(row["after_state"]),
        }
    )


def list_audit_logs(
    connection: Connection, filters: AuditLogFilter, *, limit: int, cursor: str | None
) -> AuditLogPage:
    rows, following = fetch_page(
        connection, _SQL.list_audit_logs.sql, filters.parameters(), limit=limit, cursor=cursor
    )
    return AuditLogPage(items=[_entry(row) for row in rows], next_cursor=following)
