"""Rule version routes: inactive drafts, activation in one transaction, refusals and the race."""

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from local import seed
from local.database import Database
from pos_gateway.admin import rules
from pos_gateway.admin.access import Permission
from pos_gateway.admin.session import AdminDatabase
from pos_gateway.auth import principal_from_claims
from pos_gateway.http import ApiError
from pos_gateway.loyalty.rulebook import rule_in_force
from tests.admin_support import ADMIN_ROLE, AdminApi, Cast, audit_rows, make_cast
from tests.helpers import count, rule_config

MONTH = timedelta(days=30)


@pytest.fixture
def cast(owner: psycopg.Connection[Any]) -> Cast:
    return make_cast(owner, balance=0)


def rules_path(cast: Cast, tenant: Any = None) -> str:
    return f"/admin/tenants/{tenant or cast.tenant_a}/rules"


def activate_path(cast: Cast, version: Any, tenant: Any = None) -> str:
    return f"{rules_path(cast, tenant)}/{version}/activate"


def versions(owner: psycopg.Connection[Any], tenant_id: uuid.UUID) -> list[tuple[int, bool, bool]]:
    """(version, is_active, activated) of every version of the tenant."""
    rows = owner.execute(
        "SELECT version, is_active, activated_at IS NOT NULL AS activated FROM loyalty.reward_rules"
        " WHERE tenant_id = %s ORDER BY version",
        (tenant_id,),
    ).fetchall()
    return [(row["version"], row["is_active"], row["activated"]) for row in rows]


def draft(owner: psycopg.Connection[Any], tenant_id: uuid.UUID, effective_from: datetime) -> None:
    """A never-activated version, as the API creates it."""
    owner.execute(
        "INSERT INTO loyalty.reward_rules (tenant_id, rule_config, effective_from, is_active)"
        " VALUES (%s, %s, %s, false)",
        (tenant_id, Jsonb(rule_config()), effective_from),
    )


def version_in_force(owner: psycopg.Connection[Any], tenant_id: uuid.UUID, at: datetime) -> int | None:
    found = rule_in_force(owner, tenant_id, at)
    return None if found is None else found.version


def create(api: AdminApi, cast: Cast, who: str = "client_a", **body: Any) -> dict[str, Any]:
    answer = api.call("POST", rules_path(cast), cast.claims(who), body={"rule_config": rule_config(), **body})
    assert answer.status == 201, answer.body
    created: dict[str, Any] = answer.body
    return created


