"""The admin audit trail: one append-only row per change, written in the change's transaction.

Before and after states are stored as JSON with every secret-looking field redacted, so the
trail can be read by anyone allowed to read it without exposing a credential.
"""

import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic_core import to_jsonable_python

from pos_gateway.db import queries
from pos_gateway.db.connection import Connection

_SQL = queries.load(__file__, "audit.sql")

REDACTED = "[redacted]"
_SECRET_KEY = re.compile(r"(token|secret|password|credential|_enc$|^authorization$)", re.IGNORECASE)

# Actions that must say why (also enforced by a CHECK on the table).
REASON_REQUIRED = frozenset({"wallet.adjust", "wallet.freeze", "wallet.unfreeze", "user.suspend"})


def redacted(state: Any) -> Any:
    """The state as JSON values, with the value of every secret-named key replaced."""
    if isinstance(state, Mapping):
        return {
            str(key): REDACTED if _SECRET_KEY.search(str(key)) and value is not None else redacted(value)
            for key, value in state.items()
        }
    if isinstance(state, list | tuple):
        return [redacted(item) for item in state]
    return to_jsonable_python(state)


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The before / after of an update as its audit row keeps them: only what changed."""
    changed = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in changed}, {key: after[key] for key in changed}


def record_action(
    connection: Connection,
    *,
    actor_user_id: UUID,
    tenant_id: UUID | None,
    action: str,
    target_type: str,
    target_id: str | UUID | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    reason: str | None,
) -> UUID:
    if action in REASON_REQUIRED and not (reason and reason.strip()):
        raise ValueError(f"{action} needs a reason")
    row = connection.execute(
        _SQL.insert_audit_log.sql,
        {
            "actor_user_id": actor_user_id,
            "tenant_id": tenant_id,
            "action": action,
            "target_entity_type": target_type,
            "target_entity_id": None if target_id is None else str(target_id),
            "before_state": None if before is None else Jsonb(redacted(before)),
            "after_state": None if after is None else Jsonb(redacted(after)),
            "reason": reason,
        },
    ).fetchone()
    if row is None:
        raise LookupError("INSERT ... RETURNING gave no row")
    audit_id: UUID = row["id"]
    return audit_id
