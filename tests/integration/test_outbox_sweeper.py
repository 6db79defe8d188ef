"""The outbox sweeper against real Postgres: what it claims, counts, parks, and may touch."""

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, LiteralString
from uuid import UUID

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg import errors

from local.database import Database
from pos_gateway.db import DatabaseError, tenant_transaction
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider
from pos_gateway.recovery.failures import CreditingFailureLog
from pos_gateway.recovery.repository import RawEventFailures, StuckEventClaims
from pos_gateway.recovery.sweeper import CreditRequestQueue, OutboxSweeper, SweepPolicy
from tests.helpers import (
    FakeLambdaContext,
    Merchant,
    clear_parameter_caches,
    connected_merchant,
    fresh_import,
    one,
    payment_event,
    sqs_event,
    sqs_record,
)

SWEEPER = "pos_gateway_sweeper"
CREDITING = "pos_gateway_crediting"
GRACE = 120
OLD = 600  # seconds: well past the grace period
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/ingest"
APP_SCHEMAS = ["app", "identity", "pos", "loyalty", "audit"]
CLAIM_FUNCTION = "pos.claim_stuck_raw_events(integer, integer, integer)"

Connection = psycopg.Connection[Any]


# ---------------------------------------------------------------- fixtures and helpers


class FakeSqs:
    """send_message_batch as SQS answers it; entries whose body names a failing raw event fail."""

    def __init__(self, failing: set[UUID] | None = None) -> None:
        self.sent: list[CreditRequest] = []
        self.failing = failing or set()

    def send_message_batch(self, **request: Any) -> dict[str, Any]:
        assert request["QueueUrl"] == QUEUE_URL
        assert len(request["Entries"]) <= 10
        successful, failed = [], []
        for entry in request["Entries"]:
            message = CreditRequest.model_validate_json(entry["MessageBody"])
            if message.raw_event_id in self.failing:
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"})
            else:
                self.sent.append(message)
                successful.append({"Id": entry["Id"], "MessageId": str(uuid.uuid4())})
        return {"Successful": successful, "Failed": failed}

    def sent_ids(self) -> list[UUID]:
        return [message.raw_event_id for message in self.sent]


@pytest.fixture(scope="module")
def claims(database: Database) -> Iterator[StuckEventClaims]:
    connections = database.connections(SWEEPER)
    yield StuckEventClaims(connections)
    connections.close()


@pytest.fixture(scope="module")
def failures(database: Database) -> Iterator[RawEventFailures]:
    """Crediting failures noted as the crediting role notes them."""
    connections = database.connections(CREDITING)
    yield RawEventFailures(connections)
    connections.close()


@pytest.fixture
def merchant(owner: Connection) -> Merchant:
    return connected_merchant(owner)


@pytest.fixture(autouse=True)
def _nothing_stuck(owner: Connection) -> None:
    """Each test starts with no stuck event: the sweeper claims across every tenant."""
    owner.execute(
        "UPDATE pos.pos_webhook_events_raw SET processed = true, processed_at = now(),"
        " processing_outcome = 'test_cleanup' WHERE processed = false"
    )


def sweeper(
    claims: StuckEventClaims,
    sqs: FakeSqs,
    *,
    max_sweeps: int = 5,
    batch_size: int = 100,
    max_batches: int = 10,
) -> OutboxSweeper:
    policy = SweepPolicy(
        grace_seconds=GRACE, max_sweeps=max_sweeps, batch_size=batch_size, max_batches=max_batches
    )
    return OutboxSweeper(claims, CreditRequestQueue(QUEUE_URL, sqs), policy)


