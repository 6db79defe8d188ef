"""Phase 3, mixed crediting: payments, refunds (partial, full, repeated) and redemptions.

The project side runs the real ``reward_crediting`` handler on SQS batches of 10 payment and
refund records, and the real ``wallet_api`` handler (POST /wallets/{id}/redemptions, JWT
claims as the authorizer passes them) for the redemptions between batches; the baseline writes
the same rows in plain SQL (BareMixed). Both follow one plan (bench.mixed_plan), in alternating
stretches, each in a fresh tenant whose members already hold a wallet.
"""

import contextlib
import importlib
import json
import os
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import boto3
from psycopg.rows import tuple_row

from bench.bare_mixed import BareMixed
from bench.crediting import (
    CREDITING_ROLE,
    SQS_BATCH_SIZE,
    FakeLambdaContext,
    require_service_loggers,
    sqs_record,
)
from bench.environment import ROOT
from bench.fixture import Fixture
from bench.measure import WARMUP_EVENTS, BenchError, Row, Side, race
from bench.mixed_plan import (
    MAX_POINTS_PER_TRANSACTION,
    MIN_BALANCE_TO_REDEEM,
    Block,
    Payment,
    Plan,
    Redemption,
    Refund,
    plan_mixed,
)
from bench.mixed_setup import MixedShop, check_mixed, mixed_shop

WALLET_API_ROLE = "pos_gateway_wallet_api"
REDEEM_EVENT = ROOT / "events" / "wallet_api" / "redeem_points.json"
TARGET_RATIO = 0.5
WALLET_API_CONTEXT = FakeLambdaContext(
    function_name="wallet_api",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:wallet_api",
)

type Handler = Callable[[dict[str, Any], FakeLambdaContext], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Call:
    """One redemption request (HTTP API payload 2.0) and the balance it must leave."""

    event: dict[str, Any]
    balance_after: int


@dataclass(frozen=True, slots=True)
class ProjectBlock:
    sqs_event: dict[str, Any]
    calls: tuple[Call, ...]


def bench_mixed(fixture: Fixture, ops: int, rng: random.Random, sink: IO[str]) -> tuple[list[Row], str]:
    """The mixed rows, and a line on the target and the workload's make-up."""
    _require_default_rule()
    warmup_blocks = WARMUP_EVENTS // SQS_BATCH_SIZE
    plan = plan_mixed(fixture.members, warmup_blocks, ops, rng)
    project, baseline = mixed_shop(fixture, "project", plan), mixed_shop(fixture, "baseline", plan)
    secret = boto3.client("secretsmanager").create_secret(
        Name="bench/wallet-api-db", SecretString=json.dumps(fixture.db.secret(WALLET_API_ROLE))
    )
    os.environ["DB_SECRET_ARN"] = str(secret["ARN"])  # read by the wallet_api import below

    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(sink))  # Powertools logs and EMF metrics
        crediting_conn = stack.enter_context(fixture.db.connect_as(CREDITING_ROLE, tuple_row))
        wallet_conn = stack.enter_context(fixture.db.connect_as(WALLET_API_ROLE, tuple_row))
        crediting: Handler = importlib.import_module("functions.reward_crediting.app").lambda_handler
        wallet_api: Handler = importlib.import_module("functions.wallet_api.app").lambda_handler
        require_service_loggers()
        _warm_wallet_api(wallet_api, project, fixture)
        project_s, baseline_s = race(
            Side(_through_handlers(crediting, wallet_api), _project_blocks(project, plan), SQS_BATCH_SIZE),
            Side(BareMixed(crediting_conn, wallet_conn, baseline).block, plan.blocks, SQS_BATCH_SIZE),
        )

    check_mixed(fixture, plan, project, baseline)
    measured = sum(block.ops for block in plan.blocks[warmup_blocks:])
    ratio = baseline_s / project_s
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    repeats = sum(op.repeat for block in plan.blocks for op in block.credits if isinstance(op, Refund))
    note = (
        f"mixed crediting target >= {TARGET_RATIO:.1f}x baseline: {verdict} ({ratio:.2f}x). Per side "
        f"{measured} timed ops of {sum(block.ops for block in plan.blocks)}: {plan.count(Payment)} payments, "
        f"{plan.count(Refund)} refunds ({repeats} repeated), {plan.count(Redemption)} redemptions."
    )
    rows = [
        Row("mixed crediting throughput (ops/s)", measured / project_s, measured / baseline_s),
        Row("mixed crediting time per op (ms)", 1000 * project_s / measured, 1000 * baseline_s / measured, 2),
    ]
    return rows, note


