"""Ingest against real Postgres (role pos_gateway_ingest) and an SQS queue from moto."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg import sql

from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.ingest.repository import RawEventStore
from pos_gateway.ingest.service import (
    IngestOutcome,
    InvalidSignature,
    MalformedEvent,
    SquareWebhookIngest,
    StaleEvent,
)
from pos_gateway.messages import CreditRequest
from tests.helpers import (
    DEMO_CREATED_AT,
    body_of,
    connected_merchant,
    demo_body,
    fixed_clock,
    payment_event,
    raw_count,
    sign,
    unique,
    webhook_config,
)

CREATED_AT = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
CLOCK = fixed_clock(CREATED_AT + timedelta(minutes=1))


@pytest.fixture
def sqs():
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def queue_url(sqs):
    return sqs.create_queue(QueueName=unique("ingest-"))["QueueUrl"]


@pytest.fixture
def queue(sqs, queue_url):
    return IngestQueue(queue_url, sqs)


@pytest.fixture
def merchant(owner):
    return connected_merchant(owner)


def service(
    store: RawEventStore, queue: IngestQueue, clock: Callable[[], datetime] = CLOCK
) -> SquareWebhookIngest:
    config = webhook_config()
    return SquareWebhookIngest(config=lambda: config, store=store, queue=queue, clock=clock)


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        messages.extend(batch)
    return messages


def raw_rows(owner: psycopg.Connection[Any], **where: Any) -> list[dict[str, Any]]:
    conditions = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(column)) for column in where)
    return owner.execute(
        sql.SQL("SELECT * FROM pos.pos_webhook_events_raw WHERE {}").format(conditions), tuple(where.values())
    ).fetchall()


def a_body(merchant_id: str, **overrides) -> bytes:
    return body_of(payment_event(merchant_id=merchant_id, created_at=CREATED_AT, **overrides))


def test_accepted_event_is_stored_once_and_enqueued_once(owner, store, queue, sqs, queue_url, merchant):
    body = a_body(merchant.merchant_id, email="someone@example.com")
    signature = sign(body)

    result = service(store, queue).receive(body, signature)

    assert result.outcome is IngestOutcome.ACCEPTED
    assert result.enqueued is True
    [row] = raw_rows(owner, provider_event_id=json.loads(body)["event_id"])
    assert row["id"] == result.raw_event_id
    assert row["tenant_id"] == merchant.tenant_id
    assert row["provider"] == "square"
    assert row["event_type"] == "payment.created"
    assert row["merchant_account_id"] == merchant.merchant_id
    assert row["signature_header"] == signature
    assert row["raw_payload"] == json.loads(body)
    # raw_body keeps the exact bytes received, so the stored signature verifies again on replay.
    assert sign(row["raw_body"].encode("utf-8")) == row["signature_header"], (
        "stored raw_body does not re-verify"
    )
    assert row["raw_body"] == body.decode("utf-8")
    assert (row["processed"], row["processed_at"], row["quarantine_reason"]) == (False, None, None)

    [message] = drain(sqs, queue_url)
    assert json.loads(message["Body"]) == {
        "rawEventId": str(row["id"]),
        "tenantId": str(merchant.tenant_id),
        "provider": "square",
    }
    request = CreditRequest.model_validate_json(message["Body"])
    assert (request.raw_event_id, request.tenant_id) == (row["id"], merchant.tenant_id)


def test_the_same_webhook_again_adds_no_row_and_no_message(owner, store, queue, sqs, queue_url, merchant):
    body = a_body(merchant.merchant_id)
    ingest = service(store, queue)
    first = ingest.receive(body, sign(body))
    again = ingest.receive(body, sign(body))
    resent_later = service(store, queue, fixed_clock(CREATED_AT + timedelta(hours=20))).receive(
        body, sign(body)
    )

    assert first.outcome is IngestOutcome.ACCEPTED
    assert (again.outcome, again.raw_event_id) == (IngestOutcome.DUPLICATE, None)
    assert resent_later.outcome is IngestOutcome.DUPLICATE
    assert len(raw_rows(owner, provider_event_id=json.loads(body)["event_id"])) == 1
    assert len(drain(sqs, queue_url)) == 1


def test_same_event_id_with_a_different_body_is_still_a_duplicate(owner, store, queue, merchant):
    event_id = unique("evt-")
    first = a_body(merchant.merchant_id, event_id=event_id, amount=100)
    second = a_body(merchant.merchant_id, event_id=event_id, amount=999_999)
    service(store, queue).receive(first, sign(first))
    assert service(store, queue).receive(second, sign(second)).outcome is IngestOutcome.DUPLICATE
    [row] = raw_rows(owner, provider_event_id=event_id)
    assert row["raw_payload"]["data"]["object"]["payment"]["amount_money"]["amount"] == 100


@pytest.mark.parametrize(
    "signature_of",
    [lambda body: None, lambda body: sign(body, key="forged"), lambda body: sign(body + b"\n")],
    ids=["missing", "forged", "other-body"],
)
def test_forged_signature_writes_nothing(owner, store, queue, sqs, queue_url, merchant, signature_of):
    body = a_body(merchant.merchant_id)
    before = raw_count(owner)
    with pytest.raises(InvalidSignature) as excinfo:
        service(store, queue).receive(body, signature_of(body))
    assert excinfo.value.status_code == 401
    assert raw_count(owner) == before
    assert raw_rows(owner, provider_event_id=json.loads(body)["event_id"]) == []
    assert drain(sqs, queue_url) == []


def test_stale_event_writes_nothing(owner, store, queue, merchant):
    body = a_body(merchant.merchant_id)
    before = raw_count(owner)
    with pytest.raises(StaleEvent):
        service(store, queue, fixed_clock(CREATED_AT + timedelta(days=4))).receive(body, sign(body))
    assert raw_count(owner) == before


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        body_of({"merchant_id": "M", "type": "payment.created", "event_id": "e-missing-date", "data": {}}),
        a_body("MLWHATEVER", amount=-1),
        a_body("MLWHATEVER", email="nul\x00@example.com"),
    ],
    ids=["not-json", "array", "no-created-at", "negative-amount", "nul"],
)
def test_malformed_event_writes_nothing(owner, store, queue, sqs, queue_url, body):
    before = raw_count(owner)
    with pytest.raises(MalformedEvent) as excinfo:
        service(store, queue).receive(body, sign(body))
    assert excinfo.value.status_code == 400
    assert excinfo.value.fields or excinfo.value.message
    assert raw_count(owner) == before
    assert drain(sqs, queue_url) == []


def test_an_escaped_backslash_before_u0000_is_not_a_nul(owner, store, queue, merchant):
    # JSON "C:\\u0000" is the text C:\u0000 (a backslash, then "u0000"), not a NUL character:
    # valid JSON that jsonb stores, so this authenticated event must be accepted, not refused as 400.
    event = payment_event(merchant_id=merchant.merchant_id, created_at=CREATED_AT)
    event["data"]["object"]["payment"]["note"] = "C:\\u0000"
    body = body_of(event)
    assert b"\\\\u0000" in body

    result = service(store, queue).receive(body, sign(body))

    assert result.outcome is IngestOutcome.ACCEPTED
    [row] = raw_rows(owner, id=result.raw_event_id)
    assert row["raw_payload"]["data"]["object"]["payment"]["note"] == "C:\\u0000"


def test_unknown_merchant_is_quarantined_not_enqueued(owner, store, queue, sqs, queue_url):
    body = a_body(unique("MLUNKNOWN"))
    result = service(store, queue).receive(body, sign(body))
    assert result.outcome is IngestOutcome.QUARANTINED
    [row] = raw_rows(owner, id=result.raw_event_id)
    assert (row["tenant_id"], row["quarantine_reason"], row["processed"]) == (None, "unknown_merchant", False)
    assert drain(sqs, queue_url) == []


def sweeper_predicate(owner) -> sql.Composable:
    """The WHERE clause of the sweeper's partial index, as the catalog has it."""
    row = owner.execute(
        "SELECT pg_get_expr(indpred, indrelid) AS predicate FROM pg_index"
        " WHERE indexrelid = 'pos.pos_webhook_events_raw_unprocessed_idx'::regclass"
    ).fetchone()
    assert row["predicate"] == "((processed = false) AND (tenant_id IS NOT NULL) AND (parked_at IS NULL))"
    return sql.SQL(row["predicate"])