def test_a_new_version_is_an_inactive_draft_with_one_audit_row(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    seed.create_rule(owner, cast.tenant_a)  # version 1, active
    before = datetime.now(UTC)
    answer = api.call(
        "POST",
        rules_path(cast),
        cast.claims("client_a"),
        body={"rule_config": rule_config(conversionRate=2.5, roundingPolicy="round")},
    )
    assert answer.status == 201, answer.body
    body = answer.body
    assert (body["version"], body["is_active"], body["activated_at"]) == (2, False, None)
    assert body["created_by"] == str(cast.client_a)
    assert body["rule_config"] == rule_config(conversionRate=2.5, roundingPolicy="round")
    assert (
        before - timedelta(seconds=5) <= datetime.fromisoformat(body["effective_from"]) <= datetime.now(UTC)
    )
    assert versions(owner, cast.tenant_a) == [(1, True, True), (2, False, False)]
    # Nothing changes for sales until it is activated.
    assert version_in_force(owner, cast.tenant_a, datetime.now(UTC)) == 1

    (row,) = audit_rows(owner, action="rule.create", tenant_id=cast.tenant_a)
    assert (row["actor_user_id"], row["target_entity_type"], row["target_entity_id"]) == (
        cast.client_a,
        "reward_rule",
        body["id"],
    )
    assert row["before_state"] is None
    assert row["after_state"]["version"] == 2
    assert row["after_state"]["is_active"] is False
    assert row["after_state"]["rule_config"] == rule_config(conversionRate=2.5, roundingPolicy="round")


def test_snake_case_names_and_an_explicit_effective_from_are_accepted(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    config = {
        "conversion_rate": 1.25,
        "min_spend_minor_units": 500,
        "max_points_per_transaction": 100,
        "min_balance_to_redeem": 0,
        "max_redemption_percentage": 50,
        "rounding_policy": "ceil",
    }
    start = "2031-02-03T04:05:06+01:00"
    body = create(api, cast, who="admin", rule_config=config, effective_from=start)
    assert datetime.fromisoformat(body["effective_from"]) == datetime.fromisoformat(start)
    assert body["rule_config"]["conversionRate"] == 1.25
    assert body["rule_config"]["roundingPolicy"] == "ceil"
    stored = owner.execute(
        "SELECT rule_config FROM loyalty.reward_rules WHERE id = %s", (body["id"],)
    ).fetchone()
    assert stored is not None
    assert stored["rule_config"]["minSpendMinorUnits"] == 500


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"rule_config": rule_config(conversionRate=-1)}, "body.rule_config.conversionRate"),
        (
            {"rule_config": rule_config(maxRedemptionPercentage=150)},
            "body.rule_config.maxRedemptionPercentage",
        ),
        ({"rule_config": rule_config(roundingPolicy="banker")}, "body.rule_config.roundingPolicy"),
        ({"rule_config": {**rule_config(), "bonus": 1}}, "body.rule_config.bonus"),
        (
            {"rule_config": {k: v for k, v in rule_config().items() if k != "minSpendMinorUnits"}},
            "body.rule_config.minSpendMinorUnits",
        ),
        ({"rule_config": rule_config(), "effective_from": "2030-01-01T00:00:00"}, "body.effective_from"),
        ({"rule_config": rule_config(), "is_active": True}, "body.is_active"),
        ({}, "body.rule_config"),
    ],
)
def test_invalid_versions_are_refused_with_fields_and_write_nothing(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], body: dict[str, Any], loc: str
) -> None:
    answer = api.call("POST", rules_path(cast), cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    assert loc in [field["loc"] for field in answer.body["error"]["fields"]]
    assert versions(owner, cast.tenant_a) == []
    assert audit_rows(owner, action="rule.create", tenant_id=cast.tenant_a) == []


def test_versions_are_listed_newest_first_page_by_page(api: AdminApi, cast: Cast) -> None:
    for _ in range(3):
        create(api, cast)
    first = api.call("GET", rules_path(cast), cast.claims("client_a"), query={"limit": 2})
    assert first.status == 200, first.body
    assert [item["version"] for item in first.body["items"]] == [3, 2]
    assert set(first.body["items"][0]) == {
        "version",
        "id",
        "is_active",
        "activated_at",
        "effective_from",
        "rule_config",
        "created_by",
        "created_at",
    }
    second = api.call(
        "GET",
        rules_path(cast),
        cast.claims("client_a"),
        query={"limit": 2, "cursor": first.body["next_cursor"]},
    )
    assert [item["version"] for item in second.body["items"]] == [1]
    assert second.body["next_cursor"] is None
    # Another tenant's versions are not there.
    other = api.call("GET", rules_path(cast, cast.tenant_b), cast.claims("client_b"))
    assert (other.status, other.body["items"]) == (200, [])


def test_refusals_by_role_and_tenant_write_nothing(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    seed.create_rule(owner, cast.tenant_a)
    body = {"rule_config": rule_config()}
    refusals = [
        (api.call("GET", rules_path(cast), cast.claims("operator_a")), 403, "role_not_allowed"),
        (api.call("POST", rules_path(cast), cast.claims("operator_a"), body=body), 403, "role_not_allowed"),
        (api.call("GET", rules_path(cast), cast.claims("client_b")), 404, "not_found"),
        (api.call("POST", rules_path(cast), cast.claims("client_b"), body=body), 404, "not_found"),
        (api.call("POST", activate_path(cast, 1), cast.claims("client_b")), 404, "not_found"),
        (
            api.call("POST", rules_path(cast), cast.claims("suspended_client_a"), body=body),
            403,
            "user_suspended",
        ),
        (api.call("POST", rules_path(cast), body=body), 401, "unauthenticated"),
    ]
    for answer, status, code in refusals:
        assert (answer.status, answer.error_code) == (status, code), answer.body
    assert versions(owner, cast.tenant_a) == [(1, True, True)]
    assert audit_rows(owner, tenant_id=cast.tenant_a) == []


def test_activation_retires_the_active_version_with_one_audit_row(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    seed.create_rule(owner, cast.tenant_a)  # version 1 from seed.PROGRAM_START
    draft = create(api, cast, rule_config=rule_config(conversionRate=3.0))

    answer = api.call("POST", activate_path(cast, 2), cast.claims("client_a"))

    assert answer.status == 200, answer.body
    assert answer.body["previous_active_version"] == 1
    assert answer.body["unscheduled_versions"] == []
    activated = answer.body["rule"]
    assert (activated["id"], activated["version"], activated["is_active"]) == (draft["id"], 2, True)
    assert activated["activated_at"] is not None
    assert versions(owner, cast.tenant_a) == [(1, False, True), (2, True, True)]
    assert version_in_force(owner, cast.tenant_a, datetime.now(UTC)) == 2
    # Sales before the new version's effective_from keep the rules of their time.
    assert version_in_force(owner, cast.tenant_a, datetime.fromisoformat(draft["effective_from"])) == 2
    assert version_in_force(owner, cast.tenant_a, seed.PROGRAM_START + MONTH) == 1
    (row,) = audit_rows(owner, action="rule.activate", tenant_id=cast.tenant_a)
    assert (row["actor_user_id"], row["target_entity_id"]) == (cast.client_a, draft["id"])
    assert row["before_state"] == {"active_version": 1}
    assert row["after_state"] == {"active_version": 2}


def test_the_first_version_of_a_tenant_can_be_activated(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    create(api, cast, who="admin")
    answer = api.call("POST", activate_path(cast, 1), cast.claims("admin"))
    assert (answer.status, answer.body["previous_active_version"]) == (200, None), answer.body
    (row,) = audit_rows(owner, action="rule.activate", tenant_id=cast.tenant_a)
    assert (row["before_state"], row["after_state"]) == ({"active_version": None}, {"active_version": 1})


def test_activating_the_active_or_an_unknown_version_is_refused(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    seed.create_rule(owner, cast.tenant_a)
    seed.create_rule(owner, cast.tenant_b)
    draft(owner, cast.tenant_b, datetime.now(UTC))  # tenant B's version 2
    answer = api.call("POST", activate_path(cast, 1), cast.claims("client_a"))
    assert (answer.status, answer.error_code) == (409, "rule_already_active")
    for version in (2, 7):
        answer = api.call("POST", activate_path(cast, version), cast.claims("client_a"))
        assert (answer.status, answer.error_code) == (404, "not_found")
    assert audit_rows(owner, action="rule.activate", tenant_id=cast.tenant_a) == []
    assert versions(owner, cast.tenant_b) == [(1, True, True), (2, False, False)]


def test_path_version_must_be_a_positive_integer(api: AdminApi, cast: Cast) -> None:
    for bad in ("0", "abc", str(2**31)):
        answer = api.call("POST", activate_path(cast, bad), cast.claims("admin"))
        assert (answer.status, answer.error_code) == (422, "invalid_request"), (bad, answer.body)
        assert [field["loc"] for field in answer.body["error"]["fields"]] == ["path.version"]


def test_an_older_version_superseded_by_one_in_force_is_refused(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    # Version 1 in force since the program started, version 2 since last month.
    seed.create_rule(owner, cast.tenant_a)
    seed.create_rule(owner, cast.tenant_a, rule_config(conversionRate=2.0), datetime.now(UTC) - MONTH)
    # A draft dated before version 2 would only ever apply to that past window.
    create(api, cast, effective_from=(datetime.now(UTC) - 2 * MONTH).isoformat())

    for version in (1, 3):
        answer = api.call("POST", activate_path(cast, version), cast.claims("client_a"))
        assert (answer.status, answer.error_code) == (409, "rule_superseded"), answer.body
        assert "Create a new version" in answer.body["error"]["message"]
        assert answer.body["error"]["fields"][0]["loc"] == "path.version"

    assert versions(owner, cast.tenant_a) == [(1, False, True), (2, True, True), (3, False, False)]
    assert audit_rows(owner, action="rule.activate", tenant_id=cast.tenant_a) == []
    # The way back to an old config: a new version with it, in force from now.
    create(api, cast, rule_config=rule_config())
    answer = api.call("POST", activate_path(cast, 4), cast.claims("client_a"))
    assert answer.status == 200, answer.body
    assert version_in_force(owner, cast.tenant_a, datetime.now(UTC)) == 4


def test_activating_calls_off_versions_only_scheduled_after_it(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    seed.create_rule(owner, cast.tenant_a)
    next_month = datetime.now(UTC) + MONTH
    create(api, cast, rule_config=rule_config(conversionRate=2.0), effective_from=next_month.isoformat())
    assert api.call("POST", activate_path(cast, 2), cast.claims("client_a")).status == 200
    # Scheduled: version 1 keeps applying until next month.
    assert version_in_force(owner, cast.tenant_a, datetime.now(UTC)) == 1
    assert version_in_force(owner, cast.tenant_a, next_month) == 2

    answer = api.call("POST", activate_path(cast, 1), cast.claims("client_a"))

    assert answer.status == 200, answer.body
    assert (answer.body["previous_active_version"], answer.body["unscheduled_versions"]) == (2, [2])
    assert versions(owner, cast.tenant_a) == [(1, True, True), (2, False, False)]
    assert version_in_force(owner, cast.tenant_a, next_month) == 1
    row = audit_rows(owner, action="rule.activate", tenant_id=cast.tenant_a)[-1]
    assert row["before_state"] == {"active_version": 2}
    assert row["after_state"] == {"active_version": 1, "unscheduled_versions": [2]}
    # The called-off version is a draft again and can be scheduled anew.
    assert api.call("POST", activate_path(cast, 2), cast.claims("client_a")).status == 200
    assert version_in_force(owner, cast.tenant_a, next_month) == 2


def _lock_waiters(database: Database) -> int:
    with database.owner() as conn:
        return count(
            conn,
            "SELECT count(*) AS n FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_racing_activations_leave_one_active_version_and_a_conflict(
    database: Database, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    seed.create_rule(owner, cast.tenant_a)
    draft(owner, cast.tenant_a, datetime.now(UTC))
    principal = principal_from_claims(cast.claims("client_a"))
    databases = [AdminDatabase(database.connections(ADMIN_ROLE)) for _ in range(2)]
    first_holds_locks = threading.Event()

    def first() -> rules.Activation:
        with databases[0].change(principal, Permission.RULES_WRITE, tenant_id=cast.tenant_a) as change:
            activation = rules.activate(change, 2)
            first_holds_locks.set()
            # Commit only once the second activation is waiting on the locks.
            _wait_for(lambda: _lock_waiters(database) >= 1)
            return activation

    def second() -> rules.Activation:
        first_holds_locks.wait(timeout=10)
        with databases[1].change(principal, Permission.RULES_WRITE, tenant_id=cast.tenant_a) as change:
            return rules.activate(change, 2)

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            winner, loser = pool.submit(first), pool.submit(second)
            assert winner.result(timeout=30).rule.version == 2
            with pytest.raises(ApiError) as refused:
                loser.result(timeout=30)
    finally:
        for db in databases:
            db.close()
    assert (refused.value.status_code, refused.value.code) == (409, "rule_already_active")
    assert versions(owner, cast.tenant_a) == [(1, False, True), (2, True, True)]
    assert len(audit_rows(owner, action="rule.activate", tenant_id=cast.tenant_a)) == 1


def test_racing_activations_of_different_versions_never_leave_two_active(
    database: Database, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    seed.create_rule(owner, cast.tenant_a)
    now = datetime.now(UTC)
    draft(owner, cast.tenant_a, now - timedelta(minutes=2))
    draft(owner, cast.tenant_a, now - timedelta(minutes=1))  # outranks version 2
    principal = principal_from_claims(cast.claims("admin"))
    factories = [database.connections(ADMIN_ROLE) for _ in range(2)]
    databases = [AdminDatabase(factory) for factory in factories]
    barrier = threading.Barrier(2)

    def work(index: int) -> int | str:
        factories[index].get()  # connect before the barrier so the activations overlap
        barrier.wait(timeout=10)
        try:
            with databases[index].change(
                principal, Permission.RULES_WRITE, tenant_id=cast.tenant_a
            ) as change:
                return rules.activate(change, index + 2).rule.version
        except ApiError as refused:
            return f"{refused.status_code} {refused.code}"

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = list(pool.map(work, range(2)))
    finally:
        for db in databases:
            db.close()
    # Version 3 outranks version 2: either both succeed (2 then 3) or 2 comes second and is refused.
    assert outcomes in ([2, 3], ["409 rule_superseded", 3])
    active = [version for version, is_active, _ in versions(owner, cast.tenant_a) if is_active]
    assert active == [3]


def test_an_activation_beaten_by_a_writer_outside_the_locks_is_a_conflict(
    database: Database, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    # No active version yet; another writer (not taking the activation locks) publishes one
    # while the activation runs: the unique index refuses the second active version.
    draft(owner, cast.tenant_a, datetime.now(UTC))
    principal = principal_from_claims(cast.claims("admin"))
    admin_db = AdminDatabase(database.connections(ADMIN_ROLE))
    with database.owner() as writer, ThreadPoolExecutor(max_workers=1) as pool:
        writer.execute("BEGIN")
        writer.execute(
            "INSERT INTO loyalty.reward_rules (tenant_id, rule_config, is_active, activated_at)"
            " VALUES (%s, %s, true, now())",
            (cast.tenant_a, Jsonb(rule_config())),
        )

        def activation() -> rules.Activation:
            with admin_db.change(principal, Permission.RULES_WRITE, tenant_id=cast.tenant_a) as change:
                return rules.activate(change, 1)

        try:
            pending = pool.submit(activation)
            _wait_for(lambda: _lock_waiters(database) >= 1)
            writer.execute("COMMIT")
            with pytest.raises(ApiError) as refused:
                pending.result(timeout=30)
        finally:
            admin_db.close()
    assert (refused.value.status_code, refused.value.code) == (409, "concurrent_activation")
    assert versions(owner, cast.tenant_a) == [(1, False, False), (2, True, True)]
    assert audit_rows(owner, action="rule.activate", tenant_id=cast.tenant_a) == []
