"""The admin API's transactions: every request is authorized inside the transaction it runs in.

- ``change``: one transaction on the primary, in the tenant's context; the work and exactly one
  audit row commit together (or neither does).
- ``read``: a tenant role reads its own tenant under row-level security. A platform admin's
  read is recorded in the audit trail first (``platform.read``); without a tenant it switches on
  the admin role's cross-tenant SELECT policies for that transaction only. With a read replica
  configured, the data is read there; the caller's standing is always checked on the primary,
  so a suspension takes effect at once.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pos_gateway.admin.access import (
    Actor,
    Permission,
    caller_standing,
    enable_platform_read,
    require_permission,
    require_standing,
    tenant_of_request,
)
from pos_gateway.admin.audit import record_action
from pos_gateway.auth import Principal
from pos_gateway.db import ConnectionFactory, tenant_transaction
from pos_gateway.db.connection import Connection

PLATFORM_READ = "platform.read"


@dataclass(slots=True)
class Change:
    """The transaction of one mutating request, and the audit row that must come with it."""

    connection: Connection
    actor: Actor
    tenant_id: UUID | None
    audit_ids: list[UUID] = field(default_factory=list)

    @property
    def tenant(self) -> UUID:
        """The tenant of a change that only exists within one (rules, connections, ...)."""
        if self.tenant_id is None:
            raise RuntimeError("this change runs in a tenant's context")
        return self.tenant_id

    def audit(
        self,
        action: str,
        *,
        target_type: str,
        target_id: str | UUID | None,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        reason: str | None = None,
        tenant_id: UUID | None = None,
    ) -> UUID:
        if self.audit_ids:
            raise RuntimeError("a change writes exactly one audit row")
        audit_id = record_action(
            self.connection,
            actor_user_id=self.actor.user_id,
            tenant_id=self.tenant_id if tenant_id is None else tenant_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            before=before,
            after=after,
            reason=reason,
        )
        self.audit_ids.append(audit_id)
        return audit_id


class AdminDatabase:
    def __init__(self, primary: ConnectionFactory, replica: ConnectionFactory | None = None) -> None:
        self._primary = primary
        self._replica = replica

    def close(self) -> None:
        self._primary.close()
        if self._replica is not None:
            self._replica.close()

    @contextmanager
    def change(
        self,
        principal: Principal,
        permission: Permission,
        *,
        tenant_id: UUID | None,
        tenant_must_exist: bool = True,
    ) -> Iterator[Change]:
        """``tenant_must_exist=False`` only for creating the tenant itself (a new id: the role
        decides, there is no other tenant's resource to hide)."""
        if not tenant_must_exist:
            require_permission(principal, permission)
        context = tenant_of_request(principal, tenant_id)
        require_permission(principal, permission)
        with tenant_transaction(self._primary.get(), context) as connection:
            standing = caller_standing(connection, principal, context)
            actor = require_standing(principal, standing, context, tenant_must_exist=tenant_must_exist)
            change = Change(connection, actor, context)
            yield change
            if len(change.audit_ids) != 1:
                raise RuntimeError("a change must write exactly one audit row; rolled back")

    @contextmanager
    def read(
        self,
        principal: Principal,
        permission: Permission,
        *,
        tenant_id: UUID | None,
        resource: str,
        target_id: str | UUID | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> Iterator[Connection]:
        context = tenant_of_request(principal, tenant_id)
        require_permission(principal, permission)
        with tenant_transaction(self._primary.get(), context) as connection:
            actor = require_standing(principal, caller_standing(connection, principal, context), context)
            cross_tenant = actor.is_platform_admin and context is None
            if actor.is_platform_admin:
                record_action(
                    connection,
                    actor_user_id=actor.user_id,
                    tenant_id=context,
                    action=PLATFORM_READ,
                    target_type=resource,
                    target_id=target_id,
                    before=None,
                    after={"filters": {k: v for k, v in (filters or {}).items() if v is not None}},
                    reason=None,
                )
            if self._replica is None:
                if cross_tenant:
                    enable_platform_read(connection)
                yield connection
                return
        with tenant_transaction(self._replica.get(), context) as replica:
            if cross_tenant:
                enable_platform_read(replica)
            yield replica
