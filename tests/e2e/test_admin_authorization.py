"""The authorization matrix: every admin route × every kind of caller, through the local stack
(the gateway's JWT authorizer, then the function's role, tenant and standing checks).

Each (route, caller) pair runs against a fresh cast of two tenants, so an allowed call always
meets the same state. A route added to the API without a row here fails
``test_every_documented_route_is_in_the_matrix``.
"""

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import requests
from aws_lambda_powertools import Logger, Metrics

from local import seed
from local.aws import ACCOUNT_ID, REGION
from local.database import Cluster
from local.fake_rpapos import FakeRpapos
from local.stack import LocalStack
from local.tokens import LocalIssuer
from pos_gateway.admin.routes import build_resolver, openapi_json
from pos_gateway.field.devices import bearer_credential
from tests.admin_support import CIPHER, Cast, make_cast
from tests.helpers import e2e_stack_config, rule_config, unique, unique_email

pytestmark = pytest.mark.e2e

CALLERS = ("no_token", "bad_token", "admin", "client_a", "operator_a", "client_b", "suspended_client_a")
Setup = Callable[[psycopg.Connection[Any], Cast], dict[str, Any]]


def _nothing(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Row:
    method: str
    template: str  # the OpenAPI path
    # Expected status for admin, client_a, operator_a, client_b (no token and a bad token get 401,
    # a suspended user 403, on every route).
    admin: int
    client_a: int
    operator_a: int
    client_b: int
    body: Callable[[Cast, dict[str, Any]], Any] | None = None
    setup: Setup = _nothing
    extra_params: dict[str, str] = field(default_factory=dict)
    # False for a POST that only reads (it writes no audit row but an admin's platform.read).
    writes: bool = True

    def expected(self, caller: str) -> int:
        fixed = {"no_token": 401, "bad_token": 401, "suspended_client_a": 403}
        return fixed.get(caller) or getattr(self, caller)


def _pending_user(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    return {"user_id": seed.create_user(owner, email=unique_email("pending"), status="pending_approval")}


def _active_user(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    return {"user_id": seed.create_user(owner, email=unique_email("active"))}


def _suspended_user(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    return {"user_id": seed.create_user(owner, email=unique_email("susp"), status="suspended")}


def _new_client(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    return {"user_id": seed.create_user(owner, email=unique_email("new-client"), role="client")}


def _extra_operator(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    user = seed.create_user(owner, email=unique_email("op2"), role="pos_operator")
    seed.add_member(owner, cast.tenant_a, user, "pos_operator")
    return {"user_id": user}


def _frozen_wallet(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    owner.execute("UPDATE loyalty.wallets SET status = 'frozen' WHERE id = %s", (cast.wallet_a,))
    return {}


def _draft_rule(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    row = owner.execute(
        "INSERT INTO loyalty.reward_rules (tenant_id, rule_config, is_active) VALUES (%s, %s, false)"
        " RETURNING version",
        (cast.tenant_a, json.dumps(rule_config())),
    ).fetchone()
    assert row is not None
    return {"version": row["version"]}


def _connection(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    return {"connection_id": seed.connect_square_merchant(owner, cast.tenant_a, unique("ML"), CIPHER)}


def _credentials(cast: Cast, extra: dict[str, Any]) -> dict[str, Any]:
    return {"access_token": unique("EAAA-matrix-"), "refresh_token": unique("EQAA-matrix-")}


# RPApos: the module's fake SOAP service (started with the stack) knows every connection made here,
# sealed with the stack's key (the function opens them to call RPApos).
STATE_MACHINE_NAME = "rpapos-sync-matrix"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{STATE_MACHINE_NAME}"
RPAPOS_TABLE = "rpapos.rpapos_connection"
_FAKE_RPAPOS: list[FakeRpapos] = []
_STACK: list[LocalStack] = []


def _rpapos_connection(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    connection_id, subdomain, password = uuid.uuid4(), f"matrix-{uuid.uuid4().hex[:12]}", unique("pw-")
    sealed = _STACK[0].cipher.encrypt(
        password, table=RPAPOS_TABLE, column="password_encrypted", row_id=str(connection_id)
    )
    owner.execute(
        "INSERT INTO rpapos.rpapos_connection (id, tenant_id, subdomain, usuario, password_encrypted)"
        " VALUES (%s, %s, %s, 'admin', %s)",
        (connection_id, cast.tenant_a, subdomain, sealed),
    )
    _FAKE_RPAPOS[0].add_tenant(subdomain, "admin", password)
    return {"connection_id": connection_id}


def _rpapos_run(status: str) -> Setup:
    """A connection with a run: running, or parked (paused, with a callback token)."""

    def setup(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
        extra = _rpapos_connection(owner, cast)
        parked = status == "paused"
        row = owner.execute(
            "INSERT INTO rpapos.rpapos_sync_run (tenant_id, connection_id, mode, status, paused,"
            " entity_types, task_token)"
            " VALUES (%s, %s, 'catalog', %s, %s, ARRAY['plu']::rpapos.rpapos_entity_type[], %s)"
            " RETURNING id",
            (cast.tenant_a, extra["connection_id"], status, parked, unique("token-") if parked else None),
        ).fetchone()
        assert row is not None
        return {**extra, "run_id": row["id"]}

    return setup


def _image_import_job(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    extra = _rpapos_run("running")(owner, cast)
    owner.execute(
        "INSERT INTO catalog.import_job (tenant_id, import_type, options) VALUES (%s, 'product-image', %s)",
        (cast.tenant_a, json.dumps({"syncRunId": str(extra["run_id"])})),
    )
    return extra


def _new_rpapos_connection(cast: Cast, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "subdomain": f"matrix-{uuid.uuid4().hex[:12]}",
        "usuario": "admin",
        "password": unique("pw-"),
        "timezone": "America/Guatemala",
        "currency_code": "GTQ",
    }


# Field sales: a seat, a device and a product of tenant A (the owner bypasses the admin role's grants).
def _field_user(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    return {"user_id": seed.create_user(owner, email=unique_email("seller"), role="client")}


def _field_seller(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    user = _field_user(owner, cast)["user_id"]
    return {"seller_id": seed.add_seller(owner, cast.tenant_a, user)}


def _field_device(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    extra = _field_seller(owner, cast)
    credential = seed.register_device(owner, cast.tenant_a, extra["seller_id"])
    return {**extra, "device_id": bearer_credential(f"Bearer {credential}")[0]}


def _field_product(owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    return {"product_id": seed.create_field_product(owner, cast.tenant_a, unique("Pollo "), "9.9000")}


FIELD_SETTINGS = {
    "modo_operacion": "inventario_propio",
    "control_kilos": True,
    "usar_distribucion": False,
    "permitir_venta_sin_stock": False,
    "permitir_saldo_a_favor": False,
    "currency": "PEN",
}


T = "/admin/tenants/{tenant_id}"
W = T + "/wallets/{wallet_id}"
R = T + "/rpapos"
RC = R + "/connections/{connection_id}"
RR = R + "/sync-runs/{run_id}"
F = T + "/field"
FP = F + "/products/{product_id}"
MATRIX = [
    # tenants and membership
    Row("GET", "/admin/tenants", 200, 200, 403, 200),
    Row("POST", "/admin/tenants", 201, 403, 403, 403, body=lambda c, x: {"name": unique("Tenant ")}),
    Row("GET", T, 200, 200, 403, 404),
    Row("PATCH", T, 200, 403, 403, 404, body=lambda c, x: {"name": "Renamed"}),
    Row("DELETE", T, 200, 403, 403, 404),
    Row("GET", T + "/members", 200, 200, 403, 404),
    Row(
        "POST",
        T + "/members",
        201,
        403,
        403,
        404,
        setup=_new_client,
        body=lambda c, x: {"user_id": str(x["user_id"]), "role": "client"},
    ),
    Row("DELETE", T + "/members/{user_id}", 200, 403, 403, 404, setup=_extra_operator),
    # users (platform)
    Row("GET", "/admin/users", 200, 403, 403, 403),
    Row("GET", "/admin/users/{user_id}", 200, 403, 403, 403, setup=_active_user),
    Row("POST", "/admin/users/{user_id}/approve", 200, 403, 403, 403, setup=_pending_user),
    Row(
        "POST",
        "/admin/users/{user_id}/suspend",
        200,
        403,
        403,
        403,
        setup=_active_user,
        body=lambda c, x: {"reason": "chargeback fraud"},
    ),
    Row("POST", "/admin/users/{user_id}/reactivate", 200, 403, 403, 403, setup=_suspended_user),
    # wallets
    Row("GET", T + "/wallets", 200, 200, 200, 404),
    Row("GET", W, 200, 200, 200, 404),
    Row("GET", W + "/ledger", 200, 200, 200, 404),
    Row("POST", W + "/freeze", 200, 403, 403, 404, body=lambda c, x: {"reason": "fraud check"}),
    Row(
        "POST",
        W + "/unfreeze",
        200,
        403,
        403,
        404,
        setup=_frozen_wallet,
        body=lambda c, x: {"reason": "cleared"},
    ),
    Row(
        "POST",
        W + "/adjustments",
        201,
        201,
        403,
        404,
        body=lambda c, x: {"direction": "credit", "points": 10, "reason": "goodwill", "expected_version": 2},
    ),
    # rules
    Row("GET", T + "/rules", 200, 200, 403, 404),
    Row("POST", T + "/rules", 201, 201, 403, 404, body=lambda c, x: {"rule_config": rule_config()}),
    Row("POST", T + "/rules/{version}/activate", 200, 200, 403, 404, setup=_draft_rule),
    # POS connections
    Row("GET", T + "/pos-connections", 200, 200, 403, 404),
    Row(
        "POST",
        T + "/pos-connections",
        201,
        403,
        403,
        404,
        body=lambda c, x: {"pos_type": "square", "merchant_account_id": unique("ML"), **_credentials(c, x)},
    ),
    Row("GET", T + "/pos-connections/{connection_id}", 200, 200, 403, 404, setup=_connection),
    Row(
        "PUT",
        T + "/pos-connections/{connection_id}/credentials",
        200,
        403,
        403,
        404,
        setup=_connection,
        body=_credentials,
    ),
    Row("DELETE", T + "/pos-connections/{connection_id}", 200, 403, 403, 404, setup=_connection),
    # RPApos connections (admins change them) and sync runs (clients steer them too)
    Row("GET", R + "/connections", 200, 200, 403, 404),
    Row("POST", R + "/connections", 201, 403, 403, 404, body=_new_rpapos_connection),
    Row("GET", RC, 200, 200, 403, 404, setup=_rpapos_connection),
    Row("PATCH", RC, 200, 403, 403, 404, setup=_rpapos_connection, body=lambda c, x: {"usuario": "renamed"}),
    Row("DELETE", RC, 200, 403, 403, 404, setup=_rpapos_connection),
    Row("POST", RC + "/device", 200, 403, 403, 404, setup=_rpapos_connection),
    Row("POST", RC + "/device/validate", 200, 403, 403, 404, setup=_rpapos_connection, writes=False),
    Row("GET", RC + "/sync-runs", 200, 200, 403, 404, setup=_rpapos_connection),
    Row(
        "POST",
        RC + "/sync-runs",
        202,
        202,
        403,
        404,
        setup=_rpapos_connection,
        body=lambda c, x: {"mode": "catalog"},
    ),
    Row("GET", RR, 200, 200, 403, 404, setup=_rpapos_run("running")),
    Row("POST", RR + "/pause", 200, 200, 403, 404, setup=_rpapos_run("running")),
    Row("POST", RR + "/resume", 200, 200, 403, 404, setup=_rpapos_run("paused")),
    Row("POST", RR + "/cancel", 200, 200, 403, 404, setup=_rpapos_run("running")),
    # No tenant named: an admin reads across tenants, a client its own (client_b's has no such job).
    Row(
        "GET",
        "/admin/rpapos/sync-runs/{run_id}/product-image-import-job",
        200,
        200,
        403,
        404,
        setup=_image_import_job,
    ),
    # field sales (a client manages its own business: sellers, devices, products)
    Row("GET", F + "/settings", 200, 200, 403, 404),
    Row("PUT", F + "/settings", 200, 200, 403, 404, body=lambda c, x: FIELD_SETTINGS),
    Row("GET", F + "/sellers", 200, 200, 403, 404),
    Row(
        "POST",
        F + "/sellers",
        201,
        201,
        403,
        404,
        setup=_field_user,
        body=lambda c, x: {"user_id": str(x["user_id"]), "role": "vendedor", "commission_rate": "5.00"},
    ),
    Row("GET", F + "/sellers/{seller_id}", 200, 200, 403, 404, setup=_field_seller),
    Row(
        "PATCH",
        F + "/sellers/{seller_id}",
        200,
        200,
        403,
        404,
        setup=_field_seller,
        body=lambda c, x: {"commission_rate": 7.5},
    ),
    Row(
        "POST",
        F + "/sellers/{seller_id}/devices",
        201,
        201,
        403,
        404,
        setup=_field_seller,
        body=lambda c, x: {"label": "matrix phone"},
    ),
    Row("GET", F + "/devices", 200, 200, 403, 404),
    Row(
        "POST",
        F + "/devices/{device_id}/revoke",
        200,
        200,
        403,
        404,
        setup=_field_device,
        body=lambda c, x: {"reason": "lost phone"},
    ),
    Row("GET", F + "/products", 200, 200, 403, 404),
    Row(
        "POST",
        F + "/products",
        201,
        201,
        403,
        404,
        body=lambda c, x: {"name": unique("Pollo "), "type": "pollo", "unit": "kg", "base_price": "9.90"},
    ),
    Row("GET", FP, 200, 200, 403, 404, setup=_field_product),
    Row("PATCH", FP, 200, 200, 403, 404, setup=_field_product, body=lambda c, x: {"base_price": 10.5}),
    Row("DELETE", FP, 200, 200, 403, 404, setup=_field_product),
    Row(
        "PUT",
        FP + "/inventory",
        200,
        200,
        403,
        404,
        setup=_field_product,
        body=lambda c, x: {"quantity": "12.500", "reason": "weekly count"},
    ),
    # operations (a client reads its own tenant's)
    Row("GET", "/admin/transactions", 200, 200, 403, 200),
    Row("GET", "/admin/reward-events", 200, 200, 403, 200),
    Row("GET", "/admin/webhook-events", 200, 200, 403, 200),
    Row(
        "POST",
        "/admin/webhook-events/replay",
        200,
        403,
        403,
        403,
        body=lambda c, x: {"event_ids": [str(uuid.uuid4())]},
    ),
    Row("GET", "/admin/dlq", 200, 403, 403, 403),
    Row("POST", "/admin/dlq/redrive", 200, 403, 403, 403, body=lambda c, x: {"max_messages": 1}),
    Row("GET", "/admin/audit-logs", 200, 200, 403, 200),
]


def _document() -> dict[str, Any]:
    resolver = build_resolver(Logger(service="admin_api"), Metrics(namespace="PosGatewayTest"))
    document: dict[str, Any] = json.loads(openapi_json(resolver))
    return document


def test_every_documented_route_is_in_the_matrix() -> None:
    documented = {(m.upper(), p) for p, ops in _document()["paths"].items() for m in ops}
    assert documented == {(row.method, row.template) for row in MATRIX}


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # RPApos: the fake SOAP service, and a state machine in the stack's moto for sync runs.
    with FakeRpapos() as fake:
        config = e2e_stack_config(cluster, tmp_path_factory.mktemp("stack"), "admin_authz")
        config = dataclasses.replace(
            config,
            extra_environment={
                **config.extra_environment,
                "STATE_MACHINE_ARN": STATE_MACHINE_ARN,
                "RPAPOS_SOAP_ENDPOINT": fake.soap_url,
            },
        )
        _FAKE_RPAPOS[:] = [fake]
        with LocalStack(config) as running:
            running.aws.client("stepfunctions").create_state_machine(
                name=STATE_MACHINE_NAME,
                definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
                roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/rpapos-sync",
            )
            _STACK[:] = [running]
            yield running
        _STACK.clear()
        _FAKE_RPAPOS.clear()


def _authorization(stack: LocalStack, cast: Cast, caller: str) -> dict[str, str]:
    if caller == "no_token":
        return {}
    if caller == "bad_token":
        forged = LocalIssuer().token(cast.claims("admin"))  # right claims, another signing key
        return {"Authorization": f"Bearer {forged}"}
    claims = {k: v for k, v in cast.claims(caller).items() if k not in ("iss", "aud")}
    return {"Authorization": f"Bearer {stack.token(**claims)}"}


# Everything an admin route can write, summed up: a refused request must leave it unchanged.
FINGERPRINT = """
SELECT (SELECT count(*) FROM audit.admin_audit_logs WHERE action <> 'platform.read') AS changes,
       (SELECT count(*) FROM loyalty.wallet_ledger) AS ledger,
       (SELECT count(*) FROM loyalty.reward_rules) AS rules,
       (SELECT count(*) FROM pos.pos_connections) AS connections,
       (SELECT count(*) FROM identity.tenants) AS tenants,
       (SELECT count(*) FROM identity.tenant_users) AS memberships,
       (SELECT max(updated_at) FROM identity.tenants) AS tenants_at,
       (SELECT max(updated_at) FROM identity.users) AS users_at,
       (SELECT max(updated_at) FROM identity.tenant_users) AS memberships_at,
       (SELECT max(updated_at) FROM loyalty.wallets) AS wallets_at,
       (SELECT max(updated_at) FROM loyalty.reward_rules) AS rules_at,
       (SELECT max(updated_at) FROM pos.pos_connections) AS connections_at,
       (SELECT max(updated_at) FROM pos.pos_webhook_events_raw) AS raw_events_at,
       (SELECT count(*) FROM rpapos.rpapos_connection) AS rpapos_connections,
       (SELECT max(updated_at) FROM rpapos.rpapos_connection) AS rpapos_connections_at,
       (SELECT count(*) FROM rpapos.rpapos_sync_run) AS sync_runs,
       (SELECT max(updated_at) FROM rpapos.rpapos_sync_run) AS sync_runs_at,
       (SELECT count(*) FROM field_sales.business_settings) AS field_settings,
       (SELECT max(updated_at) FROM field_sales.business_settings) AS field_settings_at,
       (SELECT count(*) FROM field_sales.business_users) AS field_sellers,
       (SELECT max(updated_at) FROM field_sales.business_users) AS field_sellers_at,
       (SELECT count(*) FROM field_sales.devices) AS field_devices,
       (SELECT max(updated_at) FROM field_sales.devices) AS field_devices_at,
       (SELECT count(*) FROM field_sales.products) AS field_products,
       (SELECT max(updated_at) FROM field_sales.products) AS field_products_at,
       (SELECT max(updated_at) FROM field_sales.inventory) AS field_inventory_at
"""


def _fingerprint(owner: psycopg.Connection[Any]) -> dict[str, Any]:
    row = owner.execute(FINGERPRINT).fetchone()
    assert row is not None
    return dict(row)


# What a setup may hand to a route's path parameters.
PATH_KEYS = ("user_id", "version", "connection_id", "run_id", "seller_id", "device_id", "product_id")


@pytest.mark.parametrize("row", MATRIX, ids=lambda row: f"{row.method} {row.template}")
def test_route_answers_each_caller_as_its_role_allows(stack: LocalStack, row: Row) -> None:
    answers = {}
    for caller in CALLERS:
        with stack.owner_connection() as owner:
            cast = make_cast(owner)
            extra = row.setup(owner, cast)
            before = _fingerprint(owner)
        params = {
            "tenant_id": cast.tenant_a,
            "wallet_id": cast.wallet_a,
            **{key: value for key, value in extra.items() if key in PATH_KEYS},
        }
        url = stack.api_url + row.template.format(**params)
        body = None if row.body is None else row.body(cast, extra)
        answer = requests.request(
            row.method, url, json=body, headers=_authorization(stack, cast, caller), timeout=30
        )
        answers[caller] = answer.status_code
        with stack.owner_connection() as owner:
            after = _fingerprint(owner)
        if answer.status_code >= 400 or row.method == "GET" or not row.writes:
            assert after == before, f"{caller}: {answer.status_code} but something was written"
        else:
            # One change, one audit row, in the same transaction.
            assert after["changes"] == before["changes"] + 1, caller
    assert answers == {caller: row.expected(caller) for caller in CALLERS}
