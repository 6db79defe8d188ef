"""POS Gateway benchmarks: every figure beside a bare baseline measured in the same run.

1. Ingest: ``SquareWebhookIngest.receive`` with a real RawEventStore and an in-process SQS
   queue (moto), against the bare INSERT of the same raw row + the same ``send_message``.
2. Crediting: the real ``reward_crediting`` Lambda handler fed SQS batches of 10, against
   the same rows written with plain SQL, one transaction per event, as the same role.
3. Cold import of each handler module against ``import boto3``, each in a fresh interpreter.

Uses DATABASE_URL when set (a fresh database, dropped afterwards), else an embedded
PostgreSQL (pgserver) in a temporary directory. AWS is always moto, in-process.

    PYTHONPATH=layers/common:. .venv/bin/python -m bench.run [--quick] [--events N] ...
"""

import argparse
import contextlib
import importlib
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import boto3
import psycopg
from moto import mock_aws
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from local import seed
from local.database import (
    Database,
    create_database,
    drop_database,
    embedded_cluster,
    external_cluster,
    migrate,
)
from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.ingest.repository import RawEventStore
from pos_gateway.ingest.service import IngestOutcome, SquareWebhookConfig, SquareWebhookIngest
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider
from pos_gateway.providers.square import compute_signature

# pos_gateway.loyalty is deliberately not imported here: its child logger must be created by
# the handler import, after POWERTOOLS_SERVICE_NAME is set, as in a real cold start.

ROOT = Path(__file__).resolve().parent.parent
INGEST_ROLE = "pos_gateway_ingest"
CREDITING_ROLE = "pos_gateway_crediting"
SERVICE_NAME = "pos_gateway_bench"
SIGNATURE_KEY = "bench-signature-key"
NOTIFICATION_URL = "https://bench.example/webhooks/square"
SQS_BATCH_SIZE = 10
# Both sides run in alternating stretches of this many events (a multiple of SQS_BATCH_SIZE).
# moto's send_message counts the queue's messages (O(n)), so the queue is purged, untimed,
# before each stretch: the fake queue's cost stays flat and equal for both sides.
STRETCH_EVENTS = 50
# Per side and phase, untimed: first connection, first queries, lazy imports (a multiple of 10).
WARMUP_EVENTS = 20
HANDLER_MODULES = ("functions.webhook_ingest.app", "functions.reward_crediting.app")

# Fake credentials (moto accepts any) and the Powertools settings the handlers read at import.
FAKE_AWS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": "PosGatewayBench",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

Conn = psycopg.Connection[Any]


class BenchError(RuntimeError):
    """The system under test did something other than the happy path being measured."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True, slots=True)
class Options:
    events: int
    credit_events: int
    import_runs: int
    members: int
    random_seed: int


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="POS Gateway benchmarks, each beside a same-run baseline."
    )
    parser.add_argument("--events", type=int, help="ingest events per side (default 2000)")
    parser.add_argument("--credit-events", type=int, help="crediting events per side (default 1000)")
    parser.add_argument("--import-runs", type=int, help="fresh interpreters per import (default 5)")
    parser.add_argument("--members", type=int, default=50, help="loyalty members paying (default 50)")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed of the workload")
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    args = parser.parse_args(argv)
    small = args.quick
    options = Options(
        events=_pick(args.events, 100 if small else 2000),
        credit_events=_pick(args.credit_events, 50 if small else 1000),
        import_runs=_pick(args.import_runs, 1 if small else 5),
        members=args.members,
        random_seed=args.seed,
    )
    if min(options.events, options.credit_events, options.import_runs, options.members) < 1:
        parser.error("counts must be positive")
    return options


def _pick(explicit: int | None, default: int) -> int:
    return default if explicit is None else explicit


# --------------------------------------------------------------------------- database


@contextlib.contextmanager
def bench_database() -> Iterator[Database]:
    """A fresh, migrated database: in DATABASE_URL's server, else in an embedded one."""
    name = f"pos_gateway_bench_{os.getpid()}"
    url = os.environ.get("DATABASE_URL")
    if url:
        cluster = external_cluster(url)
        create_database(cluster, name, recreate=True)
        try:
            migrate(cluster, name)
            yield Database(cluster, name)
        finally:
            drop_database(cluster, name)
        return
    from pgserver.postgres_server import get_server  # only the embedded path needs pgserver

    with tempfile.TemporaryDirectory(prefix="posbench-") as tmp:
        data_dir = Path(tmp) / "pg"
        # Registered first with cleanup "delete", so embedded_cluster reuses this handle.
        server = get_server(data_dir, cleanup_mode="delete")
        try:
            cluster = embedded_cluster(data_dir)
            create_database(cluster, name, recreate=True)
            migrate(cluster, name)
            yield Database(cluster, name)
        finally:
            server.cleanup()


