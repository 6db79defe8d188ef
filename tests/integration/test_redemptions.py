"""POST /wallets/{walletId}/redemptions through the real handler, on real Postgres.

The handler runs in-process with its own database role (pos_gateway_wallet_api) and its DB
secret in moto's Secrets Manager; requests are payload-2.0 events carrying the JWT authorizer's
claims. Races run one RedemptionService per thread, each with its own connection, as separate
Lambda containers would (the handler's Powertools metrics are per process, not per thread).
"""

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg import sql

from local import seed
from local.database import LOCAL_ROLE_PASSWORD, Database
from pos_gateway.auth import Principal, Role
from pos_gateway.idempotency import Once
from pos_gateway.loyalty.redemption import (
    RedemptionError,
    RedemptionReceipt,
    RedemptionRequest,
    RedemptionService,
)
from tests.helpers import (
    FakeLambdaContext,
    clear_parameter_caches,
    connected_merchant,
    create_wallet,
    fresh_import,
    ledger_entry,
    one,
    unique,
    unique_email,
    wallet_state,
)

REGION = "us-east-1"
WALLET_API = "pos_gateway_wallet_api"
STAGE = "dev"
EVENTS = Path(__file__).resolve().parents[2] / "events" / "wallet_api"


@pytest.fixture(scope="module")
def api(database: Database, owner: psycopg.Connection[Any]) -> Iterator[ModuleType]:
    owner.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(WALLET_API), sql.Literal(LOCAL_ROLE_PASSWORD)
        )
    )
    with mock_aws(), pytest.MonkeyPatch.context() as env:
        secrets = boto3.client("secretsmanager", region_name=REGION)
        arn = secrets.create_secret(
            Name="pos-gateway/db/wallet-api", SecretString=json.dumps(database.secret(WALLET_API))
        )["ARN"]
        clear_parameter_caches()
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("POWERTOOLS_SERVICE_NAME", "wallet_api")
        env.setenv("DB_SECRET_ARN", arn)
        module = fresh_import("functions.wallet_api.app")
        yield module
        module.connections.close()
        clear_parameter_caches()


@dataclass(frozen=True)
class Shop:
    tenant_id: uuid.UUID
    operator_id: uuid.UUID
    member_id: uuid.UUID
    wallet_id: uuid.UUID

    def claims(self, **overrides: Any) -> dict[str, Any]:
        base = {"sub": str(self.operator_id), "role": "pos_operator", "tenant_id": str(self.tenant_id)}
        return {**base, "iss": "https://auth.example.test/", "aud": "pos-gateway", **overrides}

    def principal(self) -> Principal:
        return Principal(self.operator_id, Role.POS_OPERATOR, self.tenant_id)


def open_shop(
    owner,
    *,
    balance: int = 1000,
    rule: dict[str, Any] | None = None,
    with_rule: bool = True,
    wallet_status: str = "active",
    member_status: str = "active",
) -> Shop:
    """A tenant with an active rule, a POS operator, and a member's wallet holding ``balance``."""
    tenant_id = connected_merchant(owner, rule=rule, with_rule=with_rule).tenant_id
    operator = seed.create_user(owner, email=unique_email("operator"), role="pos_operator")
    add_operator(owner, tenant_id, operator)
    member = seed.create_user(owner, email=unique_email("member"), status=member_status)
    wallet = create_wallet(owner, tenant_id, member, status=wallet_status)
    if balance:
        ledger_entry(owner, tenant_id, wallet, "credit", balance)
    return Shop(tenant_id, operator, member, wallet)


