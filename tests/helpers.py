"""Builders shared by the tests: signed Square webhooks, Lambda events, demo tenants.

Signatures are computed here with hmac/hashlib/base64 directly (not with the code under test),
so a test that signs with these helpers also checks the production verifier.
"""

import base64
import hashlib
import hmac
import importlib
import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import psycopg
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from psycopg.abc import Params, QueryNoTemplate

from local import seed
from local.aws import free_port
from local.database import Cluster, Database
from local.stack import StackConfig
from pos_gateway.ingest.repository import RawEventStore, StoredEvent, VerifiedEvent
from pos_gateway.ingest.service import SquareWebhookConfig
from pos_gateway.loyalty.crediting import CreditingService
from pos_gateway.loyalty.models import ProcessingResult
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider

REPO_ROOT = Path(__file__).resolve().parent.parent
SQUARE_EVENTS = REPO_ROOT / "events" / "square"
PACKAGE_ROOT = REPO_ROOT / "layers" / "common" / "pos_gateway"

SIGNATURE_KEY = "test-square-signature-key"
STAGE = "dev"
NOTIFICATION_URL = f"https://api.example.test/{STAGE}/webhooks/square"
SIGNATURE_HEADER = "x-square-hmacsha256-signature"
MAX_EVENT_AGE = timedelta(days=3)

# The demo bodies (events/square/*.json) were created at this instant.
DEMO_CREATED_AT = datetime(2026, 11, 20, 15, 4, 6, tzinfo=UTC)


# ---------------------------------------------------------------- narrowing


def one[T](value: T | None) -> T:
    """The row (or value) a test needs to exist: fails loudly instead of indexing None."""
    if value is None:
        raise AssertionError("expected a row, got None")
    return value


# ---------------------------------------------------------------- ids and clocks


def unique(prefix: str) -> str:
    """A short id that no other test in the same database uses."""
    return f"{prefix}{uuid.uuid4().hex[:12].upper()}"


def fixed_clock(at: datetime) -> Callable[[], datetime]:
    return lambda: at


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- Square webhooks