# --------------------------------------------------------------------------- workload


@dataclass(frozen=True, slots=True)
class Member:
    user_id: uuid.UUID
    email: str


@dataclass(frozen=True, slots=True)
class Shop:
    tenant_id: uuid.UUID
    merchant_id: str


@dataclass(frozen=True, slots=True)
class Fixture:
    db: Database
    project: Shop  # written through the project's code
    baseline: Shop  # written with bare SQL; a separate tenant so each side starts without wallets
    members: tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class Sale:
    member: Member
    amount: int  # USD cents


@dataclass(frozen=True, slots=True)
class Delivery:
    """One signed Square payment webhook, exactly as Square would POST it."""

    event_id: str
    payment_id: str
    shop: Shop
    sale: Sale
    body: bytes
    signature: str


def seed_fixture(db: Database, members: int) -> Fixture:
    cipher = seed.dev_cipher()
    with db.owner(tuple_row) as conn:
        shops = []
        for label in ("project", "baseline"):
            tenant_id = seed.create_tenant(conn, f"Bench {label}")
            merchant_id = f"BENCH-{label.upper()}"
            seed.connect_square_merchant(conn, tenant_id, merchant_id, cipher)
            seed.create_rule(conn, tenant_id)
            shops.append(Shop(tenant_id, merchant_id))
        people = []
        for index in range(members):
            email = f"member{index:03d}@bench.example"
            people.append(Member(seed.create_user(conn, email=email, full_name=f"Member {index}"), email))
    return Fixture(db, shops[0], shops[1], tuple(people))


def make_sales(fixture: Fixture, count: int, rng: random.Random) -> list[Sale]:
    return [Sale(rng.choice(fixture.members), rng.randrange(100, 25_000)) for _ in range(count)]


def deliver(shop: Shop, sale: Sale, now: datetime) -> Delivery:
    event_id = str(uuid.uuid4())
    payment_id = f"bench-pay-{uuid.uuid4().hex}"
    created_at = now.isoformat().replace("+00:00", "Z")
    payment = {
        "id": payment_id,
        "status": "COMPLETED",
        "amount_money": {"amount": sale.amount, "currency": "USD"},
        "total_money": {"amount": sale.amount, "currency": "USD"},
        "created_at": created_at,
        "updated_at": created_at,
        "buyer_email_address": sale.member.email,
        "location_id": "BENCH-LOCATION",
        "source_type": "CARD",
    }
    envelope = {
        "merchant_id": shop.merchant_id,
        "type": "payment.updated",
        "event_id": event_id,
        "created_at": created_at,
        "data": {"type": "payment", "id": payment_id, "object": {"payment": payment}},
    }
    body = json.dumps(envelope, separators=(",", ":")).encode("utf-8")
    signature = compute_signature(SIGNATURE_KEY, NOTIFICATION_URL, body)
    return Delivery(event_id, payment_id, shop, sale, body, signature)


def deliveries(shop: Shop, sales: Sequence[Sale]) -> list[Delivery]:
    now = datetime.now(UTC)
    return [deliver(shop, sale, now) for sale in sales]


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True, slots=True)
class Row:
    metric: str
    project: float
    baseline: float | None = None
    precision: int = 0


@dataclass(frozen=True, slots=True)
class Side[T]:
    """One side of a comparison: ``work`` applied to each item, the first ``warmup`` untimed."""

    work: Callable[[T], object]
    items: Sequence[T]
    warmup: int
    chunk: int  # items per timed stretch

    def stretches(self) -> list[Sequence[T]]:
        measured = self.items[self.warmup :]
        return [measured[start : start + self.chunk] for start in range(0, len(measured), self.chunk)]


def race[P, B](
    project: Side[P], baseline: Side[B], between: Callable[[], object] | None = None
) -> tuple[float, float]:
    """Timed seconds of each side, run in alternating stretches (ABBA) after both warmups.

    Alternating keeps drift (table growth, disk cache, a noisy neighbour) off the ratio.
    ``between`` runs untimed before every stretch.
    """
    _stretch(project.work, project.items[: project.warmup])()
    _stretch(baseline.work, baseline.items[: baseline.warmup])()
    elapsed = [0.0, 0.0]
    pairs = zip(project.stretches(), baseline.stretches(), strict=True)
    for index, (project_items, baseline_items) in enumerate(pairs):
        runs = [(0, _stretch(project.work, project_items)), (1, _stretch(baseline.work, baseline_items))]
        for side, run in runs if index % 2 == 0 else runs[::-1]:
            if between is not None:
                between()
            began = time.perf_counter()
            run()
            elapsed[side] += time.perf_counter() - began
    return elapsed[0], elapsed[1]