def raw_event(
    owner: Connection, tenant_id: UUID | None, *, age: int = OLD, event: dict[str, Any] | None = None
) -> UUID:
    """A raw event stored `age` seconds ago and never enqueued (quarantined without a tenant)."""
    event = event or payment_event(merchant_id="MLSWEEP")
    text = json.dumps(event)
    row = owner.execute(
        "INSERT INTO pos.pos_webhook_events_raw (tenant_id, provider, event_type, provider_event_id,"
        " merchant_account_id, raw_payload, raw_body, signature_header, quarantine_reason, created_at)"
        " VALUES (%s, 'square', %s, %s, %s, %s::jsonb, %s, 'sig', %s, now() - make_interval(secs => %s))"
        " RETURNING id",
        (
            tenant_id,
            event["type"],
            event["event_id"],
            event["merchant_id"],
            text,
            text,
            None if tenant_id else "unknown_merchant",
            age,
        ),
    ).fetchone()
    return UUID(str(one(row)["id"]))


def marker(owner: Connection, raw_event_id: UUID) -> dict[str, Any]:
    return dict(
        one(
            owner.execute(
                "SELECT processed, sweep_count, last_swept_at IS NOT NULL AS swept,"
                " parked_at IS NOT NULL AS parked, last_error FROM pos.pos_webhook_events_raw WHERE id = %s",
                (raw_event_id,),
            ).fetchone()
        )
    )


def time_passes(owner: Connection, *raw_event_ids: UUID) -> None:
    """Move the last sweep of these events back past the grace period."""
    owner.execute(
        "UPDATE pos.pos_webhook_events_raw SET last_swept_at = now() - make_interval(secs => %s)"
        " WHERE id = ANY(%s) AND last_swept_at IS NOT NULL",
        (OLD, list(raw_event_ids)),
    )


def claim_sql(conn: Connection, limit: int, grace: int = GRACE, max_sweeps: int = 5) -> set[UUID]:
    rows = conn.execute(
        "SELECT id FROM pos.claim_stuck_raw_events(%s, %s, %s)", (grace, max_sweeps, limit)
    ).fetchall()
    return {row["id"] for row in rows}


# ---------------------------------------------------------------- what is swept, and when


def test_a_stuck_event_is_requeued_after_the_grace_period_and_not_before(owner, claims, merchant):
    # Given an event stored 10 minutes ago and one stored a minute ago, neither enqueued
    stuck = raw_event(owner, merchant.tenant_id, age=OLD)
    recent = raw_event(owner, merchant.tenant_id, age=60)
    sqs = FakeSqs()

    # When the sweeper runs with a 2 minute grace period
    report = sweeper(claims, sqs).sweep()

    # Then only the stuck one goes back on the queue, as the message ingest would have sent
    assert sqs.sent == [
        CreditRequest(raw_event_id=stuck, tenant_id=merchant.tenant_id, provider=Provider.SQUARE)
    ]
    assert (report.requeued, report.parked, report.enqueue_failures) == (1, 0, 0)
    assert marker(owner, recent) == {
        "processed": False,
        "sweep_count": 0,
        "swept": False,
        "parked": False,
        "last_error": None,
    }
    # and the recent one is swept once its own grace period is over
    assert claims.claim(grace_seconds=30, max_sweeps=5, limit=10)[0].raw_event_id == recent


def test_processed_and_quarantined_events_are_never_swept(owner, claims, merchant):
    processed = raw_event(owner, merchant.tenant_id)
    owner.execute(
        "UPDATE pos.pos_webhook_events_raw SET processed = true, processed_at = now(),"
        " processing_outcome = 'credited' WHERE id = %s",
        (processed,),
    )
    quarantined = raw_event(owner, None)
    sqs = FakeSqs()

    report = sweeper(claims, sqs).sweep()

    assert sqs.sent == []
    assert report.requeued == 0
    assert marker(owner, processed)["sweep_count"] == 0
    assert marker(owner, quarantined)["sweep_count"] == 0


