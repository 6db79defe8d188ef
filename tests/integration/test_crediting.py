"""Crediting against real Postgres as pos_gateway_crediting, on raw events stored by ingest."""

from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString
from uuid import UUID, uuid4

import psycopg
import pytest

from local import seed
from pos_gateway.db import NotFound, tenant_transaction
from pos_gateway.ingest.repository import RawEventStore
from pos_gateway.loyalty.models import ProcessingOutcome
from pos_gateway.loyalty.repository import CreditingRepository
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import CustomerRef, PaymentRecord, Provider
from tests.helpers import (
    connected_merchant,
    count,
    create_wallet,
    credit_request,
    demo_body,
    one,
    payment_event,
    rule_config,
    run_concurrently,
    store_event,
    unique,
    unique_email,
)

CREDITING = "pos_gateway_crediting"
WORKERS = 8


def ingest(store: RawEventStore, merchant_id: str, **payment: Any) -> CreditRequest:
    return credit_request(store_event(store, payment_event(merchant_id=merchant_id, **payment)))


Connection = psycopg.Connection[Any]


def fetch_one(owner: Connection, query: LiteralString, *params: Any) -> dict[str, Any] | None:
    row: dict[str, Any] | None = owner.execute(query, params).fetchone()
    return row


def rows(owner: Connection, query: LiteralString, *params: Any) -> list[dict[str, Any]]:
    return owner.execute(query, params).fetchall()


def raw_event(owner: Connection, raw_event_id: UUID) -> dict[str, Any]:
    return one(fetch_one(owner, "SELECT * FROM pos.pos_webhook_events_raw WHERE id = %s", raw_event_id))


def transactions_of(owner: Connection, tenant_id: UUID, payment_id: str) -> list[dict[str, Any]]:
    return rows(
        owner,
        "SELECT * FROM pos.transactions WHERE tenant_id = %s AND provider_transaction_id = %s",
        tenant_id,
        payment_id,
    )


def wallet_of(owner: Connection, tenant_id: UUID, user_id: UUID) -> dict[str, Any] | None:
    return fetch_one(
        owner, "SELECT * FROM loyalty.wallets WHERE tenant_id = %s AND user_id = %s", tenant_id, user_id
    )


def ledger_of(owner: Connection, wallet_id: UUID) -> list[dict[str, Any]]:
    return rows(
        owner, "SELECT * FROM loyalty.wallet_ledger WHERE wallet_id = %s ORDER BY balance_after", wallet_id
    )


def reward_events_of(owner: Connection, transaction_id: UUID) -> list[dict[str, Any]]:
    return rows(
        owner,
        "SELECT e.*, r.version AS rule_version FROM loyalty.reward_events e"
        " LEFT JOIN loyalty.reward_rules r ON r.id = e.rule_version_id WHERE e.transaction_id = %s",
        transaction_id,
    )


def member(owner: Connection, **user: Any) -> tuple[UUID, str]:
    email = user.pop("email", None) or unique_email()
    return seed.create_user(owner, email=email, **user), email


# ---------------------------------------------------------------- the happy path, exactly


def test_completed_payment_credits_exact_points(owner, store, crediting):
    merchant = connected_merchant(owner)
    rule_v2 = seed.create_rule(
        owner, merchant.tenant_id, rule_config(conversionRate=1.5, roundingPolicy="round")
    )
    user_id, email = member(owner)
    payment_id = unique("pay_")
    request = ingest(store, merchant.merchant_id, payment_id=payment_id, email=email, amount=2599)

    result = crediting.process(request)

    assert (result.outcome, result.points_earned) == (ProcessingOutcome.CREDITED, 39)  # 25.99 × 1.5 = 38.985
    [transaction] = transactions_of(owner, merchant.tenant_id, payment_id)
    assert transaction["id"] == result.transaction_id
    assert (transaction["user_id"], transaction["amount_minor_units"], transaction["currency"]) == (
        user_id,
        2599,
        "USD",
    )
    assert transaction["raw_event_id"] == request.raw_event_id
    assert transaction["customer_ref"]["email"] == email

    [reward] = reward_events_of(owner, transaction["id"])
    assert (reward["kind"], reward["outcome"], reward["points_earned"]) == ("earn", "credited", 39)
    assert (reward["rule_version_id"], reward["rule_version"]) == (rule_v2, 2)

    wallet = one(wallet_of(owner, merchant.tenant_id, user_id))
    assert (wallet["points_balance"], wallet["version"], wallet["status"]) == (39, 2, "active")
    [entry] = ledger_of(owner, wallet["id"])
    assert (entry["entry_type"], entry["points"], entry["balance_after"]) == ("credit", 39, 39)
    assert (entry["source_transaction_id"], entry["reward_event_id"]) == (transaction["id"], reward["id"])

    raw = raw_event(owner, request.raw_event_id)
    assert (raw["processed"], raw["processing_outcome"]) == (True, "credited")
    assert raw["processed_at"] is not None

    key = one(
        fetch_one(
            owner,
            "SELECT * FROM pos.idempotency_keys WHERE key = %s",
            f"square:{merchant.merchant_id}:{payment_id}",
        )
    )
    assert (key["tenant_id"], key["handler"]) == (merchant.tenant_id, "square_webhook")
    # Written by the Powertools idempotency layer, completed in the crediting transaction.
    assert (key["status"], key["payload_hash"] != "", key["response_data"] is not None) == (
        "COMPLETED",
        True,
        True,
    )
    assert key["result_snapshot"] == {
        "transactionId": str(transaction["id"]),
        "outcome": "credited",
        "pointsEarned": 39,
    }


