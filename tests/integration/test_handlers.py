"""The real Lambda handlers, in-process, with moto for Secrets Manager and SQS."""

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws

from local import seed
from local.database import Database
from tests.helpers import (
    NOTIFICATION_URL,
    SIGNATURE_HEADER,
    SIGNATURE_KEY,
    FakeLambdaContext,
    body_of,
    clear_parameter_caches,
    connected_merchant,
    fresh_import,
    http_api_event,
    payment_event,
    raw_count,
    sign,
    signed_http_event,
    sqs_event,
    sqs_record,
    unique,
    unique_email,
)

REGION = "us-east-1"
INGEST_ROLE = "pos_gateway_ingest"
CREDITING_ROLE = "pos_gateway_crediting"


@dataclass(frozen=True)
class Stack:
    webhook: ModuleType
    crediting: ModuleType
    sqs: Any
    queue_url: str


@pytest.fixture(scope="module")
def stack(database: Database) -> Iterator[Stack]:
    with mock_aws(), pytest.MonkeyPatch.context() as env:
        secrets = boto3.client("secretsmanager", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="pos-gateway-ingest")["QueueUrl"]

        def secret(name: str, value: str) -> str:
            arn: str = secrets.create_secret(Name=name, SecretString=value)["ARN"]
            return arn

        ingest_db = secret("pos-gateway/db/ingest", json.dumps(database.secret(INGEST_ROLE)))
        crediting_db = secret("pos-gateway/db/crediting", json.dumps(database.secret(CREDITING_ROLE)))
        square = secret(
            "pos-gateway/square-webhook",
            json.dumps({"signatureKey": SIGNATURE_KEY, "notificationUrl": NOTIFICATION_URL}),
        )
        clear_parameter_caches()

        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("POWERTOOLS_SERVICE_NAME", "webhook_ingest")
        env.setenv("DB_SECRET_ARN", ingest_db)
        env.setenv("INGEST_QUEUE_URL", queue_url)
        env.setenv("SQUARE_WEBHOOK_SECRET_ARN", square)
        webhook = fresh_import("functions.webhook_ingest.app")

        env.setenv("POWERTOOLS_SERVICE_NAME", "reward_crediting")
        env.setenv("DB_SECRET_ARN", crediting_db)
        env.delenv("INGEST_QUEUE_URL")
        env.delenv("SQUARE_WEBHOOK_SECRET_ARN")
        crediting = fresh_import("functions.reward_crediting.app")

        yield Stack(webhook=webhook, crediting=crediting, sqs=sqs, queue_url=queue_url)
        clear_parameter_caches()


@pytest.fixture
def merchant(owner):
    return connected_merchant(owner)


@pytest.fixture(autouse=True)
def _empty_queue(stack):
    """Every test starts with an empty queue (PurgeQueue is limited to once a minute)."""
    for message in drain(stack):
        stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])


