"""The Square poller against real Postgres, the fake Square over HTTP and moto SQS."""

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg import errors

from local import seed
from local.database import Database
from local.fake_square import FakeConnection, FakeSquare, connect_fake_merchant, encryption_secret_value
from pos_gateway.backfill.poller import PollPolicy, PollReport, SquarePoller
from pos_gateway.backfill.repository import ConnectionGone, PolledEvent, PollerStore
from pos_gateway.crypto import CredentialCipher
from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.ingest.repository import RawEventStore
from pos_gateway.loyalty.crediting import CreditingService
from pos_gateway.loyalty.models import ProcessingOutcome
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider
from pos_gateway.providers.square.api import SquareApi
from tests.helpers import (
    FakeLambdaContext,
    clear_parameter_caches,
    credit_request,
    fresh_import,
    one,
    payment_event,
    store_event,
    unique,
    unique_email,
)

POLLER = "pos_gateway_poller"
EVENTS = Path(__file__).resolve().parents[2] / "events" / "square_poller"
OVERLAP = timedelta(minutes=10)

Connection = psycopg.Connection[Any]


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSquare]:
    with FakeSquare() as server:
        yield server


@pytest.fixture(scope="module")
def cipher() -> CredentialCipher:
    return seed.dev_cipher()


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def queue_url(aws: None) -> str:
    url: str = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName=unique("ingest-"))[
        "QueueUrl"
    ]
    return url


@pytest.fixture(scope="module")
def poller_store(database: Database) -> Iterator[PollerStore]:
    connections = database.connections(POLLER)
    yield PollerStore(connections)
    connections.close()


@pytest.fixture(autouse=True)
def _only_this_tests_connections(owner: Connection) -> None:
    """The poller takes every active Square connection: each test starts with none."""
    owner.execute("UPDATE pos.pos_connections SET status = 'disconnected' WHERE status = 'active'")


@pytest.fixture
def make_poller(
    poller_store: PollerStore, fake: FakeSquare, cipher: CredentialCipher, queue_url: str
) -> Callable[..., SquarePoller]:
    def build(
        page_size: int = 100,
        max_connections: int = 50,
        reserve_milliseconds: int = 0,
        read_timeout: float = 5,
    ) -> SquarePoller:
        return SquarePoller(
            poller_store,
            SquareApi(fake.base_url, read_timeout=read_timeout),
            lambda: cipher,
            IngestQueue(queue_url, boto3.client("sqs", region_name="us-east-1")),
            PollPolicy(
                overlap=OVERLAP,
                first_lookback=timedelta(days=1),
                max_connections=max_connections,
                max_pages_per_location=10,
                page_size=page_size,
                reserve_milliseconds=reserve_milliseconds,
            ),
        )

    return build


def merchant(
    owner: Connection, cipher: CredentialCipher, fake: FakeSquare, locations: tuple[str, ...] = ("L1",)
) -> FakeConnection:
    tenant_id = seed.create_tenant(owner, unique("Tenant "))
    seed.create_rule(owner, tenant_id)
    return connect_fake_merchant(owner, cipher, fake, tenant_id, unique("ML"), locations=locations)


def minutes_ago(n: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=n)


def raw_events(owner: Connection, merchant_id: str) -> list[dict[str, Any]]:
    return owner.execute(
        "SELECT id, tenant_id, event_type, provider_event_id, signature_header, raw_payload, processed"
        " FROM pos.pos_webhook_events_raw WHERE merchant_account_id = %s"
        " ORDER BY raw_payload #>> '{data,object,payment,created_at}', created_at",
        (merchant_id,),
    ).fetchall()


def polled_payment_ids(owner: Connection, merchant_id: str) -> list[str]:
    return [row["raw_payload"]["data"]["object"]["payment"]["id"] for row in raw_events(owner, merchant_id)]


def connection_row(owner: Connection, connection: FakeConnection) -> dict[str, Any]:
    return dict(
        one(
            owner.execute(
                "SELECT status, last_error, last_synced_at, square_payments_watermark_at AS watermark"
                " FROM pos.pos_connections WHERE id = %s",
                (connection.connection_id,),
            ).fetchone()
        )
    )