def add_operator(owner, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    owner.execute(
        "INSERT INTO identity.tenant_users (user_id, tenant_id, role) VALUES (%s, %s, 'pos_operator')",
        (user_id, tenant_id),
    )


@pytest.fixture
def shop(owner) -> Shop:
    return open_shop(owner)


def body(**overrides: Any) -> dict[str, Any]:
    return {"points": 300, "orderAmountMinorUnits": 10_000, "idempotencyKey": unique("order-"), **overrides}


def redemption_event(
    wallet_id: uuid.UUID | str, payload: dict[str, Any] | bytes, claims: dict[str, Any] | None
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) request as the JWT authorizer passes it on."""
    event: dict[str, Any] = json.loads((EVENTS / "redeem_points.json").read_text())
    path = f"/{STAGE}/wallets/{wallet_id}/redemptions"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"walletId": str(wallet_id)}
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    event["body"] = payload.decode() if isinstance(payload, bytes) else json.dumps(payload)
    if claims is None:
        del event["requestContext"]["authorizer"]
    else:
        event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    return event


def call(api: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = api.lambda_handler(event, FakeLambdaContext(function_name="wallet_api"))
    return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


def redeem(api, shop: Shop, payload: dict[str, Any], **claims: Any) -> tuple[int, dict[str, Any]]:
    status, answer, _ = call(api, redemption_event(shop.wallet_id, payload, shop.claims(**claims)))
    return status, answer


def footprint(owner, shop: Shop) -> dict[str, Any]:
    """Everything a redemption writes for the shop's tenant."""
    row = owner.execute(
        """
        SELECT (SELECT count(*) FROM loyalty.wallet_ledger WHERE tenant_id = %(t)s) AS ledger,
               (SELECT count(*) FROM loyalty.reward_events WHERE tenant_id = %(t)s) AS events,
               (SELECT count(*) FROM pos.idempotency_keys WHERE tenant_id = %(t)s) AS keys,
               (SELECT points_balance FROM loyalty.wallets WHERE id = %(w)s) AS balance
        """,
        {"t": shop.tenant_id, "w": shop.wallet_id},
    ).fetchone()
    return dict(row)


# ---------------------------------------------------------------- success and replay


def test_a_redemption_debits_the_wallet_once(api, owner, shop):
    payload = body(points=300, orderAmountMinorUnits=4200)

    status, answer = redeem(api, shop, payload)

    assert status == 201
    assert answer["walletId"] == str(shop.wallet_id)
    assert (answer["pointsRedeemed"], answer["pointsBalance"], answer["discountMinorUnits"]) == (
        300,
        700,
        300,
    )
    assert (answer["orderAmountMinorUnits"], answer["ruleVersion"]) == (4200, 1)
    assert answer["idempotencyKey"] == payload["idempotencyKey"]
    assert wallet_state(owner, shop.wallet_id)["points_balance"] == 700
    event = owner.execute(
        "SELECT kind, outcome, points_redeemed, points_earned, redeemed_by, order_amount_minor_units,"
        " rule_version_id IS NOT NULL AS has_rule FROM loyalty.reward_events WHERE id = %s",
        (answer["redemptionId"],),
    ).fetchone()
    assert event == {
        "kind": "redeem",
        "outcome": "redeemed",
        "points_redeemed": 300,
        "points_earned": 0,
        "redeemed_by": shop.operator_id,
        "order_amount_minor_units": 4200,
        "has_rule": True,
    }
    debit = owner.execute(
        "SELECT entry_type, points, balance_after FROM loyalty.wallet_ledger WHERE reward_event_id = %s",
        (answer["redemptionId"],),
    ).fetchall()
    assert debit == [{"entry_type": "debit", "points": 300, "balance_after": 700}]
    key = owner.execute(
        "SELECT key, status, handler, response_data IS NOT NULL AS has_response,"
        " expires_at > now() + interval '29 days' AS thirty_days FROM pos.idempotency_keys"
        " WHERE tenant_id = %s",
        (shop.tenant_id,),
    ).fetchone()
    assert key["key"].startswith(f"{shop.tenant_id}:redemption#")
    assert (key["status"], key["handler"], key["has_response"], key["thirty_days"]) == (
        "COMPLETED",
        "wallet_api.redemption",
        True,
        True,
    )


def test_a_replay_gets_the_same_answer_without_a_second_debit(api, owner, shop):
    payload = body()
    event = redemption_event(shop.wallet_id, payload, shop.claims())
    first = call(api, event)
    written = footprint(owner, shop)

    again = call(api, redemption_event(shop.wallet_id, payload, shop.claims()))

    assert again[:2] == first[:2]
    assert first[0] == 201
    assert (first[2]["idempotent-replayed"], again[2]["idempotent-replayed"]) == ("false", "true")
    assert footprint(owner, shop) == written


def test_the_same_key_with_another_body_is_409_and_writes_nothing(api, owner, shop):
    payload = body()
    assert redeem(api, shop, payload)[0] == 201
    written = footprint(owner, shop)

    for changed in (
        body(idempotencyKey=payload["idempotencyKey"], points=301),
        body(idempotencyKey=payload["idempotencyKey"], orderAmountMinorUnits=9_999),
    ):
        status, answer = redeem(api, shop, changed)
        assert (status, answer["error"]["code"]) == (409, "idempotency_key_reused")
    assert footprint(owner, shop) == written


def test_the_same_key_for_another_wallet_of_the_tenant_is_409(api, owner, shop):
    payload = body()
    assert redeem(api, shop, payload)[0] == 201
    member = seed.create_user(owner, email=unique_email("member"))
    wallet = create_wallet(owner, shop.tenant_id, member)
    ledger_entry(owner, shop.tenant_id, wallet, "credit", 1000)

    status, answer, _ = call(api, redemption_event(wallet, payload, shop.claims()))

    assert (status, answer["error"]["code"]) == (409, "idempotency_key_reused")
    assert wallet_state(owner, wallet)["points_balance"] == 1000


def test_a_refused_request_is_not_remembered(api, owner):
    shop = open_shop(owner, balance=200)
    payload = body(points=300)
    assert redeem(api, shop, payload)[1]["error"]["code"] == "insufficient_balance"

    ledger_entry(owner, shop.tenant_id, shop.wallet_id, "credit", 200)  # the member earns more
    status, answer = redeem(api, shop, payload)

    assert (status, answer["pointsBalance"]) == (201, 100)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("scenario", "payload", "status", "code"),
    [
        ({"wallet_status": "frozen"}, {}, 409, "wallet_frozen"),
        ({"member_status": "suspended"}, {}, 409, "member_suspended"),
        ({"member_status": "pending_approval"}, {}, 409, "member_not_active"),
        ({"with_rule": False}, {}, 409, "no_active_rule"),
        ({"balance": 99}, {"points": 10}, 409, "below_min_balance_to_redeem"),
        ({"balance": 1000}, {"points": 1001, "orderAmountMinorUnits": 100_000}, 409, "insufficient_balance"),
        (
            {"rule": {**seed.DEFAULT_RULE, "maxRedemptionPercentage": 10}},
            {"orderAmountMinorUnits": 2999},
            422,
            "exceeds_max_redemption_percentage",
        ),
        (
            {"rule": {**seed.DEFAULT_RULE, "conversionRate": 0.5}},
            {"orderAmountMinorUnits": 599},
            422,
            "exceeds_max_redemption_percentage",
        ),
    ],
    ids=[
        "frozen",
        "member-suspended",
        "member-pending",
        "no-rule",
        "below-min",
        "insufficient",
        "over-10-percent",
        "point-worth-two-cents",
    ],
)
def test_a_refusal_has_its_code_and_writes_nothing(api, owner, scenario, payload, status, code):
    shop = open_shop(owner, **scenario)
    before = footprint(owner, shop)

    answer_status, answer = redeem(api, shop, body(**payload))

    assert (answer_status, answer["error"]["code"]) == (status, code)
    assert answer["error"]["message"]
    assert footprint(owner, shop) == before