def call_webhook(stack: Stack, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = stack.webhook.lambda_handler(event, FakeLambdaContext(function_name="webhook_ingest"))
    return response["statusCode"], json.loads(response["body"])


def call_crediting(stack: Stack, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = stack.crediting.lambda_handler(
        event, FakeLambdaContext(function_name="reward_crediting")
    )
    return response


def drain(stack: Stack) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        messages.extend(batch)
    return messages


# ---------------------------------------------------------------- webhook_ingest


@pytest.mark.parametrize("base64_encoded", [False, True], ids=["text", "base64"])
def test_a_signed_webhook_is_accepted(stack, owner, merchant, base64_encoded):
    event = payment_event(merchant_id=merchant.merchant_id)
    status, body = call_webhook(stack, signed_http_event(body_of(event), base64_encoded=base64_encoded))

    assert status == 200
    assert body["status"] == "accepted"
    raw_event_id = uuid.UUID(body["rawEventId"])
    row = owner.execute(
        "SELECT tenant_id, provider_event_id, processed FROM pos.pos_webhook_events_raw WHERE id = %s",
        (raw_event_id,),
    ).fetchone()
    assert row == {
        "tenant_id": merchant.tenant_id,
        "provider_event_id": event["event_id"],
        "processed": False,
    }
    [message] = drain(stack)
    assert json.loads(message["Body"]) == {
        "rawEventId": str(raw_event_id),
        "tenantId": str(merchant.tenant_id),
        "provider": "square",
    }


def test_a_mixed_case_signature_header_is_found(stack, merchant):
    raw = body_of(payment_event(merchant_id=merchant.merchant_id))
    status, body = call_webhook(stack, http_api_event(raw, {"X-Square-HmacSha256-Signature": sign(raw)}))
    assert (status, body["status"]) == (200, "accepted")


def test_a_redelivered_webhook_is_acknowledged_as_duplicate(stack, merchant):
    raw = body_of(payment_event(merchant_id=merchant.merchant_id))
    first = call_webhook(stack, signed_http_event(raw))
    again = call_webhook(stack, signed_http_event(raw))
    assert first[0] == again[0] == 200
    assert again[1] == {"status": "duplicate", "rawEventId": None}
    assert len(drain(stack)) == 1


def test_an_unknown_merchant_is_acknowledged_and_quarantined(stack, owner):
    raw = body_of(payment_event(merchant_id=unique("MLUNKNOWN")))
    status, body = call_webhook(stack, signed_http_event(raw))
    assert (status, body["status"]) == (200, "quarantined")
    row = owner.execute(
        "SELECT tenant_id, quarantine_reason FROM pos.pos_webhook_events_raw WHERE id = %s",
        (body["rawEventId"],),
    ).fetchone()
    assert row == {"tenant_id": None, "quarantine_reason": "unknown_merchant"}
    assert drain(stack) == []


@pytest.mark.parametrize(
    "headers_of",
    [
        lambda raw: {SIGNATURE_HEADER: sign(raw, key="forged-key")},
        lambda raw: {SIGNATURE_HEADER: sign(raw, url="https://attacker.example/webhooks/square")},
        lambda raw: {},
        lambda raw: {SIGNATURE_HEADER: ""},
    ],
    ids=["forged", "other-url", "missing", "empty"],
)
def test_a_bad_signature_is_401_and_writes_nothing(stack, owner, merchant, headers_of):
    raw = body_of(payment_event(merchant_id=merchant.merchant_id))
    before = raw_count(owner)

    status, body = call_webhook(stack, http_api_event(raw, headers_of(raw)))

    assert status == 401
    assert body["error"]["code"] == "invalid_signature"
    assert body["error"]["message"]
    assert raw_count(owner) == before
    assert drain(stack) == []


def test_a_stale_event_is_401_and_writes_nothing(stack, owner, merchant):
    raw = body_of(
        payment_event(merchant_id=merchant.merchant_id, created_at=datetime.now(UTC) - timedelta(days=4))
    )
    before = raw_count(owner)
    status, body = call_webhook(stack, signed_http_event(raw))
    assert (status, body["error"]["code"]) == (401, "stale_event")
    assert raw_count(owner) == before


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda e: e.pop("merchant_id"), "merchant_id"),
        (lambda e: e.update(created_at="2026-11-20T15:04:06"), "created_at"),
        (
            lambda e: e["data"]["object"]["payment"]["amount_money"].update(currency="dollars"),
            "payment.amount_money.currency",
        ),
    ],
    ids=["no-merchant", "naive-date", "bad-currency"],
)
def test_a_malformed_event_is_400_with_details_and_writes_nothing(stack, owner, merchant, mutate, loc):
    event = payment_event(merchant_id=merchant.merchant_id)
    mutate(event)
    raw = body_of(event)
    before = raw_count(owner)

    status, body = call_webhook(stack, signed_http_event(raw))

    assert status == 400
    assert body["error"]["code"] == "malformed_event"
    assert loc in [detail["loc"] for detail in body["error"]["fields"]]
    assert raw_count(owner) == before
    assert drain(stack) == []


def test_a_body_that_is_not_json_is_400(stack, owner):
    raw = b"merchant_id=ML1&type=payment.created"
    before = raw_count(owner)
    status, body = call_webhook(stack, signed_http_event(raw))
    assert (status, body["error"]["code"]) == (400, "malformed_event")
    assert body["error"]["fields"][0]["type"] == "json_invalid"
    assert raw_count(owner) == before


