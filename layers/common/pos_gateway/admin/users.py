"""User accounts as a platform admin manages them: search, detail, and the status lifecycle.

``pending_approval`` → ``active`` (approve), ``active`` or ``pending_approval`` → ``suspended``
(suspend, with a reason), ``suspended`` → ``active`` (reactivate). Any other move answers 409.
A suspension takes effect on the user's next request: every admin route checks the caller's
standing in its own transaction. An admin may not suspend themselves.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from pos_gateway.admin.access import not_found
from pos_gateway.admin.inputs import Reason, RequestBody
from pos_gateway.admin.listing import contains_pattern, fetch_page
from pos_gateway.admin.session import Change
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError

_SQL = queries.load(__file__, "users.sql")

UserRole = Literal["consumer", "client", "pos_operator", "admin"]
UserStatus = Literal["active", "pending_approval", "suspended"]
MembershipRole = Literal["client", "pos_operator"]


class User(BaseModel):
    id: UUID
    email: str | None
    mobile: str | None
    full_name: str | None
    role: UserRole
    status: UserStatus
    created_at: datetime
    updated_at: datetime


class UserMembership(BaseModel):
    tenant_id: UUID
    tenant_name: str
    tenant_status: Literal["active", "suspended"]
    role: MembershipRole
    since: datetime


class UserDetail(User):
    memberships: list[UserMembership]


class UserPage(BaseModel):
    items: list[User]
    next_cursor: str | None


class Suspension(RequestBody):
    reason: Reason


class StatusNote(RequestBody):
    """Optional body of approve / reactivate: a reason kept in the audit row."""

    reason: Reason | None = None


class UserStatusConflict(ApiError):
    status_code = 409
    code = "user_status_conflict"


@dataclass(frozen=True, slots=True)
class Transition:
    action: str
    allowed_from: frozenset[str]
    to: UserStatus
    refusal_code: str


APPROVE = Transition("user.approve", frozenset({"pending_approval"}), "active", "user_not_pending_approval")
SUSPEND = Transition(
    "user.suspend", frozenset({"active", "pending_approval"}), "suspended", "user_already_suspended"
)
REACTIVATE = Transition("user.reactivate", frozenset({"suspended"}), "active", "user_not_suspended")


def get_user(connection: Connection, user_id: UUID) -> UserDetail:
    """The account and its live memberships (visible in a platform admin's cross-tenant read)."""
    row = connection.execute(_SQL.get_user.sql, {"user_id": user_id}).fetchone()
    if row is None:
        raise not_found("user")
    memberships = connection.execute(_SQL.user_memberships.sql, {"user_id": user_id}).fetchall()
    return UserDetail(**row, memberships=[UserMembership(**membership) for membership in memberships])


def list_users(
    connection: Connection,
    *,
    q: str | None,
    status: UserStatus | None,
    role: UserRole | None,
    limit: int,
    cursor: str | None,
) -> UserPage:
    rows, following = fetch_page(
        connection,
        _SQL.list_users.sql,
        {"pattern": contains_pattern(q) if q else None, "status": status, "role": role},
        limit=limit,
        cursor=cursor,
    )
    return UserPage(items=[User(**row) for row in rows], next_cursor=following)


def change_status(change: Change, user_id: UUID, transition: Transition, reason: str | None) -> User:
    if transition is SUSPEND and user_id == change.actor.user_id:
        raise UserStatusConflict("an admin may not suspend their own account", code="cannot_suspend_self")
    row = change.connection.execute(_SQL.lock_user.sql, {"user_id": user_id}).fetchone()
    if row is None:
        raise not_found("user")
    before = User(**row)
    if before.status not in transition.allowed_from:
        raise UserStatusConflict(
            f"the user is {before.status}; {transition.action} needs a user who is "
            f"{' or '.join(sorted(transition.allowed_from))}",
            code=transition.refusal_code,
        )
    after_row = change.connection.execute(
        _SQL.set_status.sql, {"user_id": user_id, "status": transition.to}
    ).fetchone()
    if after_row is None:
        raise not_found("user")
    after = User(**after_row)
    change.audit(
        transition.action,
        target_type="user",
        target_id=user_id,
        before={"status": before.status},
        after={"status": after.status},
        reason=reason,
    )
    return after
