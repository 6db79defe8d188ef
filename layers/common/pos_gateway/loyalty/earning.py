"""Earning: a completed payment becomes a transaction and, for a member, points."""

from uuid import UUID

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from pos_gateway.idempotency import OnceSpec
from pos_gateway.loyalty.models import ProcessingOutcome, ProcessingResult, RewardOutcome
from pos_gateway.loyalty.repository import CreditingRepository, RecordedTransaction
from pos_gateway.loyalty.rulebook import RuleVersion
from pos_gateway.loyalty.rules import points_for
from pos_gateway.providers.models import PaymentRecord

# The provider key {provider}:{merchantId}:{providerTxnId}, stored as it is (provider_keys).
PAYMENT_CREDIT = OnceSpec(
    key_prefix="payment_credit",
    event_key_jmespath="key",
    payload_validation_jmespath="[amount_minor_units, currency]",
)


class PaymentCredit(BaseModel):
    """The payload Powertools takes the key (and the fields a replay must repeat) from."""

    model_config = ConfigDict(frozen=True)

    key: str
    amount_minor_units: int
    currency: str


class CreditSnapshot(BaseModel):
    """What a payment's credit produced: the key's stored result, replayed as it is."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    transaction_id: UUID
    outcome: ProcessingOutcome
    points_earned: int


def earn(
    repository: CreditingRepository, tenant_id: UUID, raw_event_id: UUID, payment: PaymentRecord
) -> ProcessingResult:
    """Record the transaction; once it is new, reward it once per provider key (Powertools).

    The member's reward and the key's record are written in the caller's transaction.
    """
    if not payment.completed:
        return ProcessingResult(raw_event_id, ProcessingOutcome.NOT_COMPLETED)
    payload = PaymentCredit(
        key=payment.idempotency_key,
        amount_minor_units=payment.amount_minor_units,
        currency=payment.currency,
    )
    handler = f"{payment.provider}_webhook"
    with repository.provider_key(PAYMENT_CREDIT, handler, CreditSnapshot, tenant_id) as once:
        once.send_claim(payload)  # read with the transaction's insert, in one round trip
        transaction = repository.insert_transaction(tenant_id, payment, raw_event_id)
        if transaction is None:
            return ProcessingResult(raw_event_id, ProcessingOutcome.DUPLICATE_TRANSACTION)

        def reward() -> CreditSnapshot:
            result = _reward(repository, tenant_id, raw_event_id, payment, transaction)
            return CreditSnapshot(
                transaction_id=transaction.id, outcome=result.outcome, points_earned=result.points_earned
            )

        snapshot = once.run(payload, reward).value
    return ProcessingResult(
        raw_event_id,
        snapshot.outcome,
        transaction_id=snapshot.transaction_id,
        points_earned=snapshot.points_earned,
    )


def _reward(
    repository: CreditingRepository,
    tenant_id: UUID,
    raw_event_id: UUID,
    payment: PaymentRecord,
    transaction: RecordedTransaction,
) -> ProcessingResult:
    if transaction.user_id is None:
        return ProcessingResult(raw_event_id, ProcessingOutcome.ANONYMOUS, transaction_id=transaction.id)
    points = credit_member(repository, tenant_id, payment, transaction)
    processing = ProcessingOutcome.CREDITED if points > 0 else ProcessingOutcome.NOT_CREDITED
    return ProcessingResult(raw_event_id, processing, transaction_id=transaction.id, points_earned=points)


def credit_member(
    repository: CreditingRepository, tenant_id: UUID, payment: PaymentRecord, transaction: RecordedTransaction
) -> int:
    """The earn event of a member's transaction (and its ledger credit); returns the points.

    The rule version is the one in force at the payment's time, however late this runs.
    """
    if transaction.user_id is None:
        raise ValueError("an anonymous transaction has no member to credit")
    wallet, rule = repository.wallet_and_rule(tenant_id, transaction.user_id, payment.transaction_at)
    outcome, points = _decide(payment, transaction, wallet.status, rule)
    repository.insert_earn_event(
        tenant_id=tenant_id,
        wallet_id=wallet.id,
        transaction_id=transaction.id,
        rule_id=rule.id if rule else None,
        outcome=outcome.value,
        points=points,
        description=f"{payment.provider} payment {payment.provider_transaction_id}",
    )
    return points


def _decide(
    payment: PaymentRecord, transaction: RecordedTransaction, wallet_status: str, rule: RuleVersion | None
) -> tuple[RewardOutcome, int]:
    """What the member earns, and why; blocked members earn nothing but the event is kept."""
    if transaction.user_status == "suspended":
        return RewardOutcome.USER_SUSPENDED, 0
    if wallet_status == "frozen":
        return RewardOutcome.WALLET_FROZEN, 0
    if rule is None:
        return RewardOutcome.NO_ACTIVE_RULE, 0
    points = points_for(payment.amount_minor_units, payment.currency, rule.config)
    if points > 0:
        return RewardOutcome.CREDITED, points
    if payment.amount_minor_units < rule.config.min_spend_minor_units:
        return RewardOutcome.BELOW_MIN_SPEND, 0
    return RewardOutcome.ZERO_POINTS, 0