def _stretch[T](work: Callable[[T], object], items: Sequence[T]) -> Callable[[], None]:
    def run() -> None:
        for item in items:
            work(item)

    return run


def throughput_rows(phase: str, what: str, count: int, project_s: float, baseline_s: float) -> list[Row]:
    return [
        Row(f"{phase} throughput, {what}", count / project_s, count / baseline_s),
        Row(f"{phase} time per event (ms)", 1000 * project_s / count, 1000 * baseline_s / count, precision=2),
    ]


def peak_rss_row(phase: str) -> Row:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return Row(f"bench process peak RSS after {phase} (MiB)", kib / 1024, precision=1)


# --------------------------------------------------------------------------- 1. ingest

BARE_INSERT_RAW = """
INSERT INTO pos.pos_webhook_events_raw (
    tenant_id, provider, event_type, provider_event_id, merchant_account_id,
    raw_payload, raw_body, signature_header)
VALUES (%(tenant_id)s, 'square', 'payment.updated', %(event_id)s, %(merchant_id)s,
        %(body)s::text::jsonb, %(body)s::text, %(signature)s)
RETURNING id
"""
SET_TENANT = "SELECT set_config('app.tenant_id', %s, true)"


def bench_ingest(fixture: Fixture, options: Options, rng: random.Random) -> tuple[list[Row], str]:
    sqs = boto3.client("sqs")
    queue_url = str(sqs.create_queue(QueueName="bench-ingest")["QueueUrl"])

    def purge() -> None:
        sqs.purge_queue(QueueUrl=queue_url)

    sales = make_sales(fixture, WARMUP_EVENTS + options.events, rng)
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
                raw_id = _returned(conn.execute(BARE_INSERT_RAW, _raw_params(delivery)).fetchone())
            message = {"rawEventId": str(raw_id), "tenantId": tenant, "provider": "square"}
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))

        project_s, baseline_s = race(
            Side(through_project, deliveries(fixture.project, sales), WARMUP_EVENTS, STRETCH_EVENTS),
            Side(bare, deliveries(fixture.baseline, sales), WARMUP_EVENTS, STRETCH_EVENTS),
            between=purge,
        )
    connections.close()
    _check_ingest(fixture, 2 * len(sales))
    note = f"moto send_message alone: {send_message_ms(sqs, queue_url):.2f} ms, on both ingest sides alike."
    return throughput_rows("ingest", "receive() (events/s)", options.events, project_s, baseline_s), note


def send_message_ms(sqs: Any, queue_url: str) -> float:
    """What one moto send_message costs, with the queue kept as short as during the race."""
    body = json.dumps({"rawEventId": str(uuid.uuid4()), "tenantId": str(uuid.uuid4()), "provider": "square"})
    elapsed, rounds = 0.0, 10
    for _ in range(rounds):
        sqs.purge_queue(QueueUrl=queue_url)
        began = time.perf_counter()
        for _ in range(STRETCH_EVENTS):
            sqs.send_message(QueueUrl=queue_url, MessageBody=body)
        elapsed += time.perf_counter() - began
    return 1000 * elapsed / (rounds * STRETCH_EVENTS)


def _raw_params(delivery: Delivery) -> dict[str, Any]:
    return {
        "tenant_id": delivery.shop.tenant_id,
        "event_id": delivery.event_id,
        "merchant_id": delivery.shop.merchant_id,
        "body": delivery.body.decode("utf-8"),
        "signature": delivery.signature,
    }


def _check_ingest(fixture: Fixture, expected: int) -> None:
    with fixture.db.owner(tuple_row) as conn:
        stored = _returned(conn.execute("SELECT count(*) FROM pos.pos_webhook_events_raw").fetchone())
    if stored != expected:
        raise BenchError(f"ingest: expected {expected} raw events, found {stored}")


# --------------------------------------------------------------------------- 2. crediting

