"""RPApos routes: connections with sealed credentials, the SAT device against the fake SOAP
service, and sync runs steered through (moto's) Step Functions.

moto's SendTaskSuccess accepts any token and does nothing, so the calls are watched on the API's
own Step Functions client (a botocore ``before-call`` hook records them and, when a test asks,
answers an error instead).
"""

import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import psycopg
import pytest

from bench.environment import ROOT, probe_environment
from local.database import Database
from local.fake_rpapos import FakeRpapos
from pos_gateway.rpapos.soap import RpaposSoapClient
from tests.admin_support import CIPHER, REGION, AdminApi, Answer, Cast, audit_rows, make_cast, open_admin_api
from tests.helpers import one
from tests.log_scan import remember_secret

STATE_MACHINE_NAME = "rpapos-sync-admin-tests"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:123456789012:stateMachine:{STATE_MACHINE_NAME}"
TABLE = "rpapos.rpapos_connection"
VIEW_KEYS = {
    "id",
    "subdomain",
    "usuario",
    "timezone",
    "currency_code",
    "status",
    "sync_interval_minutes",
    "tipo_gestion_map",
    "sat_usuario",
    "estacion_trabajo",
    "localizacion_id",
    "conexion_db",
    "conexion_mainframe",
    "has_password",
    "has_api_key",
    "has_sat_password",
    "has_soap_token",
    "last_synced_at",
    "last_full_sync_at",
    "last_error",
    "created_by",
    "created_at",
    "updated_at",
    "deleted_at",
}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeRpapos]:
    with FakeRpapos() as running:
        yield running