def sign(body: bytes, key: str = SIGNATURE_KEY, url: str = NOTIFICATION_URL) -> str:
    """Square's signature: base64(HMAC-SHA256(key, notification URL + raw body))."""
    digest = hmac.new(key.encode("utf-8"), url.encode("utf-8") + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def webhook_config(key: str = SIGNATURE_KEY, max_age: timedelta = MAX_EVENT_AGE) -> SquareWebhookConfig:
    return SquareWebhookConfig(signature_key=key, notification_url=NOTIFICATION_URL, max_event_age=max_age)


def demo_body(name: str) -> bytes:
    return (SQUARE_EVENTS / name).read_bytes()


def demo_files() -> list[Path]:
    return sorted(SQUARE_EVENTS.glob("*.json"))


def payment_event(
    *,
    merchant_id: str,
    payment_id: str | None = None,
    event_id: str | None = None,
    event_type: str = "payment.created",
    status: str = "COMPLETED",
    amount: int = 2599,
    currency: str = "USD",
    email: str | None = None,
    customer_id: str | None = None,
    created_at: datetime | None = None,
    tip: int = 0,
) -> dict[str, Any]:
    """A Square payment.* webhook envelope shaped like the demo bodies."""
    at = created_at or datetime.now(UTC)
    payment_id = payment_id or unique("pay_")
    payment: dict[str, Any] = {
        "id": payment_id,
        "created_at": iso(at - timedelta(seconds=1)),
        "updated_at": iso(at - timedelta(seconds=1)),
        "amount_money": {"amount": amount, "currency": currency},
        "tip_money": {"amount": tip, "currency": currency},
        "total_money": {"amount": amount + tip, "currency": currency},
        "status": status,
        "source_type": "CARD",
        "location_id": "LTEST0001",
        "order_id": unique("ORD_"),
        "version": 3,
    }
    if email is not None:
        payment["buyer_email_address"] = email
    if customer_id is not None:
        payment["customer_id"] = customer_id
    return {
        "merchant_id": merchant_id,
        "type": event_type,
        "event_id": event_id or str(uuid.uuid4()),
        "created_at": iso(at),
        "data": {"type": "payment", "id": payment_id, "object": {"payment": payment}},
    }


def refund_event(
    *,
    merchant_id: str,
    payment_id: str,
    amount: int,
    refund_id: str | None = None,
    event_id: str | None = None,
    event_type: str = "refund.updated",
    status: str = "COMPLETED",
    currency: str = "USD",
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """A Square refund.* webhook envelope."""
    at = created_at or datetime.now(UTC)
    refund_id = refund_id or unique("ref_")
    refund = {
        "id": refund_id,
        "status": status,
        "amount_money": {"amount": amount, "currency": currency},
        "payment_id": payment_id,
        "location_id": "LTEST0001",
        "created_at": iso(at - timedelta(seconds=1)),
        "updated_at": iso(at),
    }
    return {
        "merchant_id": merchant_id,
        "type": event_type,
        "event_id": event_id or str(uuid.uuid4()),
        "created_at": iso(at),
        "data": {"type": "refund", "id": refund_id, "object": {"refund": refund}},
    }


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode("utf-8")


def verified_event(body: bytes, signature: str | None = None) -> VerifiedEvent:
    """What the ingest service hands its store for a body (built without the service)."""
    envelope = json.loads(body)
    return VerifiedEvent(
        provider=Provider.SQUARE,
        provider_event_id=envelope["event_id"],
        event_type=envelope["type"],
        merchant_account_id=envelope["merchant_id"],
        raw_body=body.decode("utf-8"),
        signature_header=signature if signature is not None else sign(body),
    )


def store_event(store: RawEventStore, event: dict[str, Any] | bytes) -> StoredEvent:
    body = event if isinstance(event, bytes) else body_of(event)
    return store.store(verified_event(body))


def credit_request(stored: StoredEvent) -> CreditRequest:
    assert stored.raw_event_id is not None
    assert stored.tenant_id is not None
    return CreditRequest(
        raw_event_id=stored.raw_event_id, tenant_id=stored.tenant_id, provider=Provider.SQUARE
    )


# ---------------------------------------------------------------- Lambda events


def http_api_event(
    body: bytes, headers: dict[str, str] | None = None, *, base64_encoded: bool = False
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) request to POST /webhooks/square."""
    now = datetime.now(UTC)
    return {
        "version": "2.0",
        "routeKey": "POST /webhooks/square",
        "rawPath": f"/{STAGE}/webhooks/square",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "user-agent": "Square Connect v2", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1234567",
            "domainName": "api.example.test",
            "domainPrefix": "api",
            "http": {
                "method": "POST",
                "path": f"/{STAGE}/webhooks/square",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "Square Connect v2",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "POST /webhooks/square",
            "stage": STAGE,
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": base64.b64encode(body).decode("ascii") if base64_encoded else body.decode("utf-8"),
        "isBase64Encoded": base64_encoded,
    }


def signed_http_event(body: bytes, **kwargs: Any) -> dict[str, Any]:
    return http_api_event(body, {SIGNATURE_HEADER: sign(body)}, **kwargs)


def sqs_record(body: str, message_id: str | None = None) -> dict[str, Any]:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": unique("receipt-"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(datetime.now(UTC).timestamp() * 1000)),
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": str(int(datetime.now(UTC).timestamp() * 1000)),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest",
        "awsRegion": "us-east-1",
    }


def sqs_event(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


@dataclass(frozen=True)
class FakeLambdaContext:
    """The fields of a Lambda context that Powertools reads."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


# ---------------------------------------------------------------- database scenarios


@dataclass(frozen=True)
class Merchant:
    tenant_id: uuid.UUID
    merchant_id: str
    rule_id: uuid.UUID | None


def rule_config(**overrides: Any) -> dict[str, Any]:
    return {**seed.DEFAULT_RULE, **overrides}


def connected_merchant(
    owner: psycopg.Connection[Any],
    *,
    merchant_id: str | None = None,
    rule: dict[str, Any] | None = None,
    with_rule: bool = True,
) -> Merchant:
    """A tenant with a connected Square merchant and (unless told otherwise) an active rule."""
    tenant_id = seed.create_tenant(owner, unique("Tenant "))
    merchant_id = merchant_id or unique("ML")
    seed.connect_square_merchant(owner, tenant_id, merchant_id, seed.dev_cipher())
    rule_id = seed.create_rule(owner, tenant_id, rule or seed.DEFAULT_RULE) if with_rule else None
    return Merchant(tenant_id, merchant_id, rule_id)


def unique_email(name: str = "member") -> str:
    return f"{name}.{uuid.uuid4().hex[:10]}@example.com"


def insert_raw_event(
    owner: psycopg.Connection[Any],
    tenant_id: uuid.UUID | None,
    event: dict[str, Any] | None = None,
) -> uuid.UUID:
    """A raw event written directly (as an operator would); quarantined when tenant_id is None."""
    event = event or payment_event(merchant_id=unique("ML"))
    text = json.dumps(event)
    row = owner.execute(
        "INSERT INTO pos.pos_webhook_events_raw (tenant_id, provider, event_type, provider_event_id,"
        " merchant_account_id, raw_payload, raw_body, signature_header, quarantine_reason)"
        " VALUES (%s, 'square', %s, %s, %s, %s::jsonb, %s, %s, %s) RETURNING id",
        (
            tenant_id,
            event["type"],
            event["event_id"],
            event["merchant_id"],
            text,
            text,
            sign(text.encode()),
            None if tenant_id else "unknown_merchant",
        ),
    ).fetchone()
    return _id(row)


def insert_transaction(
    owner: psycopg.Connection[Any],
    tenant_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    provider_transaction_id: str | None = None,
    amount: int = 1000,
    raw_event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    row = owner.execute(
        "INSERT INTO pos.transactions (tenant_id, user_id, provider, provider_transaction_id,"
        " amount_minor_units, currency, transaction_at, raw_event_id)"
        " VALUES (%s, %s, 'square', %s, %s, 'USD', now(), %s) RETURNING id",
        (tenant_id, user_id, provider_transaction_id or unique("pay_"), amount, raw_event_id),
    ).fetchone()
    return _id(row)


def create_wallet(
    owner: psycopg.Connection[Any], tenant_id: uuid.UUID, user_id: uuid.UUID, status: str = "active"
) -> uuid.UUID:
    row = owner.execute(
        "INSERT INTO loyalty.wallets (tenant_id, user_id, status) VALUES (%s, %s, %s) RETURNING id",
        (tenant_id, user_id, status),
    ).fetchone()
    return _id(row)


def ledger_entry(
    conn: psycopg.Connection[Any],
    tenant_id: uuid.UUID,
    wallet_id: uuid.UUID,
    entry_type: str,
    points: int,
    source_transaction_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    row = conn.execute(
        "INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points, source_transaction_id)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id, balance_after",
        (tenant_id, wallet_id, entry_type, points, source_transaction_id),
    ).fetchone()
    assert row is not None
    return dict(row)


def wallet_state(owner: psycopg.Connection[Any], wallet_id: uuid.UUID) -> dict[str, Any]:
    row = owner.execute(
        "SELECT points_balance, version, status FROM loyalty.wallets WHERE id = %s", (wallet_id,)
    ).fetchone()
    assert row is not None
    return dict(row)


def count(conn: psycopg.Connection[Any], query: QueryNoTemplate, params: Params | None = None) -> int:
    """The `n` of a `SELECT count(*) AS n ...` (dict rows)."""
    n: int = one(conn.execute(query, params).fetchone())["n"]
    return n


def raw_count(owner: psycopg.Connection[Any]) -> int:
    return count(owner, "SELECT count(*) AS n FROM pos.pos_webhook_events_raw")


def _id(row: Any) -> uuid.UUID:
    assert row is not None, "INSERT ... RETURNING gave no row"
    value = row["id"] if isinstance(row, dict) else row[0]
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# ---------------------------------------------------------------- Lambda handlers in-process


def fresh_import(module_name: str) -> ModuleType:
    """Import a handler module so that it reads the current environment (as a cold start does)."""
    if module_name in sys.modules:
        return importlib.reload(sys.modules[module_name])
    return importlib.import_module(module_name)


def clear_parameter_caches() -> None:
    # Powertools' clear_caches() carries no annotations.
    parameters.clear_caches()  # type: ignore[no-untyped-call]


# ---------------------------------------------------------------- concurrency


def run_concurrently(database: Database, requests: list[CreditRequest]) -> list[ProcessingResult]:
    """Crediting workers, one connection each, all released together by a barrier."""
    barrier = threading.Barrier(len(requests))
    factories = [database.connections("pos_gateway_crediting") for _ in requests]

    def work(index: int) -> ProcessingResult:
        service = CreditingService(factories[index])
        factories[index].get()  # connect before the barrier so the work itself overlaps
        barrier.wait(timeout=30)
        return service.process(requests[index])

    try:
        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            return list(pool.map(work, range(len(requests))))
    finally:
        for factory in factories:
            factory.close()


@contextmanager
def deployed_webhook(
    module: str, secret_env: str, secret: dict[str, Any], database_secret: dict[str, Any]
) -> Iterator[ModuleType]:
    """A webhook handler imported as Lambda would run it (moto AWS: its ingest queue, its DB
    secret, its provider secret). ``secret_env`` names the handler's provider-secret variable,
    ``secret`` its value; ``database_secret`` is the RDS-style login it connects with."""
    with mock_aws(), pytest.MonkeyPatch.context() as env:
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        queue_url = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="ingest")["QueueUrl"]
        database = secrets.create_secret(Name="db/ingest", SecretString=json.dumps(database_secret))["ARN"]
        provider = secrets.create_secret(Name="provider-webhook", SecretString=json.dumps(secret))["ARN"]
        clear_parameter_caches()
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("POWERTOOLS_SERVICE_NAME", module.split(".")[1])
        env.setenv("DB_SECRET_ARN", database)
        env.setenv("INGEST_QUEUE_URL", queue_url)
        env.setenv(secret_env, provider)
        try:
            yield fresh_import(module)
        finally:
            clear_parameter_caches()


@contextmanager
def webhook_without_database(module: str, secret_env: str, secret: dict[str, Any]) -> Iterator[ModuleType]:
    """A webhook handler imported (moto AWS) with a DB secret pointing where nothing listens."""
    unreachable = {
        "host": "127.0.0.1",
        "port": free_port(),
        "dbname": "pos_gateway",
        "username": "pos_gateway_ingest",
        "password": "unused",
        "connect_timeout": 1,
    }
    with deployed_webhook(module, secret_env, secret, unreachable) as handler:
        yield handler


def e2e_stack_config(cluster: Cluster, state_dir: Path, name: str) -> StackConfig:
    """A local stack of its own for one e2e module: moto's state is per process, so its own names;
    one worker per function (a faster start) and schedules run only by the test."""
    return StackConfig(
        port=0,
        state_dir=state_dir,
        database_url=cluster.admin_url,
        dbname=f"e2e_{name}",
        stack_name=f"pos-gateway-{name}",
        visibility_timeout=1,
        max_concurrency=1,
        schedule_timers=False,
    )