def queued(queue_url: str) -> list[CreditRequest]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    received: list[CreditRequest] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return received
        for message in messages:
            received.append(CreditRequest.model_validate_json(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def payment_calls(fake: FakeSquare, connection: FakeConnection) -> list[dict[str, str]]:
    return [r.query for r in fake.requests if r.path == "/v2/payments" and r.token == connection.access_token]


# ---------------------------------------------------------------- storing and enqueueing


def test_a_poll_stores_payments_as_raw_events_and_enqueues_them(owner, cipher, fake, make_poller, queue_url):
    # Given a merchant with three payments in the last hour
    shop = merchant(owner, cipher, fake)
    payments = [
        fake.add_payment(shop.merchant_id, "L1", created_at=minutes_ago(50 - 10 * n)) for n in range(3)
    ]

    # When the poller runs
    report = make_poller().poll()

    # Then each payment is a routed raw event shaped like a payment.updated webhook
    assert (report.connections, report.succeeded, report.stored) == (1, 1, 3)
    rows = raw_events(owner, shop.merchant_id)
    assert polled_payment_ids(owner, shop.merchant_id) == [p["id"] for p in payments]
    assert {(r["tenant_id"], r["event_type"], r["signature_header"]) for r in rows} == {
        (shop.tenant_id, "payment.updated", None)
    }
    assert all(r["provider_event_id"].startswith("poll:") for r in rows)
    assert rows[0]["raw_payload"]["data"]["object"]["payment"] == payments[0]
    # and each is enqueued for crediting, in its tenant
    assert sorted(str(m.raw_event_id) for m in queued(queue_url)) == sorted(str(r["id"]) for r in rows)
    # and the connection records its progress
    state = connection_row(owner, shop)
    assert (state["status"], state["last_error"]) == ("active", None)
    assert state["last_synced_at"] is not None
    assert state["watermark"] == at(payments[-1]["created_at"])
    # and Square was called as documented
    assert {r.square_version for r in fake.requests if r.token == shop.access_token} == {"2024-03-20"}
    assert payment_calls(fake, shop)[0]["sort_order"] == "ASC"


def test_polling_the_same_window_again_stores_nothing_new(owner, cipher, fake, make_poller, queue_url):
    shop = merchant(owner, cipher, fake)
    for n in range(3):
        fake.add_payment(shop.merchant_id, "L1", created_at=minutes_ago(30 - n))
    poller = make_poller()
    poller.poll()
    first = queued(queue_url)

    again = poller.poll()

    assert (again.payments, again.stored) == (3, 0)  # listed again (the overlap), stored once
    assert len(raw_events(owner, shop.merchant_id)) == 3
    assert len(first) == 3
    assert queued(queue_url) == []
    # the second listing began at the watermark minus the overlap
    watermark = connection_row(owner, shop)["watermark"]
    assert at(payment_calls(fake, shop)[-1]["begin_time"]) == watermark - OVERLAP


def test_a_payment_completed_later_is_polled_again_as_a_new_state(
    owner, cipher, fake, make_poller, crediting
):
    email = unique_email("later")
    seed.create_user(owner, email=email)
    shop = merchant(owner, cipher, fake)
    created = minutes_ago(20)
    approved = fake.add_payment(shop.merchant_id, "L1", created_at=created, status="APPROVED", email=email)
    make_poller().poll()
    fake.add_payment(
        shop.merchant_id,
        "L1",
        payment_id=approved["id"],
        created_at=created,
        updated_at=minutes_ago(5),
        email=email,
        amount=4200,
    )

    make_poller().poll()

    rows = raw_events(owner, shop.merchant_id)
    assert len(rows) == 2
    outcomes = [crediting.process(_request(row)).outcome for row in rows]
    assert outcomes == [ProcessingOutcome.NOT_COMPLETED, ProcessingOutcome.CREDITED]


def _request(row: dict[str, Any]) -> CreditRequest:
    return CreditRequest(raw_event_id=row["id"], tenant_id=row["tenant_id"], provider=Provider.SQUARE)


@pytest.mark.parametrize("first", ["webhook", "poll"])
def test_a_payment_both_webhooked_and_polled_is_credited_once(
    owner, cipher, fake, make_poller, store: RawEventStore, crediting: CreditingService, first
):
    # Given a member who paid once, known to Square
    email = unique_email("both")
    seed.create_user(owner, email=email)
    shop = merchant(owner, cipher, fake)
    created = minutes_ago(15)
    payment = fake.add_payment(shop.merchant_id, "L1", created_at=created, amount=3000, email=email)
    webhook = payment_event(
        merchant_id=shop.merchant_id,
        payment_id=payment["id"],
        event_type="payment.updated",
        amount=3000,
        email=email,
        created_at=created + timedelta(seconds=2),
    )

    # When the payment arrives by webhook and by polling, in either order, and both are credited
    def by_webhook() -> ProcessingOutcome:
        return crediting.process(credit_request(store_event(store, webhook))).outcome

    def by_poll() -> ProcessingOutcome:
        make_poller().poll()
        polled = [
            r for r in raw_events(owner, shop.merchant_id) if r["provider_event_id"].startswith("poll:")
        ]
        return crediting.process(_request(one(polled[0] if polled else None))).outcome

    outcomes = [by_webhook(), by_poll()] if first == "webhook" else [by_poll(), by_webhook()]

    # Then two raw events exist, but one transaction and one credit of 30 points
    assert outcomes == [ProcessingOutcome.CREDITED, ProcessingOutcome.DUPLICATE_TRANSACTION]
    assert len(raw_events(owner, shop.merchant_id)) == 2
    credits = owner.execute(
        "SELECT count(*) AS n, sum(l.points) AS points FROM pos.transactions t"
        " JOIN loyalty.wallet_ledger l ON l.source_transaction_id = t.id"
        " WHERE t.tenant_id = %s AND t.provider_transaction_id = %s",
        (shop.tenant_id, payment["id"]),
    ).fetchone()
    assert dict(one(credits)) == {"n": 1, "points": 30}


# ---------------------------------------------------------------- paging, locations, watermarks


def test_pages_are_followed_by_cursor(owner, cipher, fake, make_poller):
    shop = merchant(owner, cipher, fake)
    payments = [fake.add_payment(shop.merchant_id, "L1", created_at=minutes_ago(60 - n)) for n in range(5)]

    report = make_poller(page_size=2).poll()

    assert (report.pages, report.stored) == (3, 5)
    calls = payment_calls(fake, shop)
    assert [c.get("cursor") is not None for c in calls] == [False, True, True]
    assert {c["limit"] for c in calls} == {"2"}
    assert polled_payment_ids(owner, shop.merchant_id) == [p["id"] for p in payments]


def test_each_location_is_listed_from_its_own_watermark(owner, cipher, fake, make_poller):
    shop = merchant(owner, cipher, fake, locations=("LEAST", "LWEST"))
    east = fake.add_payment(shop.merchant_id, "LEAST", created_at=minutes_ago(40))
    west = fake.add_payment(shop.merchant_id, "LWEST", created_at=minutes_ago(10))

    make_poller().poll()

    assert sorted(polled_payment_ids(owner, shop.merchant_id)) == sorted([east["id"], west["id"]])
    assert {c["location_id"] for c in payment_calls(fake, shop)} == {"LEAST", "LWEST"}
    watermarks = {
        row["location_id"]: row["payments_watermark_at"]
        for row in owner.execute(
            "SELECT location_id, payments_watermark_at FROM pos.square_location_watermarks"
            " WHERE connection_id = %s",
            (shop.connection_id,),
        ).fetchall()
    }
    assert watermarks == {"LEAST": at(east["created_at"]), "LWEST": at(west["created_at"])}
    # the connection's watermark is the least of them: everything before it is stored everywhere
    assert connection_row(owner, shop)["watermark"] == at(east["created_at"])

    fake.clear_requests()
    make_poller().poll()
    begins = {c["location_id"]: at(c["begin_time"]) for c in payment_calls(fake, shop)}
    assert begins == {"LEAST": watermarks["LEAST"] - OVERLAP, "LWEST": watermarks["LWEST"] - OVERLAP}


def test_a_failure_between_pages_leaves_the_watermark_at_the_last_stored_page(
    owner, cipher, fake, make_poller
):
    # Given five payments listed two a page, and Square failing on the second page
    shop = merchant(owner, cipher, fake)
    payments = [fake.add_payment(shop.merchant_id, "L1", created_at=minutes_ago(60 - n)) for n in range(5)]
    fake.fail(500, path="/v2/payments", token=shop.access_token, after=1)

    # When the poller runs
    report = make_poller(page_size=2).poll()

    # Then the first page is stored and the watermark stands at its last payment
    assert (report.pages, report.stored, report.failed) == (1, 2, 1)
    assert polled_payment_ids(owner, shop.merchant_id) == [p["id"] for p in payments[:2]]
    state = connection_row(owner, shop)
    assert state["watermark"] == at(payments[1]["created_at"])
    assert state["status"] == "active"
    assert "500" in state["last_error"]
    assert len(payment_calls(fake, shop)) == 2  # nothing asked past the failed page

    # When the next run succeeds, it resumes from there and stores the rest once
    again = make_poller(page_size=2).poll()

    assert again.stored == 3
    assert polled_payment_ids(owner, shop.merchant_id) == [p["id"] for p in payments]
    state = connection_row(owner, shop)
    assert (state["watermark"], state["last_error"]) == (at(payments[-1]["created_at"]), None)


def test_a_square_that_hangs_is_given_up_on_and_polled_again_next_run(owner, cipher, fake, make_poller):
    # Given two payments, and Square not answering the first payments call for longer than the
    # poller's read timeout
    shop = merchant(owner, cipher, fake)
    payments = [fake.add_payment(shop.merchant_id, "L1", created_at=minutes_ago(30 - n)) for n in range(2)]
    fake.fail(503, path="/v2/payments", token=shop.access_token, hang=1.5)

    # When the poller runs with a 0.3 s read timeout
    report = make_poller(read_timeout=0.3).poll()

    # Then it gave up on that call: nothing stored, the watermark unset, the error recorded
    assert (report.stored, report.failed) == (0, 1)
    assert polled_payment_ids(owner, shop.merchant_id) == []
    state = connection_row(owner, shop)
    assert state["watermark"] is None
    assert state["status"] == "active"
    assert state["last_error"]
    assert [r.hung for r in fake.requests if r.token == shop.access_token and r.path == "/v2/payments"] == [
        True
    ]

    # When the next run gets answers, both payments are stored once
    again = make_poller(read_timeout=0.3).poll()

    assert (again.stored, again.failed) == (2, 0)
    assert polled_payment_ids(owner, shop.merchant_id) == [p["id"] for p in payments]


# ---------------------------------------------------------------- one connection failing


def test_a_rejected_token_marks_its_connection_and_the_others_still_poll(owner, cipher, fake, make_poller):
    # Given three merchants: one whose token Square no longer accepts, one rate limited, one fine
    revoked, limited, fine = (merchant(owner, cipher, fake) for _ in range(3))
    for shop in (revoked, limited, fine):
        fake.add_payment(shop.merchant_id, "L1", created_at=minutes_ago(5))
    fake.revoke(revoked.access_token)
    fake.fail(429, token=limited.access_token)

    # When the poller runs
    report = make_poller().poll()

    # Then the revoked one is token_expired, the limited one keeps its watermark, the other is polled
    assert (report.connections, report.succeeded, report.failed, report.token_expired) == (3, 1, 2, 1)
    expired = connection_row(owner, revoked)
    assert expired["status"] == "token_expired"
    assert "401" in expired["last_error"]
    assert "UNAUTHORIZED" in expired["last_error"]
    throttled = connection_row(owner, limited)
    assert (throttled["status"], throttled["watermark"]) == ("active", None)
    assert "429" in throttled["last_error"]
    assert len(raw_events(owner, fine.merchant_id)) == 1
    assert raw_events(owner, revoked.merchant_id) == raw_events(owner, limited.merchant_id) == []

    # And the next run leaves the expired connection alone and catches up on the limited one
    fake.clear_requests()
    make_poller().poll()
    assert revoked.access_token not in {r.token for r in fake.requests}
    assert len(raw_events(owner, limited.merchant_id)) == 1
    assert connection_row(owner, limited)["last_error"] is None


def test_an_access_token_that_does_not_open_takes_the_connection_out(owner, cipher, fake, make_poller):
    shop = merchant(owner, cipher, fake)
    other_key = seed.dev_cipher()
    owner.execute(
        "UPDATE pos.pos_connections SET access_token_enc = %s WHERE id = %s",
        (
            other_key.encrypt(
                shop.access_token,
                table="pos.pos_connections",
                column="access_token_enc",
                row_id=str(shop.connection_id),
            ),
            shop.connection_id,
        ),
    )

    report = make_poller().poll()

    assert report.failed == 1
    assert connection_row(owner, shop)["status"] == "error"
    assert shop.access_token not in {r.token for r in fake.requests}


def test_a_listed_payment_crediting_could_not_read_is_skipped_not_stored(owner, cipher, fake, make_poller):
    shop = merchant(owner, cipher, fake)
    broken = fake.add_payment(shop.merchant_id, "L1", created_at=minutes_ago(9), amount=-5)
    good = fake.add_payment(shop.merchant_id, "L1", created_at=minutes_ago(8))

    report = make_poller().poll()

    assert (report.payments, report.unusable, report.stored) == (2, 1, 1)
    assert polled_payment_ids(owner, shop.merchant_id) == [good["id"]]
    assert broken["id"]  # listed, skipped with a warning
    assert connection_row(owner, shop)["watermark"] == at(good["created_at"])


# ---------------------------------------------------------------- bounded work


def test_a_run_takes_at_most_max_connections_least_recently_polled_first(owner, cipher, fake, make_poller):
    first, second = merchant(owner, cipher, fake), merchant(owner, cipher, fake)

    one_run = make_poller(max_connections=1).poll()
    next_run = make_poller(max_connections=1).poll()

    assert (one_run.connections, next_run.connections) == (1, 1)
    polled = [r.token for r in fake.requests if r.path == "/v2/locations"][-2:]
    assert sorted(polled) == sorted([first.access_token, second.access_token])


def test_no_connection_is_started_without_time_left(owner, cipher, fake, make_poller):
    shop = merchant(owner, cipher, fake)

    report = make_poller(reserve_milliseconds=5_000).poll(time_left_ms=lambda: 1_000)

    assert report == PollReport(stopped_early=True)
    assert shop.access_token not in {r.token for r in fake.requests}


# ---------------------------------------------------------------- the database role


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM pos.pos_connections",
        "SELECT access_token_enc FROM pos.pos_connections",
        "SELECT id FROM pos.pos_webhook_events_raw",
        "SELECT * FROM pos.square_location_watermarks",
        "SELECT * FROM pos.transactions",
        "SELECT * FROM identity.tenants",
        "UPDATE pos.pos_connections SET square_payments_watermark_at = now()",
        "INSERT INTO pos.pos_webhook_events_raw (provider, event_type, provider_event_id,"
        " merchant_account_id, raw_payload, raw_body) VALUES ('square', 'x', 'y', 'z', '{}', '{}')",
        "SELECT pos.claim_stuck_raw_events(0, 1, 1)",
    ],
)
def test_the_poller_role_cannot_touch_tables_directly(database, statement):
    with database.connect_as(POLLER) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