def _require_default_rule() -> None:
    from local import seed  # not at import: see bench.fixture.seed_fixture

    rule = seed.DEFAULT_RULE
    assumed = (1.0, 0, MAX_POINTS_PER_TRANSACTION, MIN_BALANCE_TO_REDEEM, 100, "floor")
    keys = ("conversionRate", "minSpendMinorUnits", "maxPointsPerTransaction", "minBalanceToRedeem")
    actual = tuple(rule[key] for key in (*keys, "maxRedemptionPercentage", "roundingPolicy"))
    if actual != assumed:
        raise BenchError(f"bench.mixed_plan assumes the default rule {assumed}, seed has {actual}")


def _warm_wallet_api(wallet_api: Handler, shop: MixedShop, fixture: Fixture) -> None:
    """Untimed: connection, secret and routes, by a refusal that writes nothing (all wallets are empty).

    The warmup blocks need not hold a redemption; this keeps first-use costs out of the stretches.
    """
    member = fixture.members[0]
    call = _request(shop, Redemption(member, 1, 100, "bench-mix-warmup", 0))
    answer = wallet_api(call.event, WALLET_API_CONTEXT)
    if answer["statusCode"] != 409 or "below_min_balance" not in answer["body"]:
        raise BenchError(f"wallet_api warmup answered {answer}")


def _through_handlers(crediting: Handler, wallet_api: Handler) -> Callable[[ProjectBlock], None]:
    def run(block: ProjectBlock) -> None:
        response = crediting(block.sqs_event, FakeLambdaContext())
        if response.get("batchItemFailures"):
            raise BenchError(f"mixed crediting batch failed: {response}")
        for call in block.calls:
            answer = wallet_api(call.event, WALLET_API_CONTEXT)
            status, body = answer["statusCode"], json.loads(answer["body"])
            if status != 201 or body["pointsBalance"] != call.balance_after:
                raise BenchError(f"redemption answered {status} {body}, expected {call.balance_after} left")

    return run


def _project_blocks(shop: MixedShop, plan: Plan) -> list[ProjectBlock]:
    def project_block(block: Block) -> ProjectBlock:
        records = [sqs_record(shop.raw_events[op.seq], shop.shop.tenant_id) for op in block.credits]
        return ProjectBlock({"Records": records}, tuple(_request(shop, r) for r in block.redemptions))

    return [project_block(block) for block in plan.blocks]


def _request(shop: MixedShop, redemption: Redemption) -> Call:
    """POST /wallets/{walletId}/redemptions by the tenant's operator, as the JWT authorizer passes it."""
    wallet_id = shop.wallets[redemption.member.user_id]
    event: dict[str, Any] = json.loads(REDEEM_EVENT.read_text(encoding="utf-8"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/dev/wallets/{wallet_id}/redemptions"
    event["pathParameters"] = {"walletId": str(wallet_id)}
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    claims.update(sub=str(shop.operator_id), role="pos_operator", tenant_id=str(shop.shop.tenant_id))
    body = {
        "points": redemption.points,
        "orderAmountMinorUnits": redemption.order_amount,
        "idempotencyKey": redemption.idempotency_key,
    }
    event["body"] = json.dumps(body)
    return Call(event, redemption.balance_after)
