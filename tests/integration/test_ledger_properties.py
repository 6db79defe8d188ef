"""Property: whatever the sequence of payments, redeliveries, refunds and redemptions, the ledger holds.

After every step: each balance equals its ledger sum and is never negative, no provider
transaction is credited twice, and no transaction has more reversed than it earned.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as statistic
from hypothesis import strategies as st

from local import seed
from local.database import Database
from pos_gateway.auth.claims import Principal, Role
from pos_gateway.loyalty.redemption import RedemptionError, RedemptionRequest, RedemptionService
from tests.helpers import (
    connected_merchant,
    credit_request,
    payment_event,
    refund_event,
    store_event,
    unique,
    unique_email,
)


@dataclass(frozen=True)
class Pay:
    member: int
    amount: int


@dataclass(frozen=True)
class Redeliver:
    payment: int  # index among the payments so far
    same_event: bool  # Square's retry of one event, or another event of the same payment


@dataclass(frozen=True)
class Refund:
    payment: int
    amount: int


@dataclass(frozen=True)
class Redeem:
    member: int
    points: int
    order: int


STEPS = st.lists(
    st.one_of(
        st.builds(Pay, member=st.integers(0, 2), amount=st.integers(0, 200_000)),
        st.builds(Redeliver, payment=st.integers(0, 20), same_event=st.booleans()),
        st.builds(Refund, payment=st.integers(0, 20), amount=st.integers(1, 200_000)),
        st.builds(
            Redeem, member=st.integers(0, 2), points=st.integers(1, 600), order=st.integers(1, 100_000)
        ),
    ),
    min_size=1,
    max_size=25,
)

INVARIANTS = """
SELECT
  (SELECT count(*) FROM loyalty.wallets w
    WHERE w.tenant_id = %(t)s AND (w.points_balance < 0 OR w.points_balance <> coalesce((
          SELECT sum(CASE l.entry_type WHEN 'credit' THEN l.points ELSE -l.points END)
            FROM loyalty.wallet_ledger l WHERE l.wallet_id = w.id), 0))) AS bad_balances,
  (SELECT count(*) FROM (SELECT source_transaction_id FROM loyalty.wallet_ledger
                          WHERE tenant_id = %(t)s AND entry_type = 'credit'
                          GROUP BY source_transaction_id HAVING count(*) > 1) d) AS double_credits,
  (SELECT count(*) FROM pos.transactions t
    WHERE t.tenant_id = %(t)s AND (
          SELECT coalesce(sum(points_reversed + points_shortfall), 0) FROM loyalty.reward_events
           WHERE transaction_id = t.id AND kind = 'reversal')
        > (SELECT coalesce(sum(points_earned), 0) FROM loyalty.reward_events
            WHERE transaction_id = t.id AND kind = 'earn')) AS over_reversed
"""


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
def test_the_ledger_holds_after_every_step(owner, store, crediting, redemptions, steps):
    merchant = connected_merchant(owner)
    emails = [unique_email() for _ in range(3)]
    members = [seed.create_user(owner, email=email) for email in emails]
    operator = seed.create_user(owner, email=unique_email(), role="pos_operator")
    seed.add_member(owner, merchant.tenant_id, operator, "pos_operator")
    principal = Principal(user_id=operator, role=Role.POS_OPERATOR, tenant_id=merchant.tenant_id)
    payments: list[dict[str, Any]] = []

    for step in steps:
        match step:
            case Redeem(member, points, order):
                wallet = owner.execute(
                    "SELECT id FROM loyalty.wallets WHERE tenant_id = %s AND user_id = %s",
                    (merchant.tenant_id, members[member]),
                ).fetchone()
                if wallet is not None:
                    request = RedemptionRequest(
                        wallet_id=wallet["id"],
                        points=points,
                        order_amount_minor_units=order,
                        idempotency_key=unique("redeem-"),
                    )
                    try:
                        redemptions.redeem(principal, request)
                        statistic("redemption accepted")
                    except RedemptionError as refusal:  # a refusal is a fine outcome
                        statistic(f"redemption refused: {refusal.code}")
                _check(owner, merchant.tenant_id, step)
                continue
            case Pay(member, amount):
                event = payment_event(merchant_id=merchant.merchant_id, email=emails[member], amount=amount)
                payments.append(event)
            case Redeliver(index, same_event) if payments:
                event = payments[index % len(payments)]
                if not same_event:
                    event = {**event, "event_id": unique("evt_"), "type": "payment.updated"}
            case Refund(index, amount) if payments:
                payment = payments[index % len(payments)]
                event = refund_event(
                    merchant_id=merchant.merchant_id,
                    payment_id=payment["data"]["id"],
                    amount=amount,
                    refund_id=unique("ref_"),
                )
            case _:
                continue
        stored = store_event(store, event)
        if stored.raw_event_id is not None:
            crediting.process(credit_request(stored))

        _check(owner, merchant.tenant_id, step)


def _check(owner: Any, tenant_id: Any, step: object) -> None:
    found = owner.execute(INVARIANTS, {"t": tenant_id}).fetchone()
    assert found == {"bad_balances": 0, "double_credits": 0, "over_reversed": 0}, step


@pytest.fixture(scope="module")
def redemptions(database: Database) -> Iterator[RedemptionService]:
    connections = database.connections("pos_gateway_wallet_api")
    yield RedemptionService(connections)
    connections.close()