# ---------------------------------------------------------------- reward_crediting


def ingest_through_the_webhook(stack: Stack, merchant_id: str, **payment: Any) -> list[dict[str, Any]]:
    status, _ = call_webhook(
        stack, signed_http_event(body_of(payment_event(merchant_id=merchant_id, **payment)))
    )
    assert status == 200
    return drain(stack)


def test_a_batch_with_a_poison_record_reports_only_that_record(stack, owner, merchant):
    emails = [unique_email("ann"), unique_email("ben")]
    users = [seed.create_user(owner, email=email) for email in emails]
    messages = [
        message
        for email, amount in zip(emails, [1200, 3400], strict=True)
        for message in ingest_through_the_webhook(stack, merchant.merchant_id, email=email, amount=amount)
    ]
    assert len(messages) == 2
    poison = sqs_record('{"rawEventId": "not-a-uuid"}')
    records = [sqs_record(m["Body"], m["MessageId"]) for m in messages]

    response = call_crediting(stack, sqs_event([records[0], poison, records[1]]))

    assert response == {"batchItemFailures": [{"itemIdentifier": poison["messageId"]}]}
    balances = [
        owner.execute(
            "SELECT points_balance FROM loyalty.wallets WHERE tenant_id = %s AND user_id = %s",
            (merchant.tenant_id, user),
        ).fetchone()
        for user in users
    ]
    assert balances == [{"points_balance": 12}, {"points_balance": 34}]
    processed = owner.execute(
        "SELECT count(*) AS n FROM pos.pos_webhook_events_raw WHERE tenant_id = %s AND processed",
        (merchant.tenant_id,),
    ).fetchone()
    assert processed["n"] == 2


@pytest.mark.parametrize(
    "body_of_poison",
    [
        lambda tenant: "not json at all",
        lambda tenant: json.dumps(
            {"rawEventId": str(uuid.uuid4()), "tenantId": str(tenant), "provider": "square"}
        ),
        lambda tenant: json.dumps(
            {"rawEventId": str(uuid.uuid4()), "tenantId": str(tenant), "provider": "toast"}
        ),
        lambda tenant: json.dumps(
            {"rawEventId": str(uuid.uuid4()), "tenantId": str(tenant), "provider": "square", "extra": 1}
        ),
    ],
    ids=["not-json", "unknown-raw-event", "unknown-provider", "extra-field"],
)
def test_records_that_cannot_be_processed_are_reported(stack, merchant, body_of_poison):
    [good] = ingest_through_the_webhook(stack, merchant.merchant_id)
    poison = sqs_record(body_of_poison(merchant.tenant_id))
    response = call_crediting(stack, sqs_event([poison, sqs_record(good["Body"], good["MessageId"])]))
    assert response == {"batchItemFailures": [{"itemIdentifier": poison["messageId"]}]}


def test_a_batch_where_every_record_fails_is_raised_for_a_full_retry(stack):
    with pytest.raises(BatchProcessingError):
        call_crediting(stack, sqs_event([sqs_record("poison"), sqs_record("{}")]))


def test_a_redelivered_record_succeeds_without_crediting_again(stack, owner, merchant):
    email = unique_email("cy")
    user = seed.create_user(owner, email=email)
    [message] = ingest_through_the_webhook(stack, merchant.merchant_id, email=email, amount=5000)
    record = sqs_record(message["Body"], message["MessageId"])

    assert call_crediting(stack, sqs_event([record])) == {"batchItemFailures": []}
    assert call_crediting(stack, sqs_event([record])) == {"batchItemFailures": []}

    wallet = owner.execute(
        "SELECT id, points_balance FROM loyalty.wallets WHERE tenant_id = %s AND user_id = %s",
        (merchant.tenant_id, user),
    ).fetchone()
    assert wallet["points_balance"] == 50
    ledger = owner.execute(
        "SELECT count(*) AS n FROM loyalty.wallet_ledger WHERE wallet_id = %s", (wallet["id"],)
    )
    assert ledger.fetchone()["n"] == 1
