"""Reversal: a completed refund takes back its share of the points, by a ledger debit.

Policy: the share is the refunded fraction of the payment's points, on the running total of
refunds, rounded by the rule version that credited the payment; never more than was earned.
Points already spent are not clawed back from later earnings: what the balance cannot cover
is recorded on the reversal as its shortfall, and the balance never goes below zero.
"""

from uuid import UUID

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from pos_gateway.idempotency import OnceSpec
from pos_gateway.loyalty.models import ProcessingOutcome, ProcessingResult
from pos_gateway.loyalty.repository import CreditingRepository, LockedTransaction, ReversalBasis
from pos_gateway.loyalty.rules import RoundingPolicy, reversal_points
from pos_gateway.providers.errors import RetryLater
from pos_gateway.providers.models import RefundRecord


class RefundBeforePayment(RetryLater):
    """The refunded payment is not recorded yet; the refund is retried shortly."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after_seconds=30)


# The provider key {provider}:{merchantId}:refund:{refundId}, stored as it is (provider_keys).
REFUND_REVERSAL = OnceSpec(
    key_prefix="refund_reversal",
    event_key_jmespath="key",
    payload_validation_jmespath="[amount_minor_units, currency]",
)


class RefundReversal(BaseModel):
    """The payload Powertools takes the key (and the fields a replay must repeat) from."""

    model_config = ConfigDict(frozen=True)

    key: str
    amount_minor_units: int
    currency: str


class ReversalSnapshot(BaseModel):
    """What a refund's reversal produced: the key's stored result, replayed as it is."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    transaction_id: UUID
    refund_id: UUID
    outcome: ProcessingOutcome
    points_reversed: int
    points_shortfall: int


def reverse(
    repository: CreditingRepository, tenant_id: UUID, raw_event_id: UUID, refund: RefundRecord
) -> ProcessingResult:
    """Record the refund; once it is new and has points to answer for, reverse them once per
    provider key (Powertools): the reversal and the key's record in the caller's transaction."""
    if not refund.completed:
        return ProcessingResult(raw_event_id, ProcessingOutcome.NOT_COMPLETED)
    transaction = repository.lock_transaction(
        tenant_id, refund.provider.value, refund.provider_transaction_id
    )
    if transaction is None:
        raise RefundBeforePayment(
            f"payment {refund.provider_transaction_id} of refund {refund.provider_refund_id} not recorded yet"
        )
    payload = RefundReversal(
        key=refund.idempotency_key, amount_minor_units=refund.amount_minor_units, currency=refund.currency
    )
    handler = f"{refund.provider}_webhook"
    with repository.provider_key(REFUND_REVERSAL, handler, ReversalSnapshot, tenant_id) as once:
        once.send_claim(payload)  # read with the refund's insert, in one round trip
        refund_id = repository.insert_refund(tenant_id, transaction.id, refund, raw_event_id)
        if refund_id is None:
            return ProcessingResult(
                raw_event_id, ProcessingOutcome.DUPLICATE_REFUND, transaction_id=transaction.id
            )
        basis = repository.reversal_basis(transaction.id)
        if basis is None:
            return ProcessingResult(
                raw_event_id, ProcessingOutcome.REFUND_WITHOUT_POINTS, transaction_id=transaction.id
            )
        snapshot = once.run(
            payload, lambda: _reverse(repository, tenant_id, refund, transaction, refund_id, basis)
        ).value
    return ProcessingResult(
        raw_event_id,
        snapshot.outcome,
        transaction_id=snapshot.transaction_id,
        points_reversed=snapshot.points_reversed,
        points_shortfall=snapshot.points_shortfall,
    )


def _reverse(
    repository: CreditingRepository,
    tenant_id: UUID,
    refund: RefundRecord,
    transaction: LockedTransaction,
    refund_id: UUID,
    basis: ReversalBasis,
) -> ReversalSnapshot:
    """The refund's share of the points, taken back by a ledger debit as far as the balance goes."""
    owed = reversal_points(
        earned=basis.points_earned,
        amount_minor_units=transaction.amount_minor_units,
        refunded_total=basis.refunded_total,
        already_reversed=basis.already_reversed,
        rounding=basis.rule_config.rounding_policy if basis.rule_config else RoundingPolicy.FLOOR,
    )
    taken = min(owed, repository.lock_wallet_balance(basis.wallet_id)) if owed else 0
    repository.insert_reversal_event(
        tenant_id=tenant_id,
        wallet_id=basis.wallet_id,
        transaction_id=transaction.id,
        rule_id=basis.rule_version_id,
        refund_id=refund_id,
        outcome="reversed" if owed else "nothing_to_reverse",
        points=taken,
        shortfall=owed - taken,
        description=f"{refund.provider} refund {refund.provider_refund_id}"
        f" of payment {refund.provider_transaction_id}",
    )
    return ReversalSnapshot(
        transaction_id=transaction.id,
        refund_id=refund_id,
        outcome=ProcessingOutcome.REVERSED if owed else ProcessingOutcome.NOTHING_TO_REVERSE,
        points_reversed=taken,
        points_shortfall=owed - taken,
    )