def assert_left_for_the_sweeper(owner, raw_event_id) -> None:
    found = owner.execute(
        sql.SQL("SELECT id FROM pos.pos_webhook_events_raw WHERE {} AND id = %s").format(
            sweeper_predicate(owner)
        ),
        (raw_event_id,),
    ).fetchall()
    assert found == [{"id": raw_event_id}]


def test_enqueue_failure_keeps_the_row_for_the_sweeper(owner, store, sqs, merchant):
    missing_queue = IngestQueue("https://sqs.us-east-1.amazonaws.com/123456789012/does-not-exist", sqs)
    body = a_body(merchant.merchant_id)
    result = service(store, missing_queue).receive(body, sign(body))
    assert (result.outcome, result.enqueued) == (IngestOutcome.ACCEPTED, False)
    [row] = raw_rows(owner, id=result.raw_event_id)
    assert (row["processed"], row["tenant_id"]) == (False, merchant.tenant_id)
    assert_left_for_the_sweeper(owner, result.raw_event_id)


class ExplodingSqs:
    def __init__(self) -> None:
        self.calls = 0

    def send_message(self, **kwargs):
        self.calls += 1
        raise ConnectionError("sqs endpoint unreachable")


def test_a_queue_that_raises_keeps_the_row_for_the_sweeper(owner, store, merchant):
    client = ExplodingSqs()
    body = a_body(merchant.merchant_id)
    result = service(store, IngestQueue("https://sqs.example/ingest", client)).receive(body, sign(body))
    assert (result.outcome, result.enqueued, client.calls) == (IngestOutcome.ACCEPTED, False, 1)
    assert_left_for_the_sweeper(owner, result.raw_event_id)