OWNER_INSERT_RAW = """
INSERT INTO pos.pos_webhook_events_raw (
    id, tenant_id, provider, event_type, provider_event_id, merchant_account_id,
    raw_payload, raw_body, signature_header)
VALUES (%(id)s, %(tenant_id)s, 'square', 'payment.updated', %(event_id)s, %(merchant_id)s,
        %(body)s::text::jsonb, %(body)s::text, %(signature)s)
"""
BARE_INSERT_TRANSACTION = """
INSERT INTO pos.transactions (
    tenant_id, provider, provider_transaction_id, amount_minor_units, currency,
    customer_ref, transaction_at, raw_event_id, user_id)
VALUES (%(tenant_id)s, 'square', %(payment_id)s, %(amount)s, 'USD',
        %(customer_ref)s, now(), %(raw_event_id)s, %(user_id)s)
RETURNING id
"""
BARE_INSERT_WALLET = "INSERT INTO loyalty.wallets (tenant_id, user_id) VALUES (%s, %s) RETURNING id"
BARE_INSERT_REWARD = """
INSERT INTO loyalty.reward_events (
    tenant_id, wallet_id, transaction_id, rule_version_id, kind, outcome, points_earned)
VALUES (%(tenant_id)s, %(wallet_id)s, %(transaction_id)s, %(rule_id)s, 'earn', 'credited', %(points)s)
RETURNING id
"""
BARE_INSERT_CREDIT = """
INSERT INTO loyalty.wallet_ledger (
    tenant_id, wallet_id, entry_type, points, description, source_transaction_id, reward_event_id)
VALUES (%(tenant_id)s, %(wallet_id)s, 'credit', %(points)s, %(description)s, %(transaction_id)s,
        %(reward_event_id)s)
"""
BARE_INSERT_IDEMPOTENCY_KEY = """
INSERT INTO pos.idempotency_keys (key, tenant_id, handler, result_snapshot)
VALUES (%(key)s, %(tenant_id)s, 'square_webhook', %(snapshot)s)
"""
BARE_MARK_PROCESSED = """
UPDATE pos.pos_webhook_events_raw
   SET processed = true, processed_at = now(), processing_outcome = 'credited'
 WHERE id = %s
"""


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    raw_event_id: uuid.UUID
    delivery: Delivery


@dataclass(frozen=True, slots=True)
class FakeLambdaContext:
    function_name: str = "reward_crediting"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:reward_crediting"
    aws_request_id: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def bench_crediting(fixture: Fixture, options: Options, rng: random.Random, sink: IO[str]) -> list[Row]:
    secrets = boto3.client("secretsmanager")
    secret = secrets.create_secret(
        Name="bench/crediting-db", SecretString=json.dumps(fixture.db.secret(CREDITING_ROLE))
    )
    os.environ["DB_SECRET_ARN"] = str(secret["ARN"])

    sales = make_sales(fixture, WARMUP_EVENTS + options.credit_events, rng)
    project_events = store_raw_events(fixture.db, deliveries(fixture.project, sales))
    baseline_events = store_raw_events(fixture.db, deliveries(fixture.baseline, sales))
    rule_id = _active_rule(fixture.db, fixture.baseline)

    # Powertools logs and EMF metrics go to stdout, as in Lambda; here they go to a sink.
    with contextlib.redirect_stdout(sink), fixture.db.connect_as(CREDITING_ROLE, tuple_row) as conn:
        handler = importlib.import_module("functions.reward_crediting.app").lambda_handler
        context = FakeLambdaContext()

        def through_handler(event: dict[str, Any]) -> None:
            response = handler(event, context)
            if response.get("batchItemFailures"):
                raise BenchError(f"crediting batch failed: {response}")

        bare = BareCrediting(conn, fixture.baseline, rule_id)
        per_batch = SQS_BATCH_SIZE
        project_s, baseline_s = race(
            Side(
                through_handler,
                sqs_batches(project_events),
                WARMUP_EVENTS // per_batch,
                STRETCH_EVENTS // per_batch,
            ),
            Side(bare.credit, baseline_events, WARMUP_EVENTS, STRETCH_EVENTS),
        )

    _check_crediting(fixture, len(sales))
    return throughput_rows("crediting", "SQS handler (txn/s)", options.credit_events, project_s, baseline_s)


def store_raw_events(db: Database, batch: Sequence[Delivery]) -> list[StoredDelivery]:
    """Raw events as ingest leaves them (inserted in bulk, untimed)."""
    stored = [StoredDelivery(uuid.uuid4(), delivery) for delivery in batch]
    with db.owner(tuple_row) as conn, conn.cursor() as cursor:
        cursor.executemany(
            OWNER_INSERT_RAW, [{"id": item.raw_event_id, **_raw_params(item.delivery)} for item in stored]
        )
    return stored


