"""The audit log listing: each role sees the rows it may, filtered and paged; and the rows cannot
be changed, not by the admin API's role nor by the owner."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from local.database import Database
from tests.admin_support import AdminApi, Answer, Cast, audit_rows
from tests.helpers import one, unique

EARLY = datetime(2026, 3, 1, 9, tzinfo=UTC)


def audit_row(
    owner: psycopg.Connection[Any],
    *,
    actor: uuid.UUID,
    tenant_id: uuid.UUID | None,
    action: str = "wallet.freeze",
    target_type: str = "wallet",
    target_id: str | None = None,
    at: datetime | None = None,
) -> uuid.UUID:
    row = owner.execute(
        "INSERT INTO audit.admin_audit_logs (actor_user_id, tenant_id, action, target_entity_type,"
        " target_entity_id, before_state, after_state, reason, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, 'fraud check', coalesce(%s, now())) RETURNING id",
        (
            actor,
            tenant_id,
            action,
            target_type,
            target_id or unique("target-"),
            Jsonb({"status": "active"}),
            Jsonb({"status": "frozen"}),
            at,
        ),
    ).fetchone()
    return uuid.UUID(str(one(row)["id"]))


def ids(answer: Answer) -> list[str]:
    assert answer.status == 200, answer.body
    return [item["id"] for item in answer.body["items"]]


def test_each_role_sees_the_rows_of_its_scope(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    target = unique("shared-")
    in_a = audit_row(owner, actor=cast.client_a, tenant_id=cast.tenant_a, target_id=target)
    in_b = audit_row(owner, actor=cast.client_b, tenant_id=cast.tenant_b, target_id=target)
    platform = audit_row(owner, actor=cast.admin, tenant_id=None, action="tenant.create", target_id=target)

    listed = api.call("GET", "/admin/audit-logs", cast.claims("client_a"))
    assert ids(listed) == [str(in_a)]
    assert listed.body["items"][0] | {"created_at": None} == {
        "id": str(in_a),
        "actor_user_id": str(cast.client_a),
        "tenant_id": str(cast.tenant_a),
        "action": "wallet.freeze",
        "target_entity_type": "wallet",
        "target_entity_id": target,
        "before_state": {"status": "active"},
        "after_state": {"status": "frozen"},
        "reason": "fraud check",
        "created_at": None,
    }
    assert ids(api.call("GET", "/admin/audit-logs", cast.claims("client_b"))) == [str(in_b)]
    foreign = api.call(
        "GET", "/admin/audit-logs", cast.claims("client_a"), query={"tenant_id": cast.tenant_b}
    )
    assert (foreign.status, foreign.error_code) == (404, "not_found")
    operator = api.call("GET", "/admin/audit-logs", cast.claims("operator_a"))
    assert (operator.status, operator.error_code) == (403, "role_not_allowed")
    suspended = api.call("GET", "/admin/audit-logs", cast.claims("suspended_client_a"))
    assert (suspended.status, suspended.error_code) == (403, "user_suspended")

    admin = cast.claims("admin")
    everywhere = api.call("GET", "/admin/audit-logs", admin, query={"target_id": target})
    assert set(ids(everywhere)) == {str(in_a), str(in_b), str(platform)}
    one_tenant = api.call(
        "GET", "/admin/audit-logs", admin, query={"target_id": target, "tenant_id": cast.tenant_a}
    )
    assert ids(one_tenant) == [str(in_a)]
    # The admin's reads are in the trail they read (the first in the tenant-less scope).
    reads = audit_rows(owner, action="platform.read", actor_user_id=cast.admin)
    assert [(r["tenant_id"], r["target_entity_type"]) for r in reads] == [
        (None, "audit_log"),
        (cast.tenant_a, "audit_log"),
    ]
    assert reads[0]["after_state"] == {"filters": {"target_id": target, "limit": 50}}
    # A client now sees the admin's read of its tenant.
    assert str(reads[1]["id"]) in ids(api.call("GET", "/admin/audit-logs", cast.claims("client_a")))


def test_filters_time_window_and_pages(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    wallet = str(cast.wallet_a)
    first = audit_row(owner, actor=cast.client_a, tenant_id=cast.tenant_a, target_id=wallet, at=EARLY)
    second = audit_row(
        owner,
        actor=cast.admin,
        tenant_id=cast.tenant_a,
        action="wallet.unfreeze",
        target_id=wallet,
        at=EARLY + timedelta(hours=1),
    )
    third = audit_row(
        owner,
        actor=cast.client_a,
        tenant_id=cast.tenant_a,
        action="rule.publish",
        target_type="reward_rule",
        at=EARLY + timedelta(hours=2),
    )
    client = cast.claims("client_a")

    def listed(**query: Any) -> list[str]:
        return ids(api.call("GET", "/admin/audit-logs", client, query=query))

    assert listed() == [str(third), str(second), str(first)]
    assert listed(actor_user_id=cast.client_a) == [str(third), str(first)]
    assert listed(action="wallet.unfreeze") == [str(second)]
    assert listed(target_type="wallet", target_id=wallet) == [str(second), str(first)]
    assert listed(target_type="reward_rule") == [str(third)]
    assert listed(**{"from": (EARLY + timedelta(hours=1)).isoformat()}) == [str(third), str(second)]
    assert listed(**{"to": (EARLY + timedelta(hours=1)).isoformat()}) == [str(first)]
    assert listed(**{"from": "2026-03-01T05:30:00-04:00", "to": "2026-03-01T11:30:00+01:00"}) == [str(second)]

    page_one = api.call("GET", "/admin/audit-logs", client, query={"limit": 2})
    assert ids(page_one) == [str(third), str(second)]
    page_two = api.call(
        "GET", "/admin/audit-logs", client, query={"limit": 2, "cursor": page_one.body["next_cursor"]}
    )
    assert ids(page_two) == [str(first)]
    assert page_two.body["next_cursor"] is None


def test_bad_cursor_and_bad_time_range(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    admin = cast.claims("admin")
    bad = api.call("GET", "/admin/audit-logs", admin, query={"cursor": "garbage!"})
    assert (bad.status, bad.error_code) == (400, "invalid_cursor")
    backwards = api.call(
        "GET",
        "/admin/audit-logs",
        admin,
        query={"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
    )
    assert (backwards.status, backwards.error_code) == (422, "invalid_request")
    assert [field["loc"] for field in backwards.body["error"]["fields"]] == ["query.to"]
    naive = api.call("GET", "/admin/audit-logs", admin, query={"to": "2026-03-01T00:00:00"})
    assert (naive.status, naive.error_code) == (422, "invalid_request")
    too_long = api.call("GET", "/admin/audit-logs", admin, query={"action": "x" * 101})
    assert (too_long.status, too_long.error_code) == (422, "invalid_request")
    assert audit_rows(owner, actor_user_id=cast.admin) == []


# ---------------------------------------------------------------- append-only


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit.admin_audit_logs SET reason = 'rewritten' WHERE id = %(id)s",
        "UPDATE audit.admin_audit_logs SET tenant_id = NULL WHERE id = %(id)s",
        "DELETE FROM audit.admin_audit_logs WHERE id = %(id)s",
        "TRUNCATE audit.admin_audit_logs",
    ],
    ids=["update-reason", "update-tenant", "delete", "truncate"],
)
@pytest.mark.parametrize("in_tenant", [True, False], ids=["tenant-row", "platform-row"])
def test_the_admin_role_cannot_change_audit_rows(
    database: Database, cast: Cast, owner: psycopg.Connection[Any], statement: str, in_tenant: bool
) -> None:
    tenant_id = cast.tenant_a if in_tenant else None
    row_id = audit_row(owner, actor=cast.client_a, tenant_id=tenant_id)
    with database.connect_as("pos_gateway_admin") as conn, conn.transaction():
        context = "" if tenant_id is None else str(tenant_id)
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (context,))
        # The row is visible in this context: the refusal is the privilege, not row-level security.
        assert conn.execute("SELECT id FROM audit.admin_audit_logs WHERE id = %s", (row_id,)).fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute(statement, {"id": row_id})
    kept = one(
        owner.execute(
            "SELECT reason, tenant_id FROM audit.admin_audit_logs WHERE id = %s", (row_id,)
        ).fetchone()
    )
    assert kept == {"reason": "fraud check", "tenant_id": tenant_id}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit.admin_audit_logs SET reason = 'rewritten' WHERE id = %(id)s",
        "UPDATE audit.admin_audit_logs SET after_state = '{}' WHERE id = %(id)s",
        "DELETE FROM audit.admin_audit_logs WHERE id = %(id)s",
        "TRUNCATE audit.admin_audit_logs",
    ],
    ids=["update-reason", "update-state", "delete", "truncate"],
)
def test_the_owner_cannot_change_audit_rows_either(
    cast: Cast, owner: psycopg.Connection[Any], statement: str
) -> None:
    row_id = audit_row(owner, actor=cast.client_a, tenant_id=cast.tenant_a)
    with pytest.raises(psycopg.errors.RestrictViolation, match=r"audit\.admin_audit_logs is append-only"):
        owner.execute(statement, {"id": row_id})
    kept = one(
        owner.execute(
            "SELECT reason, after_state FROM audit.admin_audit_logs WHERE id = %s", (row_id,)
        ).fetchone()
    )
    assert kept == {"reason": "fraud check", "after_state": {"status": "frozen"}}
