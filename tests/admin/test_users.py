"""User routes: search (with every pattern character inert), detail with memberships, and the
status lifecycle with its audit rows. Only a platform admin reaches any of them."""

import uuid
from typing import Any

import psycopg
import pytest

from local import seed
from tests.admin_support import AdminApi, Cast, audit_rows
from tests.helpers import unique_email


def claims_of(user_id: uuid.UUID, role: str = "admin", tenant_id: uuid.UUID | None = None) -> dict[str, Any]:
    claims = {"sub": str(user_id), "role": role}
    if tenant_id is not None:
        claims["tenant_id"] = str(tenant_id)
    return claims


def status_of(owner: psycopg.Connection[Any], user_id: uuid.UUID) -> str:
    row = owner.execute("SELECT status FROM identity.users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return str(row["status"])


def ids(answer: Any) -> list[str]:
    return [item["id"] for item in answer.body["items"]]


# --- who may call ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["client_a", "operator_a"])
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("GET", "/{user}", None),
        ("POST", "/{user}/approve", None),
        ("POST", "/{user}/suspend", {"reason": "policy breach"}),
        ("POST", "/{user}/reactivate", None),
    ],
)
def test_only_a_platform_admin_reaches_the_user_routes(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], who: str, method: str, suffix: str, body: Any
) -> None:
    path = "/admin/users" + suffix.format(user=cast.member_a)
    answer = api.call(method, path, cast.claims(who), body=body)
    assert (answer.status, answer.error_code) == (403, "role_not_allowed"), answer.body
    assert status_of(owner, cast.member_a) == "active"
    assert audit_rows(owner, target_entity_id=str(cast.member_a)) == []


def test_no_claims_is_unauthorized(api: AdminApi) -> None:
    assert api.call("GET", "/admin/users").status == 401


# --- reading ----------------------------------------------------------------------------------