def test_the_order_share_cap_details_say_what_fits(api, owner):
    shop = open_shop(owner, rule={**seed.DEFAULT_RULE, "maxRedemptionPercentage": 10})
    _, answer = redeem(api, shop, body(points=300, orderAmountMinorUnits=2999))
    assert answer["error"]["fields"] == [{"maxRedemptionPercentage": 10, "maxRedeemablePoints": 299}]
    assert redeem(api, shop, body(points=299, orderAmountMinorUnits=2999))[0] == 201


def test_another_tenants_wallet_is_404_and_shows_nothing(api, owner, shop):
    theirs = open_shop(owner, balance=5000)
    before = footprint(owner, theirs)

    status, answer, _ = call(api, redemption_event(theirs.wallet_id, body(), shop.claims()))

    assert (status, answer) == (
        404,
        {"error": {"code": "wallet_not_found", "message": "no such wallet", "fields": []}},
    )
    assert footprint(owner, theirs) == before


def test_an_unknown_wallet_is_404(api, shop):
    status, answer, _ = call(api, redemption_event(uuid.uuid4(), body(), shop.claims()))
    assert (status, answer["error"]["code"]) == (404, "wallet_not_found")


def suspend(owner, user_id: uuid.UUID) -> None:
    owner.execute("UPDATE identity.users SET status = 'suspended' WHERE id = %s", (user_id,))


def leave(owner, shop: Shop) -> None:
    owner.execute(
        "UPDATE identity.tenant_users SET deleted_at = now() WHERE user_id = %s AND tenant_id = %s",
        (shop.operator_id, shop.tenant_id),
    )


