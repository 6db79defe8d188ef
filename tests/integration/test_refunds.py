"""Refunds take points back through a compensating ledger debit, never an edit."""

from typing import Any, LiteralString

import pytest

from local import seed
from pos_gateway.loyalty.models import ProcessingOutcome, ProcessingResult
from pos_gateway.loyalty.reversal import RefundBeforePayment
from pos_gateway.loyalty.rulebook import publish_rule_version
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.square import parse_event
from tests.helpers import (
    body_of,
    connected_merchant,
    credit_request,
    payment_event,
    refund_event,
    run_concurrently,
    store_event,
    unique,
    unique_email,
)

WORKERS = 8


class Sale:
    """A member's credited Square payment in a fresh tenant, and its refunds."""

    def __init__(self, owner: Any, store: Any, crediting: Any, amount: int = 2599, **merchant: Any) -> None:
        self.owner, self.store, self.crediting = owner, store, crediting
        self.merchant = connected_merchant(owner, **merchant)
        self.email = unique_email()
        self.user_id = seed.create_user(owner, email=self.email)
        self.payment_id = unique("pay_")
        self.amount = amount
        self.credit = crediting.process(self.request(self.payment()))

    def payment(self, **overrides: Any) -> dict[str, Any]:
        return payment_event(
            merchant_id=self.merchant.merchant_id,
            payment_id=self.payment_id,
            email=self.email,
            amount=self.amount,
            **overrides,
        )

    def request(self, event: dict[str, Any]) -> CreditRequest:
        return credit_request(store_event(self.store, event))

    def refund_request(self, amount: int, **overrides: Any) -> CreditRequest:
        event = refund_event(
            merchant_id=self.merchant.merchant_id, payment_id=self.payment_id, amount=amount, **overrides
        )
        return self.request(event)

    def refund(self, amount: int, **overrides: Any) -> ProcessingResult:
        result: ProcessingResult = self.crediting.process(self.refund_request(amount, **overrides))
        return result

    def balance(self) -> int:
        row = self.owner.execute(
            "SELECT points_balance FROM loyalty.wallets WHERE tenant_id = %s AND user_id = %s",
            (self.merchant.tenant_id, self.user_id),
        ).fetchone()
        return int(row["points_balance"]) if row else 0

    def reversals(self) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT e.*, f.provider_refund_id, r.version AS rule_version"
            "  FROM loyalty.reward_events e JOIN pos.refunds f ON f.id = e.refund_id"
            "  LEFT JOIN loyalty.reward_rules r ON r.id = e.rule_version_id"
            " WHERE e.transaction_id = %s AND e.kind = 'reversal' ORDER BY e.created_at",
            self.credit.transaction_id,
        )

    def debits(self) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM loyalty.wallet_ledger WHERE source_transaction_id = %s AND entry_type = 'debit'",
            self.credit.transaction_id,
        )

    def _rows(self, query: LiteralString, *params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.owner.execute(query, params).fetchall()
        return found

    def spend(self, points: int) -> None:
        """Points leave the wallet (a redemption, as far as refunds are concerned)."""
        wallet = self.owner.execute(
            "SELECT id FROM loyalty.wallets WHERE tenant_id = %s AND user_id = %s",
            (self.merchant.tenant_id, self.user_id),
        ).fetchone()
        self.owner.execute(
            "INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points, description)"
            " VALUES (%s, %s, 'debit', %s, 'spent')",
            (self.merchant.tenant_id, wallet["id"], points),
        )


@pytest.fixture
def sale(owner, store, crediting) -> Sale:
    return Sale(owner, store, crediting)  # 25.99 at 1 point per dollar, floor: 25 points


def test_a_partial_refund_reverses_its_share_with_a_ledger_debit(sale):
    assert sale.credit.points_earned == 25

    result = sale.refund(1000)

    assert (result.outcome, result.points_reversed, result.points_shortfall) == (
        ProcessingOutcome.REVERSED,
        9,
        0,
    )
    assert sale.balance() == 16
    [reversal] = sale.reversals()
    assert (reversal["outcome"], reversal["points_reversed"], reversal["rule_version"]) == ("reversed", 9, 1)
    [debit] = sale.debits()
    assert (debit["points"], debit["reward_event_id"], debit["balance_after"]) == (9, reversal["id"], 16)
    # The credit is untouched: compensation, not an edit.
    assert sale.owner.execute(
        "SELECT points FROM loyalty.wallet_ledger WHERE source_transaction_id = %s AND entry_type = 'credit'",
        (sale.credit.transaction_id,),
    ).fetchone() == {"points": 25}


def test_partial_refunds_add_up_to_exactly_what_was_earned(sale):
    steps = [
        sale.refund(1000).points_reversed,
        sale.refund(1000).points_reversed,
        sale.refund(599).points_reversed,
    ]

    assert steps == [9, 10, 6]
    assert sum(steps) == 25
    assert sale.balance() == 0


def test_refunding_more_than_was_paid_never_reverses_more_than_was_earned(sale):
    sale.refund(2599)
    extra = sale.refund(500)

    assert (extra.outcome, extra.points_reversed) == (ProcessingOutcome.NOTHING_TO_REVERSE, 0)
    assert sum(r["points_reversed"] + r["points_shortfall"] for r in sale.reversals()) == 25


def test_the_same_refund_delivered_twice_reverses_once(sale):
    refund_id = unique("ref_")
    first = sale.refund(2599, refund_id=refund_id, event_type="refund.created")
    second = sale.refund(2599, refund_id=refund_id, event_type="refund.updated")

    assert first.outcome is ProcessingOutcome.REVERSED
    assert second.outcome is ProcessingOutcome.DUPLICATE_REFUND
    assert len(sale.debits()) == 1
    assert sale.balance() == 0


def test_a_pending_refund_takes_nothing_back_until_completed(sale):
    refund_id = unique("ref_")
    pending = sale.refund(2599, refund_id=refund_id, status="PENDING", event_type="refund.created")
    assert pending.outcome is ProcessingOutcome.NOT_COMPLETED
    assert sale.balance() == 25

    completed = sale.refund(2599, refund_id=refund_id)
    assert completed.points_reversed == 25


def test_spent_points_are_not_taken_below_zero_the_shortfall_is_recorded(sale):
    sale.spend(20)  # 5 left

    result = sale.refund(2599)

    assert (result.points_reversed, result.points_shortfall) == (5, 20)
    assert sale.balance() == 0
    [reversal] = sale.reversals()
    assert (reversal["points_reversed"], reversal["points_shortfall"]) == (5, 20)
    # The shortfall counts as settled: a later refund of the same payment reverses nothing more.
    assert sale.refund(100).points_reversed == 0


def test_a_reversal_uses_the_rule_version_that_credited_the_payment(owner, store, crediting):
    sale = Sale(owner, store, crediting, rule={**seed.DEFAULT_RULE, "roundingPolicy": "floor"})
    publish_rule_version(
        owner, sale.merchant.tenant_id, {**seed.DEFAULT_RULE, "roundingPolicy": "ceil"}, seed.PROGRAM_START
    )

    result = sale.refund(1000)  # 9.619… points: floor (version 1), not ceil (version 2)

    assert result.points_reversed == 9
    assert sale.reversals()[0]["rule_version"] == 1


def test_a_refund_before_its_payment_is_retried_and_writes_nothing(owner, store, crediting):
    merchant = connected_merchant(owner)
    request = credit_request(
        store_event(
            store, refund_event(merchant_id=merchant.merchant_id, payment_id=unique("pay_"), amount=100)
        )
    )

    with pytest.raises(RefundBeforePayment):
        crediting.process(request)

    assert owner.execute(
        "SELECT processed FROM pos.pos_webhook_events_raw WHERE id = %s", (request.raw_event_id,)
    ).fetchone() == {"processed": False}
    assert owner.execute(
        "SELECT count(*) AS n FROM pos.refunds WHERE tenant_id = %s", (merchant.tenant_id,)
    ).fetchone() == {"n": 0}


def test_a_refund_of_an_anonymous_sale_is_recorded_without_points(owner, store, crediting):
    merchant = connected_merchant(owner)
    payment_id = unique("pay_")
    crediting.process(
        credit_request(
            store_event(store, payment_event(merchant_id=merchant.merchant_id, payment_id=payment_id))
        )
    )

    result = crediting.process(
        credit_request(
            store_event(
                store, refund_event(merchant_id=merchant.merchant_id, payment_id=payment_id, amount=100)
            )
        )
    )

    assert result.outcome is ProcessingOutcome.REFUND_WITHOUT_POINTS
    assert owner.execute(
        "SELECT count(*) AS n FROM pos.refunds WHERE transaction_id = %s", (result.transaction_id,)
    ).fetchone() == {"n": 1}


def test_concurrent_partial_refunds_never_reverse_more_than_earned(database, owner, store, crediting):
    sale = Sale(owner, store, crediting, amount=80_000)  # 500 points (capped)
    requests = [sale.refund_request(10_000) for _ in range(WORKERS)]  # eight eighths

    results = run_concurrently(database, requests)

    assert sum(r.points_reversed for r in results) == 500
    assert sale.balance() == 0
    assert len(sale.debits()) == WORKERS


@pytest.mark.parametrize(
    "mutate",
    [
        lambda refund: refund.pop("payment_id"),
        lambda refund: refund["amount_money"].update(amount=-1),
        lambda refund: refund.update(created_at="yesterday"),
    ],
    ids=["no-payment-id", "negative-amount", "bad-time"],
)
def test_a_malformed_refund_is_refused_at_the_edge(mutate):
    event = refund_event(merchant_id="MLANY", payment_id="pay_1", amount=100)
    mutate(event["data"]["object"]["refund"])

    with pytest.raises(ValueError, match="refund"):
        parse_event(body_of(event))