def test_approved_is_not_credited_until_completed(owner, store, crediting):
    merchant = connected_merchant(owner)
    user_id, email = member(owner)
    payment_id = unique("pay_")
    approved = ingest(store, merchant.merchant_id, payment_id=payment_id, email=email, status="APPROVED")

    result = crediting.process(approved)

    assert (result.outcome, result.transaction_id, result.points_earned) == (
        ProcessingOutcome.NOT_COMPLETED,
        None,
        0,
    )
    assert transactions_of(owner, merchant.tenant_id, payment_id) == []
    assert wallet_of(owner, merchant.tenant_id, user_id) is None
    raw = raw_event(owner, approved.raw_event_id)
    assert (raw["processed"], raw["processing_outcome"]) == (True, "not_completed")
    assert fetch_one(owner, "SELECT 1 FROM pos.idempotency_keys WHERE key LIKE %s", f"%:{payment_id}") is None

    completed = ingest(
        store, merchant.merchant_id, payment_id=payment_id, email=email, event_type="payment.updated"
    )
    assert crediting.process(completed).points_earned == 25


def test_redelivery_of_the_same_message_changes_nothing(owner, store, crediting):
    merchant = connected_merchant(owner)
    user_id, email = member(owner)
    request = ingest(store, merchant.merchant_id, email=email, amount=5000)
    first = crediting.process(request)
    snapshot = (wallet_of(owner, merchant.tenant_id, user_id), raw_event(owner, request.raw_event_id))

    again = crediting.process(request)

    assert first.outcome is ProcessingOutcome.CREDITED
    assert (again.outcome, again.points_earned) == (ProcessingOutcome.ALREADY_PROCESSED, 0)
    assert (wallet_of(owner, merchant.tenant_id, user_id), raw_event(owner, request.raw_event_id)) == snapshot
    assert len(ledger_of(owner, one(snapshot[0])["id"])) == 1


def test_two_events_of_one_payment_credit_once(owner, store, crediting):
    merchant = connected_merchant(owner)
    user_id, email = member(owner)
    payment_id = unique("pay_")
    created = ingest(
        store, merchant.merchant_id, payment_id=payment_id, email=email, event_type="payment.created"
    )
    updated = ingest(
        store, merchant.merchant_id, payment_id=payment_id, email=email, event_type="payment.updated"
    )
    assert created.raw_event_id != updated.raw_event_id

    first, second = crediting.process(created), crediting.process(updated)

    assert (first.outcome, first.points_earned) == (ProcessingOutcome.CREDITED, 25)
    assert (second.outcome, second.points_earned) == (ProcessingOutcome.DUPLICATE_TRANSACTION, 0)
    assert len(transactions_of(owner, merchant.tenant_id, payment_id)) == 1
    wallet = one(wallet_of(owner, merchant.tenant_id, user_id))
    assert [entry["points"] for entry in ledger_of(owner, wallet["id"])] == [25]
    assert wallet["points_balance"] == 25
    assert raw_event(owner, updated.raw_event_id)["processing_outcome"] == "duplicate_transaction"


# ---------------------------------------------------------------- who gets the points


@pytest.mark.parametrize("email", [None, "nobody-registered@example.com"], ids=["no-email", "unknown-email"])
def test_anonymous_customer_gets_a_transaction_but_no_wallet(owner, store, crediting, email):
    merchant = connected_merchant(owner)
    payment_id = unique("pay_")
    request = ingest(store, merchant.merchant_id, payment_id=payment_id, email=email)

    result = crediting.process(request)

    assert (result.outcome, result.points_earned) == (ProcessingOutcome.ANONYMOUS, 0)
    [transaction] = transactions_of(owner, merchant.tenant_id, payment_id)
    assert transaction["user_id"] is None
    assert reward_events_of(owner, transaction["id"]) == []
    assert (
        count(owner, "SELECT count(*) AS n FROM loyalty.wallets WHERE tenant_id = %s", (merchant.tenant_id,))
        == 0
    )
    assert raw_event(owner, request.raw_event_id)["processing_outcome"] == "anonymous"