def test_each_sweep_counts_and_an_event_waits_a_grace_period_between_sweeps(owner, claims, merchant):
    stuck = raw_event(owner, merchant.tenant_id)
    sqs = FakeSqs()
    sweep = sweeper(claims, sqs)

    sweep.sweep()
    sweep.sweep()  # within the grace period of the first sweep: nothing
    assert marker(owner, stuck) | {"last_error": None} == {
        "processed": False,
        "sweep_count": 1,
        "swept": True,
        "parked": False,
        "last_error": None,
    }
    time_passes(owner, stuck)
    sweep.sweep()

    assert marker(owner, stuck)["sweep_count"] == 2
    assert sqs.sent_ids() == [stuck, stuck]


def test_an_event_swept_too_often_is_parked_with_its_last_error_and_never_swept_again(
    owner, claims, failures, merchant
):
    # Given an event crediting fails on, and one that never got an error
    failing = raw_event(owner, merchant.tenant_id)
    silent = raw_event(owner, merchant.tenant_id)
    assert failures.record(failing, merchant.tenant_id, "ValidationError: 1 validation error for SquareEvent")
    sqs = FakeSqs()
    sweep = sweeper(claims, sqs, max_sweeps=2)

    # When the sweeper runs again and again, the grace period passing each time
    reports = []
    for _ in range(4):
        reports.append(sweep.sweep())
        time_passes(owner, failing, silent)

    # Then each is enqueued twice, parked on the third sweep, and left alone afterwards
    assert sorted(sqs.sent_ids()) == sorted([failing, silent] * 2)
    assert [(r.requeued, r.parked) for r in reports] == [(2, 0), (2, 0), (0, 2), (0, 0)]
    assert marker(owner, failing) == {
        "processed": False,
        "sweep_count": 2,
        "swept": True,
        "parked": True,
        "last_error": "ValidationError: 1 validation error for SquareEvent",
    }
    assert marker(owner, silent)["parked"]
    assert marker(owner, silent)["last_error"] == "not processed after 2 sweeps"


def test_parked_events_are_listed_through_their_partial_index_and_leave_the_sweepers(owner, claims, merchant):
    parked = raw_event(owner, merchant.tenant_id)
    claims.claim(grace_seconds=GRACE, max_sweeps=0, limit=10)  # max 0: parked on the first sweep
    resolved = raw_event(owner, merchant.tenant_id)
    claims.claim(grace_seconds=GRACE, max_sweeps=0, limit=10)
    owner.execute(
        "UPDATE pos.pos_webhook_events_raw SET processed = true, processed_at = now(),"
        " processing_outcome = 'credited' WHERE id = %s",
        (resolved,),
    )
    operators_query: LiteralString = (
        "SELECT id FROM pos.pos_webhook_events_raw WHERE processed = false AND parked_at IS NOT NULL"
    )

    with owner.transaction():
        owner.execute("SET LOCAL enable_seqscan = off")
        plan = " ".join(row["QUERY PLAN"] for row in owner.execute("EXPLAIN " + operators_query).fetchall())
        listed = {row["id"] for row in owner.execute(operators_query).fetchall()}

    assert "pos_webhook_events_raw_parked_idx" in plan
    assert parked in listed
    assert resolved not in listed  # processed after all: nothing left for operators
    indexes = {
        row["name"]: row["predicate"]
        for row in owner.execute(
            "SELECT indexrelid::regclass::text AS name, pg_get_expr(indpred, indrelid) AS predicate"
            " FROM pg_index WHERE indrelid = 'pos.pos_webhook_events_raw'::regclass AND indpred IS NOT NULL"
        ).fetchall()
    }
    assert "parked_at IS NULL" in indexes["pos.pos_webhook_events_raw_unprocessed_idx"]
    assert "parked_at IS NOT NULL" in indexes["pos.pos_webhook_events_raw_parked_idx"]
    assert claims.claim(grace_seconds=0, max_sweeps=5, limit=100) == []


