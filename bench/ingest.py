"""Phase 1, ingest: ``SquareWebhookIngest.receive`` against a bare INSERT + the same send_message.

The project side uses a real RawEventStore and an in-process SQS queue (moto); the baseline
inserts the same raw row, as the same role in one transaction, and sends the same message.
"""

import json
import random
import time
import uuid
from datetime import timedelta
from typing import Any

import boto3
from psycopg.rows import tuple_row

from bench.database import SET_TENANT, scalar
from bench.fixture import (
    NOTIFICATION_URL,
    SIGNATURE_KEY,
    Delivery,
    Fixture,
    deliveries,
    make_sales,
    raw_params,
)
from bench.measure import STRETCH_EVENTS, WARMUP_EVENTS, BenchError, Row, Side, race, throughput_rows
from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.ingest.repository import RawEventStore
from pos_gateway.ingest.service import IngestOutcome, SquareWebhookConfig, SquareWebhookIngest

INGEST_ROLE = "pos_gateway_ingest"
BARE_INSERT_RAW = """
INSERT INTO pos.pos_webhook_events_raw (
    tenant_id, provider, event_type, provider_event_id, merchant_account_id,
    raw_payload, raw_body, signature_header)
VALUES (%(tenant_id)s, 'square', 'payment.updated', %(event_id)s, %(merchant_id)s,
        %(body)s::text::jsonb, %(body)s::text, %(signature)s)
RETURNING id
"""


def bench_ingest(fixture: Fixture, events: int, rng: random.Random) -> tuple[list[Row], str]:
    """The ingest rows, and a note on what moto's send_message costs both sides."""
    sqs = boto3.client("sqs")
    queue_url = str(sqs.create_queue(QueueName="bench-ingest")["QueueUrl"])

    def purge() -> None:
        sqs.purge_queue(QueueUrl=queue_url)

    sales = make_sales(fixture, WARMUP_EVENTS + events, rng)
    connections = fixture.db.connections(INGEST_ROLE)
    config = SquareWebhookConfig(SIGNATURE_KEY, NOTIFICATION_URL, max_event_age=timedelta(days=3))
    service = SquareWebhookIngest(lambda: config, RawEventStore(connections), IngestQueue(queue_url, sqs))

    def through_project(delivery: Delivery) -> None:
        result = service.receive(delivery.body, delivery.signature)
        if result.outcome is not IngestOutcome.ACCEPTED or not result.enqueued:
            raise BenchError(f"ingest of {delivery.event_id}: {result}")

    with fixture.db.connect_as(INGEST_ROLE, tuple_row) as conn:
        tenant = str(fixture.baseline.tenant_id)

        def bare(delivery: Delivery) -> None:
            with conn.transaction():
                conn.execute(SET_TENANT, (tenant,))
                raw_id = scalar(conn, BARE_INSERT_RAW, raw_params(delivery))
            sqs.send_message(QueueUrl=queue_url, MessageBody=_message(str(raw_id), tenant))

        project_s, baseline_s = race(
            Side(through_project, deliveries(fixture.project, sales)),
            Side(bare, deliveries(fixture.baseline, sales)),
            between=purge,
        )
    connections.close()
    _check_ingest(fixture, 2 * len(sales))
    note = f"moto send_message alone: {send_message_ms(sqs, queue_url):.2f} ms, on both ingest sides alike."
    return throughput_rows("ingest", "receive() (events/s)", events, project_s, baseline_s), note


def send_message_ms(sqs: Any, queue_url: str) -> float:
    """What one moto send_message costs, with the queue kept as short as during the race."""
    body = _message(str(uuid.uuid4()), str(uuid.uuid4()))
    elapsed, rounds = 0.0, 10
    for _ in range(rounds):
        sqs.purge_queue(QueueUrl=queue_url)
        began = time.perf_counter()
        for _ in range(STRETCH_EVENTS):
            sqs.send_message(QueueUrl=queue_url, MessageBody=body)
        elapsed += time.perf_counter() - began
    return 1000 * elapsed / (rounds * STRETCH_EVENTS)


def _message(raw_event_id: str, tenant_id: str) -> str:
    """The baseline's queue message, shaped as the project's CreditRequest."""
    return json.dumps({"rawEventId": raw_event_id, "tenantId": tenant_id, "provider": "square"})


def _check_ingest(fixture: Fixture, expected: int) -> None:
    with fixture.db.owner(tuple_row) as conn:
        stored = scalar(conn, "SELECT count(*) FROM pos.pos_webhook_events_raw")
    if stored != expected:
        raise BenchError(f"ingest: expected {expected} raw events, found {stored}")
