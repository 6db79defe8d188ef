"""Clover ingest against real Postgres (role pos_gateway_ingest) and an SQS queue from moto."""

import json
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from local import seed
from local.database import Database
from local.fake_clover import connect_clover_merchant
from pos_gateway.ingest.clover import (
    CloverEventStore,
    CloverWebhookConfig,
    CloverWebhookIngest,
    InvalidAuthCode,
)
from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider
from tests.helpers import count, raw_count, unique

AUTH = "0307e264-b33a-4913-88aa-37b10014a0b8"
TS = 1_763_651_046_000


@pytest.fixture(scope="module")
def clover_store(database: Database) -> Iterator[CloverEventStore]:
    connections = database.connections("pos_gateway_ingest")
    yield CloverEventStore(connections)
    connections.close()


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def queue_url(sqs: Any) -> str:
    url: str = sqs.create_queue(QueueName=unique("clover-ingest-"))["QueueUrl"]
    return url


@pytest.fixture
def ingest(clover_store: CloverEventStore, sqs: Any, queue_url: str) -> CloverWebhookIngest:
    config = CloverWebhookConfig(auth_code=AUTH)
    return CloverWebhookIngest(lambda: config, clover_store, IngestQueue(queue_url, sqs))


def clover_merchant(owner: psycopg.Connection[Any]) -> tuple[Any, str]:
    tenant_id = seed.create_tenant(owner, unique("Clover tenant "))
    merchant_id = unique("MC")
    connect_clover_merchant(owner, tenant_id, merchant_id, seed.dev_cipher())
    return tenant_id, merchant_id


def delivery(merchants: dict[str, list[str]], ts: int = TS) -> bytes:
    """A Clover body: for each merchant, one CREATE per object id (ts apart)."""
    return json.dumps(
        {
            "appId": "APPTEST000001",
            "merchants": {
                merchant: [{"objectId": oid, "type": "CREATE", "ts": ts + i} for i, oid in enumerate(objects)]
                for merchant, objects in merchants.items()
            },
        },
        separators=(",", ":"),
    ).encode()