@pytest.fixture(scope="module")
def api(database: Database, fake: FakeRpapos) -> Iterator[AdminApi]:
    """The admin API with a state machine (in moto) and the fake's SOAP endpoint configured."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STATE_MACHINE_ARN", STATE_MACHINE_ARN)
        env.setenv("RPAPOS_SOAP_ENDPOINT", fake.soap_url)
        env.setenv("RPAPOS_SOAP_TIMEOUT_SECONDS", "3")
        with open_admin_api(database) as opened:
            created = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
                name=STATE_MACHINE_NAME,
                definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
                roleArn="arn:aws:iam::123456789012:role/rpapos-sync",
            )
            assert created["stateMachineArn"] == STATE_MACHINE_ARN
            yield opened


@pytest.fixture
def cast(owner: psycopg.Connection[Any]) -> Cast:
    return make_cast(owner, balance=0)


@dataclasses.dataclass
class SfnWatch:
    """The Step Functions calls the API made, and errors to answer instead of calling."""

    calls: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    failures: dict[str, str] = dataclasses.field(default_factory=dict)  # operation -> error code

    def named(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]


@pytest.fixture
def sfn(api: AdminApi) -> Iterator[SfnWatch]:
    watch = SfnWatch()
    client = api.module.services.sfn_client()

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        watch.calls.append((model.name, dict(params)))  # the API parameters, as the code gave them

    def before_call(model: Any, **_: Any) -> Any:
        code = watch.failures.get(model.name)
        if code is None:
            return None
        error = {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return SimpleNamespace(status_code=400, headers={}, content=b""), error

    client.meta.events.register("before-parameter-build.sfn", record, unique_id="admin-rpapos-record")
    client.meta.events.register("before-call.sfn", before_call, unique_id="admin-rpapos-fail")
    yield watch
    client.meta.events.unregister("before-parameter-build.sfn", unique_id="admin-rpapos-record")
    client.meta.events.unregister("before-call.sfn", unique_id="admin-rpapos-fail")


# ---------------------------------------------------------------- helpers


def path(cast: Cast, rest: str = "", tenant: Any = None) -> str:
    return f"/admin/tenants/{tenant or cast.tenant_a}/rpapos{rest}"


def connection_path(cast: Cast, connection_id: Any, rest: str = "", tenant: Any = None) -> str:
    return path(cast, f"/connections/{connection_id}{rest}", tenant)


def run_path(cast: Cast, run_id: Any, rest: str = "", tenant: Any = None) -> str:
    return path(cast, f"/sync-runs/{run_id}{rest}", tenant)


def secret(name: str) -> str:
    value = f"{name}-{uuid.uuid4().hex}"
    remember_secret(value)  # the suite's log scan fails if it is ever logged
    return value


def subdomain() -> str:
    return f"rpa-{uuid.uuid4().hex[:10]}"


def new_connection(**overrides: Any) -> dict[str, Any]:
    return {
        "subdomain": subdomain(),
        "usuario": "admin",
        "password": secret("password"),
        "api_key": secret("apikey"),
        "timezone": "America/Guatemala",
        "currency_code": "GTQ",
        "sync_interval_minutes": 60,
        "tipo_gestion_map": {"1": "dine_in", "2": "takeout"},
        "estacion_trabajo": 1,
        **overrides,
    }


def connect(api: AdminApi, cast: Cast, body: dict[str, Any], who: str = "admin") -> dict[str, Any]:
    answer = api.call("POST", path(cast, "/connections"), cast.claims(who), body=body)
    assert answer.status == 201, answer.body
    created: dict[str, Any] = answer.body
    return created


def stored(owner: psycopg.Connection[Any], connection_id: Any) -> dict[str, Any]:
    row = owner.execute(f"SELECT * FROM {TABLE} WHERE id = %s", (connection_id,)).fetchone()
    return dict(one(row))


def opened(envelope: str, column: str, connection_id: Any) -> str:
    return CIPHER.decrypt(envelope, table=TABLE, column=column, row_id=str(connection_id))


def texts(answer: Answer, owner: psycopg.Connection[Any], cast: Cast) -> list[str]:
    """The answer and every audit row of the tenant, as text."""
    return [json.dumps(answer.body), json.dumps(audit_rows(owner, tenant_id=cast.tenant_a), default=str)]


def assert_nothing_secret(where: list[str], *secrets: str | None) -> None:
    for text in where:
        for value in secrets:
            if value and len(value) >= 8:
                assert value not in text


def registered(api: AdminApi, fake: FakeRpapos, cast: Cast, **overrides: Any) -> dict[str, Any]:
    """A connection to a tenant of the fake, its device registered."""
    body = new_connection(**overrides)
    fake.add_tenant(body["subdomain"], body["usuario"], body["password"])
    created = connect(api, cast, body)
    answer = api.call("POST", connection_path(cast, created["id"], "/device"), cast.claims("admin"))
    assert answer.status == 200, answer.body
    device: dict[str, Any] = answer.body
    return device


def start(api: AdminApi, cast: Cast, connection_id: Any, who: str = "admin", **body: Any) -> Answer:
    return api.call(
        "POST",
        connection_path(cast, connection_id, "/sync-runs"),
        cast.claims(who),
        body={"mode": "catalog", **body},
    )


def park(owner: psycopg.Connection[Any], run_id: Any) -> str:
    """What the engine does when it sees the pause: the run parked with a callback token."""
    token = secret("task-token")
    owner.execute(
        "UPDATE rpapos.rpapos_sync_run SET status = 'paused', paused = true, task_token = %s WHERE id = %s",
        (token, run_id),
    )
    return token


def run_row(owner: psycopg.Connection[Any], run_id: Any) -> dict[str, Any]:
    return dict(
        one(owner.execute("SELECT * FROM rpapos.rpapos_sync_run WHERE id = %s", (run_id,)).fetchone())
    )


# ---------------------------------------------------------------- connections


def test_admin_connects_a_subdomain_with_sealed_credentials_and_one_audit_row(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    body = new_connection(sat_usuario="sat-user", sat_password=secret("sat"))

    answer = api.call("POST", path(cast, "/connections"), cast.claims("admin"), body=body)

    assert answer.status == 201, answer.body
    created = answer.body
    assert set(created) == VIEW_KEYS
    assert {key: created[key] for key in ("subdomain", "usuario", "timezone", "currency_code", "status")} == {
        "subdomain": body["subdomain"],
        "usuario": "admin",
        "timezone": "America/Guatemala",
        "currency_code": "GTQ",
        "status": "active",
    }
    assert (created["tipo_gestion_map"], created["sync_interval_minutes"], created["estacion_trabajo"]) == (
        body["tipo_gestion_map"],
        60,
        1,
    )
    assert (created["has_password"], created["has_api_key"], created["has_sat_password"]) == (
        True,
        True,
        True,
    )
    assert (created["has_soap_token"], created["sat_usuario"], created["created_by"]) == (
        False,
        "sat-user",
        str(cast.admin),
    )
    row = stored(owner, created["id"])
    assert row["tenant_id"] == cast.tenant_a
    # Sealed for this row and column: the sync opens them the same way.
    for column, value in [
        ("password_encrypted", body["password"]),
        ("api_key_encrypted", body["api_key"]),
        ("sat_password_encrypted", body["sat_password"]),
    ]:
        assert opened(row[column], column, created["id"]) == value
    assert row["soap_token_encrypted"] is None

    (audit,) = audit_rows(owner, action="rpapos_connection.create", tenant_id=cast.tenant_a)
    assert (audit["actor_user_id"], audit["target_entity_type"], audit["target_entity_id"]) == (
        cast.admin,
        "rpapos_connection",
        created["id"],
    )
    assert audit["before_state"] is None
    assert audit["after_state"]["sealed"] == ["password", "api_key", "sat_password"]
    assert audit["after_state"]["subdomain"] == body["subdomain"]
    assert_nothing_secret(
        texts(answer, owner, cast),
        body["password"],
        body["api_key"],
        body["sat_password"],
        row["password_encrypted"],
        row["api_key_encrypted"],
        row["sat_password_encrypted"],
    )


def test_optional_secrets_left_out_keep_the_columns_empty(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    body = new_connection(api_key=None, sync_interval_minutes=None, estacion_trabajo=None)
    del body["tipo_gestion_map"]
    created = connect(api, cast, body)
    assert (created["has_api_key"], created["has_sat_password"], created["tipo_gestion_map"]) == (
        False,
        False,
        {},
    )
    row = stored(owner, created["id"])
    assert (row["api_key_encrypted"], row["sat_password_encrypted"], row["sync_interval_minutes"]) == (
        "",
        None,
        None,
    )


def test_clients_read_connections_but_only_admins_change_them(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    created = connect(api, cast, new_connection())
    listed = api.call("GET", path(cast, "/connections"), cast.claims("client_a"))
    assert listed.status == 200, listed.body
    assert [item["id"] for item in listed.body["items"]] == [created["id"]]
    shown = api.call("GET", connection_path(cast, created["id"]), cast.claims("client_a"))
    assert (shown.status, shown.body) == (200, listed.body["items"][0])

    refusals = [
        (api.call("POST", path(cast, "/connections"), cast.claims("client_a"), body=new_connection()), 403),
        (
            api.call(
                "PATCH", connection_path(cast, created["id"]), cast.claims("client_a"), body={"usuario": "x"}
            ),
            403,
        ),
        (api.call("DELETE", connection_path(cast, created["id"]), cast.claims("client_a")), 403),
        (api.call("POST", connection_path(cast, created["id"], "/device"), cast.claims("client_a")), 403),
        (
            api.call(
                "POST", connection_path(cast, created["id"], "/device/validate"), cast.claims("client_a")
            ),
            403,
        ),
        (api.call("GET", path(cast, "/connections"), cast.claims("operator_a")), 403),
        (api.call("GET", connection_path(cast, created["id"]), cast.claims("client_b")), 404),
        # Named under the caller's own tenant, row-level security hides it.
        (
            api.call(
                "GET", connection_path(cast, created["id"], tenant=cast.tenant_b), cast.claims("client_b")
            ),
            404,
        ),
        (
            api.call(
                "DELETE", connection_path(cast, created["id"], tenant=cast.tenant_b), cast.claims("admin")
            ),
            404,
        ),
        (api.call("GET", connection_path(cast, uuid.uuid4()), cast.claims("admin")), 404),
    ]
    for answer, status in refusals:
        assert answer.status == status, answer.body
    assert stored(owner, created["id"])["deleted_at"] is None
    changes = [row["action"] for row in audit_rows(owner) if row["action"].startswith("rpapos_connection.")]
    assert changes.count("rpapos_connection.create") >= 1
    assert [
        row for row in audit_rows(owner, tenant_id=cast.tenant_b) if row["action"] != "platform.read"
    ] == []


def test_a_subdomain_is_connected_once_per_tenant_and_comes_back_after_deletion(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    first = connect(api, cast, new_connection())
    again = new_connection(subdomain=first["subdomain"])

    duplicate = api.call("POST", path(cast, "/connections"), cast.claims("admin"), body=again)

    assert (duplicate.status, duplicate.error_code) == (409, "subdomain_already_connected"), duplicate.body
    assert_nothing_secret([json.dumps(duplicate.body)], again["password"], again["api_key"])
    # Another tenant may connect the same subdomain.
    elsewhere = api.call(
        "POST", path(cast, "/connections", tenant=cast.tenant_b), cast.claims("admin"), body=again
    )
    assert elsewhere.status == 201, elsewhere.body

    assert api.call("DELETE", connection_path(cast, first["id"]), cast.claims("admin")).status == 200
    revived = api.call("POST", path(cast, "/connections"), cast.claims("admin"), body=again)

    assert revived.status == 201, revived.body
    assert revived.body["id"] == first["id"]  # its id map and runs stay attached
    assert (revived.body["status"], revived.body["deleted_at"], revived.body["has_soap_token"]) == (
        "active",
        None,
        False,
    )
    row = stored(owner, first["id"])
    assert opened(row["password_encrypted"], "password_encrypted", first["id"]) == again["password"]
    creates = audit_rows(owner, action="rpapos_connection.create", tenant_id=cast.tenant_a)
    assert len(creates) == 2
    assert creates[1]["before_state"]["status"] == "disconnected"
    assert creates[1]["after_state"]["revived"] is True


def test_patch_changes_only_what_it_names_and_reseals_secrets(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    original = new_connection(sat_password=secret("sat"))
    created = connect(api, cast, original)
    owner.execute(
        f"UPDATE {TABLE} SET status = 'error', last_error = 'login refused' WHERE id = %s",
        (created["id"],),
    )
    patch = {
        "password": secret("password"),
        "api_key": None,
        "sat_usuario": "sat-2",
        "sync_interval_minutes": 30,
    }

    answer = api.call("PATCH", connection_path(cast, created["id"]), cast.claims("admin"), body=patch)

    assert answer.status == 200, answer.body
    after = answer.body
    assert (after["has_api_key"], after["has_password"], after["has_sat_password"]) == (False, True, True)
    assert (after["sat_usuario"], after["sync_interval_minutes"], after["usuario"]) == ("sat-2", 30, "admin")
    # New credentials put the connection back in service.
    assert (after["status"], after["last_error"]) == ("active", None)
    row = stored(owner, created["id"])
    assert opened(row["password_encrypted"], "password_encrypted", created["id"]) == patch["password"]
    assert (
        opened(row["sat_password_encrypted"], "sat_password_encrypted", created["id"])
        == original["sat_password"]
    )
    assert row["api_key_encrypted"] == ""
    (audit,) = audit_rows(owner, action="rpapos_connection.update", tenant_id=cast.tenant_a)
    assert audit["before_state"] == {
        "status": "error",
        "sync_interval_minutes": 60,
        "sat_usuario": None,
        "sealed": ["password", "api_key", "sat_password"],
    }
    assert audit["after_state"] == {
        "status": "active",
        "sync_interval_minutes": 30,
        "sat_usuario": "sat-2",
        "sealed": ["password", "sat_password"],
        "resealed": ["password"],
    }
    assert_nothing_secret(
        texts(answer, owner, cast), original["password"], patch["password"], original["api_key"]
    )

    # Settings alone leave an error where it is.
    owner.execute(f"UPDATE {TABLE} SET status = 'error' WHERE id = %s", (created["id"],))
    again = api.call(
        "PATCH", connection_path(cast, created["id"]), cast.claims("admin"), body={"timezone": "UTC"}
    )
    assert (again.status, again.body["status"], again.body["timezone"]) == (200, "error", "UTC")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"password": None}, "body.password"),
        ({"timezone": None}, "body.timezone"),
        ({"subdomain": "other"}, "body.subdomain"),
        ({"status": "active"}, "body.status"),
        ({"timezone": "Mars/Olympus_Mons"}, "body.timezone"),
        ({"estacion_trabajo": 0}, "body.estacion_trabajo"),
        ({}, "body"),
    ],
)
def test_invalid_patches_are_refused_and_change_nothing(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], body: dict[str, Any], loc: str
) -> None:
    created = connect(api, cast, new_connection())
    before = stored(owner, created["id"])
    answer = api.call("PATCH", connection_path(cast, created["id"]), cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    assert any(field["loc"].startswith(loc) for field in answer.body["error"]["fields"]), answer.body
    assert stored(owner, created["id"]) == before
    assert audit_rows(owner, action="rpapos_connection.update", tenant_id=cast.tenant_a) == []


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"subdomain": "Has_Upper"}, "body.subdomain"),
        ({"subdomain": "-dash"}, "body.subdomain"),
        ({"usuario": ""}, "body.usuario"),
        ({"password": ""}, "body.password"),
        ({"password": "line\nbreak-password"}, "body.password"),
        ({"password": "x" * 2000}, "body.password"),
        ({"password": 12345678}, "body.password"),
        ({"timezone": "Not/AZone"}, "body.timezone"),
        ({"timezone": "../etc/passwd"}, "body.timezone"),
        ({"currency_code": "gtq"}, "body.currency_code"),
        ({"sync_interval_minutes": 1}, "body.sync_interval_minutes"),
        ({"sync_interval_minutes": "60"}, "body.sync_interval_minutes"),
        ({"tipo_gestion_map": {"1": "x" * 65}}, "body.tipo_gestion_map"),
        ({"tipo_gestion_map": ["dine_in"]}, "body.tipo_gestion_map"),
        ({"estacion_trabajo": 40000}, "body.estacion_trabajo"),
        ({"soap_token": "abc"}, "body.soap_token"),
    ],
)
def test_invalid_connections_are_refused_with_fields_and_no_secret(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], overrides: dict[str, Any], loc: str
) -> None:
    body = new_connection(**overrides)
    answer = api.call("POST", path(cast, "/connections"), cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    assert any(field["loc"].startswith(loc) for field in answer.body["error"]["fields"]), answer.body
    assert_nothing_secret([json.dumps(answer.body)], str(body["password"]), body["api_key"])
    assert audit_rows(owner, tenant_id=cast.tenant_a) == []
    count = owner.execute(f"SELECT count(*) AS n FROM {TABLE} WHERE tenant_id = %s", (cast.tenant_a,))
    assert count.fetchone() == {"n": 0}


def test_deleting_wipes_the_device_token_and_refuses_further_changes(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    device = registered(api, fake, cast)
    assert device["has_soap_token"] is True

    answer = api.call("DELETE", connection_path(cast, device["id"]), cast.claims("admin"))

    assert answer.status == 200, answer.body
    assert (answer.body["status"], answer.body["has_soap_token"], answer.body["has_api_key"]) == (
        "disconnected",
        False,
        False,
    )
    assert answer.body["deleted_at"] is not None
    row = stored(owner, device["id"])
    assert (row["soap_token_encrypted"], row["api_key_encrypted"], row["sat_password_encrypted"]) == (
        None,
        "",
        None,
    )
    (audit,) = audit_rows(owner, action="rpapos_connection.delete", tenant_id=cast.tenant_a)
    assert audit["before_state"]["sealed"] == ["password", "api_key", "soap_token"]
    assert audit["after_state"]["sealed"] == ["password"]
    for method, rest, body in [
        ("DELETE", "", None),
        ("PATCH", "", {"usuario": "other"}),
        ("POST", "/device", None),
        ("POST", "/device/validate", None),
    ]:
        refused = api.call(method, connection_path(cast, device["id"], rest), cast.claims("admin"), body=body)
        assert (refused.status, refused.error_code) == (409, "connection_deleted"), (
            method,
            rest,
            refused.body,
        )
    assert start(api, cast, device["id"]).status == 404
    # Listed only when asked for.
    listed = api.call("GET", path(cast, "/connections"), cast.claims("client_a"))
    assert listed.body["items"] == []
    with_deleted = api.call(
        "GET", path(cast, "/connections"), cast.claims("client_a"), query={"include_deleted": "true"}
    )
    assert [item["id"] for item in with_deleted.body["items"]] == [device["id"]]


def test_connections_are_listed_newest_first_page_by_page(api: AdminApi, cast: Cast) -> None:
    ids = [connect(api, cast, new_connection())["id"] for _ in range(3)]
    first = api.call("GET", path(cast, "/connections"), cast.claims("admin"), query={"limit": 2})
    assert first.status == 200, first.body
    second = api.call(
        "GET",
        path(cast, "/connections"),
        cast.claims("admin"),
        query={"limit": 2, "cursor": first.body["next_cursor"]},
    )
    assert second.body["next_cursor"] is None
    assert [item["id"] for item in first.body["items"] + second.body["items"]] == list(reversed(ids))


# ---------------------------------------------------------------- the SAT device


def test_registering_the_device_seals_the_soap_token_and_keeps_the_sat_metadata(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    body = new_connection()
    tenant = fake.add_tenant(body["subdomain"], body["usuario"], body["password"])
    created = connect(api, cast, body)

    answer = api.call("POST", connection_path(cast, created["id"], "/device"), cast.claims("admin"))

    assert answer.status == 200, answer.body
    assert set(answer.body) == VIEW_KEYS
    assert (answer.body["has_soap_token"], answer.body["localizacion_id"]) == (True, tenant.localizacion_id)
    assert answer.body["conexion_db"] is not None
    assert answer.body["conexion_mainframe"] is not None
    row = stored(owner, created["id"])
    token = opened(row["soap_token_encrypted"], "soap_token_encrypted", created["id"])
    remember_secret(token)
    # The token works where the sync uses it.
    groups = RpaposSoapClient(fake.soap_url, token=token, estacion_trabajo=1).modifier_groups(1, 2)
    assert groups.total > 0
    (audit,) = audit_rows(owner, action="rpapos_connection.register_device", tenant_id=cast.tenant_a)
    assert audit["before_state"]["sealed"] == ["password", "api_key"]
    assert audit["after_state"]["sealed"] == ["password", "api_key", "soap_token"]
    assert audit["after_state"]["localizacion_id"] == tenant.localizacion_id
    assert_nothing_secret(texts(answer, owner, cast), token, row["soap_token_encrypted"], body["password"])

    # Registering again replaces the token.
    again = api.call("POST", connection_path(cast, created["id"], "/device"), cast.claims("admin"))
    assert again.status == 200, again.body
    replaced = opened(
        stored(owner, created["id"])["soap_token_encrypted"], "soap_token_encrypted", created["id"]
    )
    remember_secret(replaced)
    assert replaced != token


def test_the_device_is_registered_with_the_sat_login_when_one_is_set(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    sat_password = secret("sat")
    body = new_connection(sat_usuario="sat-login", sat_password=sat_password)
    fake.add_tenant(
        body["subdomain"],
        body["usuario"],
        body["password"],
        sat_username="sat-login",
        sat_password=sat_password,
    )
    created = connect(api, cast, body)

    assert (
        api.call("POST", connection_path(cast, created["id"], "/device"), cast.claims("admin")).status == 200
    )
    # Without a SAT user, the connection's usuario is the SAT user (SAT_DEFAULT_USER_FROM_CONNECTION).
    cleared = api.call(
        "PATCH", connection_path(cast, created["id"]), cast.claims("admin"), body={"sat_usuario": None}
    )
    assert cleared.status == 200, cleared.body
    refused = api.call("POST", connection_path(cast, created["id"], "/device"), cast.claims("admin"))
    assert (refused.status, refused.error_code) == (409, "sat_credentials_rejected"), refused.body
    assert len(audit_rows(owner, action="rpapos_connection.register_device", tenant_id=cast.tenant_a)) == 1


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("bad_credentials", 409, "sat_credentials_rejected"),
        ("unknown_subdomain", 409, "rpapos_refused"),
        ("server_fault", 502, "rpapos_bad_gateway"),
        ("outage", 503, "rpapos_unavailable"),
        ("html_error", 503, "rpapos_unavailable"),
        ("not_found", 502, "rpapos_bad_gateway"),
    ],
)
def test_soap_failures_answer_a_clear_code_and_write_nothing(
    api: AdminApi,
    fake: FakeRpapos,
    cast: Cast,
    owner: psycopg.Connection[Any],
    fault: str,
    status: int,
    code: str,
) -> None:
    body = new_connection()
    if fault != "unknown_subdomain":
        fake.add_tenant(
            body["subdomain"],
            body["usuario"],
            "another-password" if fault == "bad_credentials" else body["password"],
        )
    created = connect(api, cast, body)
    before = stored(owner, created["id"])
    if fault == "server_fault":
        fake.soap_fault("Error interno del servidor", operation="Dispositivo_Registra_2")
    elif fault == "outage":
        fake.outage(drop=True)
    elif fault == "html_error":
        fake.fail("/WSRPA", status=502)
    elif fault == "not_found":
        fake.fail("/WSRPA", status=404)
    try:
        answer = api.call("POST", connection_path(cast, created["id"], "/device"), cast.claims("admin"))
    finally:
        fake.clear_faults()

    assert (answer.status, answer.error_code) == (status, code), answer.body
    assert stored(owner, created["id"]) == before
    assert audit_rows(owner, action="rpapos_connection.register_device", tenant_id=cast.tenant_a) == []
    assert_nothing_secret([json.dumps(answer.body)], body["password"])


def test_credentials_that_no_longer_open_ask_for_new_ones(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    created = connect(api, cast, new_connection())
    moved = CIPHER.encrypt(
        secret("password"), table=TABLE, column="password_encrypted", row_id=str(uuid.uuid4())
    )
    owner.execute(f"UPDATE {TABLE} SET password_encrypted = %s WHERE id = %s", (moved, created["id"]))
    for rest in ("/device", "/device/validate"):
        answer = api.call("POST", connection_path(cast, created["id"], rest), cast.claims("admin"))
        assert (answer.status, answer.error_code) == (409, "credentials_unreadable"), answer.body
    assert audit_rows(owner, action="rpapos_connection.register_device", tenant_id=cast.tenant_a) == []


def test_validating_the_account_writes_nothing_but_the_admins_read(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    body = new_connection()
    fake.add_tenant(body["subdomain"], body["usuario"], body["password"])
    created = connect(api, cast, body)
    before = stored(owner, created["id"])
    validate = connection_path(cast, created["id"], "/device/validate")

    answer = api.call("POST", validate, cast.claims("admin"))

    assert (answer.status, answer.body["valid"]) == (200, True), answer.body
    assert stored(owner, created["id"]) == before
    changed = api.call(
        "PATCH", connection_path(cast, created["id"]), cast.claims("admin"), body={"password": secret("p")}
    )
    assert changed.status == 200
    wrong = api.call("POST", validate, cast.claims("admin"))
    assert (wrong.status, wrong.body["valid"]) == (200, False)
    assert wrong.body["message"]
    reads = [
        row for row in audit_rows(owner, tenant_id=cast.tenant_a) if row["target_entity_id"] == created["id"]
    ]
    assert [row["action"] for row in reads] == [
        "rpapos_connection.create",
        "platform.read",
        "rpapos_connection.update",
        "platform.read",
    ]


def test_the_admin_api_loads_zeep_only_when_it_calls_rpapos() -> None:
    probe = (
        "import importlib, json, sys\n"
        "importlib.import_module('functions.admin_api.app')\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules} & {'zeep', 'lxml'})))\n"
    )
    completed = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", probe],
        env=probe_environment(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


# ---------------------------------------------------------------- sync runs


def executions(run_id: Any) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    listed = sfn.list_executions(stateMachineArn=STATE_MACHINE_ARN)["executions"]
    return [
        sfn.describe_execution(executionArn=e["executionArn"]) for e in listed if e["name"] == str(run_id)
    ]


def test_starting_a_run_inserts_it_and_starts_its_execution_after_the_commit(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any], sfn: SfnWatch
) -> None:
    device = registered(api, fake, cast)

    answer = start(api, cast, device["id"])

    assert answer.status == 202, answer.body
    run = answer.body
    assert (run["status"], run["mode"], run["connection_id"], run["paused"]) == (
        "running",
        "catalog",
        device["id"],
        False,
    )
    assert "task_token" not in run
    assert set(run["per_entity_stats"]) == set(run["entity_types"])
    assert all(stats["status"] == "pending" for stats in run["per_entity_stats"].values())
    (execution,) = executions(run["id"])
    started_with = {"tenant_id": str(cast.tenant_a), "sync_run_id": run["id"]}
    assert json.loads(execution["input"]) == started_with
    assert sfn.named("StartExecution") == [
        {
            "stateMachineArn": STATE_MACHINE_ARN,
            "name": run["id"],
            "input": json.dumps(started_with),
        }
    ]
    (audit,) = audit_rows(owner, action="sync_run.start", tenant_id=cast.tenant_a)
    assert (audit["target_entity_type"], audit["target_entity_id"], audit["actor_user_id"]) == (
        "sync_run",
        run["id"],
        cast.admin,
    )
    assert audit["after_state"]["status"] == "running"

    second = start(api, cast, device["id"], who="client_a")
    assert (second.status, second.error_code) == (409, "sync_run_active"), second.body
    assert len(sfn.named("StartExecution")) == 1
    # Deleting the connection waits for the run to end.
    deleting = api.call("DELETE", connection_path(cast, device["id"]), cast.claims("admin"))
    assert (deleting.status, deleting.error_code) == (409, "sync_run_active")

    shown = api.call("GET", run_path(cast, run["id"]), cast.claims("client_a"))
    assert (shown.status, shown.body) == (200, run)
    listed = api.call("GET", connection_path(cast, device["id"], "/sync-runs"), cast.claims("client_a"))
    assert [item["id"] for item in listed.body["items"]] == [run["id"]]


def test_pause_resume_and_cancel_wake_a_parked_execution_with_its_token(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any], sfn: SfnWatch
) -> None:
    device = registered(api, fake, cast)
    run_id = start(api, cast, device["id"], who="client_a").body["id"]

    paused = api.call("POST", run_path(cast, run_id, "/pause"), cast.claims("client_a"))
    assert paused.status == 200, paused.body
    assert (paused.body["status"], paused.body["paused"]) == ("running", True)
    token = park(owner, run_id)

    resumed = api.call("POST", run_path(cast, run_id, "/resume"), cast.claims("client_a"))

    assert resumed.status == 200, resumed.body
    assert (resumed.body["status"], resumed.body["paused"]) == ("running", False)
    assert sfn.named("SendTaskSuccess") == [
        {"taskToken": token, "output": json.dumps({"sync_run_id": run_id})}
    ]
    assert run_row(owner, run_id)["task_token"] is None

    # Resuming a run that is not paused wakes nothing.
    assert api.call("POST", run_path(cast, run_id, "/resume"), cast.claims("admin")).status == 200
    assert len(sfn.named("SendTaskSuccess")) == 1

    # Cancelling a running run asks it to stop after its page; a parked one ends at once.
    second_token = park(owner, run_id)
    cancelled = api.call("POST", run_path(cast, run_id, "/cancel"), cast.claims("admin"))
    assert cancelled.status == 200, cancelled.body
    assert (cancelled.body["status"], cancelled.body["cancel_requested"]) == ("cancelled", True)
    assert cancelled.body["completed_at"] is not None
    assert sfn.named("SendTaskSuccess")[-1] == {
        "taskToken": second_token,
        "output": json.dumps({"sync_run_id": run_id}),
    }
    ended = api.call("POST", run_path(cast, run_id, "/pause"), cast.claims("admin"))
    assert (ended.status, ended.error_code) == (409, "sync_run_not_active")

    actions = [row["action"] for row in audit_rows(owner, target_entity_id=run_id)]
    assert actions == [
        "sync_run.start",
        "sync_run.pause",
        "sync_run.resume",
        "sync_run.resume",
        "sync_run.cancel",
    ]
    resume_audit = audit_rows(owner, action="sync_run.resume", target_entity_id=run_id)[0]
    assert resume_audit["before_state"] == {"status": "paused", "paused": True, "cancel_requested": False}
    assert resume_audit["after_state"] == {
        "status": "running",
        "paused": False,
        "cancel_requested": False,
        "wakes_execution": True,
    }
    assert_nothing_secret(
        [json.dumps(audit_rows(owner, tenant_id=cast.tenant_a), default=str), json.dumps(resumed.body)],
        token,
        second_token,
    )

    # The connection is free again.
    assert start(api, cast, device["id"]).status == 202


def test_cancelling_a_running_run_only_asks_it_to_stop(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any], sfn: SfnWatch
) -> None:
    device = registered(api, fake, cast)
    run_id = start(api, cast, device["id"]).body["id"]
    answer = api.call("POST", run_path(cast, run_id, "/cancel"), cast.claims("client_a"))
    assert answer.status == 200, answer.body
    assert (answer.body["status"], answer.body["cancel_requested"]) == ("running", True)
    assert sfn.named("SendTaskSuccess") == []


def test_a_failed_start_execution_ends_the_run_failed_and_frees_the_connection(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any], sfn: SfnWatch
) -> None:
    device = registered(api, fake, cast)
    sfn.failures["StartExecution"] = "ServiceUnavailable"

    answer = start(api, cast, device["id"])

    assert (answer.status, answer.error_code) == (502, "sync_start_failed"), answer.body
    (run,) = owner.execute(
        "SELECT * FROM rpapos.rpapos_sync_run WHERE connection_id = %s", (device["id"],)
    ).fetchall()
    assert (run["status"], run["task_token"]) == ("failed", None)
    assert run["completed_at"] is not None
    assert str(run["id"]) in answer.body["error"]["message"]
    assert "ServiceUnavailable" in stored(owner, device["id"])["last_error"]
    actions = [row["action"] for row in audit_rows(owner, target_entity_id=str(run["id"]))]
    assert actions == ["sync_run.start", "sync_run.start_failed"]

    del sfn.failures["StartExecution"]
    assert start(api, cast, device["id"]).status == 202


@pytest.mark.parametrize("action", ["resume", "cancel"])
def test_a_failed_wake_parks_the_run_again_so_that_a_retry_sends_the_token_again(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any], sfn: SfnWatch, action: str
) -> None:
    device = registered(api, fake, cast)
    run_id = start(api, cast, device["id"]).body["id"]
    assert api.call("POST", run_path(cast, run_id, "/pause"), cast.claims("admin")).status == 200
    token = park(owner, run_id)
    sfn.failures["SendTaskSuccess"] = "ThrottlingException"

    failed = api.call("POST", run_path(cast, run_id, f"/{action}"), cast.claims("admin"))

    assert (failed.status, failed.error_code) == (503, "step_functions_unavailable"), failed.body
    row = run_row(owner, run_id)
    assert (row["status"], row["paused"], row["task_token"], row["completed_at"]) == (
        "paused",
        True,
        token,
        None,
    )
    assert audit_rows(owner, action="sync_run.wake_failed", target_entity_id=run_id)[0]["after_state"][
        "reparked"
    ]

    del sfn.failures["SendTaskSuccess"]
    retried = api.call("POST", run_path(cast, run_id, f"/{action}"), cast.claims("admin"))
    assert retried.status == 200, retried.body
    assert retried.body["status"] == ("running" if action == "resume" else "cancelled")
    assert [params["taskToken"] for params in sfn.named("SendTaskSuccess")] == [token, token]
    assert run_row(owner, run_id)["task_token"] is None


def test_a_token_nobody_waits_on_any_more_is_not_an_error(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any], sfn: SfnWatch
) -> None:
    device = registered(api, fake, cast)
    run_id = start(api, cast, device["id"]).body["id"]
    park(owner, run_id)
    sfn.failures["SendTaskSuccess"] = "TaskTimedOut"
    answer = api.call("POST", run_path(cast, run_id, "/resume"), cast.claims("admin"))
    assert answer.status == 200, answer.body
    assert run_row(owner, run_id)["status"] == "running"
    assert audit_rows(owner, action="sync_run.wake_failed", target_entity_id=run_id) == []


def test_who_may_steer_runs(api: AdminApi, fake: FakeRpapos, cast: Cast, sfn: SfnWatch) -> None:
    device = registered(api, fake, cast)
    assert (start(api, cast, device["id"], who="operator_a")).status == 403
    assert (start(api, cast, device["id"], who="client_b")).status == 404
    run_id = start(api, cast, device["id"], who="client_a").body["id"]
    for who, status in [("operator_a", 403), ("client_b", 404), ("suspended_client_a", 403)]:
        assert api.call("POST", run_path(cast, run_id, "/pause"), cast.claims(who)).status == status
        assert api.call("GET", run_path(cast, run_id), cast.claims(who)).status == status
    assert (
        api.call("GET", run_path(cast, run_id, tenant=cast.tenant_b), cast.claims("client_b")).status == 404
    )
    assert api.call("GET", run_path(cast, uuid.uuid4()), cast.claims("admin")).status == 404


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"mode": "everything"}, "body.mode"),
        ({"mode": "custom"}, "body"),
        ({"mode": "catalog", "entity_types": ["plu"]}, "body"),
        ({"mode": "historical"}, "body"),
        ({"mode": "custom", "entity_types": ["not_an_entity"]}, "body.entity_types"),
        (
            {"mode": "historical", "date_from": "2026-02-01T00:00:00Z", "date_to": "2026-01-01T00:00:00Z"},
            "body",
        ),
        (
            {"mode": "historical", "date_from": "2026-01-01T00:00:00", "date_to": "2026-02-01T00:00:00Z"},
            "body.date_from",
        ),
    ],
)
def test_invalid_run_requests_are_refused(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], sfn: SfnWatch, body: dict[str, Any], loc: str
) -> None:
    created = connect(api, cast, new_connection())
    answer = api.call(
        "POST", connection_path(cast, created["id"], "/sync-runs"), cast.claims("admin"), body=body
    )
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    assert any(field["loc"].startswith(loc) for field in answer.body["error"]["fields"]), answer.body
    assert sfn.calls == []
    assert audit_rows(owner, action="sync_run.start", tenant_id=cast.tenant_a) == []


def test_a_custom_run_plans_its_types_in_dependency_order(
    api: AdminApi, fake: FakeRpapos, cast: Cast, sfn: SfnWatch
) -> None:
    device = registered(api, fake, cast)
    answer = start(api, cast, device["id"], mode="custom", entity_types=["plu", "plu_grupo", "unidad_medida"])
    assert answer.status == 202, answer.body
    assert answer.body["entity_types"] == ["plu_grupo", "unidad_medida", "plu"]


def test_without_a_state_machine_starting_a_run_writes_nothing(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    created = connect(api, cast, new_connection())
    monkeypatch.setattr(
        api.module, "services", dataclasses.replace(api.module.services, state_machine_arn=None)
    )
    answer = start(api, cast, created["id"])
    assert (answer.status, answer.error_code) == (503, "sync_not_configured"), answer.body
    assert audit_rows(owner, action="sync_run.start", tenant_id=cast.tenant_a) == []


def test_runs_are_listed_newest_first_page_by_page(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any], sfn: SfnWatch
) -> None:
    device = registered(api, fake, cast)
    ids = []
    for _ in range(3):
        run_id = start(api, cast, device["id"]).body["id"]
        owner.execute(
            "UPDATE rpapos.rpapos_sync_run SET status = 'completed', completed_at = now() WHERE id = %s",
            (run_id,),
        )
        ids.append(run_id)
    listing = connection_path(cast, device["id"], "/sync-runs")
    first = api.call("GET", listing, cast.claims("client_a"), query={"limit": 2})
    assert first.status == 200, first.body
    second = api.call(
        "GET", listing, cast.claims("client_a"), query={"limit": 2, "cursor": first.body["next_cursor"]}
    )
    assert second.body["next_cursor"] is None
    assert [item["id"] for item in first.body["items"] + second.body["items"]] == list(reversed(ids))
    assert (
        api.call("GET", connection_path(cast, uuid.uuid4(), "/sync-runs"), cast.claims("admin")).status == 404
    )


# ---------------------------------------------------------------- the image import job


def test_a_runs_product_image_import_job_is_found_by_the_seeds_route(
    api: AdminApi, fake: FakeRpapos, cast: Cast, owner: psycopg.Connection[Any], sfn: SfnWatch
) -> None:
    device = registered(api, fake, cast)
    run_id = start(api, cast, device["id"]).body["id"]
    route = f"/admin/rpapos/sync-runs/{run_id}/product-image-import-job"
    missing = api.call("GET", route, cast.claims("client_a"), query={"businessId": cast.tenant_a})
    assert (missing.status, missing.error_code) == (404, "not_found")
    job_id = one(
        owner.execute(
            "INSERT INTO catalog.import_job (tenant_id, import_type, status, options, total_rows,"
            " success_count) VALUES (%s, 'product-image', 'running', %s, 14, 3) RETURNING id",
            (cast.tenant_a, json.dumps({"syncRunId": run_id, "bucket": "images"})),
        ).fetchone()
    )["id"]

    seeds = api.call("GET", route, cast.claims("client_a"), query={"businessId": cast.tenant_a})

    assert seeds.status == 200, seeds.body
    assert (seeds.body["id"], seeds.body["import_type"], seeds.body["status"]) == (
        str(job_id),
        "product-image",
        "running",
    )
    assert (seeds.body["options"]["syncRunId"], seeds.body["total_rows"], seeds.body["success_count"]) == (
        run_id,
        14,
        3,
    )
    assert api.call("GET", route, cast.claims("admin"), query={"tenant_id": cast.tenant_a}).body == seeds.body
    assert api.call("GET", route, cast.claims("client_a")).body == seeds.body  # its own tenant
    assert api.call("GET", route, cast.claims("admin")).body == seeds.body  # an audited cross-tenant read
    mismatch = api.call(
        "GET", route, cast.claims("admin"), query={"businessId": cast.tenant_a, "tenant_id": cast.tenant_b}
    )
    assert (mismatch.status, mismatch.error_code) == (422, "invalid_request")
    assert api.call("GET", route, cast.claims("client_b"), query={"businessId": cast.tenant_a}).status == 404
    assert api.call("GET", route, cast.claims("client_b")).status == 404
    assert api.call("GET", route, cast.claims("operator_a")).status == 403