def sqs_batches(events: Sequence[StoredDelivery]) -> list[dict[str, Any]]:
    """SQS event source payloads of up to 10 records, carrying CreditRequest messages."""
    batches = []
    for start in range(0, len(events), SQS_BATCH_SIZE):
        records = [_sqs_record(item) for item in events[start : start + SQS_BATCH_SIZE]]
        batches.append({"Records": records})
    return batches


def _sqs_record(item: StoredDelivery) -> dict[str, Any]:
    body = CreditRequest(
        raw_event_id=item.raw_event_id, tenant_id=item.delivery.shop.tenant_id, provider=Provider.SQUARE
    ).to_json()
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


class BareCrediting:
    """The rows crediting writes, with plain SQL and everything already known client-side."""

    def __init__(self, conn: Conn, shop: Shop, rule_id: uuid.UUID) -> None:
        self._conn = conn
        self._tenant = shop.tenant_id
        self._rule_id = rule_id
        self._wallets: dict[uuid.UUID, uuid.UUID] = {}

    def credit(self, item: StoredDelivery) -> None:
        delivery, conn = item.delivery, self._conn
        points = default_rule_points(delivery.sale.amount)
        params: dict[str, Any] = {
            "tenant_id": self._tenant,
            "payment_id": delivery.payment_id,
            "amount": delivery.sale.amount,
            "customer_ref": Jsonb({"email": delivery.sale.member.email}),
            "raw_event_id": item.raw_event_id,
            "user_id": delivery.sale.member.user_id,
            "rule_id": self._rule_id,
            "points": points,
            "description": f"square payment {delivery.payment_id}",
        }
        with conn.transaction():
            conn.execute(SET_TENANT, (str(self._tenant),))
            params["transaction_id"] = _returned(conn.execute(BARE_INSERT_TRANSACTION, params).fetchone())
            params["wallet_id"] = self._wallet(delivery.sale.member.user_id)
            params["reward_event_id"] = _returned(conn.execute(BARE_INSERT_REWARD, params).fetchone())
            if points > 0:
                conn.execute(BARE_INSERT_CREDIT, params)
            params["key"] = f"square:{delivery.shop.merchant_id}:{delivery.payment_id}"
            params["snapshot"] = Jsonb(
                {"transactionId": str(params["transaction_id"]), "pointsEarned": points}
            )
            conn.execute(BARE_INSERT_IDEMPOTENCY_KEY, params)
            conn.execute(BARE_MARK_PROCESSED, (item.raw_event_id,))

    def _wallet(self, user_id: uuid.UUID) -> uuid.UUID:
        wallet_id = self._wallets.get(user_id)
        if wallet_id is None:
            row = self._conn.execute(BARE_INSERT_WALLET, (self._tenant, user_id)).fetchone()
            wallet_id = self._wallets[user_id] = _returned(row)
        return wallet_id


def default_rule_points(amount_cents: int) -> int:
    """seed.DEFAULT_RULE's points: conversion rate per dollar, floored, capped."""
    rule = seed.DEFAULT_RULE
    points = math.floor(amount_cents * rule["conversionRate"] / 100)
    return int(min(points, rule["maxPointsPerTransaction"]))


def _active_rule(db: Database, shop: Shop) -> uuid.UUID:
    with db.owner(tuple_row) as conn:
        query = "SELECT id FROM loyalty.reward_rules WHERE tenant_id = %s AND is_active"
        return uuid.UUID(str(_returned(conn.execute(query, (shop.tenant_id,)).fetchone())))


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


# --------------------------------------------------------------------------- 3. cold imports

IMPORT_PROBE = """
import importlib, json, sys, time
start = time.perf_counter()
importlib.import_module(sys.argv[1])
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: after fork+exec, ru_maxrss still counts the parent's pages.
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({
    "seconds": seconds,
    "max_rss_kib": peak,
    "moto": any(name.split(".")[0] == "moto" for name in sys.modules),
}))
"""


@dataclass(frozen=True, slots=True)
class ImportSample:
    seconds: float
    max_rss_kib: int