def test_a_sweep_works_in_bounded_batches(owner, claims, merchant):
    stuck = [raw_event(owner, merchant.tenant_id, age=OLD + n) for n in range(5)]
    sqs = FakeSqs()

    first = sweeper(claims, sqs, batch_size=2, max_batches=2).sweep()
    second = sweeper(claims, sqs, batch_size=2, max_batches=2).sweep()

    assert (first.requeued, first.batches) == (4, 2)
    assert (second.requeued, second.batches) == (1, 1)
    assert sorted(sqs.sent_ids()) == sorted(stuck)


def test_a_failed_send_is_counted_and_the_event_comes_back_after_the_grace_period(owner, claims, merchant):
    refused = raw_event(owner, merchant.tenant_id)
    taken = raw_event(owner, merchant.tenant_id)
    sqs = FakeSqs(failing={refused})

    report = sweeper(claims, sqs).sweep()

    assert (report.requeued, report.enqueue_failures) == (1, 1)
    assert sqs.sent_ids() == [taken]
    assert marker(owner, refused)["sweep_count"] == 1  # the sweep was used
    time_passes(owner, refused)
    sqs.failing.clear()
    sweeper(claims, sqs).sweep()
    assert sqs.sent_ids() == [taken, refused]


def test_concurrent_sweepers_skip_the_rows_another_one_holds(database, owner, merchant):
    stuck = {raw_event(owner, merchant.tenant_id, age=OLD + n) for n in range(6)}
    with (
        database.connect_as(SWEEPER) as first,
        database.connect_as(SWEEPER) as second,
        first.transaction(),
    ):
        second.execute("SET lock_timeout = '5s'")  # waiting on the held rows fails instead of hanging
        # Given a sweeper that has claimed three rows and not committed yet
        held = claim_sql(first, limit=3)
        # When another sweeper claims meanwhile
        other = claim_sql(second, limit=10)
    # Then it got the other three, not one of the held rows
    assert len(held) == 3
    assert held.isdisjoint(other)
    assert held | other == stuck


def test_racing_sweepers_never_claim_the_same_row(database, owner, merchant):
    stuck = {raw_event(owner, merchant.tenant_id, age=OLD + n) for n in range(30)}
    barrier = threading.Barrier(2)

    def sweep_all() -> list[UUID]:
        claimed: list[UUID] = []
        with database.connect_as(SWEEPER) as conn:
            barrier.wait(timeout=30)
            while batch := claim_sql(conn, limit=2):
                claimed.extend(batch)
        return claimed

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: sweep_all(), range(2)))

    everything = results[0] + results[1]
    assert len(everything) == len(set(everything))
    assert set(everything) == stuck
    assert {marker(owner, raw_id)["sweep_count"] for raw_id in stuck} == {1}


@pytest.mark.parametrize(
    ("grace", "max_sweeps", "limit"), [(-1, 5, 10), (120, -1, 10), (120, 5, 0), (120, 5, 1001)]
)
def test_the_claim_refuses_nonsense_parameters(database, grace, max_sweeps, limit):
    with database.connect_as(SWEEPER) as conn, pytest.raises(errors.InvalidParameterValue):
        claim_sql(conn, limit=limit, grace=grace, max_sweeps=max_sweeps)


# ---------------------------------------------------------------- least privilege


def test_the_sweeper_role_reads_and_writes_no_table(database, owner, merchant):
    raw_event(owner, merchant.tenant_id)
    granted = owner.execute(
        """
        SELECT c.oid::regclass::text AS tbl
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
           AND (has_table_privilege(%(role)s, c.oid,
                                    'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                OR has_any_column_privilege(%(role)s, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
        """,
        {"schemas": APP_SCHEMAS, "role": SWEEPER},
    ).fetchall()
    assert granted == []
    with database.connect_as(SWEEPER) as conn:
        for statement in (
            "SELECT id FROM pos.pos_webhook_events_raw",
            "UPDATE pos.pos_webhook_events_raw SET sweep_count = 0",
            "SELECT pos.resolve_merchant_tenant('square', 'MLSWEEP')",
        ):
            with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                conn.execute(statement)