def messages(sqs: Any, queue_url: str) -> list[CreditRequest]:
    found: list[CreditRequest] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        found += [CreditRequest.model_validate_json(m["Body"]) for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return found


def verification_codes(owner: psycopg.Connection[Any]) -> list[str]:
    rows = owner.execute(
        "SELECT verification_code FROM pos.provider_verification_codes ORDER BY created_at"
    ).fetchall()
    return [row["verification_code"] for row in rows]


def test_the_verification_code_is_kept_once_for_the_operator(
    ingest: CloverWebhookIngest, owner: psycopg.Connection[Any]
) -> None:
    code = "c0de" + unique("-").lower()

    first = ingest.receive(json.dumps({"verificationCode": code}).encode(), None)
    again = ingest.receive(json.dumps({"verificationCode": code}).encode(), None)

    assert first.verification
    assert again.verification
    assert verification_codes(owner).count(code) == 1


def test_verification_codes_are_append_only(owner: psycopg.Connection[Any]) -> None:
    owner.execute(
        "INSERT INTO pos.provider_verification_codes (provider, verification_code) VALUES ('clover', %s)",
        (unique("code-"),),
    )

    with pytest.raises(psycopg.errors.RestrictViolation):
        owner.execute("UPDATE pos.provider_verification_codes SET verification_code = 'changed-code'")
    with pytest.raises(psycopg.errors.RestrictViolation):
        owner.execute("DELETE FROM pos.provider_verification_codes")


@pytest.mark.parametrize("auth", [None, "", "0307e264-b33a-4913-88aa-37b10014a0b9"])
def test_a_delivery_without_the_auth_code_writes_nothing(
    ingest: CloverWebhookIngest, owner: psycopg.Connection[Any], sqs: Any, queue_url: str, auth: str | None
) -> None:
    _, merchant = clover_merchant(owner)
    raw_before, codes_before = raw_count(owner), verification_codes(owner)

    with pytest.raises(InvalidAuthCode):
        ingest.receive(delivery({merchant: ["P:" + unique("PAY")]}), auth)

    assert raw_count(owner) == raw_before
    assert verification_codes(owner) == codes_before
    assert messages(sqs, queue_url) == []


def test_a_multi_merchant_delivery_is_one_raw_event_and_one_message_per_update(
    ingest: CloverWebhookIngest, owner: psycopg.Connection[Any], sqs: Any, queue_url: str
) -> None:
    (tenant_a, merchant_a), (tenant_b, merchant_b) = clover_merchant(owner), clover_merchant(owner)
    body = delivery({merchant_a: ["P:PAYA1", "P:PAYA2"], merchant_b: ["P:PAYB1", "O:ORDB1"]})

    result = ingest.receive(body, AUTH)

    assert (result.received, result.accepted, result.duplicates, result.quarantined) == (4, 4, 0, 0)
    rows = owner.execute(
        "SELECT id, tenant_id, provider, event_type, provider_event_id, merchant_account_id, raw_payload,"
        " raw_body, signature_header, quarantine_reason, processed FROM pos.pos_webhook_events_raw"
        " WHERE id = ANY(%s) ORDER BY provider_event_id",
        (list(result.raw_event_ids),),
    ).fetchall()
    assert [(r["tenant_id"], r["provider_event_id"], r["event_type"]) for r in rows] == sorted(
        [
            (tenant_a, f"{merchant_a}:P:PAYA1:CREATE:{TS}", "payment.create"),
            (tenant_a, f"{merchant_a}:P:PAYA2:CREATE:{TS + 1}", "payment.create"),
            (tenant_b, f"{merchant_b}:P:PAYB1:CREATE:{TS}", "payment.create"),
            (tenant_b, f"{merchant_b}:O:ORDB1:CREATE:{TS + 1}", "order.create"),
        ],
        key=lambda row: row[1],
    )
    assert all(r["raw_body"] == body.decode() for r in rows)  # the exact bytes received
    assert all(r["provider"] == "clover" and r["signature_header"] is None for r in rows)  # no secret stored
    assert all(r["quarantine_reason"] is None and not r["processed"] for r in rows)
    assert rows[0]["raw_payload"] == {
        "merchantId": rows[0]["merchant_account_id"],
        "appId": "APPTEST000001",
        "objectId": rows[0]["provider_event_id"].split(":", 1)[1].rsplit(":", 2)[0],
        "type": "CREATE",
        "ts": int(rows[0]["provider_event_id"].rsplit(":", 1)[1]),
    }
    sent = messages(sqs, queue_url)
    assert sorted((m.raw_event_id, m.tenant_id) for m in sent) == sorted(
        (r["id"], r["tenant_id"]) for r in rows
    )
    assert {m.provider for m in sent} == {Provider.CLOVER}


def test_a_redelivery_adds_no_rows_and_no_messages(
    ingest: CloverWebhookIngest, owner: psycopg.Connection[Any], sqs: Any, queue_url: str
) -> None:
    _, merchant = clover_merchant(owner)
    body = delivery({merchant: ["P:" + unique("PAY"), "P:" + unique("PAY")]})
    ingest.receive(body, AUTH)
    messages(sqs, queue_url)
    before = raw_count(owner)

    again = ingest.receive(body, AUTH)

    assert (again.received, again.accepted, again.duplicates) == (2, 0, 2)
    assert raw_count(owner) == before
    assert messages(sqs, queue_url) == []


def test_an_unknown_merchant_is_quarantined_next_to_a_known_one(
    ingest: CloverWebhookIngest, owner: psycopg.Connection[Any], sqs: Any, queue_url: str
) -> None:
    tenant, merchant = clover_merchant(owner)
    stranger = unique("MUNKNOWN")

    result = ingest.receive(
        delivery({stranger: ["P:" + unique("PAY")], merchant: ["P:" + unique("PAY")]}), AUTH
    )

    assert (result.accepted, result.quarantined) == (1, 1)
    quarantined = owner.execute(
        "SELECT tenant_id, quarantine_reason FROM pos.pos_webhook_events_raw WHERE merchant_account_id = %s",
        (stranger,),
    ).fetchall()
    assert quarantined == [{"tenant_id": None, "quarantine_reason": "unknown_merchant"}]
    assert [m.tenant_id for m in messages(sqs, queue_url)] == [tenant]


def test_a_square_merchant_id_does_not_route_clover_updates(
    ingest: CloverWebhookIngest, owner: psycopg.Connection[Any]
) -> None:
    tenant_id = seed.create_tenant(owner, unique("Square tenant "))
    merchant = unique("ML")
    seed.connect_square_merchant(owner, tenant_id, merchant, seed.dev_cipher())

    assert ingest.receive(delivery({merchant: ["P:" + unique("PAY")]}), AUTH).quarantined == 1


def test_an_enqueue_failure_leaves_the_rows_for_the_sweeper(
    clover_store: CloverEventStore, owner: psycopg.Connection[Any], sqs: Any
) -> None:
    _, merchant = clover_merchant(owner)
    broken = IngestQueue("https://sqs.us-east-1.amazonaws.com/123456789012/missing-queue", sqs)
    ingest = CloverWebhookIngest(lambda: CloverWebhookConfig(auth_code=AUTH), clover_store, broken)

    result = ingest.receive(delivery({merchant: ["P:" + unique("PAY")]}), AUTH)

    assert (result.accepted, result.enqueue_failures) == (1, 1)
    assert (
        count(
            owner,
            "SELECT count(*) AS n FROM pos.pos_webhook_events_raw WHERE id = ANY(%s) AND NOT processed",
            (list(result.raw_event_ids),),
        )
        == 1
    )