@pytest.mark.parametrize(
    ("arrange", "claims", "status", "code"),
    [
        (lambda owner, shop: suspend(owner, shop.operator_id), {}, 403, "user_suspended"),
        (lambda owner, shop: leave(owner, shop), {}, 403, "not_a_tenant_operator"),
        (lambda owner, shop: None, {"role": "client"}, 403, "role_not_allowed"),
        (lambda owner, shop: None, {"sub": str(uuid.uuid4())}, 403, "user_not_active"),
        (lambda owner, shop: None, {"role": "admin"}, 403, "role_not_allowed"),  # not an admin in the DB
        (lambda owner, shop: None, {"role": "admin", "tenant_id": ""}, 403, "tenant_required"),
        (lambda owner, shop: None, {"tenant_id": ...}, 401, "invalid_claims"),
        (lambda owner, shop: None, {"sub": "not-a-uuid"}, 401, "invalid_claims"),
    ],
    ids=[
        "suspended",
        "left-the-tenant",
        "client",
        "unknown-user",
        "fake-admin",
        "admin-without-tenant",
        "no-tenant",
        "bad-sub",
    ],
)
def test_a_caller_who_may_not_redeem_is_refused(api, owner, shop, arrange, claims, status, code):
    arrange(owner, shop)
    before = footprint(owner, shop)
    claims = {key: value for key, value in shop.claims(**claims).items() if value is not ...}

    answer_status, answer, _ = call(api, redemption_event(shop.wallet_id, body(), claims))

    assert (answer_status, answer["error"]["code"]) == (status, code)
    assert footprint(owner, shop) == before


def test_an_operator_of_another_tenant_claiming_this_one_is_refused(api, owner, shop):
    stranger = open_shop(owner)
    claims = stranger.claims(tenant_id=str(shop.tenant_id))
    status, answer, _ = call(api, redemption_event(shop.wallet_id, body(), claims))
    assert (status, answer["error"]["code"]) == (403, "not_a_tenant_operator")


def test_a_request_without_claims_is_401(api, shop):
    status, answer, _ = call(api, redemption_event(shop.wallet_id, body(), None))
    assert (status, answer["error"]["code"]) == (401, "unauthenticated")


def test_an_admin_acting_in_the_tenant_may_redeem(api, owner, shop):
    admin = seed.create_user(owner, email=unique_email("admin"), role="admin")
    claims = shop.claims(sub=str(admin), role="admin")
    status, answer, _ = call(api, redemption_event(shop.wallet_id, body(), claims))
    assert (status, answer["pointsBalance"]) == (201, 700)


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        (body(points=-1), "points"),
        (body(points="300"), "points"),
        (body(points=2.5), "points"),
        (body(orderAmountMinorUnits=0), "orderAmountMinorUnits"),
        (body(idempotencyKey="x"), "idempotencyKey"),
        (body(extra=True), "extra"),
        ({"points": 300, "orderAmountMinorUnits": 10_000}, "idempotencyKey"),
        (b"{not json", ""),
    ],
    ids=["negative", "string", "float", "zero-order", "short-key", "extra-field", "no-key", "not-json"],
)
def test_bad_input_is_400_and_writes_nothing(api, owner, shop, payload, loc):
    before = footprint(owner, shop)
    status, answer, _ = call(api, redemption_event(shop.wallet_id, payload, shop.claims()))
    assert (status, answer["error"]["code"]) == (400, "invalid_request")
    assert loc in [detail["loc"] for detail in answer["error"]["fields"]]
    assert footprint(owner, shop) == before


def test_a_malformed_wallet_id_is_400(api, shop):
    status, answer, _ = call(api, redemption_event("wallet-1", body(), shop.claims()))
    assert (status, answer["error"]["code"]) == (400, "invalid_request")
    assert [detail["loc"] for detail in answer["error"]["fields"]] == ["walletId"]


# ---------------------------------------------------------------- concurrency


def race(database: Database, calls: list[tuple[Principal, RedemptionRequest]]) -> list[Any]:
    """One service and connection per thread (one per Lambda container), released together."""
    barrier = threading.Barrier(len(calls))
    factories = [database.connections(WALLET_API) for _ in calls]

    def work(index: int) -> Once[RedemptionReceipt] | RedemptionError:
        factories[index].get()
        barrier.wait(timeout=30)
        try:
            return RedemptionService(factories[index]).redeem(*calls[index])
        except RedemptionError as refused:
            return refused

    try:
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return list(pool.map(work, range(len(calls))))
    finally:
        for factory in factories:
            factory.close()


