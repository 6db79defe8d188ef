"""End to end through the local stack: HTTP gateway → ingest λ → SQS → crediting λ → Postgres."""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from local.database import Cluster
from local.replay import clover_delivery, fresh_body, replay, signed_delivery
from local.stack import ROOT, LocalStack, StackConfig
from local.tokens import LocalIssuer

pytestmark = pytest.mark.e2e

DEMO_EVENTS = sorted((ROOT / "events" / "square").glob("*.json"))


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = StackConfig(
        port=0,
        state_dir=tmp_path_factory.mktemp("stack"),
        database_url=cluster.admin_url,
        dbname="e2e_local_stack",
        visibility_timeout=1,
    )
    with LocalStack(config) as running:
        yield running


def _scalar(stack: LocalStack, query: str, *params: object) -> object:
    with stack.owner_connection() as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def _balances(stack: LocalStack) -> dict[tuple[str, str], int]:
    with stack.owner_connection() as conn:
        rows = conn.execute(
            "SELECT t.name, u.email, w.points_balance FROM loyalty.wallets w"
            " JOIN identity.tenants t ON t.id = w.tenant_id JOIN identity.users u ON u.id = w.user_id"
        ).fetchall()
    return {(row["name"], row["email"]): row["points_balance"] for row in rows}


def test_demo_webhooks_credit_exact_points(stack: LocalStack) -> None:
    # Given the demo tenants, members and rules
    # When the demo webhooks are replayed over HTTP with real signatures
    deliveries = replay(stack.square_notification_url, stack.signature_key, DEMO_EVENTS)

    # Then every delivery is acknowledged and the pipeline drains
    assert [d.status_code for d in deliveries] == [200] * len(DEMO_EVENTS)
    assert [d.outcome for d in deliveries].count("duplicate") == 1
    assert [d.outcome for d in deliveries].count("quarantined") == 1
    assert stack.wait_until_drained(timeout=60)
    # and each member holds exactly the points of the rules (floor 1/$, capped at 500; bakery 2/$
    # rounded), less what the refund of 10.00 on Alice's 25.99 took back (9 of her 25 points)
    assert _balances(stack) == {
        ("Blue Bottle Cafe", "alice@example.com"): 16,
        ("Blue Bottle Cafe", "bob@example.com"): 500,
        ("Corner Bakery", "alice@example.com"): 38,
        ("Corner Bakery", "carol@example.com"): 0,
    }
    assert _scalar(stack, "SELECT count(*) FROM pos.transactions") == 5
    assert (
        _scalar(stack, "SELECT sum(points_reversed) FROM loyalty.reward_events WHERE kind = 'reversal'") == 9
    )
    assert _scalar(stack, "SELECT count(*) FROM pos.pos_webhook_events_raw WHERE tenant_id IS NULL") == 1


def test_same_webhook_again_changes_nothing(stack: LocalStack) -> None:
    body = fresh_body(DEMO_EVENTS[1])
    signed_delivery(stack.square_notification_url, body, stack.signature_key)
    assert stack.wait_until_drained(timeout=30)
    before = (_balances(stack), _scalar(stack, "SELECT count(*) FROM loyalty.wallet_ledger"))

    response = signed_delivery(stack.square_notification_url, body, stack.signature_key)

    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert stack.wait_until_drained(timeout=30)
    assert (_balances(stack), _scalar(stack, "SELECT count(*) FROM loyalty.wallet_ledger")) == before


def test_new_payment_over_http_credits_wallet(stack: LocalStack) -> None:
    event = json.loads(DEMO_EVENTS[1].read_text())
    event["event_id"] = str(uuid.uuid4())
    event["data"]["object"]["payment"]["id"] = event["data"]["id"] = f"pay_e2e_{uuid.uuid4().hex[:8]}"
    event["data"]["object"]["payment"]["amount_money"]["amount"] = 10_000
    path = Path(stack.config.state_dir) / "new_payment.json"
    path.write_text(json.dumps(event))
    before = _balances(stack)[("Blue Bottle Cafe", "alice@example.com")]

    response = signed_delivery(stack.square_notification_url, fresh_body(path), stack.signature_key)

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert stack.wait_until_drained(timeout=30)
    assert _balances(stack)[("Blue Bottle Cafe", "alice@example.com")] == before + 100