def test_admin_reads_a_user_with_live_memberships(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    seed.add_member(owner, cast.tenant_b, cast.client_a, "client")
    answer = api.call("GET", f"/admin/users/{cast.client_a}", cast.claims("admin"))
    assert answer.status == 200, answer.body
    assert answer.body["email"].startswith("client-a.")
    assert (answer.body["role"], answer.body["status"]) == ("client", "active")
    memberships = {item["tenant_id"]: item for item in answer.body["memberships"]}
    assert set(memberships) == {str(cast.tenant_a), str(cast.tenant_b)}
    assert memberships[str(cast.tenant_a)]["role"] == "client"
    assert memberships[str(cast.tenant_a)]["tenant_status"] == "active"
    # A removed membership and a deleted tenant are not live.
    owner.execute(
        "UPDATE identity.tenant_users SET deleted_at = now() WHERE user_id = %s AND tenant_id = %s",
        (cast.client_a, cast.tenant_b),
    )
    answer = api.call("GET", f"/admin/users/{cast.client_a}", cast.claims("admin"))
    assert [item["tenant_id"] for item in answer.body["memberships"]] == [str(cast.tenant_a)]
    owner.execute("UPDATE identity.tenants SET deleted_at = now() WHERE id = %s", (cast.tenant_a,))
    answer = api.call("GET", f"/admin/users/{cast.client_a}", cast.claims("admin"))
    assert answer.body["memberships"] == []


def test_user_reads_are_audited_platform_reads(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    assert api.call("GET", f"/admin/users/{cast.member_a}", cast.claims("admin")).status == 200
    (row,) = audit_rows(owner, action="platform.read", target_entity_id=str(cast.member_a))
    assert (row["actor_user_id"], row["tenant_id"], row["target_entity_type"]) == (cast.admin, None, "user")
    marker = uuid.uuid4().hex
    assert api.call("GET", "/admin/users", cast.claims("admin"), query={"q": marker}).status == 200
    rows = [
        row
        for row in audit_rows(owner, action="platform.read", actor_user_id=cast.admin)
        if row["target_entity_type"] == "user" and row["after_state"]["filters"].get("q") == marker
    ]
    assert len(rows) == 1
    assert rows[0]["after_state"]["filters"] == {"q": marker, "limit": 50}


def test_unknown_and_malformed_user_ids(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    answer = api.call("GET", f"/admin/users/{uuid.uuid4()}", cast.claims("admin"))
    assert (answer.status, answer.error_code) == (404, "not_found")
    answer = api.call("GET", "/admin/users/not-a-uuid", cast.claims("admin"))
    assert (answer.status, answer.error_code) == (422, "invalid_request")
    assert answer.body["error"]["fields"][0]["loc"] == "path.user_id"
    gone = seed.create_user(owner, email=unique_email("gone"))
    owner.execute("UPDATE identity.users SET deleted_at = now() WHERE id = %s", (gone,))
    answer = api.call("GET", f"/admin/users/{gone}", cast.claims("admin"))
    assert (answer.status, answer.error_code) == (404, "not_found")


def test_list_filters_by_status_and_role(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    marker = uuid.uuid4().hex[:10]
    pending = seed.create_user(owner, email=unique_email(f"f{marker}"), status="pending_approval")
    operator = seed.create_user(owner, email=unique_email(f"f{marker}"), role="pos_operator")
    consumer = seed.create_user(owner, email=unique_email(f"f{marker}"))
    admin = cast.claims("admin")
    every = api.call("GET", "/admin/users", admin, query={"q": marker})
    assert set(ids(every)) == {str(pending), str(operator), str(consumer)}
    waiting = api.call("GET", "/admin/users", admin, query={"q": marker, "status": "pending_approval"})
    assert ids(waiting) == [str(pending)]
    operators = api.call("GET", "/admin/users", admin, query={"q": marker, "role": "pos_operator"})
    assert ids(operators) == [str(operator)]
    both = api.call("GET", "/admin/users", admin, query={"q": marker, "role": "consumer", "status": "active"})
    assert ids(both) == [str(consumer)]


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ({"status": "gone"}, "query.status"),
        ({"role": "superuser"}, "query.role"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"q": "x" * 201}, "query.q"),
    ],
)
def test_invalid_list_queries_are_refused(api: AdminApi, cast: Cast, query: dict[str, Any], loc: str) -> None:
    answer = api.call("GET", "/admin/users", cast.claims("admin"), query=query)
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    assert loc in [field["loc"] for field in answer.body["error"]["fields"]]


def test_users_page_newest_first_with_a_cursor(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    marker = uuid.uuid4().hex[:10]
    created = [seed.create_user(owner, full_name=f"Pager {marker} {n}") for n in range(5)]
    admin = cast.claims("admin")
    seen: list[str] = []
    cursor = None
    sizes = []
    for _ in range(4):
        page = api.call("GET", "/admin/users", admin, query={"q": marker, "limit": 2, "cursor": cursor})
        assert page.status == 200, page.body
        seen += ids(page)
        sizes.append(len(page.body["items"]))
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert sizes == [2, 2, 1]
    assert seen == [str(user) for user in reversed(created)]  # newest first, each once
    bad = api.call("GET", "/admin/users", admin, query={"cursor": "bm90IGEgY3Vyc29y"})
    assert (bad.status, bad.error_code) == (400, "invalid_cursor")


# --- search: pattern characters and SQL are only ever text ----------------------------------


@pytest.fixture(scope="module")
def odd_names(owner: psycopg.Connection[Any]) -> dict[str, uuid.UUID]:
    tag = uuid.uuid4().hex[:8]
    people = {
        "percent": ("Promo 100% Club", f"pct{tag}@example.com"),
        "underscore": ("snake_case Sam", f"snake_{tag}@example.com"),
        "underscore_decoy": ("snakeXcase Sid", f"snakex{tag}@example.com"),
        "backslash": ("Back\\slash Bob", f"bs{tag}@example.com"),
        "quote": ("Orla O'Brien", f"o'brien.{tag}@example.com"),
        "sql": ("x' OR 1=1 -- y", f"sql{tag}@example.com"),
        "a_percent_b": ("Ann a%b Literal", f"apb{tag}@example.com"),
        "a_percent_b_decoy": ("Ann aXXb Decoy", f"axb{tag}@example.com"),
    }
    return {
        key: seed.create_user(owner, full_name=name, email=email) for key, (name, email) in people.items()
    }


def literal_matches(owner: psycopg.Connection[Any], term: str) -> set[str]:
    rows = owner.execute(
        "SELECT id FROM identity.users WHERE deleted_at IS NULL AND ("
        " strpos(lower(coalesce(email, '')), lower(%(t)s)) > 0"
        " OR strpos(lower(coalesce(mobile, '')), lower(%(t)s)) > 0"
        " OR strpos(lower(coalesce(full_name, '')), lower(%(t)s)) > 0)",
        {"t": term},
    ).fetchall()
    return {str(row["id"]) for row in rows}


@pytest.mark.parametrize(
    ("term", "must", "must_not"),
    [
        ("%", {"percent", "a_percent_b"}, {"underscore_decoy", "a_percent_b_decoy", "quote"}),
        ("100%", {"percent"}, {"a_percent_b"}),
        ("_", {"underscore"}, {"underscore_decoy", "percent"}),
        ("snake_case", {"underscore"}, {"underscore_decoy"}),
        ("\\", {"backslash"}, {"percent", "quote"}),
        ("k\\s", {"backslash"}, set()),
        ("'", {"quote", "sql"}, {"percent"}),
        ("o'brien", {"quote"}, {"sql"}),
        ("' OR 1=1 --", {"sql"}, {"quote", "percent"}),
        ("a%b", {"a_percent_b"}, {"a_percent_b_decoy"}),
        ("%' OR '1'='1", set(), {"percent", "quote", "sql"}),
        ("'; DROP TABLE identity.users; --", set(), {"sql"}),
        ('"', set(), {"quote"}),
    ],
)
def test_search_terms_match_literally(
    api: AdminApi,
    cast: Cast,
    owner: psycopg.Connection[Any],
    odd_names: dict[str, uuid.UUID],
    term: str,
    must: set[str],
    must_not: set[str],
) -> None:
    answer = api.call("GET", "/admin/users", cast.claims("admin"), query={"q": term, "limit": 200})
    assert answer.status == 200, answer.body
    found = set(ids(answer))
    assert answer.body["next_cursor"] is None
    assert found == literal_matches(owner, term)
    assert {str(odd_names[key]) for key in must} <= found
    assert not {str(odd_names[key]) for key in must_not} & found
    assert owner.execute("SELECT to_regclass('identity.users') AS t").fetchone() == {"t": "identity.users"}


def test_search_matches_email_and_mobile_case_insensitively(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    tag = uuid.uuid4().hex[:8]
    by_email = seed.create_user(owner, email=f"Finder.{tag}@Example.com")
    mobile = "+1555" + str(uuid.uuid4().int)[:7]
    by_mobile = seed.create_user(owner, mobile=mobile)
    admin = cast.claims("admin")
    assert ids(api.call("GET", "/admin/users", admin, query={"q": f"finder.{tag.upper()}"})) == [
        str(by_email)
    ]
    assert ids(api.call("GET", "/admin/users", admin, query={"q": mobile[1:]})) == [str(by_mobile)]


# --- status lifecycle -------------------------------------------------------------------------


def test_approve_a_pending_user_with_one_audit_row(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    pending = seed.create_user(owner, email=unique_email("pending"), status="pending_approval")
    answer = api.call("POST", f"/admin/users/{pending}/approve", cast.claims("admin"))
    assert (answer.status, answer.body["status"]) == (200, "active"), answer.body
    (row,) = audit_rows(owner, target_entity_id=str(pending))
    assert (row["action"], row["actor_user_id"], row["tenant_id"]) == ("user.approve", cast.admin, None)
    assert (row["before_state"], row["after_state"]) == ({"status": "pending_approval"}, {"status": "active"})
    assert row["target_entity_type"] == "user"
    assert row["reason"] is None
    again = api.call("POST", f"/admin/users/{pending}/approve", cast.claims("admin"))
    assert (again.status, again.error_code) == (409, "user_not_pending_approval")
    assert len(audit_rows(owner, target_entity_id=str(pending))) == 1


def test_approve_keeps_an_optional_reason(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    pending = seed.create_user(owner, email=unique_email("pending"), status="pending_approval")
    body = {"reason": "documents checked"}
    assert api.call("POST", f"/admin/users/{pending}/approve", cast.claims("admin"), body=body).status == 200
    (row,) = audit_rows(owner, target_entity_id=str(pending))
    assert row["reason"] == "documents checked"


def test_suspend_then_reactivate(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    admin = cast.claims("admin")
    answer = api.call(
        "POST", f"/admin/users/{cast.member_a}/suspend", admin, body={"reason": "chargeback fraud"}
    )
    assert (answer.status, answer.body["status"]) == (200, "suspended"), answer.body
    again = api.call("POST", f"/admin/users/{cast.member_a}/suspend", admin, body={"reason": "again"})
    assert (again.status, again.error_code) == (409, "user_already_suspended")
    answer = api.call("POST", f"/admin/users/{cast.member_a}/reactivate", admin)
    assert (answer.status, answer.body["status"]) == (200, "active")
    again = api.call("POST", f"/admin/users/{cast.member_a}/reactivate", admin)
    assert (again.status, again.error_code) == (409, "user_not_suspended")
    rows = audit_rows(owner, target_entity_id=str(cast.member_a))
    assert [(row["action"], row["before_state"], row["after_state"], row["reason"]) for row in rows] == [
        ("user.suspend", {"status": "active"}, {"status": "suspended"}, "chargeback fraud"),
        ("user.reactivate", {"status": "suspended"}, {"status": "active"}, None),
    ]


def test_a_pending_user_may_be_suspended(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    pending = seed.create_user(owner, email=unique_email("pending"), status="pending_approval")
    answer = api.call(
        "POST", f"/admin/users/{pending}/suspend", cast.claims("admin"), body={"reason": "spam"}
    )
    assert (answer.status, answer.body["status"]) == (200, "suspended")
    answer = api.call("POST", f"/admin/users/{pending}/approve", cast.claims("admin"))
    assert (answer.status, answer.error_code) == (409, "user_not_pending_approval")
    assert status_of(owner, pending) == "suspended"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (None, "body"),
        ({}, "body.reason"),
        ({"reason": "  "}, "body.reason"),
        ({"reason": "ab"}, "body.reason"),
        ({"reason": "x" * 501}, "body.reason"),
        ({"reason": 12345}, "body.reason"),
        ({"reason": "valid reason", "status": "active"}, "body.status"),
    ],
)
def test_suspend_needs_a_reason(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], body: Any, loc: str
) -> None:
    answer = api.call("POST", f"/admin/users/{cast.member_a}/suspend", cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    assert loc in [field["loc"] for field in answer.body["error"]["fields"]]
    assert status_of(owner, cast.member_a) == "active"
    assert audit_rows(owner, target_entity_id=str(cast.member_a)) == []


def test_approve_refuses_unknown_body_fields(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    pending = seed.create_user(owner, email=unique_email("pending"), status="pending_approval")
    answer = api.call(
        "POST", f"/admin/users/{pending}/approve", cast.claims("admin"), body={"status": "active"}
    )
    assert (answer.status, answer.error_code) == (422, "invalid_request")
    assert status_of(owner, pending) == "pending_approval"


def test_an_admin_may_not_suspend_themselves(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    answer = api.call(
        "POST", f"/admin/users/{cast.admin}/suspend", cast.claims("admin"), body={"reason": "testing myself"}
    )
    assert (answer.status, answer.error_code) == (409, "cannot_suspend_self")
    assert status_of(owner, cast.admin) == "active"
    assert audit_rows(owner, target_entity_id=str(cast.admin)) == []


@pytest.mark.parametrize("action", ["approve", "suspend", "reactivate"])
def test_unknown_user_is_not_found_and_nothing_is_written(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], action: str
) -> None:
    nobody = uuid.uuid4()
    body = {"reason": "no such person"} if action == "suspend" else None
    answer = api.call("POST", f"/admin/users/{nobody}/{action}", cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (404, "not_found")
    assert audit_rows(owner, target_entity_id=str(nobody)) == []


def test_a_suspension_takes_effect_on_the_next_request(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    own_tenant = f"/admin/tenants/{cast.tenant_a}"
    assert api.call("GET", own_tenant, cast.claims("client_a")).status == 200
    body = {"reason": "shared credentials"}
    assert (
        api.call("POST", f"/admin/users/{cast.client_a}/suspend", cast.claims("admin"), body=body).status
        == 200
    )
    refused = api.call("GET", own_tenant, cast.claims("client_a"))
    assert (refused.status, refused.error_code) == (403, "user_suspended")
    assert api.call("POST", f"/admin/users/{cast.client_a}/reactivate", cast.claims("admin")).status == 200
    assert api.call("GET", own_tenant, cast.claims("client_a")).status == 200


def test_a_suspended_admin_is_refused_at_once(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    other = seed.create_user(owner, email=unique_email("admin-two"), role="admin")
    assert api.call("GET", "/admin/users", claims_of(other), query={"limit": 1}).status == 200
    body = {"reason": "left the company"}
    assert api.call("POST", f"/admin/users/{other}/suspend", cast.claims("admin"), body=body).status == 200
    refused = api.call("POST", f"/admin/users/{cast.admin}/suspend", claims_of(other), body=body)
    assert (refused.status, refused.error_code) == (403, "user_suspended")
    assert status_of(owner, cast.admin) == "active"


def test_the_user_routes_are_documented(api: AdminApi) -> None:
    answer = api.call("GET", "/admin/openapi.json")
    assert answer.status == 200
    paths = answer.body["paths"]
    suspend = paths["/admin/users/{user_id}/suspend"]["post"]
    assert suspend["tags"] == ["Users"]
    assert suspend["summary"]
    assert {"200", "403", "404", "409", "422"} <= set(suspend["responses"])
    assert {"get"} <= set(paths["/admin/users"])