def probe_environment() -> dict[str, str]:
    """What a deployed handler gets, with every AWS call pointed at a closed port.

    An import that talked to AWS (or, through a secret, to the database) would fail.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(FAKE_AWS)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)]),
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_EC2_METADATA_DISABLED": "true",
            "DB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-db",
            "SQUARE_WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-square",
            "INGEST_QUEUE_URL": "http://127.0.0.1:9/123456789012/bench-ingest",
        }
    )
    return env


def import_once(module: str, env: dict[str, str]) -> ImportSample:
    completed = subprocess.run(  # noqa: S603 - fixed interpreter and arguments
        [sys.executable, "-c", IMPORT_PROBE, module],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(f"import {module} failed:\n{completed.stderr.strip()}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    if report["moto"]:
        raise BenchError(f"import {module} pulled in moto")
    return ImportSample(float(report["seconds"]), int(report["max_rss_kib"]))


def bench_imports(runs: int) -> list[Row]:
    env = probe_environment()
    modules = ("boto3", *HANDLER_MODULES)
    samples: dict[str, list[ImportSample]] = {module: [] for module in modules}
    for _ in range(runs):  # interleaved, so a noisy moment hits every module alike
        for module in modules:
            samples[module].append(import_once(module, env))

    def median_ms(module: str) -> float:
        return 1000 * statistics.median(sample.seconds for sample in samples[module])

    def median_mib(module: str) -> float:
        return statistics.median(sample.max_rss_kib for sample in samples[module]) / 1024

    rows = []
    for module in HANDLER_MODULES:
        rows.append(Row(f"cold import {module} (ms)", median_ms(module), median_ms("boto3"), 1))
    for module in HANDLER_MODULES:
        rows.append(Row(f"RSS after import {module} (MiB)", median_mib(module), median_mib("boto3"), 1))
    return rows


# --------------------------------------------------------------------------- report


def render(rows: Sequence[Row]) -> str:
    def number(value: float | None, precision: int) -> str:
        return "-" if value is None else f"{value:,.{precision}f}"

    table = [("metric", "project", "baseline", "ratio")]
    for row in rows:
        ratio = "-" if not row.baseline else f"{row.project / row.baseline:.2f}x"
        table.append(
            (row.metric, number(row.project, row.precision), number(row.baseline, row.precision), ratio)
        )
    widths = [max(len(line[column]) for line in table) for column in range(4)]
    lines = []
    for index, line in enumerate(table):
        cells = [
            line[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)),
        ]
        lines.append(" | ".join(cells))
        if index == 0:
            lines.append("-+-".join("-" * width for width in widths))
    return "\n".join(lines)


NOTES = """\
ratio = project / baseline. Baselines: ingest = bare INSERT of the same raw row (same role,
one transaction, tenant set) + the same send_message, no signature check or parsing;
crediting = the same rows (transaction, wallet on first use, reward event, ledger credit,
idempotency key, processed marker) in plain SQL, one transaction per event, same role;
import = `import boto3` in a fresh interpreter (median of {runs}; handlers imported with no
AWS or database reachable, and without moto)."""


# --------------------------------------------------------------------------- main


def configure_environment() -> None:
    """Offline AWS (moto) and the Powertools settings the handlers read at import."""
    os.environ.update(FAKE_AWS)
    # The bench purges its fake queue often; real SQS allows one purge a minute.
    os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    configure_environment()
    rng = random.Random(options.random_seed)
    started = time.perf_counter()
    memory: list[Row] = []
    with contextlib.ExitStack() as stack:
        _progress("starting the database and migrating")
        db = stack.enter_context(bench_database())
        fixture = seed_fixture(db, options.members)
        memory.append(peak_rss_row("setup"))
        stack.enter_context(mock_aws())
        sink = stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
        _progress(f"ingest: {options.events} events per side")
        ingest, moto_note = bench_ingest(fixture, options, rng)
        memory.append(peak_rss_row("ingest"))
        _progress(f"crediting: {options.credit_events} events per side, batches of {SQS_BATCH_SIZE}")
        crediting = bench_crediting(fixture, options, rng, sink)
        memory.append(peak_rss_row("crediting"))
    _progress(f"cold imports: {options.import_runs} fresh interpreters each")
    imports = bench_imports(options.import_runs)
    rows = [*ingest, *crediting, *imports, *memory]
    print(render(rows))
    print()
    print(NOTES.format(runs=options.import_runs))
    print(moto_note)
    print(f"\ntotal bench time {time.perf_counter() - started:.1f} s")
    return 0


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _returned(row: Sequence[Any] | None) -> Any:
    """The first column of a row that must exist."""
    if row is None:
        raise BenchError("expected a row, got none")
    return row[0]


if __name__ == "__main__":
    sys.exit(main())
