"""The clover_webhook Lambda handler in-process: real Postgres, moto for Secrets Manager and SQS,
driven by the sample events of events/clover."""

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from local import seed
from local.database import Database
from local.fake_clover import connect_clover_merchant
from tests.helpers import FakeLambdaContext, clear_parameter_caches, fresh_import, raw_count, unique

REGION = "us-east-1"
EVENTS = Path(__file__).resolve().parents[2] / "events" / "clover"
DEMO_AUTH_CODE = "demo-clover-auth-code"  # what events/clover/http_payment_updates.json carries


@dataclass(frozen=True)
class Stack:
    webhook: ModuleType
    sqs: Any
    queue_url: str


@pytest.fixture(scope="module")
def stack(database: Database) -> Iterator[Stack]:
    with mock_aws(), pytest.MonkeyPatch.context() as env:
        secrets = boto3.client("secretsmanager", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="pos-gateway-ingest")["QueueUrl"]
        db = secrets.create_secret(
            Name="db/ingest", SecretString=json.dumps(database.secret("pos_gateway_ingest"))
        )
        clover = secrets.create_secret(
            Name="clover-webhook", SecretString=json.dumps({"authCode": DEMO_AUTH_CODE})
        )
        clear_parameter_caches()
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("POWERTOOLS_SERVICE_NAME", "clover_webhook")
        env.setenv("DB_SECRET_ARN", db["ARN"])
        env.setenv("INGEST_QUEUE_URL", queue_url)
        env.setenv("CLOVER_WEBHOOK_SECRET_ARN", clover["ARN"])
        yield Stack(fresh_import("functions.clover_webhook.app"), sqs, queue_url)
        clear_parameter_caches()


@pytest.fixture(scope="module")
def demo_merchants(owner: psycopg.Connection[Any]) -> dict[str, Any]:
    """The sample's two merchants, connected to two tenants."""
    tenants = {}
    for merchant_id in ("MCLOVERDEMO01", "MCLOVERDEMO02"):
        tenants[merchant_id] = seed.create_tenant(owner, unique("Clover demo "))
        connect_clover_merchant(owner, tenants[merchant_id], merchant_id, seed.dev_cipher())
    return tenants


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def call(stack: Stack, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = stack.webhook.lambda_handler(event, FakeLambdaContext(function_name="clover_webhook"))
    return response["statusCode"], json.loads(response["body"])


def drain(stack: Stack) -> list[dict[str, Any]]:
    bodies = []
    while batch := stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in batch:
            bodies.append(json.loads(message["Body"]))
            stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def with_body(event: dict[str, Any], body: bytes, **headers: str) -> dict[str, Any]:
    return {**event, "body": body.decode(), "headers": {**event["headers"], **headers}}


def test_the_verification_post_is_answered_200_and_kept(stack: Stack, owner: psycopg.Connection[Any]) -> None:
    status, body = call(stack, sample("http_verification.json"))

    assert (status, body["status"]) == (200, "verification_received")
    row = owner.execute(
        "SELECT provider FROM pos.provider_verification_codes WHERE verification_code = %s",
        ("5b0e8a4e-5d2f-4c1a-9a37-2f4f9c1d7e10",),
    ).fetchone()
    assert row == {"provider": "clover"}


def test_a_wrong_auth_code_is_401_and_writes_nothing(
    stack: Stack, owner: psycopg.Connection[Any], demo_merchants: dict[str, Any]
) -> None:
    before = raw_count(owner)
    missing = sample("http_payment_updates.json")
    missing["headers"] = {k: v for k, v in missing["headers"].items() if k != "x-clover-auth"}

    for event in (sample("http_wrong_auth_code.json"), missing):
        status, body = call(stack, event)
        assert status == 401
        assert body["error"]["code"] == "invalid_auth_code"

    assert raw_count(owner) == before
    assert drain(stack) == []


def test_the_sample_delivery_is_stored_per_update_enqueued_and_acknowledged(
    stack: Stack, owner: psycopg.Connection[Any], demo_merchants: dict[str, Any]
) -> None:
    status, body = call(stack, sample("http_payment_updates.json"))
    again_status, again = call(stack, sample("http_payment_updates.json"))

    assert (status, body) == (
        200,
        {"status": "accepted", "received": 4, "accepted": 4, "duplicates": 0, "quarantined": 0},
    )
    assert (again_status, again["accepted"], again["duplicates"]) == (200, 0, 4)
    messages = drain(stack)
    assert len(messages) == 4
    assert {m["tenantId"] for m in messages} == {str(t) for t in demo_merchants.values()}
    assert {m["provider"] for m in messages} == {"clover"}


def test_a_base64_body_and_a_mixed_case_header_are_understood(
    stack: Stack, demo_merchants: dict[str, Any]
) -> None:
    raw = json.dumps(
        {"merchants": {"MCLOVERDEMO01": [{"objectId": "P:" + unique("PAY"), "type": "CREATE", "ts": 1}]}}
    ).encode()
    event = with_body(sample("http_payment_updates.json"), raw)
    event["headers"] = {"content-type": "application/json", "X-Clover-Auth": DEMO_AUTH_CODE}
    event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True

    status, body = call(stack, event)

    assert (status, body["accepted"]) == (200, 1)
    drain(stack)


@pytest.mark.parametrize("raw", [b"{not json", b'{"merchants": {"MCLOVERDEMO01": [{"objectId": 5}]}}'])
def test_a_malformed_body_is_a_machine_readable_400(
    stack: Stack, owner: psycopg.Connection[Any], raw: bytes
) -> None:
    before = raw_count(owner)

    status, body = call(stack, with_body(sample("http_payment_updates.json"), raw))

    assert status == 400
    assert body["error"]["code"] == "malformed_event"
    assert isinstance(body["error"]["fields"], list)
    assert raw_count(owner) == before
