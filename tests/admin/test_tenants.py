"""Tenant and membership routes: creation in the new tenant's own context, partial updates
audited field by field, soft deletes that answer 404 afterwards, and members added, revived and
removed (a removed member is refused on their next request)."""

import uuid
from typing import Any

import psycopg
import pytest

from local import seed
from pos_gateway.admin.tenants import MAX_PROFILE_BYTES, MAX_PROFILE_DEPTH, MAX_PROFILE_KEYS
from tests.admin_support import AdminApi, Cast, audit_rows
from tests.helpers import count, unique_email


def tenant_path(tenant: Any) -> str:
    return f"/admin/tenants/{tenant}"


def members_path(tenant: Any, user: Any = None) -> str:
    return f"/admin/tenants/{tenant}/members" + ("" if user is None else f"/{user}")


def tenant_row(owner: psycopg.Connection[Any], tenant_id: Any) -> dict[str, Any]:
    row = owner.execute("SELECT * FROM identity.tenants WHERE id = %s", (tenant_id,)).fetchone()
    assert row is not None
    return dict(row)


def tenant_count(owner: psycopg.Connection[Any]) -> int:
    return count(owner, "SELECT count(*) AS n FROM identity.tenants")


def nested(depth: int) -> dict[str, Any]:
    """An object nested ``depth`` levels deep (the object itself is level 1)."""
    profile: dict[str, Any] = {"leaf": True}
    for _ in range(depth - 1):
        profile = {"inner": profile}
    return profile


def ids(answer: Any) -> list[str]:
    return [item["id"] for item in answer.body["items"]]


# --- create -----------------------------------------------------------------------------------


def test_admin_creates_a_tenant_with_one_audit_row(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    body = {
        "name": "  Corner Café  ",
        "country": "gb",
        "pos_provider_preference": "clover",
        "onboarding_profile": {"stores": 3, "rate": 1.25, "owner": {"name": "Kim"}, "tags": ["a", "b"]},
    }
    answer = api.call("POST", "/admin/tenants", cast.claims("admin"), body=body)
    assert answer.status == 201, answer.body
    created = answer.body
    assert (created["name"], created["country"], created["status"]) == ("Corner Café", "GB", "active")
    assert created["pos_provider_preference"] == "clover"
    assert created["onboarding_profile"] == body["onboarding_profile"]
    assert created["deleted_at"] is None
    tenant_id = uuid.UUID(created["id"])
    assert tenant_row(owner, tenant_id)["name"] == "Corner Café"
    (row,) = audit_rows(owner, target_entity_id=str(tenant_id))
    assert (row["action"], row["actor_user_id"], row["tenant_id"]) == ("tenant.create", cast.admin, tenant_id)
    assert row["before_state"] is None
    assert row["after_state"] == {
        "name": "Corner Café",
        "country": "GB",
        "status": "active",
        "pos_provider_preference": "clover",
        "onboarding_profile": body["onboarding_profile"],
    }
    read = api.call("GET", tenant_path(tenant_id), cast.claims("admin"))
    assert read.body == created


def test_create_defaults(api: AdminApi, cast: Cast) -> None:
    answer = api.call("POST", "/admin/tenants", cast.claims("admin"), body={"name": "Plain"})
    assert answer.status == 201, answer.body
    assert (answer.body["country"], answer.body["pos_provider_preference"]) == ("US", None)
    assert answer.body["onboarding_profile"] is None


@pytest.mark.parametrize("who", ["client_a", "operator_a"])
def test_only_a_platform_admin_creates_tenants(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], who: str
) -> None:
    before = tenant_count(owner)
    answer = api.call("POST", "/admin/tenants", cast.claims(who), body={"name": "Sneaky"})
    assert (answer.status, answer.error_code) == (403, "role_not_allowed")
    assert tenant_count(owner) == before