def test_email_matches_case_insensitively(owner, store, crediting):
    merchant = connected_merchant(owner)
    local_part = unique("dana.")
    user_id, _ = member(owner, email=f"{local_part}@Example.COM")
    request = ingest(store, merchant.merchant_id, email=f"  {local_part.upper()}@example.com ")

    result = crediting.process(request)

    assert result.outcome is ProcessingOutcome.CREDITED
    assert one(wallet_of(owner, merchant.tenant_id, user_id))["points_balance"] == 25


def test_a_customer_mobile_matches_a_member(database, owner, store):
    merchant = connected_merchant(owner)
    mobile = "+1555" + str(uuid4().int)[-7:]
    by_mobile = seed.create_user(owner, mobile=mobile)
    by_email, email = member(owner)
    raw_event_id = one(store_event(store, payment_event(merchant_id=merchant.merchant_id)).raw_event_id)

    def payment(customer: CustomerRef) -> PaymentRecord:
        return PaymentRecord(
            provider=Provider.SQUARE,
            merchant_account_id=merchant.merchant_id,
            provider_transaction_id=unique("pay_"),
            completed=True,
            amount_minor_units=1000,
            currency="USD",
            transaction_at=datetime.now(UTC),
            customer=customer,
        )

    with database.connect_as(CREDITING) as conn, tenant_transaction(conn, merchant.tenant_id):
        repository = CreditingRepository(conn)
        mobile_only = one(
            repository.insert_transaction(
                merchant.tenant_id, payment(CustomerRef(mobile=mobile)), raw_event_id
            )
        )
        both = one(
            repository.insert_transaction(
                merchant.tenant_id, payment(CustomerRef(email=email, mobile=mobile)), raw_event_id
            )
        )
        nobody = one(
            repository.insert_transaction(
                merchant.tenant_id, payment(CustomerRef(mobile="+15550000000")), raw_event_id
            )
        )

    assert (mobile_only.user_id, mobile_only.user_status) == (by_mobile, "active")
    assert both.user_id == by_email  # email wins over mobile
    assert nobody.user_id is None


@pytest.mark.parametrize(
    ("user_status", "wallet_status", "reward_outcome"),
    [
        ("active", "frozen", "wallet_frozen"),
        ("suspended", None, "user_suspended"),
        ("suspended", "frozen", None),
    ],
    ids=["frozen-wallet", "suspended-user", "both"],
)
def test_blocked_members_earn_nothing_but_the_event_is_recorded(
    owner, store, crediting, user_status, wallet_status, reward_outcome
):
    merchant = connected_merchant(owner)
    user_id, email = member(owner, status=user_status)
    if wallet_status:
        create_wallet(owner, merchant.tenant_id, user_id, wallet_status)
    request = ingest(store, merchant.merchant_id, email=email, amount=10_000)

    result = crediting.process(request)

    assert (result.outcome, result.points_earned) == (ProcessingOutcome.NOT_CREDITED, 0)
    [reward] = reward_events_of(owner, result.transaction_id)
    assert reward["points_earned"] == 0
    assert reward["outcome"] in {"wallet_frozen", "user_suspended"}
    if reward_outcome:
        assert reward["outcome"] == reward_outcome
    wallet = one(wallet_of(owner, merchant.tenant_id, user_id))
    assert wallet["points_balance"] == 0
    assert ledger_of(owner, wallet["id"]) == []
    assert raw_event(owner, request.raw_event_id)["processing_outcome"] == "not_credited"


def test_no_active_rule(owner, store, crediting):
    merchant = connected_merchant(owner, with_rule=False)
    user_id, email = member(owner)
    result = crediting.process(ingest(store, merchant.merchant_id, email=email))
    assert (result.outcome, result.points_earned) == (ProcessingOutcome.NOT_CREDITED, 0)
    [reward] = reward_events_of(owner, result.transaction_id)
    assert (reward["outcome"], reward["rule_version_id"], reward["points_earned"]) == (
        "no_active_rule",
        None,
        0,
    )
    assert one(wallet_of(owner, merchant.tenant_id, user_id))["points_balance"] == 0