@pytest.mark.parametrize("role", [POLLER, "pos_gateway_token_refresher"])
def test_the_backfill_roles_are_unprivileged_and_own_nothing(owner, role):
    attributes = one(
        owner.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit AND EXISTS ("
            "  SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) AS member_of_another"
            " FROM pg_roles r WHERE rolname = %s",
            (role,),
        ).fetchone()
    )
    assert set(dict(attributes).values()) == {False}
    owned = owner.execute(
        "SELECT count(*) AS n FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
        " WHERE r.rolname = %s UNION ALL"
        " SELECT count(*) FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE r.rolname = %s",
        (role, role),
    ).fetchall()
    assert [row["n"] for row in owned] == [0, 0]


def test_the_backfill_functions_are_closed_definer_functions_of_the_migrator(owner):
    functions = owner.execute(
        "SELECT p.proname, r.rolname AS owner, p.prosecdef, p.proconfig,"
        "       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute"
        " FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner"
        " WHERE p.pronamespace = 'pos'::regnamespace AND p.proname LIKE 'square%%'"
    ).fetchall()

    assert len(functions) == 7
    for function in functions:
        assert function["owner"] == "pos_gateway_migrator", function["proname"]
        assert function["prosecdef"], function["proname"]
        assert function["proconfig"] == ["search_path=pg_catalog, pg_temp"], function["proname"]
        assert not function["public_execute"], function["proname"]


