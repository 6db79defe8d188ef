"""Reward rule versions: publishing a new one, and finding the one in force at a moment."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pos_gateway.db import queries
from pos_gateway.loyalty.rules import RuleConfig

_SQL = queries.load(__file__, "rulebook.sql")


@dataclass(frozen=True, slots=True)
class RuleVersion:
    id: UUID
    version: int
    config: RuleConfig


def publish_rule_version(
    connection: psycopg.Connection[Any],
    tenant_id: UUID,
    config: RuleConfig | dict[str, Any],
    effective_from: datetime,
    created_by: UUID | None = None,
) -> RuleVersion:
    """Validate a rule config and make it the tenant's active version, retiring the previous one.

    Both happen in one transaction (the caller's, or a new one). Raises pydantic's
    ValidationError, with field-level details, for an invalid config.
    """
    rule = config if isinstance(config, RuleConfig) else RuleConfig.model_validate(config)
    with connection.transaction(), connection.cursor(row_factory=dict_row) as cursor:
        cursor.execute(_SQL.deactivate_rules.sql, {"tenant_id": tenant_id})
        cursor.execute(
            _SQL.insert_active_rule.sql,
            {
                "tenant_id": tenant_id,
                "rule_config": Jsonb(rule.to_document()),
                "effective_from": effective_from,
                "created_by": created_by,
            },
        )
        row = cursor.fetchone()
    if row is None:
        raise LookupError("INSERT ... RETURNING gave no row")
    return RuleVersion(row["id"], row["version"], rule)


def rule_in_force(connection: psycopg.Connection[Any], tenant_id: UUID, at: datetime) -> RuleVersion | None:
    """The version that applied at ``at``: a late event is credited by the rules of its time."""
    with connection.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(_SQL.rule_in_force.sql, {"tenant_id": tenant_id, "at": at}).fetchone()
    if row is None:
        return None
    return RuleVersion(row["id"], row["version"], RuleConfig.model_validate(row["rule_config"]))