def test_a_sale_before_the_first_rule_version_earns_nothing(owner, store, crediting):
    merchant = connected_merchant(owner)  # its rule is in force from seed.PROGRAM_START
    _, email = member(owner)
    before = seed.PROGRAM_START - timedelta(days=1)
    result = crediting.process(ingest(store, merchant.merchant_id, email=email, created_at=before))
    assert reward_events_of(owner, result.transaction_id)[0]["outcome"] == "no_active_rule"


@pytest.mark.parametrize(
    ("amount", "rule", "outcome", "points"),
    [
        (999, {"minSpendMinorUnits": 1000}, "below_min_spend", 0),
        (1000, {"minSpendMinorUnits": 1000}, "credited", 10),
        (2599, {"conversionRate": 0}, "zero_points", 0),
        (78050, {}, "credited", 500),  # capped by maxPointsPerTransaction
        (2599, {"conversionRate": 2.25, "roundingPolicy": "ceil"}, "credited", 59),  # 58.4775
    ],
    ids=["below-min-spend", "at-min-spend", "zero-rate", "capped", "ceil"],
)
def test_rule_outcomes(owner, store, crediting, amount, rule, outcome, points):
    merchant = connected_merchant(owner, rule=rule_config(**rule))
    user_id, email = member(owner)
    result = crediting.process(ingest(store, merchant.merchant_id, email=email, amount=amount))
    assert result.points_earned == points
    [reward] = reward_events_of(owner, result.transaction_id)
    assert (reward["outcome"], reward["points_earned"], reward["rule_version_id"]) == (
        outcome,
        points,
        merchant.rule_id,
    )
    assert one(wallet_of(owner, merchant.tenant_id, user_id))["points_balance"] == points


def test_a_zero_decimal_currency(owner, store, crediting):
    merchant = connected_merchant(owner)
    user_id, email = member(owner)
    result = crediting.process(ingest(store, merchant.merchant_id, email=email, amount=100, currency="JPY"))
    assert result.points_earned == 100
    assert one(wallet_of(owner, merchant.tenant_id, user_id))["points_balance"] == 100


# ---------------------------------------------------------------- tenants


def test_a_raw_event_of_another_tenant_is_not_found_and_nothing_is_written(owner, store, crediting):
    mine, theirs = connected_merchant(owner), connected_merchant(owner)
    _, email = member(owner)
    payment_id = unique("pay_")
    their_event = ingest(store, theirs.merchant_id, payment_id=payment_id, email=email)
    forged = CreditRequest(
        raw_event_id=their_event.raw_event_id, tenant_id=mine.tenant_id, provider=Provider.SQUARE
    )

    with pytest.raises(NotFound):
        crediting.process(forged)

    assert raw_event(owner, their_event.raw_event_id)["processed"] is False
    assert transactions_of(owner, mine.tenant_id, payment_id) == []
    assert transactions_of(owner, theirs.tenant_id, payment_id) == []
    assert fetch_one(owner, "SELECT 1 FROM pos.idempotency_keys WHERE key LIKE %s", f"%:{payment_id}") is None
    # The service is still usable afterwards, and the right tenant can process the event.
    assert crediting.process(their_event).outcome is ProcessingOutcome.CREDITED


def test_a_quarantined_event_is_not_found(owner, store, crediting):
    merchant = connected_merchant(owner)
    stored = store_event(store, payment_event(merchant_id=unique("MLUNKNOWN")))
    assert stored.tenant_id is None
    with pytest.raises(NotFound):
        crediting.process(
            CreditRequest(
                raw_event_id=stored.raw_event_id, tenant_id=merchant.tenant_id, provider=Provider.SQUARE
            )
        )
    assert raw_event(owner, one(stored.raw_event_id))["processed"] is False


def test_the_same_member_earns_separately_per_tenant(owner, store, crediting):
    first, second = connected_merchant(owner), connected_merchant(owner)
    user_id, email = member(owner)
    crediting.process(ingest(store, first.merchant_id, email=email, amount=1000))
    crediting.process(ingest(store, second.merchant_id, email=email, amount=3000))
    assert one(wallet_of(owner, first.tenant_id, user_id))["points_balance"] == 10
    assert one(wallet_of(owner, second.tenant_id, user_id))["points_balance"] == 30


# ---------------------------------------------------------------- concurrency


