"""POS connection routes: tokens sealed as crediting opens them, never shown, never audited."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from local import seed
from local.database import Database
from pos_gateway.db import tenant_transaction
from pos_gateway.providers.clover.repository import find_connection
from tests.admin_support import CIPHER, AdminApi, Answer, Cast, audit_rows, make_cast
from tests.helpers import one, unique

VIEW_KEYS = {
    "id",
    "pos_type",
    "merchant_account_id",
    "status",
    "token_expired",
    "token_expires_at",
    "last_synced_at",
    "last_error",
    "created_at",
    "updated_at",
    "disconnected_at",
}


@pytest.fixture
def cast(owner: psycopg.Connection[Any]) -> Cast:
    return make_cast(owner, balance=0)


def connections_path(cast: Cast, connection_id: Any = None, tenant: Any = None) -> str:
    path = f"/admin/tenants/{tenant or cast.tenant_a}/pos-connections"
    return path if connection_id is None else f"{path}/{connection_id}"


def secret(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex}"


def new_connection(pos_type: str = "square", **overrides: Any) -> dict[str, Any]:
    return {
        "pos_type": pos_type,
        "merchant_account_id": unique("ML"),
        "access_token": secret("access"),
        "refresh_token": secret("refresh"),
        "token_expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        **overrides,
    }


def connect(api: AdminApi, cast: Cast, body: dict[str, Any]) -> dict[str, Any]:
    answer = api.call("POST", connections_path(cast), cast.claims("admin"), body=body)
    assert answer.status == 201, answer.body
    created: dict[str, Any] = answer.body
    return created


def stored(owner: psycopg.Connection[Any], connection_id: Any) -> dict[str, Any]:
    row = owner.execute("SELECT * FROM pos.pos_connections WHERE id = %s", (connection_id,)).fetchone()
    return dict(one(row))


def opened(envelope: str, column: str, connection_id: Any) -> str:
    return CIPHER.decrypt(envelope, table="pos.pos_connections", column=column, row_id=str(connection_id))


def assert_nothing_secret(texts: list[str], *secrets: str) -> None:
    """None of the secrets (long enough to mean something) appears in any of the texts."""
    for text in texts:
        for value in secrets:
            if len(value) >= 8:
                assert value not in text


def as_text(answer: Answer) -> str:
    return json.dumps(answer.body)


def audit_text(owner: psycopg.Connection[Any], cast: Cast) -> str:
    return json.dumps(audit_rows(owner, tenant_id=cast.tenant_a), default=str)


def test_admin_connects_a_merchant_with_sealed_tokens_and_one_audit_row(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    body = new_connection()

    answer = api.call("POST", connections_path(cast), cast.claims("admin"), body=body)

    assert answer.status == 201, answer.body
    created = answer.body
    assert set(created) == VIEW_KEYS
    assert (created["pos_type"], created["merchant_account_id"], created["status"]) == (
        "square",
        body["merchant_account_id"],
        "active",
    )
    assert (created["token_expired"], created["disconnected_at"], created["last_synced_at"]) == (
        False,
        None,
        None,
    )
    assert datetime.fromisoformat(created["token_expires_at"]) == datetime.fromisoformat(
        body["token_expires_at"]
    )

    row = stored(owner, created["id"])
    assert row["tenant_id"] == cast.tenant_a
    # Sealed for this row and column, as crediting, the poller and the refresher open them.
    assert opened(row["access_token_enc"], "access_token_enc", created["id"]) == body["access_token"]
    assert opened(row["refresh_token_enc"], "refresh_token_enc", created["id"]) == body["refresh_token"]

    (audit,) = audit_rows(owner, action="connection.create", tenant_id=cast.tenant_a)
    assert (audit["actor_user_id"], audit["target_entity_type"], audit["target_entity_id"]) == (
        cast.admin,
        "pos_connection",
        created["id"],
    )
    assert audit["before_state"] is None
    assert audit["after_state"] == {
        "pos_type": "square",
        "merchant_account_id": body["merchant_account_id"],
        "status": "active",
        "expires_at": audit["after_state"]["expires_at"],
        "has_refresh": True,
    }
    assert datetime.fromisoformat(audit["after_state"]["expires_at"]) == datetime.fromisoformat(
        body["token_expires_at"]
    )
    # No token anywhere, not even sealed.
    assert_nothing_secret(
        [as_text(answer), audit_text(owner, cast)],
        body["access_token"],
        body["refresh_token"],
        row["access_token_enc"],
        row["refresh_token_enc"],
    )


def test_a_token_sealed_by_the_api_opens_where_crediting_reads_it(
    api: AdminApi, cast: Cast, database: Database
) -> None:
    body = new_connection("clover", refresh_token=None, token_expires_at=None)
    created = connect(api, cast, body)
    crediting = database.connections("pos_gateway_crediting")
    try:
        with tenant_transaction(crediting.get(), cast.tenant_a) as connection:
            found = one(find_connection(connection, body["merchant_account_id"]))
    finally:
        crediting.close()
    assert str(found.id) == created["id"]
    assert found.access_token(CIPHER) == body["access_token"]


def test_without_a_refresh_token_the_column_keeps_its_empty_default(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    created = connect(api, cast, new_connection(refresh_token=None, token_expires_at=None))
    assert stored(owner, created["id"])["refresh_token_enc"] == ""
    assert created["token_expires_at"] is None
    (audit,) = audit_rows(owner, action="connection.create", tenant_id=cast.tenant_a)
    assert audit["after_state"]["has_refresh"] is False


def test_clients_read_but_only_admins_write(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    created = connect(api, cast, new_connection())
    listed = api.call("GET", connections_path(cast), cast.claims("client_a"))
    assert listed.status == 200, listed.body
    assert [item["id"] for item in listed.body["items"]] == [created["id"]]
    one_answer = api.call("GET", connections_path(cast, created["id"]), cast.claims("client_a"))
    assert (one_answer.status, one_answer.body) == (200, listed.body["items"][0])

    body = new_connection()
    credentials = {"access_token": secret("access")}
    refusals = [
        (
            api.call("POST", connections_path(cast), cast.claims("client_a"), body=body),
            403,
            "role_not_allowed",
        ),
        (
            api.call(
                "PUT",
                connections_path(cast, created["id"]) + "/credentials",
                cast.claims("client_a"),
                body=credentials,
            ),
            403,
            "role_not_allowed",
        ),
        (
            api.call("DELETE", connections_path(cast, created["id"]), cast.claims("client_a")),
            403,
            "role_not_allowed",
        ),
        (api.call("GET", connections_path(cast), cast.claims("operator_a")), 403, "role_not_allowed"),
        (api.call("GET", connections_path(cast, created["id"]), cast.claims("client_b")), 404, "not_found"),
        # Named under the caller's own tenant, row-level security hides it.
        (
            api.call(
                "GET", connections_path(cast, created["id"], tenant=cast.tenant_b), cast.claims("client_b")
            ),
            404,
            "not_found",
        ),
        (
            api.call(
                "DELETE", connections_path(cast, created["id"], tenant=cast.tenant_b), cast.claims("admin")
            ),
            404,
            "not_found",
        ),
        (api.call("GET", connections_path(cast, uuid.uuid4()), cast.claims("admin")), 404, "not_found"),
    ]
    for answer, status, code in refusals:
        assert (answer.status, answer.error_code) == (status, code), answer.body
    assert stored(owner, created["id"])["status"] == "active"
    assert owner.execute(
        "SELECT count(*) AS n FROM pos.pos_connections WHERE merchant_account_id = %s",
        (body["merchant_account_id"],),
    ).fetchone() == {"n": 0}
    mutations = [row for row in audit_rows(owner) if row["action"].startswith("connection.")]
    assert [row["target_entity_id"] for row in mutations if row["tenant_id"] == cast.tenant_a] == [
        created["id"]
    ]
    assert [row for row in mutations if row["tenant_id"] == cast.tenant_b] == []


def test_a_merchant_connected_already_is_a_conflict_until_disconnected(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    first = connect(api, cast, new_connection())
    again = new_connection(merchant_account_id=first["merchant_account_id"])
    for tenant in (cast.tenant_a, cast.tenant_b):
        answer = api.call("POST", connections_path(cast, tenant=tenant), cast.claims("admin"), body=again)
        assert (answer.status, answer.error_code) == (409, "merchant_already_connected"), answer.body
        assert_nothing_secret([as_text(answer)], again["access_token"], again["refresh_token"])
    assert len(audit_rows(owner, action="connection.create", tenant_id=cast.tenant_a)) == 1

    assert api.call("DELETE", connections_path(cast, first["id"]), cast.claims("admin")).status == 200
    reconnected = api.call(
        "POST", connections_path(cast, tenant=cast.tenant_b), cast.claims("admin"), body=again
    )
    assert reconnected.status == 201, reconnected.body
    assert reconnected.body["id"] != first["id"]


def test_rotation_reseals_tokens_and_puts_the_connection_back_in_service(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    original = new_connection()
    created = connect(api, cast, original)
    owner.execute(
        "UPDATE pos.pos_connections SET status = 'token_expired', last_error = 'token refresh failed: 401',"
        " token_expires_at = now() - interval '1 hour' WHERE id = %s",
        (created["id"],),
    )
    expired = api.call("GET", connections_path(cast, created["id"]), cast.claims("client_a")).body
    assert (expired["status"], expired["token_expired"], expired["last_error"]) == (
        "token_expired",
        True,
        "token refresh failed: 401",
    )
    fresh = {
        "access_token": secret("access"),
        "token_expires_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
    }

    answer = api.call(
        "PUT", connections_path(cast, created["id"]) + "/credentials", cast.claims("admin"), body=fresh
    )

    assert answer.status == 200, answer.body
    assert set(answer.body) == VIEW_KEYS
    assert (answer.body["status"], answer.body["token_expired"], answer.body["last_error"]) == (
        "active",
        False,
        None,
    )
    row = stored(owner, created["id"])
    assert opened(row["access_token_enc"], "access_token_enc", created["id"]) == fresh["access_token"]
    # PUT replaces the credentials as a set: the refresh token left out is cleared.
    assert row["refresh_token_enc"] == ""
    (audit,) = audit_rows(owner, action="connection.rotate_credentials", tenant_id=cast.tenant_a)
    assert audit["before_state"]["status"] == "token_expired"
    assert audit["before_state"]["expires_at"] is not None
    assert {key: audit["after_state"][key] for key in ("status", "has_refresh", "rotated")} == {
        "status": "active",
        "has_refresh": False,
        "rotated": True,
    }
    assert datetime.fromisoformat(audit["after_state"]["expires_at"]) == datetime.fromisoformat(
        fresh["token_expires_at"]
    )
    assert_nothing_secret(
        [as_text(answer), audit_text(owner, cast)],
        original["access_token"],
        original["refresh_token"],
        fresh["access_token"],
        row["access_token_enc"],
    )


def test_disconnecting_wipes_the_tokens_and_refuses_further_changes(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    created = connect(api, cast, new_connection())

    answer = api.call("DELETE", connections_path(cast, created["id"]), cast.claims("admin"))

    assert answer.status == 200, answer.body
    assert answer.body["status"] == "disconnected"
    assert answer.body["disconnected_at"] is not None
    row = stored(owner, created["id"])
    assert (row["status"], row["access_token_enc"], row["refresh_token_enc"]) == ("disconnected", "", "")
    assert row["deleted_at"] is not None
    (audit,) = audit_rows(owner, action="connection.disconnect", tenant_id=cast.tenant_a)
    assert audit["before_state"] == {
        "pos_type": "square",
        "merchant_account_id": created["merchant_account_id"],
        "status": "active",
        "disconnected_at": None,
    }
    assert audit["after_state"]["status"] == "disconnected"
    assert datetime.fromisoformat(audit["after_state"]["disconnected_at"]) == row["deleted_at"]

    again = api.call("DELETE", connections_path(cast, created["id"]), cast.claims("admin"))
    assert (again.status, again.error_code) == (409, "connection_already_disconnected")
    rotate = api.call(
        "PUT",
        connections_path(cast, created["id"]) + "/credentials",
        cast.claims("admin"),
        body={"access_token": secret("access")},
    )
    assert (rotate.status, rotate.error_code) == (409, "connection_disconnected")
    assert stored(owner, created["id"])["access_token_enc"] == ""
    actions = [row["action"] for row in audit_rows(owner, target_entity_id=created["id"])]
    assert actions == ["connection.create", "connection.disconnect"]
    # Still listed, with when it was disconnected.
    shown = api.call("GET", connections_path(cast, created["id"]), cast.claims("client_a"))
    assert (shown.body["status"], shown.body["disconnected_at"]) == (
        "disconnected",
        answer.body["disconnected_at"],
    )


def test_status_view_derives_expiry_and_last_sync(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    merchant = unique("ML")
    connection_id = seed.connect_square_merchant(owner, cast.tenant_a, merchant, CIPHER)
    synced, polled = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 2, tzinfo=UTC)
    owner.execute(
        "UPDATE pos.pos_connections SET last_synced_at = %s, square_polled_at = %s,"
        " token_expires_at = now() - interval '1 minute' WHERE id = %s",
        (synced, polled, connection_id),
    )
    view = api.call("GET", connections_path(cast, connection_id), cast.claims("client_a")).body
    assert (view["status"], view["token_expired"]) == ("active", True)
    assert datetime.fromisoformat(view["last_synced_at"]) == polled
    owner.execute("UPDATE pos.pos_connections SET square_polled_at = NULL WHERE id = %s", (connection_id,))
    view = api.call("GET", connections_path(cast, connection_id), cast.claims("client_a")).body
    assert datetime.fromisoformat(view["last_synced_at"]) == synced
    assert_nothing_secret([json.dumps(view)], stored(owner, connection_id)["access_token_enc"])


def test_connections_are_listed_newest_first_page_by_page(api: AdminApi, cast: Cast) -> None:
    ids = [connect(api, cast, new_connection())["id"] for _ in range(3)]
    first = api.call("GET", connections_path(cast), cast.claims("admin"), query={"limit": 2})
    assert first.status == 200, first.body
    second = api.call(
        "GET",
        connections_path(cast),
        cast.claims("admin"),
        query={"limit": 2, "cursor": first.body["next_cursor"]},
    )
    assert second.body["next_cursor"] is None
    assert [item["id"] for item in first.body["items"] + second.body["items"]] == list(reversed(ids))


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"pos_type": "toast"}, "body.pos_type"),
        ({"access_token": ""}, "body.access_token"),
        ({"access_token": "x" * 5000}, "body.access_token"),
        ({"access_token": 12345}, "body.access_token"),
        ({"refresh_token": ""}, "body.refresh_token"),
        ({"merchant_account_id": ""}, "body.merchant_account_id"),
        ({"merchant_account_id": "two words"}, "body.merchant_account_id"),
        ({"token_expires_at": "2030-01-01T00:00:00"}, "body.token_expires_at"),
        ({"status": "active"}, "body.status"),
    ],
)
def test_invalid_connections_are_refused_with_fields_and_no_secret(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], overrides: dict[str, Any], loc: str
) -> None:
    body = new_connection(**overrides)
    answer = api.call("POST", connections_path(cast), cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    assert loc in [field["loc"] for field in answer.body["error"]["fields"]]
    assert_nothing_secret([as_text(answer)], str(body["access_token"]), str(body["refresh_token"]))
    assert audit_rows(owner, tenant_id=cast.tenant_a) == []
    assert owner.execute(
        "SELECT count(*) AS n FROM pos.pos_connections WHERE tenant_id = %s", (cast.tenant_a,)
    ).fetchone() == {"n": 0}


def test_invalid_credentials_are_refused_with_fields(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    created = connect(api, cast, new_connection())
    before = stored(owner, created["id"])
    path = connections_path(cast, created["id"]) + "/credentials"
    for body, loc in [
        ({}, "body.access_token"),
        ({"access_token": secret("access"), "pos_type": "clover"}, "body.pos_type"),
        ({"access_token": secret("access"), "token_expires_at": "soon"}, "body.token_expires_at"),
    ]:
        answer = api.call("PUT", path, cast.claims("admin"), body=body)
        assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
        assert loc in [field["loc"] for field in answer.body["error"]["fields"]]
    assert stored(owner, created["id"]) == before
    assert audit_rows(owner, action="connection.rotate_credentials", tenant_id=cast.tenant_a) == []