def test_quarantined_rows_are_not_in_the_sweeper_queue(owner, store, queue):
    body = a_body(unique("MLUNKNOWN"))
    result = service(store, queue).receive(body, sign(body))
    found = owner.execute(
        sql.SQL("SELECT id FROM pos.pos_webhook_events_raw WHERE {} AND id = %s").format(
            sweeper_predicate(owner)
        ),
        (result.raw_event_id,),
    ).fetchall()
    assert found == []


def test_the_demo_webhooks(owner, store, queue, sqs, queue_url):
    blue = connected_merchant(owner, merchant_id="MLBLUEBOTTLE01")
    bakery = connected_merchant(owner, merchant_id="MLCORNERBAKE02")
    ingest = service(store, queue, fixed_clock(DEMO_CREATED_AT + timedelta(minutes=1)))
    expected = {
        "01_alice_payment_created_approved.json": IngestOutcome.ACCEPTED,
        "02_alice_payment_completed.json": IngestOutcome.ACCEPTED,
        "03_alice_payment_completed_redelivered.json": IngestOutcome.DUPLICATE,
        "04_alice_payment_updated_again.json": IngestOutcome.ACCEPTED,
        "05_bob_large_payment_capped.json": IngestOutcome.ACCEPTED,
        "06_anonymous_walk_in.json": IngestOutcome.ACCEPTED,
        "07_alice_at_bakery.json": IngestOutcome.ACCEPTED,
        "08_carol_suspended.json": IngestOutcome.ACCEPTED,
        "09_unknown_merchant.json": IngestOutcome.QUARANTINED,
    }
    outcomes = {name: ingest.receive(demo_body(name), sign(demo_body(name))).outcome for name in expected}
    assert outcomes == expected

    tenants = [CreditRequest.model_validate_json(m["Body"]).tenant_id for m in drain(sqs, queue_url)]
    assert sorted(map(str, tenants)) == sorted(map(str, [blue.tenant_id] * 5 + [bakery.tenant_id] * 2))
