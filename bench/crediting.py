"""Phase 2, crediting: the real ``reward_crediting`` Lambda handler fed SQS batches of 10,
against the same rows written with plain SQL (BareCrediting), as the same role.
"""

import contextlib
import importlib
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

import boto3
from psycopg.rows import tuple_row

from bench.bare_crediting import BareCrediting
from bench.database import scalar
from bench.environment import SERVICE_NAME
from bench.fixture import Fixture, Shop, StoredDelivery, deliveries, make_sales, store_raw_events
from bench.measure import WARMUP_EVENTS, BenchError, Row, Side, race, throughput_rows
from local.database import Database
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider

# pos_gateway.loyalty is deliberately not imported here: its child logger must be created by
# the handler import, after POWERTOOLS_SERVICE_NAME is set, as in a real cold start.

CREDITING_ROLE = "pos_gateway_crediting"
SQS_BATCH_SIZE = 10


@dataclass(frozen=True, slots=True)
class FakeLambdaContext:
    function_name: str = "reward_crediting"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:reward_crediting"
    aws_request_id: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def bench_crediting(fixture: Fixture, events: int, rng: random.Random, sink: IO[str]) -> list[Row]:
    secrets = boto3.client("secretsmanager")
    secret = secrets.create_secret(
        Name="bench/crediting-db", SecretString=json.dumps(fixture.db.secret(CREDITING_ROLE))
    )
    os.environ["DB_SECRET_ARN"] = str(secret["ARN"])

    sales = make_sales(fixture, WARMUP_EVENTS + events, rng)
    project_events = store_raw_events(fixture.db, deliveries(fixture.project, sales))
    baseline_events = store_raw_events(fixture.db, deliveries(fixture.baseline, sales))
    rule_id = _active_rule(fixture.db, fixture.baseline)

    # Powertools logs and EMF metrics go to stdout, as in Lambda; here they go to a sink.
    with contextlib.redirect_stdout(sink), fixture.db.connect_as(CREDITING_ROLE, tuple_row) as conn:
        handler = importlib.import_module("functions.reward_crediting.app").lambda_handler
        require_service_loggers()
        context = FakeLambdaContext()

        def through_handler(event: dict[str, Any]) -> None:
            response = handler(event, context)
            if response.get("batchItemFailures"):
                raise BenchError(f"crediting batch failed: {response}")

        bare = BareCrediting(conn, fixture.baseline, rule_id)
        project_s, baseline_s = race(
            Side(through_handler, sqs_batches(project_events), events_per_item=SQS_BATCH_SIZE),
            Side(bare.credit, baseline_events),
        )

    _check_crediting(fixture, len(sales))
    return throughput_rows("crediting", "SQS handler (txn/s)", events, project_s, baseline_s)


def require_service_loggers() -> None:
    """pos_gateway.loyalty's child logger logs under the handler's service, as in Lambda.

    It takes POWERTOOLS_SERVICE_NAME when first imported: an import before configure_environment
    would leave it logging nowhere, and the project side would skip its per-event log line.
    """
    service = sys.modules["pos_gateway.loyalty.crediting"].logger.service
    if service != SERVICE_NAME:
        raise BenchError(f"pos_gateway.loyalty logs as {service!r}: imported before the environment was set")


def sqs_batches(events: Sequence[StoredDelivery]) -> list[dict[str, Any]]:
    """SQS event source payloads of up to 10 records, carrying CreditRequest messages."""
    batches = []
    for start in range(0, len(events), SQS_BATCH_SIZE):
        records = [
            sqs_record(item.raw_event_id, item.delivery.shop.tenant_id)
            for item in events[start : start + SQS_BATCH_SIZE]
        ]
        batches.append({"Records": records})
    return batches


def sqs_record(raw_event_id: uuid.UUID, tenant_id: uuid.UUID) -> dict[str, Any]:
    """One SQS event source record carrying the CreditRequest of a stored raw event."""
    body = CreditRequest(raw_event_id=raw_event_id, tenant_id=tenant_id, provider=Provider.SQUARE).to_json()
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now_ms,
            "SenderId": "AIDABENCH",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench-ingest",
        "awsRegion": "us-east-1",
    }


def _active_rule(db: Database, shop: Shop) -> uuid.UUID:
    with db.owner(tuple_row) as conn:
        query = "SELECT id FROM loyalty.reward_rules WHERE tenant_id = %s AND is_active"
        return uuid.UUID(str(scalar(conn, query, (shop.tenant_id,))))


def _check_crediting(fixture: Fixture, expected: int) -> None:
    """Both sides processed every event and credited exactly the same points."""
    query = """
        SELECT (SELECT count(*) FROM pos.pos_webhook_events_raw WHERE tenant_id = %(t)s AND processed),
               (SELECT count(*) FROM loyalty.reward_events WHERE tenant_id = %(t)s),
               (SELECT coalesce(sum(points), 0) FROM loyalty.wallet_ledger WHERE tenant_id = %(t)s),
               (SELECT coalesce(sum(points_balance), 0) FROM loyalty.wallets WHERE tenant_id = %(t)s)
    """
    with fixture.db.owner(tuple_row) as conn:
        project = conn.execute(query, {"t": fixture.project.tenant_id}).fetchone()
        baseline = conn.execute(query, {"t": fixture.baseline.tenant_id}).fetchone()
    if project is None or project != baseline or project[0] != expected or project[1] != expected:
        raise BenchError(
            f"crediting: project wrote {project}, baseline {baseline}, expected {expected} events"
        )