def test_other_roles_cannot_call_the_poller_functions(database):
    with database.connect_as("pos_gateway_ingest") as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM pos.square_poll_claim_connections(1)")


def test_a_page_of_a_connection_gone_from_service_is_refused(owner, cipher, fake, poller_store):
    shop = merchant(owner, cipher, fake)
    owner.execute(
        "UPDATE pos.pos_connections SET status = 'disconnected' WHERE id = %s", (shop.connection_id,)
    )
    event = PolledEvent("poll:" + str(uuid.uuid4()), "payment.updated", json.dumps({"x": 1}))

    with pytest.raises(ConnectionGone):
        poller_store.store_page(shop.connection_id, "L1", [event], datetime.now(UTC))

    assert raw_events(owner, shop.merchant_id) == []


# ---------------------------------------------------------------- the Lambda handler


@pytest.fixture
def poller_handler(database, cipher, fake, queue_url) -> Iterator[Any]:
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    db_arn = secrets.create_secret(
        Name=unique("db/poller-"), SecretString=json.dumps(database.secret(POLLER))
    )["ARN"]
    keys_arn = secrets.create_secret(
        Name=unique("keys-"), SecretString=json.dumps(encryption_secret_value(cipher))
    )["ARN"]
    with pytest.MonkeyPatch.context() as env:
        clear_parameter_caches()
        env.setenv("POWERTOOLS_SERVICE_NAME", "square_poller")
        env.setenv("DB_SECRET_ARN", db_arn)
        env.setenv("ENCRYPTION_KEYS_SECRET_ARN", keys_arn)
        env.setenv("INGEST_QUEUE_URL", queue_url)
        env.setenv("SQUARE_API_BASE_URL", fake.base_url)
        yield fresh_import("functions.square_poller.app")
        clear_parameter_caches()


def test_the_handler_polls_on_its_schedule_and_never_logs_a_token(
    owner, cipher, fake, poller_handler, queue_url, capsys, caplog
):
    fine, revoked = merchant(owner, cipher, fake), merchant(owner, cipher, fake)
    fake.add_payment(fine.merchant_id, "L1", created_at=minutes_ago(3), email="Someone@Example.com")
    fake.revoke(revoked.access_token)
    scheduled = json.loads((EVENTS / "scheduled.json").read_text())

    report = poller_handler.lambda_handler(scheduled, FakeLambdaContext(function_name="square_poller"))

    assert (report["connections"], report["stored"], report["tokenExpired"]) == (2, 1, 1)
    assert len(queued(queue_url)) == 1
    # Every log record, with its extra fields, and everything printed (metrics)
    output = capsys.readouterr()
    logged = output.out + output.err + "".join(repr(vars(record)) for record in caplog.records)
    assert "square poll done" in logged
    assert "token_expired" in logged
    for token in (fine.access_token, fine.refresh_token, revoked.access_token, revoked.refresh_token):
        assert token not in logged
