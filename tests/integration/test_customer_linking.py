"""A customer who joins later claims their past sales, each credited once by the rules of its time."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from local import seed
from pos_gateway.loyalty.linking import LinkResult, link_member
from pos_gateway.loyalty.rulebook import publish_rule_version
from tests.helpers import connected_merchant, credit_request, payment_event, store_event, unique, unique_email

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


def anonymous_sale(
    store: Any, crediting: Any, merchant_id: str, email: str, amount: int, at: datetime
) -> None:
    event = payment_event(merchant_id=merchant_id, email=email, amount=amount, created_at=at)
    crediting.process(credit_request(store_event(store, event)))


def balance(owner: Any, tenant_id: Any, user_id: Any) -> int:
    row = owner.execute(
        "SELECT points_balance FROM loyalty.wallets WHERE tenant_id = %s AND user_id = %s",
        (tenant_id, user_id),
    ).fetchone()
    return int(row["points_balance"]) if row else 0


def test_past_sales_are_credited_to_the_new_member_by_the_rules_of_their_time(
    database, owner, store, crediting
):
    # Given two sales to a customer with no account, one before and one after a 2-per-dollar rule
    merchant = connected_merchant(owner)
    email = unique_email()
    anonymous_sale(store, crediting, merchant.merchant_id, email.upper(), 5000, MARCH)
    publish_rule_version(owner, merchant.tenant_id, {**seed.DEFAULT_RULE, "conversionRate": 2.0}, APRIL)
    anonymous_sale(store, crediting, merchant.merchant_id, email, 5000, APRIL + timedelta(days=1))

    # When the customer joins and is linked
    user_id = seed.create_user(owner, email=email)
    result = link_member(database.connections("pos_gateway_crediting"), merchant.tenant_id, user_id)

    # Then both sales are theirs, credited 50 (version 1) + 100 (version 2)
    assert result == LinkResult(transactions_claimed=2, points_earned=150)
    assert balance(owner, merchant.tenant_id, user_id) == 150
    claimed = owner.execute(
        "SELECT count(*) AS n FROM pos.transactions WHERE tenant_id = %s AND user_id = %s",
        (merchant.tenant_id, user_id),
    ).fetchone()
    assert claimed == {"n": 2}


def test_linking_again_credits_nothing_twice(database, owner, store, crediting):
    merchant = connected_merchant(owner)
    email = unique_email()
    anonymous_sale(store, crediting, merchant.merchant_id, email, 2599, MARCH)
    user_id = seed.create_user(owner, email=email)
    connections = database.connections("pos_gateway_crediting")

    first = link_member(connections, merchant.tenant_id, user_id)
    second = link_member(connections, merchant.tenant_id, user_id)

    assert (first.points_earned, second) == (25, LinkResult(0, 0))
    assert balance(owner, merchant.tenant_id, user_id) == 25


def test_concurrent_links_credit_once(database, owner, store, crediting):
    merchant = connected_merchant(owner)
    email = unique_email()
    for _ in range(3):
        anonymous_sale(store, crediting, merchant.merchant_id, email, 1000, MARCH)
    user_id = seed.create_user(owner, email=email)
    barrier = threading.Barrier(4)

    def link(_: int) -> LinkResult:
        connections = database.connections("pos_gateway_crediting")
        connections.get()
        barrier.wait(timeout=30)
        try:
            return link_member(connections, merchant.tenant_id, user_id)
        finally:
            connections.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(link, range(4)))

    assert sum(r.transactions_claimed for r in results) == 3
    assert balance(owner, merchant.tenant_id, user_id) == 30


def test_a_mobile_match_is_claimed_and_other_tenants_sales_are_not(database, owner):
    merchant, other = connected_merchant(owner), connected_merchant(owner)
    mobile = "+1415555" + unique("")[:4].translate(str.maketrans("ABCDEF", "123456"))
    for tenant_id in (merchant.tenant_id, other.tenant_id):
        owner.execute(
            "INSERT INTO pos.transactions (tenant_id, provider, provider_transaction_id, amount_minor_units,"
            " currency, transaction_at, customer_ref) VALUES (%s, 'square', %s, 4200, 'USD', %s, %s)",
            (tenant_id, unique("pay_"), MARCH, Jsonb({"mobile": mobile})),
        )
    user_id = seed.create_user(owner, mobile=mobile)

    result = link_member(database.connections("pos_gateway_crediting"), merchant.tenant_id, user_id)

    assert result == LinkResult(1, 42)
    assert balance(owner, other.tenant_id, user_id) == 0


def test_a_suspended_member_claims_but_earns_nothing(database, owner, store, crediting):
    merchant = connected_merchant(owner)
    email = unique_email()
    anonymous_sale(store, crediting, merchant.merchant_id, email, 5000, MARCH)
    user_id = seed.create_user(owner, email=email, status="suspended")

    result = link_member(database.connections("pos_gateway_crediting"), merchant.tenant_id, user_id)

    assert result == LinkResult(1, 0)
    outcome = owner.execute(
        "SELECT e.outcome FROM loyalty.reward_events e JOIN pos.transactions t ON t.id = e.transaction_id"
        " WHERE t.tenant_id = %s AND t.user_id = %s",
        (merchant.tenant_id, user_id),
    ).fetchone()
    assert outcome == {"outcome": "user_suspended"}
