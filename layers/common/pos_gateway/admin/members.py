"""Tenant membership: the clients and POS operators of a tenant.

A membership's role must be the role of the user's account (a ``client`` account becomes a
client of a tenant, a ``pos_operator`` account its operator): a platform admin or a consumer is
never made a tenant member by mistake. Removing a member is a soft delete that takes effect on
that member's next request (the caller's standing check); adding them again revives the row.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from pos_gateway.admin.access import not_found
from pos_gateway.admin.inputs import RequestBody
from pos_gateway.admin.listing import fetch_page
from pos_gateway.admin.session import Change
from pos_gateway.admin.users import MembershipRole, UserStatus
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError

_SQL = queries.load(__file__, "members.sql")


class Member(BaseModel):
    user_id: UUID
    email: str | None
    full_name: str | None
    role: MembershipRole
    status: UserStatus  # the account's status
    since: datetime  # when this live membership began (a revived one: when it was revived)


class MemberPage(BaseModel):
    items: list[Member]
    next_cursor: str | None


class NewMember(RequestBody):
    user_id: UUID
    role: MembershipRole


class RemovedMember(BaseModel):
    tenant_id: UUID
    user_id: UUID
    role: MembershipRole
    since: datetime
    removed_at: datetime


class MembershipConflict(ApiError):
    status_code = 409
    code = "membership_conflict"


def list_members(
    connection: Connection, *, role: MembershipRole | None, limit: int, cursor: str | None
) -> MemberPage:
    rows, following = fetch_page(
        connection, _SQL.list_members.sql, {"role": role}, limit=limit, cursor=cursor, at="since"
    )
    return MemberPage(items=[Member(**row) for row in rows], next_cursor=following)


def _state(row: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": row["user_id"], "role": row["role"], "deleted_at": row["deleted_at"]}


def add_member(change: Change, tenant_id: UUID, request: NewMember) -> Member:
    account = change.connection.execute(_SQL.account.sql, {"user_id": request.user_id}).fetchone()
    if account is None:
        raise not_found("user")
    if account["role"] != request.role:
        raise MembershipConflict(
            f"the user's account is a {account['role']} account, not {request.role}",
            [{"loc": "body.role", "type": "user_role_mismatch", "msg": f"the account is {account['role']}"}],
            code="user_role_mismatch",
        )
    existing = change.connection.execute(_SQL.lock_membership.sql, {"user_id": request.user_id}).fetchone()
    if existing is not None and existing["deleted_at"] is None:
        raise _already_member()
    parameters = {"tenant_id": tenant_id, "user_id": request.user_id, "role": request.role}
    if existing is None:
        row = change.connection.execute(_SQL.insert_membership.sql, parameters).fetchone()
        if row is None:  # added by a concurrent request since the lock query
            raise _already_member()
    else:
        row = change.connection.execute(
            _SQL.revive_membership.sql, {**parameters, "membership_id": existing["id"]}
        ).fetchone()
        if row is None:
            raise LookupError("a locked removed membership did not revive")
    change.audit(
        "membership.add",
        target_type="membership",
        target_id=row["id"],
        before=None if existing is None else _state(existing),
        after={**_state(row), "joined_at": row["joined_at"], "revived": existing is not None},
    )
    member = change.connection.execute(_SQL.get_member.sql, {"user_id": request.user_id}).fetchone()
    if member is None:
        raise LookupError("the membership just written is not visible")
    return Member(**member)


def _already_member() -> MembershipConflict:
    return MembershipConflict("the user is already a member of this tenant", code="already_a_member")


def remove_member(change: Change, tenant_id: UUID, user_id: UUID) -> RemovedMember:
    existing = change.connection.execute(_SQL.lock_membership.sql, {"user_id": user_id}).fetchone()
    if existing is None or existing["deleted_at"] is not None:
        raise not_found("member")
    row = change.connection.execute(_SQL.remove_membership.sql, {"membership_id": existing["id"]}).fetchone()
    if row is None:
        raise LookupError("a locked live membership was not removed")
    change.audit(
        "membership.remove",
        target_type="membership",
        target_id=row["id"],
        before=_state(existing),
        after=_state(row),
    )
    return RemovedMember(
        tenant_id=tenant_id,
        user_id=user_id,
        role=row["role"],
        since=row["joined_at"],
        removed_at=row["deleted_at"],
    )