def test_concurrent_credits_to_one_wallet_lose_no_update(database, owner, store):
    merchant = connected_merchant(owner)
    user_id, email = member(owner)
    requests = [
        ingest(store, merchant.merchant_id, email=email, amount=1000 * (i + 1)) for i in range(WORKERS)
    ]

    results = run_concurrently(database, requests)

    assert [r.outcome for r in results] == [ProcessingOutcome.CREDITED] * WORKERS
    expected_total = sum(10 * (i + 1) for i in range(WORKERS))
    wallet = one(wallet_of(owner, merchant.tenant_id, user_id))
    assert wallet["points_balance"] == expected_total
    assert wallet["version"] == 1 + WORKERS
    entries = ledger_of(owner, wallet["id"])
    assert len(entries) == WORKERS
    running = 0
    for entry in entries:  # ordered by balance_after: each entry adds exactly its points
        running += entry["points"]
        assert entry["balance_after"] == running
    assert running == expected_total


def test_concurrent_deliveries_of_one_raw_event_credit_once(database, owner, store):
    merchant = connected_merchant(owner)
    user_id, email = member(owner)
    request = ingest(store, merchant.merchant_id, email=email, amount=4200)

    results = run_concurrently(database, [request] * WORKERS)

    outcomes = sorted(r.outcome for r in results)
    assert outcomes == sorted(
        [ProcessingOutcome.CREDITED] + [ProcessingOutcome.ALREADY_PROCESSED] * (WORKERS - 1)
    )
    wallet = one(wallet_of(owner, merchant.tenant_id, user_id))
    assert wallet["points_balance"] == 42
    assert len(ledger_of(owner, wallet["id"])) == 1


def test_concurrent_duplicate_events_of_one_payment_credit_once(database, owner, store):
    merchant = connected_merchant(owner)
    user_id, email = member(owner)
    payment_id = unique("pay_")
    requests = [
        ingest(
            store,
            merchant.merchant_id,
            payment_id=payment_id,
            email=email,
            amount=4200,
            event_type="payment.updated",
        )
        for _ in range(WORKERS)
    ]
    assert len({r.raw_event_id for r in requests}) == WORKERS

    results = run_concurrently(database, requests)

    outcomes = sorted(r.outcome for r in results)
    assert outcomes == sorted(
        [ProcessingOutcome.CREDITED] + [ProcessingOutcome.DUPLICATE_TRANSACTION] * (WORKERS - 1)
    )
    assert len(transactions_of(owner, merchant.tenant_id, payment_id)) == 1
    wallet = one(wallet_of(owner, merchant.tenant_id, user_id))
    assert wallet["points_balance"] == 42
    assert len(ledger_of(owner, wallet["id"])) == 1
    processed = rows(
        owner,
        "SELECT processed FROM pos.pos_webhook_events_raw WHERE id = ANY(%s)",
        [r.raw_event_id for r in requests],
    )
    assert [row["processed"] for row in processed] == [True] * WORKERS


# ---------------------------------------------------------------- the demo webhooks end to end


def test_the_demo_webhooks(owner, store, crediting):
    blue = connected_merchant(owner, merchant_id="MLBLUEBOTTLE01")
    bakery = connected_merchant(owner, merchant_id="MLCORNERBAKE02")
    alice = seed.create_user(owner, email="alice@example.com")
    bob = seed.create_user(owner, email="bob@example.com")
    seed.create_user(owner, email="carol@example.com", status="suspended")

    outcomes = {}
    for name in [
        "01_alice_payment_created_approved.json",
        "02_alice_payment_completed.json",
        "03_alice_payment_completed_redelivered.json",
        "04_alice_payment_updated_again.json",
        "05_bob_large_payment_capped.json",
        "06_anonymous_walk_in.json",
        "07_alice_at_bakery.json",
        "08_carol_suspended.json",
        "10_alice_partial_refund.json",
    ]:
        stored = store_event(store, demo_body(name))
        outcomes[name[:2]] = (
            crediting.process(credit_request(stored)).outcome if stored.raw_event_id else None
        )

    assert outcomes == {
        "01": ProcessingOutcome.NOT_COMPLETED,
        "02": ProcessingOutcome.CREDITED,
        "03": None,  # the same Square event id: never stored twice
        "04": ProcessingOutcome.DUPLICATE_TRANSACTION,
        "05": ProcessingOutcome.CREDITED,
        "06": ProcessingOutcome.ANONYMOUS,
        "07": ProcessingOutcome.CREDITED,
        "08": ProcessingOutcome.NOT_CREDITED,
        "10": ProcessingOutcome.REVERSED,  # 10.00 of 25.99 refunded: 9 of 25 points back
    }
    assert one(wallet_of(owner, blue.tenant_id, alice))["points_balance"] == 16
    assert one(wallet_of(owner, blue.tenant_id, bob))["points_balance"] == 500
    assert one(wallet_of(owner, bakery.tenant_id, alice))["points_balance"] == 18