def test_json_that_is_not_json_is_malformed(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    # NaN is not JSON (RFC 8259), nor can PostgreSQL store it: refused before any parsing.
    before = tenant_count(owner)
    answer = api.call(
        "POST", "/admin/tenants", cast.claims("admin"), body={"name": "Ok", "ratio": float("nan")}
    )
    assert (answer.status, answer.error_code) == (400, "malformed_json"), answer.body
    assert tenant_count(owner) == before


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, "body.name"),
        ({"name": "   "}, "body.name"),
        ({"name": "x" * 201}, "body.name"),
        ({"name": 7}, "body.name"),
        ({"name": "Ok", "country": "XX"}, "body.country"),
        ({"name": "Ok", "country": "USA"}, "body.country"),
        ({"name": "Ok", "country": None}, "body.country"),
        ({"name": "Ok", "pos_provider_preference": "toast"}, "body.pos_provider_preference"),
        ({"name": "Ok", "onboarding_profile": ["a"]}, "body.onboarding_profile"),
        ({"name": "Ok", "onboarding_profile": "{}"}, "body.onboarding_profile"),
        (
            {"name": "Ok", "onboarding_profile": {f"k{n}": n for n in range(MAX_PROFILE_KEYS + 1)}},
            "body.onboarding_profile",
        ),
        ({"name": "Ok", "onboarding_profile": nested(MAX_PROFILE_DEPTH + 1)}, "body.onboarding_profile"),
        (
            {"name": "Ok", "onboarding_profile": {"deep": [[[[["too deep"]]]]]}},
            "body.onboarding_profile",
        ),
        ({"name": "Ok", "onboarding_profile": {"notes": "x" * MAX_PROFILE_BYTES}}, "body.onboarding_profile"),
        ({"name": "Ok", "status": "suspended"}, "body.status"),
        ({"name": "Ok", "id": str(uuid.uuid4())}, "body.id"),
    ],
)
def test_invalid_tenants_are_refused_with_fields(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], body: dict[str, Any], loc: str
) -> None:
    before = tenant_count(owner)
    answer = api.call("POST", "/admin/tenants", cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    assert loc in [field["loc"] for field in answer.body["error"]["fields"]]
    assert tenant_count(owner) == before


def test_profiles_at_the_limits_are_accepted(api: AdminApi, cast: Cast) -> None:
    wide = {f"k{n}": n for n in range(MAX_PROFILE_KEYS)}
    for profile in (wide, nested(MAX_PROFILE_DEPTH), {"notes": "x" * (MAX_PROFILE_BYTES - 20)}):
        answer = api.call(
            "POST",
            "/admin/tenants",
            cast.claims("admin"),
            body={"name": "Edge", "onboarding_profile": profile},
        )
        assert answer.status == 201, answer.body
        assert answer.body["onboarding_profile"] == profile


# --- read and list ----------------------------------------------------------------------------


def test_a_client_reads_its_own_tenant_only(api: AdminApi, cast: Cast) -> None:
    own = api.call("GET", tenant_path(cast.tenant_a), cast.claims("client_a"))
    assert (own.status, own.body["id"]) == (200, str(cast.tenant_a))
    other = api.call("GET", tenant_path(cast.tenant_b), cast.claims("client_a"))
    assert (other.status, other.error_code) == (404, "not_found")
    operator = api.call("GET", tenant_path(cast.tenant_a), cast.claims("operator_a"))
    assert (operator.status, operator.error_code) == (403, "role_not_allowed")


def test_unknown_and_malformed_tenant_ids(api: AdminApi, cast: Cast) -> None:
    answer = api.call("GET", tenant_path(uuid.uuid4()), cast.claims("admin"))
    assert (answer.status, answer.error_code) == (404, "not_found")
    answer = api.call("GET", tenant_path("not-a-uuid"), cast.claims("admin"))
    assert (answer.status, answer.error_code) == (422, "invalid_request")
    assert answer.body["error"]["fields"][0]["loc"] == "path.tenant_id"


def test_admin_lists_across_tenants_with_an_audited_read(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    answer = api.call("GET", "/admin/tenants", cast.claims("admin"), query={"limit": 200})
    assert answer.status == 200, answer.body
    assert {str(cast.tenant_a), str(cast.tenant_b)} <= set(ids(answer))
    rows = [
        row
        for row in audit_rows(owner, action="platform.read", actor_user_id=cast.admin)
        if row["target_entity_type"] == "tenant"
    ]
    assert rows[-1]["tenant_id"] is None
    assert rows[-1]["after_state"] == {"filters": {"include_deleted": False, "limit": 200}}


def test_a_client_lists_only_its_own_tenant(api: AdminApi, cast: Cast) -> None:
    answer = api.call("GET", "/admin/tenants", cast.claims("client_b"), query={"limit": 200})
    assert (answer.status, ids(answer)) == (200, [str(cast.tenant_b)])


def test_list_pages_newest_first_and_filters(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    marker = uuid.uuid4().hex[:10]
    created = [seed.create_tenant(owner, f"Pager {marker} {n}") for n in range(5)]
    admin = cast.claims("admin")
    seen: list[str] = []
    sizes = []
    cursor = None
    for _ in range(4):
        page = api.call(
            "GET", "/admin/tenants", admin, query={"q": marker.upper(), "limit": 2, "cursor": cursor}
        )
        assert page.status == 200, page.body
        seen += ids(page)
        sizes.append(len(page.body["items"]))
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert sizes == [2, 2, 1]
    assert seen == [str(tenant) for tenant in reversed(created)]
    owner.execute("UPDATE identity.tenants SET status = 'suspended' WHERE id = %s", (created[1],))
    owner.execute("UPDATE identity.tenants SET deleted_at = now() WHERE id = %s", (created[2],))
    suspended = api.call("GET", "/admin/tenants", admin, query={"q": marker, "status": "suspended"})
    assert ids(suspended) == [str(created[1])]
    live = api.call("GET", "/admin/tenants", admin, query={"q": marker})
    assert str(created[2]) not in ids(live)
    assert len(ids(live)) == 4
    everything = api.call("GET", "/admin/tenants", admin, query={"q": marker, "include_deleted": "true"})
    assert len(ids(everything)) == 5
    (deleted,) = [item for item in everything.body["items"] if item["id"] == str(created[2])]
    assert deleted["deleted_at"] is not None


def test_tenant_name_search_is_literal(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    marker = uuid.uuid4().hex[:8]
    literal = seed.create_tenant(owner, f"{marker} 50%_off\\deals")
    decoy = seed.create_tenant(owner, f"{marker} 50XXoff deals")
    admin = cast.claims("admin")
    for term in ("50%_off", "%_off\\d", "\\"):
        answer = api.call("GET", "/admin/tenants", admin, query={"q": term, "limit": 200})
        assert answer.status == 200, answer.body
        assert str(literal) in ids(answer)
        assert str(decoy) not in ids(answer)
    for term in ("' OR 1=1 --", "%' OR ''='"):
        answer = api.call("GET", "/admin/tenants", admin, query={"q": term})
        assert (answer.status, ids(answer)) == (200, [])


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
        ({"cursor": "W10"}, 400, "invalid_cursor"),
        ({"status": "deleted"}, 422, "invalid_request"),
        ({"limit": 0}, 422, "invalid_request"),
        ({"include_deleted": "maybe"}, 422, "invalid_request"),
    ],
)
def test_bad_list_queries(api: AdminApi, cast: Cast, query: dict[str, Any], status: int, code: str) -> None:
    answer = api.call("GET", "/admin/tenants", cast.claims("admin"), query=query)
    assert (answer.status, answer.error_code) == (status, code), answer.body


# --- update -----------------------------------------------------------------------------------


def test_patch_changes_only_the_named_fields(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    before = tenant_row(owner, cast.tenant_a)
    answer = api.call(
        "PATCH", tenant_path(cast.tenant_a), cast.claims("admin"), body={"name": "Renamed", "country": "CA"}
    )
    assert answer.status == 200, answer.body
    assert (answer.body["name"], answer.body["country"]) == ("Renamed", "CA")
    after = tenant_row(owner, cast.tenant_a)
    assert after["pos_provider_preference"] == before["pos_provider_preference"] == "square"
    assert after["status"] == "active"
    assert after["updated_at"] > before["updated_at"]
    (row,) = audit_rows(owner, target_entity_id=str(cast.tenant_a), action="tenant.update")
    assert row["tenant_id"] == cast.tenant_a
    assert row["before_state"] == {"name": before["name"], "country": "US"}
    assert row["after_state"] == {"name": "Renamed", "country": "CA"}


def test_patch_null_clears_the_preference_and_the_profile(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    admin = cast.claims("admin")
    profile = {"plan": "gold", "ratio": 0.5}
    assert (
        api.call("PATCH", tenant_path(cast.tenant_a), admin, body={"onboarding_profile": profile}).status
        == 200
    )
    answer = api.call(
        "PATCH",
        tenant_path(cast.tenant_a),
        admin,
        body={"pos_provider_preference": None, "onboarding_profile": None},
    )
    assert answer.status == 200, answer.body
    assert (answer.body["pos_provider_preference"], answer.body["onboarding_profile"]) == (None, None)
    first, second = audit_rows(owner, target_entity_id=str(cast.tenant_a), action="tenant.update")
    assert (first["before_state"], first["after_state"]) == (
        {"onboarding_profile": None},
        {"onboarding_profile": profile},
    )
    assert second["before_state"] == {"pos_provider_preference": "square", "onboarding_profile": profile}
    assert second["after_state"] == {"pos_provider_preference": None, "onboarding_profile": None}


def test_a_patch_that_changes_nothing_writes_no_update(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    before = tenant_row(owner, cast.tenant_a)
    answer = api.call("PATCH", tenant_path(cast.tenant_a), cast.claims("admin"), body={"country": "US"})
    assert answer.status == 200, answer.body
    assert tenant_row(owner, cast.tenant_a)["updated_at"] == before["updated_at"]
    (row,) = audit_rows(owner, target_entity_id=str(cast.tenant_a), action="tenant.update")
    assert (row["before_state"], row["after_state"]) == ({}, {})


def test_suspending_a_tenant_keeps_the_reason_and_locks_out_its_members(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    admin = cast.claims("admin")
    body = {"status": "suspended", "reason": "unpaid invoices"}
    answer = api.call("PATCH", tenant_path(cast.tenant_a), admin, body=body)
    assert (answer.status, answer.body["status"]) == (200, "suspended"), answer.body
    (row,) = audit_rows(owner, target_entity_id=str(cast.tenant_a), action="tenant.update")
    assert (row["before_state"], row["after_state"], row["reason"]) == (
        {"status": "active"},
        {"status": "suspended"},
        "unpaid invoices",
    )
    refused = api.call("GET", tenant_path(cast.tenant_a), cast.claims("client_a"))
    assert (refused.status, refused.error_code) == (403, "tenant_not_active")
    assert api.call("GET", tenant_path(cast.tenant_a), admin).status == 200
    assert api.call("PATCH", tenant_path(cast.tenant_a), admin, body={"status": "active"}).status == 200
    assert api.call("GET", tenant_path(cast.tenant_a), cast.claims("client_a")).status == 200


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, "body"),
        ({"reason": "only a reason"}, "body"),
        ({"name": None}, "body.name"),
        ({"country": None}, "body.country"),
        ({"status": None}, "body.status"),
        ({"status": "deleted"}, "body.status"),
        ({"name": ""}, "body.name"),
        ({"country": "ZZ"}, "body.country"),
        ({"pos_provider_preference": "toast"}, "body.pos_provider_preference"),
        ({"onboarding_profile": nested(MAX_PROFILE_DEPTH + 1)}, "body.onboarding_profile"),
        ({"status": "suspended", "reason": "x"}, "body.reason"),
        ({"deleted_at": None}, "body.deleted_at"),
    ],
)
def test_invalid_patches_are_refused_and_write_nothing(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], body: dict[str, Any], loc: str
) -> None:
    before = tenant_row(owner, cast.tenant_a)
    answer = api.call("PATCH", tenant_path(cast.tenant_a), cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    assert loc in [field["loc"] for field in answer.body["error"]["fields"]]
    assert tenant_row(owner, cast.tenant_a) == before
    assert audit_rows(owner, target_entity_id=str(cast.tenant_a)) == []


def test_patch_refusals(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    body = {"name": "Hijacked"}
    answer = api.call("PATCH", tenant_path(cast.tenant_a), cast.claims("client_a"), body=body)
    assert (answer.status, answer.error_code) == (403, "role_not_allowed")
    answer = api.call("PATCH", tenant_path(uuid.uuid4()), cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (404, "not_found")
    assert tenant_row(owner, cast.tenant_a)["name"] != "Hijacked"
    assert audit_rows(owner, action="tenant.update", actor_user_id=cast.client_a) == []


# --- delete -----------------------------------------------------------------------------------


def test_a_deleted_tenant_answers_404_everywhere(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    admin = cast.claims("admin")
    refused = api.call("DELETE", tenant_path(cast.tenant_a), cast.claims("client_a"))
    assert (refused.status, refused.error_code) == (403, "role_not_allowed")
    answer = api.call("DELETE", tenant_path(cast.tenant_a), admin)
    assert answer.status == 200, answer.body
    assert answer.body["id"] == str(cast.tenant_a)
    assert answer.body["deleted_at"] is not None
    assert tenant_row(owner, cast.tenant_a)["deleted_at"] is not None
    (row,) = audit_rows(owner, target_entity_id=str(cast.tenant_a), action="tenant.delete")
    assert (row["tenant_id"], row["actor_user_id"]) == (cast.tenant_a, cast.admin)
    assert row["before_state"]["deleted_at"] is None
    assert row["after_state"]["deleted_at"] is not None
    for who, method, path, body in [
        ("admin", "GET", tenant_path(cast.tenant_a), None),
        ("admin", "PATCH", tenant_path(cast.tenant_a), {"name": "Back"}),
        ("admin", "DELETE", tenant_path(cast.tenant_a), None),
        ("admin", "GET", members_path(cast.tenant_a), None),
        ("admin", "POST", members_path(cast.tenant_a), {"user_id": str(cast.client_b), "role": "client"}),
        ("client_a", "GET", tenant_path(cast.tenant_a), None),
        ("operator_a", "GET", f"/admin/tenants/{cast.tenant_a}/wallets", None),
    ]:
        gone = api.call(method, path, cast.claims(who), body=body)
        assert (gone.status, gone.error_code) == (404, "not_found"), (method, path, gone.body)
    assert len(audit_rows(owner, target_entity_id=str(cast.tenant_a), action="tenant.delete")) == 1
    listed = api.call("GET", "/admin/tenants", admin, query={"limit": 200})
    assert str(cast.tenant_a) not in ids(listed)
    assert str(cast.tenant_b) in ids(listed)


# --- members ----------------------------------------------------------------------------------


def test_members_are_listed_for_the_tenant_only(api: AdminApi, cast: Cast) -> None:
    answer = api.call("GET", members_path(cast.tenant_a), cast.claims("client_a"))
    assert answer.status == 200, answer.body
    members = {item["user_id"]: item for item in answer.body["items"]}
    assert set(members) == {str(cast.client_a), str(cast.operator_a), str(cast.suspended_client_a)}
    carla = members[str(cast.client_a)]
    assert (carla["role"], carla["status"], carla["full_name"]) == ("client", "active", "Carla Client")
    assert carla["email"].startswith("client-a.")
    assert carla["since"]
    assert members[str(cast.suspended_client_a)]["status"] == "suspended"
    operators = api.call(
        "GET", members_path(cast.tenant_a), cast.claims("admin"), query={"role": "pos_operator"}
    )
    assert [item["user_id"] for item in operators.body["items"]] == [str(cast.operator_a)]
    other = api.call("GET", members_path(cast.tenant_b), cast.claims("client_a"))
    assert (other.status, other.error_code) == (404, "not_found")
    operator = api.call("GET", members_path(cast.tenant_a), cast.claims("operator_a"))
    assert (operator.status, operator.error_code) == (403, "role_not_allowed")


def test_members_page_with_a_cursor(api: AdminApi, cast: Cast) -> None:
    first = api.call("GET", members_path(cast.tenant_a), cast.claims("admin"), query={"limit": 2})
    assert len(first.body["items"]) == 2
    assert first.body["next_cursor"]
    second = api.call(
        "GET",
        members_path(cast.tenant_a),
        cast.claims("admin"),
        query={"limit": 2, "cursor": first.body["next_cursor"]},
    )
    assert len(second.body["items"]) == 1
    assert second.body["next_cursor"] is None
    users = [item["user_id"] for item in first.body["items"] + second.body["items"]]
    assert users == [str(cast.suspended_client_a), str(cast.operator_a), str(cast.client_a)]  # newest first
    bad = api.call("GET", members_path(cast.tenant_a), cast.claims("admin"), query={"cursor": "%%%"})
    assert (bad.status, bad.error_code) == (400, "invalid_cursor")


def test_admin_adds_a_member_with_one_audit_row(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    newcomer = seed.create_user(owner, email=unique_email("newcomer"), role="client", full_name="Nia New")
    body = {"user_id": str(newcomer), "role": "client"}
    answer = api.call("POST", members_path(cast.tenant_a), cast.claims("admin"), body=body)
    assert answer.status == 201, answer.body
    assert (answer.body["user_id"], answer.body["role"], answer.body["full_name"]) == (
        str(newcomer),
        "client",
        "Nia New",
    )
    membership = owner.execute(
        "SELECT id FROM identity.tenant_users WHERE user_id = %s AND tenant_id = %s",
        (newcomer, cast.tenant_a),
    ).fetchone()
    assert membership is not None
    (row,) = audit_rows(owner, action="membership.add", target_entity_id=str(membership["id"]))
    assert (row["tenant_id"], row["actor_user_id"], row["target_entity_type"]) == (
        cast.tenant_a,
        cast.admin,
        "membership",
    )
    assert row["before_state"] is None
    assert row["after_state"]["user_id"] == str(newcomer)
    assert (row["after_state"]["role"], row["after_state"]["revived"]) == ("client", False)
    # The new client works in the tenant at once.
    claims = {"sub": str(newcomer), "role": "client", "tenant_id": str(cast.tenant_a)}
    assert api.call("GET", tenant_path(cast.tenant_a), claims).status == 200
    again = api.call("POST", members_path(cast.tenant_a), cast.claims("admin"), body=body)
    assert (again.status, again.error_code) == (409, "already_a_member")
    assert len(audit_rows(owner, action="membership.add", target_entity_id=str(membership["id"]))) == 1


def test_add_member_refusals_write_nothing(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    consumer = seed.create_user(owner, email=unique_email("consumer"))
    admin = cast.claims("admin")
    cases: list[tuple[dict[str, Any], Any, dict[str, Any], int, str]] = [
        (admin, cast.tenant_a, {"user_id": str(uuid.uuid4()), "role": "client"}, 404, "not_found"),
        (admin, cast.tenant_a, {"user_id": str(consumer), "role": "client"}, 409, "user_role_mismatch"),
        (admin, cast.tenant_a, {"user_id": str(cast.admin), "role": "client"}, 409, "user_role_mismatch"),
        (
            admin,
            cast.tenant_a,
            {"user_id": str(cast.client_b), "role": "pos_operator"},
            409,
            "user_role_mismatch",
        ),
        (
            admin,
            cast.tenant_a,
            {"user_id": str(cast.operator_a), "role": "pos_operator"},
            409,
            "already_a_member",
        ),
        (admin, uuid.uuid4(), {"user_id": str(cast.client_b), "role": "client"}, 404, "not_found"),
        (
            cast.claims("client_a"),
            cast.tenant_a,
            {"user_id": str(cast.client_b), "role": "client"},
            403,
            "role_not_allowed",
        ),
        (admin, cast.tenant_a, {"user_id": str(cast.client_b), "role": "consumer"}, 422, "invalid_request"),
        (admin, cast.tenant_a, {"user_id": "nope", "role": "client"}, 422, "invalid_request"),
        (admin, cast.tenant_a, {"user_id": str(cast.client_b)}, 422, "invalid_request"),
        (
            admin,
            cast.tenant_a,
            {"user_id": str(cast.client_b), "role": "client", "x": 1},
            422,
            "invalid_request",
        ),
    ]
    memberships = count(owner, "SELECT count(*) AS n FROM identity.tenant_users")
    for claims, tenant, body, status, code in cases:
        answer = api.call("POST", members_path(tenant), claims, body=body)
        assert (answer.status, answer.error_code) == (status, code), (body, answer.body)
    assert count(owner, "SELECT count(*) AS n FROM identity.tenant_users") == memberships
    assert [
        row for row in audit_rows(owner, action="membership.add") if row["tenant_id"] == cast.tenant_a
    ] == []


def test_a_removed_member_is_refused_and_can_be_revived(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    admin = cast.claims("admin")
    own_tenant = tenant_path(cast.tenant_a)
    assert api.call("GET", own_tenant, cast.claims("client_a")).status == 200
    answer = api.call("DELETE", members_path(cast.tenant_a, cast.client_a), admin)
    assert answer.status == 200, answer.body
    assert (answer.body["user_id"], answer.body["role"]) == (str(cast.client_a), "client")
    assert answer.body["removed_at"] is not None
    refused = api.call("GET", own_tenant, cast.claims("client_a"))
    assert (refused.status, refused.error_code) == (403, "not_a_member")
    listed = api.call("GET", members_path(cast.tenant_a), admin)
    assert str(cast.client_a) not in [item["user_id"] for item in listed.body["items"]]
    membership = owner.execute(
        "SELECT id, joined_at FROM identity.tenant_users WHERE user_id = %s AND tenant_id = %s",
        (cast.client_a, cast.tenant_a),
    ).fetchone()
    assert membership is not None
    (removed,) = audit_rows(owner, action="membership.remove", target_entity_id=str(membership["id"]))
    assert removed["tenant_id"] == cast.tenant_a
    assert removed["before_state"] == {"user_id": str(cast.client_a), "role": "client", "deleted_at": None}
    assert removed["after_state"]["deleted_at"] is not None
    again = api.call("DELETE", members_path(cast.tenant_a, cast.client_a), admin)
    assert (again.status, again.error_code) == (404, "not_found")

    body = {"user_id": str(cast.client_a), "role": "client"}
    revived = api.call("POST", members_path(cast.tenant_a), admin, body=body)
    assert revived.status == 201, revived.body
    rows = owner.execute(
        "SELECT id, joined_at, deleted_at FROM identity.tenant_users WHERE user_id = %s AND tenant_id = %s",
        (cast.client_a, cast.tenant_a),
    ).fetchall()
    assert [row["id"] for row in rows] == [membership["id"]]  # the same row, revived
    assert rows[0]["deleted_at"] is None
    assert rows[0]["joined_at"] > membership["joined_at"]
    (added,) = audit_rows(owner, action="membership.add", target_entity_id=str(membership["id"]))
    assert added["before_state"]["deleted_at"] is not None
    assert (added["after_state"]["deleted_at"], added["after_state"]["revived"]) == (None, True)
    assert api.call("GET", own_tenant, cast.claims("client_a")).status == 200


def test_remove_member_refusals(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    admin = cast.claims("admin")
    # A member of another tenant, named under this one.
    answer = api.call("DELETE", members_path(cast.tenant_a, cast.client_b), admin)
    assert (answer.status, answer.error_code) == (404, "not_found")
    answer = api.call("DELETE", members_path(cast.tenant_a, uuid.uuid4()), admin)
    assert (answer.status, answer.error_code) == (404, "not_found")
    answer = api.call("DELETE", members_path(cast.tenant_a, cast.operator_a), cast.claims("client_a"))
    assert (answer.status, answer.error_code) == (403, "role_not_allowed")
    answer = api.call("DELETE", members_path(cast.tenant_a, "nope"), admin)
    assert (answer.status, answer.error_code) == (422, "invalid_request")
    live = count(
        owner,
        "SELECT count(*) AS n FROM identity.tenant_users WHERE tenant_id = ANY(%s) AND deleted_at IS NULL",
        ([cast.tenant_a, cast.tenant_b],),
    )
    assert live == 4
    assert audit_rows(owner, action="membership.remove", tenant_id=cast.tenant_a) == []


def test_the_tenant_routes_are_documented(api: AdminApi) -> None:
    answer = api.call("GET", "/admin/openapi.json")
    assert answer.status == 200
    paths = answer.body["paths"]
    assert set(paths["/admin/tenants"]) == {"get", "post"}
    assert set(paths["/admin/tenants/{tenant_id}"]) == {"get", "patch", "delete"}
    create = paths["/admin/tenants"]["post"]
    assert (create["tags"], "201" in create["responses"]) == (["Tenants"], True)
    add = paths["/admin/tenants/{tenant_id}/members"]["post"]
    assert add["tags"] == ["Members"]
    assert {"201", "403", "404", "409", "422"} <= set(add["responses"])
    assert "delete" in paths["/admin/tenants/{tenant_id}/members/{user_id}"]
