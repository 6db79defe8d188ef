"""Reversal: a completed refund takes back its share of the points, by a ledger debit.

Policy: the share is the refunded fraction of the payment's points, on the running total of
refunds, rounded by the rule version that credited the payment; never more than was earned.
Points already spent are not clawed back from later earnings: what the balance cannot cover
is recorded on the reversal as its shortfall, and the balance never goes below zero.
"""

from uuid import UUID

from pos_gateway.loyalty.models import ProcessingOutcome, ProcessingResult
from pos_gateway.loyalty.repository import CreditingRepository
from pos_gateway.loyalty.rules import RoundingPolicy, reversal_points
from pos_gateway.providers.errors import RetryLater
from pos_gateway.providers.models import RefundRecord


class RefundBeforePayment(RetryLater):
    """The refunded payment is not recorded yet; the refund is retried shortly."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after_seconds=30)


def reverse(
    repository: CreditingRepository, tenant_id: UUID, raw_event_id: UUID, refund: RefundRecord
) -> ProcessingResult:
    if not refund.completed:
        return ProcessingResult(raw_event_id, ProcessingOutcome.NOT_COMPLETED)
    transaction = repository.lock_transaction(
        tenant_id, refund.provider.value, refund.provider_transaction_id
    )
    if transaction is None:
        raise RefundBeforePayment(
            f"payment {refund.provider_transaction_id} of refund {refund.provider_refund_id} not recorded yet"
        )
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
    repository.record_idempotency_key(
        refund.idempotency_key,
        tenant_id,
        handler=f"{refund.provider}_webhook",
        result_snapshot={
            "refundId": str(refund_id),
            "pointsReversed": taken,
            "pointsShortfall": owed - taken,
        },
    )
    return ProcessingResult(
        raw_event_id,
        ProcessingOutcome.REVERSED if owed else ProcessingOutcome.NOTHING_TO_REVERSE,
        transaction_id=transaction.id,
        points_reversed=taken,
        points_shortfall=owed - taken,
    )