def request(shop: Shop, key: str | None = None, points: int = 300) -> RedemptionRequest:
    return RedemptionRequest(
        wallet_id=shop.wallet_id,
        points=points,
        order_amount_minor_units=10_000,
        idempotency_key=key or unique("race-"),
    )


def test_eight_concurrent_redemptions_never_overdraw(database, owner):
    shop = open_shop(owner, balance=1000)

    results = race(database, [(shop.principal(), request(shop)) for _ in range(8)])

    redeemed = [r.value.points_redeemed for r in results if isinstance(r, Once)]
    refused = [r.code for r in results if isinstance(r, RedemptionError)]
    # 1000 → 700 → 400 → 100: then 100 meets the minimum but not 300 points
    assert (sum(redeemed), len(redeemed)) == (900, 3)
    assert refused == ["insufficient_balance"] * 5
    balances = sorted(r.value.points_balance for r in results if isinstance(r, Once))
    assert balances == [100, 400, 700]
    state = owner.execute(
        "SELECT w.points_balance, sum(CASE l.entry_type WHEN 'credit' THEN l.points ELSE -l.points END)"
        " AS ledger FROM loyalty.wallets w JOIN loyalty.wallet_ledger l ON l.wallet_id = w.id"
        " WHERE w.id = %s GROUP BY w.points_balance",
        (shop.wallet_id,),
    ).fetchone()
    assert state == {"points_balance": 100, "ledger": 100}


def test_eight_concurrent_duplicates_debit_once_and_agree(database, owner):
    shop = open_shop(owner, balance=1000)
    same = request(shop, key=unique("dup-"))

    results = race(database, [(shop.principal(), same) for _ in range(8)])

    assert all(isinstance(r, Once) for r in results)
    assert len({r.value for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False] + [True] * 7
    assert wallet_state(owner, shop.wallet_id)["points_balance"] == 700
    debits = owner.execute(
        "SELECT count(*) AS n FROM loyalty.wallet_ledger WHERE wallet_id = %s AND entry_type = 'debit'",
        (shop.wallet_id,),
    ).fetchone()
    assert debits["n"] == 1


# ---------------------------------------------------------------- cleanup and the role


def test_the_cleanup_handler_deletes_expired_keys(api, owner, shop):
    expired = unique("expired-")
    owner.execute(
        "INSERT INTO pos.idempotency_keys (key, tenant_id, handler, expires_at)"
        " VALUES (%s, %s, 'tests', now() - interval '1 day')",
        (expired, shop.tenant_id),
    )
    scheduled = json.loads((EVENTS / "cleanup_scheduled.json").read_text())

    result = api.cleanup_handler(scheduled, FakeLambdaContext(function_name="idempotency_cleanup"))

    assert result["deleted"] >= 1
    assert owner.execute("SELECT 1 FROM pos.idempotency_keys WHERE key = %s", (expired,)).fetchone() is None


def test_the_wallet_api_role_is_unprivileged_and_owns_nothing(owner):
    role = one(
        owner.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles"
            " WHERE rolname = %s",
            (WALLET_API,),
        ).fetchone()
    )
    assert role == {
        "rolsuper": False,
        "rolbypassrls": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
        "rolcanlogin": True,
    }
    owned = owner.execute(
        "SELECT count(*) AS n FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)",
        (WALLET_API,),
    ).fetchone()
    assert owned["n"] == 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE loyalty.wallets SET points_balance = 1000000 WHERE id = %(wallet)s",
        "UPDATE loyalty.wallet_ledger SET points = 1 WHERE wallet_id = %(wallet)s",
        "DELETE FROM loyalty.reward_events WHERE wallet_id = %(wallet)s",
        "INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points, created_by_admin)"
        " VALUES (%(tenant)s, %(wallet)s, 'credit', 1, NULL)",
        "INSERT INTO loyalty.wallets (tenant_id, user_id) VALUES (%(tenant)s, %(member)s)",
    ],
    ids=["balance", "ledger-update", "event-delete", "admin-credit", "new-wallet"],
)
def test_the_wallet_api_role_cannot_touch_a_balance_or_rewrite_history(database, shop, statement):
    params = {"tenant": shop.tenant_id, "wallet": shop.wallet_id, "member": shop.member_id}
    with database.connect_as(WALLET_API) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement, params)