def test_only_the_sweeper_may_run_the_claim_function_and_it_runs_as_the_migrator(owner):
    function = one(
        owner.execute(
            "SELECT prosecdef, pg_get_userbyid(proowner) AS owner, proconfig FROM pg_proc"
            " WHERE oid = %s::regprocedure",
            (CLAIM_FUNCTION,),
        ).fetchone()
    )
    assert function == {
        "prosecdef": True,
        "owner": "pos_gateway_migrator",
        "proconfig": ["search_path=pg_catalog, pg_temp"],
    }
    allowed = {
        role: one(
            owner.execute(
                "SELECT has_function_privilege(%s, %s, 'EXECUTE') AS allowed", (role, CLAIM_FUNCTION)
            ).fetchone()
        )["allowed"]
        for role in (
            "pos_gateway_sweeper",
            "pos_gateway_ingest",
            "pos_gateway_crediting",
            "pos_gateway_admin",
        )
    }
    assert allowed == {
        "pos_gateway_sweeper": True,
        "pos_gateway_ingest": False,
        "pos_gateway_crediting": False,
        "pos_gateway_admin": False,
    }


def test_the_sweeper_role_is_unprivileged_and_owns_nothing(owner):
    role = one(
        owner.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin, oid FROM pg_roles"
            " WHERE rolname = %s",
            (SWEEPER,),
        ).fetchone()
    )
    assert {k: v for k, v in role.items() if k != "oid"} == {
        "rolsuper": False,
        "rolbypassrls": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
        "rolcanlogin": True,
    }
    owned = owner.execute(
        "SELECT 1 FROM pg_class WHERE relowner = %(r)s UNION ALL SELECT 1 FROM pg_proc WHERE proowner = %(r)s"
        " UNION ALL SELECT 1 FROM pg_namespace WHERE nspowner = %(r)s",
        {"r": role["oid"]},
    ).fetchall()
    member_of = owner.execute(
        "SELECT r.rolname FROM pg_roles r WHERE pg_has_role(%s, r.oid, 'MEMBER') AND r.rolname <> %s",
        (SWEEPER, SWEEPER),
    ).fetchall()
    assert owned == []
    assert member_of == []


def test_the_crediting_role_may_write_the_last_error_and_no_other_sweep_column(
    database, owner, failures, merchant
):
    stuck = raw_event(owner, merchant.tenant_id)
    with database.connect_as(CREDITING) as conn:
        for statement in (
            "UPDATE pos.pos_webhook_events_raw SET parked_at = now() WHERE id = %s",
            "UPDATE pos.pos_webhook_events_raw SET sweep_count = 0 WHERE id = %s",
        ):
            with pytest.raises(errors.InsufficientPrivilege), tenant_transaction(conn, merchant.tenant_id):
                conn.execute(statement, (stuck,))
    other_tenant = connected_merchant(owner).tenant_id

    assert not failures.record(stuck, other_tenant, "hidden by row-level security")
    assert failures.record(stuck, merchant.tenant_id, "NotFound: boom")
    assert marker(owner, stuck)["last_error"] == "NotFound: boom"


# ---------------------------------------------------------------- the guard trigger


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("sweep_count", 3),
        ("last_swept_at", "2026-01-01T00:00:00Z"),
        ("parked_at", "2026-01-01T00:00:00Z"),
        ("last_error", "x"),
    ],
)
def test_the_guard_lets_the_sweep_marker_change(owner, merchant, column, value):
    stuck = raw_event(owner, merchant.tenant_id)
    owner.execute(
        psycopg.sql.SQL("UPDATE pos.pos_webhook_events_raw SET {} = %s WHERE id = %s").format(
            psycopg.sql.Identifier(column)
        ),
        (value, stuck),
    )
    changed = one(
        owner.execute(
            psycopg.sql.SQL(
                "SELECT {} IS NOT NULL AS set FROM pos.pos_webhook_events_raw WHERE id = %s"
            ).format(psycopg.sql.Identifier(column)),
            (stuck,),
        ).fetchone()
    )
    assert changed == {"set": True}


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("raw_payload", '{"forged": true}'),
        ("raw_body", "{}"),
        ("provider", "clover"),
        ("provider_event_id", "another"),
        ("quarantine_reason", "unknown_merchant"),
        ("id", str(uuid.uuid4())),
    ],
)
def test_the_guard_still_refuses_everything_else(owner, merchant, column, value):
    stuck = raw_event(owner, merchant.tenant_id)
    with pytest.raises(errors.RestrictViolation, match="only the processing marker may change"):
        owner.execute(
            psycopg.sql.SQL(
                "UPDATE pos.pos_webhook_events_raw SET {} = %s, sweep_count = 1 WHERE id = %s"
            ).format(psycopg.sql.Identifier(column)),
            (value, stuck),
        )
    assert marker(owner, stuck)["sweep_count"] == 0