def test_forged_signature_is_refused_and_writes_nothing(stack: LocalStack) -> None:
    body = fresh_body(DEMO_EVENTS[4]).replace(b"78050", b"99999")
    raw_before = _scalar(stack, "SELECT count(*) FROM pos.pos_webhook_events_raw")

    response = requests.post(
        stack.square_notification_url,
        data=body,
        headers={"content-type": "application/json", "x-square-hmacsha256-signature": "Zm9yZ2Vk"},
        timeout=10,
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert _scalar(stack, "SELECT count(*) FROM pos.pos_webhook_events_raw") == raw_before


def test_malformed_body_is_a_400_with_details(stack: LocalStack) -> None:
    response = signed_delivery(
        stack.square_notification_url, b'{"merchant_id": "MLBLUEBOTTLE01"}', stack.signature_key
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed_event"
    assert {detail["loc"] for detail in error["fields"]} >= {"type", "event_id", "created_at", "data"}


def test_unknown_route_is_404(stack: LocalStack) -> None:
    assert requests.post(f"{stack.api_url}/webhooks/nope", data=b"{}", timeout=10).status_code == 404


def test_poison_message_is_parked_in_the_dead_letter_queue(stack: LocalStack) -> None:
    # A message crediting can never process fails 5 receives, then SQS moves it to the DLQ.
    stack.sqs_client().send_message(
        QueueUrl=stack.queues["IngestQueue"][0], MessageBody='{"not": "a credit request"}'
    )

    assert stack.wait_until_drained(timeout=60)
    assert stack.queue_depth("IngestDeadLetterQueue") == 1
    source = stack.sources[0]
    assert source.stats.failed_records >= 5


def test_stack_description_is_written(stack: LocalStack) -> None:
    described = json.loads((stack.config.state_dir / "stack.json").read_text())

    assert described["api_url"] == stack.api_url
    assert stack.issuer.claims(f"Bearer {described['admin_token']}")["role"] == "admin"
    assert stack.issuer.claims(f"Bearer {described['operator_token']}")["role"] == "pos_operator"
    assert {t["name"] for t in described["tenants"]} == {"Blue Bottle Cafe", "Corner Bakery", "Harbor Deli"}
    square = described["tenants"][0]["square"]
    assert square["notification_url"].endswith("/webhooks/square")
    assert square["signature_key"] == stack.signature_key
    field = described["field"]
    assert field["push_url"] == f"{stack.api_url}/sync/push"
    assert field["seller_device_credential"].startswith("fsd_")
    with psycopg.connect(described["database_url"]) as conn:
        # The three POS merchants and the field-sales business.
        assert conn.execute("SELECT count(*) FROM identity.tenants").fetchone() == (4,)


def _wallet_id(stack: LocalStack, tenant: str, email: str) -> str:
    return str(
        _scalar(
            stack,
            "SELECT w.id FROM loyalty.wallets w JOIN identity.tenants t ON t.id = w.tenant_id"
            " JOIN identity.users u ON u.id = w.user_id WHERE t.name = %s AND u.email = %s",
            tenant,
            email,
        )
    )


def test_a_clover_sale_is_fetched_from_clover_and_credited(stack: LocalStack) -> None:
    # The fake Clover serves the demo sale (42.00, Bob); the notification names it twice and
    # carries two updates of a merchant that is not connected.
    body = (ROOT / "events" / "clover" / "notification_two_merchants.json").read_bytes()

    response = clover_delivery(stack.clover_webhook_url, body, stack.clover_auth_code)

    assert response.status_code == 200
    assert response.json() == {
        "status": "accepted",
        "received": 4,
        "accepted": 2,
        "duplicates": 0,
        "quarantined": 2,
    }
    assert stack.wait_until_drained(timeout=60)
    assert _balances(stack)[("Harbor Deli", "bob@example.com")] == 42
    assert any(
        "/v3/merchants/MCLOVERDEMO01/payments/PAYDEMO000001" in r.path for r in stack.fake_clover.requests
    )


def test_a_clover_delivery_without_the_auth_code_is_refused(stack: LocalStack) -> None:
    body = (ROOT / "events" / "clover" / "notification_two_merchants.json").read_bytes()

    response = clover_delivery(stack.clover_webhook_url, body, "not-the-code")

    assert response.status_code == 401


def test_an_operator_redeems_points_once_per_idempotency_key(stack: LocalStack) -> None:
    wallet = _wallet_id(stack, "Blue Bottle Cafe", "alice@example.com")
    before = _balances(stack)[("Blue Bottle Cafe", "alice@example.com")]
    url = f"{stack.api_url}/wallets/{wallet}/redemptions"
    headers = _bearer(stack.operator_token())
    body = {"points": 10, "orderAmountMinorUnits": 5000, "idempotencyKey": str(uuid.uuid4())}

    first = requests.post(url, json=body, headers=headers, timeout=10)
    again = requests.post(url, json=body, headers=headers, timeout=10)
    reused = requests.post(url, json={**body, "points": 11}, headers=headers, timeout=10)

    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert _balances(stack)[("Blue Bottle Cafe", "alice@example.com")] == before - 10


def test_redemptions_need_a_valid_operator_token(stack: LocalStack) -> None:
    wallet = _wallet_id(stack, "Blue Bottle Cafe", "alice@example.com")
    url = f"{stack.api_url}/wallets/{wallet}/redemptions"
    body = {"points": 1, "orderAmountMinorUnits": 5000, "idempotencyKey": str(uuid.uuid4())}
    before = _balances(stack)

    assert requests.post(url, json=body, timeout=10).status_code == 401
    forged = LocalIssuer().token({"sub": str(uuid.uuid4()), "role": "pos_operator"})  # another key
    assert requests.post(url, json=body, headers=_bearer(forged), timeout=10).status_code == 401
    # A valid token naming another tenant: the caller is no operator there.
    assert stack.demo is not None
    bakery = stack.demo.tenant("Corner Bakery")
    stranger = stack.token(sub=str(stack.demo.operator_id), role="pos_operator", tenant_id=str(bakery.id))
    response = requests.post(url, json=body, headers=_bearer(stranger), timeout=10)
    assert response.status_code == 403
    assert _balances(stack) == before


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
