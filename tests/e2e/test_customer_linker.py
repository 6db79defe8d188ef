"""Customer linking through the local stack: a walk-in's sale, then her account, then the schedule."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from local import seed
from local.database import Cluster
from local.replay import signed_delivery
from local.stack import LocalStack
from tests.helpers import e2e_stack_config, payment_event

pytestmark = pytest.mark.e2e

LINKER = "CustomerLinkerFunction"
CAFE = "Blue Bottle Cafe"


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = e2e_stack_config(cluster, tmp_path_factory.mktemp("customer_linker"), "customer_linker")
    with LocalStack(config) as running:
        yield running


def sale_of(stack: LocalStack, provider_transaction_id: str) -> dict[str, Any]:
    with stack.owner_connection() as conn:
        row = conn.execute(
            "SELECT t.user_id, e.outcome, e.points_earned FROM pos.transactions t"
            " LEFT JOIN loyalty.reward_events e ON e.transaction_id = t.id AND e.kind = 'earn'"
            " WHERE t.provider_transaction_id = %s",
            (provider_transaction_id,),
        ).fetchone()
    assert row is not None
    return dict(row)


def test_the_scheduled_linker_credits_a_walk_in_who_opened_an_account(stack):
    # Given a $37.50 sale at the cafe to a customer with no account, through the webhook pipeline
    cafe = next(t for t in stack.tenants if t.name == CAFE)
    email = f"dave.{uuid.uuid4().hex[:8]}@example.com"
    event = payment_event(merchant_id=cafe.merchant_id, email=email, amount=3750)
    body = json.dumps(event, separators=(",", ":")).encode()
    response = signed_delivery(stack.square_notification_url, body, stack.signature_key)
    assert response.status_code == 200
    assert stack.wait_until_drained(timeout=30)
    payment_id = event["data"]["id"]
    assert sale_of(stack, payment_id) == {"user_id": None, "outcome": None, "points_earned": None}

    # When she signs up with that email (in capitals) and EventBridge runs the linker
    with stack.owner_connection() as conn:
        user_id = seed.create_user(conn, email=email.upper())
    report = stack.run_schedule(LINKER)

    # Then the sale is hers, credited once by the cafe's rule (1 point per dollar, floor)
    assert report == {
        "pairs": 1,
        "pairsLinked": 1,
        "transactionsClaimed": 1,
        "pointsCredited": 37,
        "failures": 0,
        "batches": 1,
        "stoppedEarly": False,
    }
    assert sale_of(stack, payment_id) == {"user_id": user_id, "outcome": "credited", "points_earned": 37}
    # and the next run has nothing left to do
    assert stack.run_schedule(LINKER)["pairs"] == 0