def test_a_processed_event_still_never_goes_back(owner, merchant):
    stuck = raw_event(owner, merchant.tenant_id)
    owner.execute(
        "UPDATE pos.pos_webhook_events_raw SET processed = true, processed_at = now(),"
        " processing_outcome = 'x' WHERE id = %s",
        (stuck,),
    )
    with pytest.raises(errors.RestrictViolation, match="cannot be marked unprocessed"):
        owner.execute(
            "UPDATE pos.pos_webhook_events_raw SET processed = false, processed_at = NULL, sweep_count = 9"
            " WHERE id = %s",
            (stuck,),
        )


# ---------------------------------------------------------------- crediting failures noted by the handler


@pytest.fixture(scope="module")
def crediting_handler(database: Database) -> Iterator[Any]:
    with mock_aws(), pytest.MonkeyPatch.context() as env:
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name="db/crediting", SecretString=json.dumps(database.secret(CREDITING)))[
            "ARN"
        ]
        clear_parameter_caches()
        env.setenv("POWERTOOLS_SERVICE_NAME", "reward_crediting")
        env.setenv("DB_SECRET_ARN", arn)
        yield fresh_import("functions.reward_crediting.app")
        clear_parameter_caches()


def test_the_crediting_handler_notes_why_an_event_failed(owner, merchant, crediting_handler):
    # Given a stored payment event crediting cannot read (its amount is missing)
    event = payment_event(merchant_id=merchant.merchant_id)
    del event["data"]["object"]["payment"]["amount_money"]
    broken = raw_event(owner, merchant.tenant_id, event=event)
    fine = raw_event(owner, merchant.tenant_id, event=payment_event(merchant_id=merchant.merchant_id))
    records = [
        sqs_record(
            CreditRequest(
                raw_event_id=raw_id, tenant_id=merchant.tenant_id, provider=Provider.SQUARE
            ).to_json()
        )
        for raw_id in (broken, fine)
    ]

    # When the batch is credited
    response = crediting_handler.lambda_handler(
        sqs_event(records), FakeLambdaContext(function_name="reward_crediting")
    )

    # Then only the broken record is reported, and its raw event says why, in one short line
    assert response["batchItemFailures"] == [{"itemIdentifier": records[0]["messageId"]}]
    error = marker(owner, broken)["last_error"]
    assert error.startswith("ValidationError: ")
    assert "\n" not in error
    assert marker(owner, fine) | {"sweep_count": 0} == {
        "processed": True,
        "sweep_count": 0,
        "swept": False,
        "parked": False,
        "last_error": None,
    }


class _BrokenFailures(RawEventFailures):
    def __init__(self) -> None:
        pass

    def record(self, raw_event_id: UUID, tenant_id: UUID, error: str) -> bool:
        raise DatabaseError("database gone")


def test_noting_a_failure_never_raises():
    request = CreditRequest(raw_event_id=uuid.uuid4(), tenant_id=uuid.uuid4(), provider=Provider.SQUARE)

    assert CreditingFailureLog(_BrokenFailures()).record(request, ValueError("original")) is False
