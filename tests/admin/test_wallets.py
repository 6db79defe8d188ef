"""Wallet routes: reads under row-level security, freezes and adjustments with their audit rows."""

from typing import Any

import psycopg
import pytest

from tests.admin_support import AdminApi, Cast, audit_rows
from tests.helpers import count


def wallet_path(cast: Cast, wallet: Any = None, tenant: Any = None) -> str:
    return f"/admin/tenants/{tenant or cast.tenant_a}/wallets/{wallet or cast.wallet_a}"


def test_operator_reads_a_wallet_with_balance_and_version(api: AdminApi, cast: Cast) -> None:
    answer = api.call("GET", wallet_path(cast), cast.claims("operator_a"))
    assert answer.status == 200, answer.body
    assert answer.body["points_balance"] == 1000
    assert answer.body["version"] == 2
    assert answer.body["status"] == "active"


def test_another_tenants_wallet_is_not_found(api: AdminApi, cast: Cast) -> None:
    # Named under the caller's own tenant, the row-level security hides it.
    answer = api.call("GET", wallet_path(cast, wallet=cast.wallet_b), cast.claims("client_a"))
    assert (answer.status, answer.error_code) == (404, "not_found")
    # Named under its real tenant, the caller is not of that tenant.
    answer = api.call(
        "GET", wallet_path(cast, wallet=cast.wallet_b, tenant=cast.tenant_b), cast.claims("client_a")
    )
    assert (answer.status, answer.error_code) == (404, "not_found")


def test_adjustment_writes_a_ledger_entry_and_one_audit_row(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    body = {"direction": "debit", "points": 250, "reason": "duplicate sale rung twice", "expected_version": 2}
    answer = api.call("POST", wallet_path(cast) + "/adjustments", cast.claims("client_a"), body=body)
    assert answer.status == 201, answer.body
    assert answer.body["wallet"]["points_balance"] == 750
    assert answer.body["wallet"]["version"] == 3
    assert answer.body["ledger_entry"]["created_by_admin"] == str(cast.client_a)
    (row,) = audit_rows(owner, target_entity_id=str(cast.wallet_a), action="wallet.adjust")
    assert row["actor_user_id"] == cast.client_a
    assert row["tenant_id"] == cast.tenant_a
    assert row["reason"] == "duplicate sale rung twice"
    assert row["before_state"] == {"points_balance": 1000, "status": "active", "version": 2}
    assert row["after_state"]["points_balance"] == 750
    assert row["after_state"]["ledger_entry_id"] == answer.body["ledger_entry"]["id"]


def test_stale_version_is_a_conflict_and_writes_nothing(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    body = {"direction": "credit", "points": 5, "reason": "goodwill", "expected_version": 1}
    answer = api.call("POST", wallet_path(cast) + "/adjustments", cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (409, "stale_version")
    assert answer.body["error"]["fields"][0]["loc"] == "body.expected_version"
    assert (
        count(owner, "SELECT count(*) AS n FROM loyalty.wallet_ledger WHERE wallet_id = %s", (cast.wallet_a,))
        == 1
    )
    assert audit_rows(owner, target_entity_id=str(cast.wallet_a), action="wallet.adjust") == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"direction": "up", "points": 5, "reason": "goodwill", "expected_version": 2}, "body.direction"),
        ({"direction": "credit", "points": 0, "reason": "goodwill", "expected_version": 2}, "body.points"),
        ({"direction": "credit", "points": "5", "reason": "goodwill", "expected_version": 2}, "body.points"),
        ({"direction": "credit", "points": 5, "expected_version": 2}, "body.reason"),
        ({"direction": "credit", "points": 5, "reason": "goodwill", "expected_version": 2, "x": 1}, "body.x"),
    ],
)
def test_invalid_adjustments_are_refused_with_fields(
    api: AdminApi, cast: Cast, body: dict[str, Any], loc: str
) -> None:
    answer = api.call("POST", wallet_path(cast) + "/adjustments", cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    assert loc in [field["loc"] for field in answer.body["error"]["fields"]]


def test_freeze_then_unfreeze(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    answer = api.call(
        "POST", wallet_path(cast) + "/freeze", cast.claims("admin"), body={"reason": "fraud check"}
    )
    assert (answer.status, answer.body["status"]) == (200, "frozen"), answer.body
    again = api.call(
        "POST", wallet_path(cast) + "/freeze", cast.claims("admin"), body={"reason": "fraud check"}
    )
    assert (again.status, again.error_code) == (409, "wallet_already_frozen")
    answer = api.call(
        "POST", wallet_path(cast) + "/unfreeze", cast.claims("admin"), body={"reason": "cleared"}
    )
    assert answer.body["status"] == "active"
    actions = [row["action"] for row in audit_rows(owner, target_entity_id=str(cast.wallet_a))]
    assert actions == ["wallet.freeze", "wallet.unfreeze"]


def test_ledger_pages_with_a_cursor(api: AdminApi, cast: Cast) -> None:
    for version in (2, 3, 4):
        body = {"direction": "credit", "points": 1, "reason": "page test", "expected_version": version}
        assert (
            api.call("POST", wallet_path(cast) + "/adjustments", cast.claims("admin"), body=body).status
            == 201
        )
    first = api.call("GET", wallet_path(cast) + "/ledger", cast.claims("client_a"), query={"limit": 3})
    assert len(first.body["items"]) == 3
    assert first.body["next_cursor"]
    second = api.call(
        "GET",
        wallet_path(cast) + "/ledger",
        cast.claims("client_a"),
        query={"limit": 3, "cursor": first.body["next_cursor"]},
    )
    assert len(second.body["items"]) == 1
    assert second.body["next_cursor"] is None
    ids = [item["id"] for item in first.body["items"] + second.body["items"]]
    assert len(set(ids)) == 4
    bad = api.call(
        "GET", wallet_path(cast) + "/ledger", cast.claims("client_a"), query={"cursor": "not-a-cursor"}
    )
    assert (bad.status, bad.error_code) == (400, "invalid_cursor")


def test_platform_admin_reads_are_audited(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    assert api.call("GET", wallet_path(cast), cast.claims("admin")).status == 200
    (row,) = audit_rows(owner, action="platform.read", target_entity_id=str(cast.wallet_a))
    assert (row["actor_user_id"], row["tenant_id"]) == (cast.admin, cast.tenant_a)
