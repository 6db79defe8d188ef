"""Recovery through the local stack: the scheduled sweeper, and a poison message redriven from the DLQ."""

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from local import redrive as redrive_cli
from local.database import Cluster
from local.stack import LocalStack
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider
from pos_gateway.recovery import redrive
from tests.helpers import e2e_stack_config, one, payment_event

pytestmark = pytest.mark.e2e

SWEEPER = "OutboxSweeperFunction"
ALICE = "alice@example.com"
CAFE = "Blue Bottle Cafe"


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = e2e_stack_config(cluster, tmp_path_factory.mktemp("recovery"), "recovery")
    with LocalStack(config) as running:
        yield running


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def cafe(stack: LocalStack) -> tuple[uuid.UUID, str]:
    tenant = next(t for t in stack.tenants if t.name == CAFE)
    return tenant.id, tenant.merchant_id


def store_raw_event(
    conn: psycopg.Connection[Any], tenant_id: uuid.UUID, event: dict[str, Any], *, raw_id: uuid.UUID, age: int
) -> None:
    """A raw event written as ingest writes it, but never enqueued, stored `age` seconds ago."""
    text = json.dumps(event)
    conn.execute(
        "INSERT INTO pos.pos_webhook_events_raw (id, tenant_id, provider, event_type, provider_event_id,"
        " merchant_account_id, raw_payload, raw_body, signature_header, created_at)"
        " VALUES (%s, %s, 'square', %s, %s, %s, %s::jsonb, %s, 'sig', now() - make_interval(secs => %s))",
        (raw_id, tenant_id, event["type"], event["event_id"], event["merchant_id"], text, text, age),
    )


def raw_state(stack: LocalStack, raw_id: uuid.UUID) -> dict[str, Any]:
    with stack.owner_connection() as conn:
        return dict(
            one(
                conn.execute(
                    "SELECT processed, processing_outcome, sweep_count FROM pos.pos_webhook_events_raw"
                    " WHERE id = %s",
                    (raw_id,),
                ).fetchone()
            )
        )


def alice_points(stack: LocalStack) -> int:
    with stack.owner_connection() as conn:
        row = conn.execute(
            "SELECT w.points_balance FROM loyalty.wallets w JOIN identity.users u ON u.id = w.user_id"
            " JOIN identity.tenants t ON t.id = w.tenant_id WHERE u.email = %s AND t.name = %s",
            (ALICE, CAFE),
        ).fetchone()
    return int(row["points_balance"]) if row else 0


def test_the_scheduled_sweeper_enqueues_an_event_ingest_never_enqueued(stack):
    # Given a $100 payment of Alice stored 10 minutes ago whose enqueue failed
    tenant_id, merchant_id = cafe(stack)
    raw_id = uuid.uuid4()
    before = alice_points(stack)
    with stack.owner_connection() as conn:
        event = payment_event(merchant_id=merchant_id, email=ALICE, amount=10_000)
        store_raw_event(conn, tenant_id, event, raw_id=raw_id, age=600)

    # When EventBridge runs the sweeper
    report = stack.run_schedule(SWEEPER)

    # Then it goes through the ingest queue to crediting like any webhook
    assert report == {"requeued": 1, "parked": 0, "enqueueFailures": 0, "batches": 1}
    assert stack.wait_until_drained(timeout=30)
    assert raw_state(stack, raw_id) == {"processed": True, "processing_outcome": "credited", "sweep_count": 1}
    assert alice_points(stack) == before + 100
    # and a second run finds nothing to do
    assert stack.run_schedule(SWEEPER)["requeued"] == 0


def test_a_poison_message_goes_to_the_dead_letter_queue_and_back_once_fixed(stack):
    # Given a credit request for a raw event that does not exist (yet)
    tenant_id, merchant_id = cafe(stack)
    raw_id = uuid.uuid4()
    request = CreditRequest(raw_event_id=raw_id, tenant_id=tenant_id, provider=Provider.SQUARE)
    stack.sqs_client().send_message(QueueUrl=stack.queues["IngestQueue"][0], MessageBody=request.to_json())

    # When crediting fails it 5 times, SQS parks it in the dead-letter queue
    assert wait_for(lambda: stack.queue_depth("IngestDeadLetterQueue") == 1)
    assert stack.queue_depth("IngestQueue") == 0

    # and once the cause is fixed (the raw event exists) and the DLQ is redriven
    before = alice_points(stack)
    with stack.owner_connection() as conn:
        store_raw_event(
            conn,
            tenant_id,
            payment_event(merchant_id=merchant_id, email=ALICE, amount=4_200),
            raw_id=raw_id,
            age=0,
        )
    moved = redrive(
        stack.sqs_client(),
        dead_letter_queue_url=stack.queues["IngestDeadLetterQueue"][0],
        source_queue_url=stack.queues["IngestQueue"][0],
        wait_seconds=0,
    )

    # Then the message is processed and credited
    assert moved == 1
    assert stack.wait_until_drained(timeout=30)
    assert raw_state(stack, raw_id) == {"processed": True, "processing_outcome": "credited", "sweep_count": 0}
    assert alice_points(stack) == before + 42
    assert stack.queue_depth("IngestDeadLetterQueue") == 0


def test_make_redrive_reads_the_stack_description(stack, capsys):
    described = json.loads((stack.config.state_dir / "stack.json").read_text())
    assert described["dead_letter_queue_url"] == stack.queues["IngestDeadLetterQueue"][0]
    assert described["ingest_queue_url"] == stack.queues["IngestQueue"][0]
    tenant_id, merchant_id = cafe(stack)
    raw_id = uuid.uuid4()
    with stack.owner_connection() as conn:
        event = payment_event(merchant_id=merchant_id, email=ALICE, amount=1_000)
        store_raw_event(conn, tenant_id, event, raw_id=raw_id, age=0)
    request = CreditRequest(raw_event_id=raw_id, tenant_id=tenant_id, provider=Provider.SQUARE)
    stack.sqs_client().send_message(
        QueueUrl=described["dead_letter_queue_url"], MessageBody=request.to_json()
    )

    assert redrive_cli.main(["--stack-file", str(stack.config.state_dir / "stack.json")]) == 0

    assert "moved 1 message(s)" in capsys.readouterr().out
    assert stack.wait_until_drained(timeout=30)
    assert raw_state(stack, raw_id)["processing_outcome"] == "credited"
