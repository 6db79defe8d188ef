"""Crediting: one stored raw event → transaction, reward event, ledger credit, in one transaction."""

from aws_lambda_powertools import Logger

from pos_gateway.db import ConnectionFactory, NotFound, tenant_transaction
from pos_gateway.loyalty.models import ProcessingOutcome, ProcessingResult, RewardOutcome
from pos_gateway.loyalty.repository import CreditingRepository, RawEvent, RecordedTransaction
from pos_gateway.loyalty.rules import points_for
from pos_gateway.messages import CreditRequest
from pos_gateway.providers import square
from pos_gateway.providers.models import PaymentRecord, Provider

logger = Logger(child=True)


class CreditingService:
    def __init__(self, connections: ConnectionFactory) -> None:
        self._connections = connections

    def process(self, request: CreditRequest) -> ProcessingResult:
        """Idempotent: a processed event, or an already credited transaction, changes nothing."""
        connection = self._connections.get()
        with tenant_transaction(connection, request.tenant_id, pipeline=True):
            repository = CreditingRepository(connection)
            raw = repository.lock_raw_event(request.raw_event_id)
            if raw is None:
                raise NotFound(f"raw event {request.raw_event_id} not found in tenant {request.tenant_id}")
            if raw.processed:
                return ProcessingResult(raw.id, ProcessingOutcome.ALREADY_PROCESSED)
            result = _process_event(repository, raw)
            repository.mark_processed(raw.id, result.outcome.value)
        logger.info(
            "raw event processed",
            extra={"raw_event_id": str(raw.id), "outcome": result.outcome, "points": result.points_earned},
        )
        return result


def _process_event(repository: CreditingRepository, raw: RawEvent) -> ProcessingResult:
    payment = _payment_of(raw)
    if payment is None:
        return ProcessingResult(raw.id, ProcessingOutcome.IGNORED_EVENT_TYPE)
    if not payment.completed:
        return ProcessingResult(raw.id, ProcessingOutcome.NOT_COMPLETED)
    transaction = repository.insert_transaction(raw.tenant_id, payment, raw.id)
    if transaction is None:
        return ProcessingResult(raw.id, ProcessingOutcome.DUPLICATE_TRANSACTION)
    result = _reward(repository, raw, payment, transaction)
    repository.record_idempotency_key(
        payment.idempotency_key,
        raw.tenant_id,
        handler=f"{payment.provider}_webhook",
        result_snapshot={
            "transactionId": str(transaction.id),
            "outcome": result.outcome.value,
            "pointsEarned": result.points_earned,
        },
    )
    return result


def _payment_of(raw: RawEvent) -> PaymentRecord | None:
    if raw.provider == Provider.SQUARE:
        event = square.SquareEvent.model_validate(raw.raw_payload)
        return square.payment_record(event) if event.is_payment else None
    return None


def _reward(
    repository: CreditingRepository, raw: RawEvent, payment: PaymentRecord, transaction: RecordedTransaction
) -> ProcessingResult:
    if transaction.user_id is None:
        return ProcessingResult(raw.id, ProcessingOutcome.ANONYMOUS, transaction_id=transaction.id)
    wallet = repository.wallet_for(raw.tenant_id, transaction.user_id)
    rule = repository.active_rule(raw.tenant_id)
    points = 0
    if transaction.user_status == "suspended":
        outcome = RewardOutcome.USER_SUSPENDED
    elif wallet.status == "frozen":
        outcome = RewardOutcome.WALLET_FROZEN
    elif rule is None:
        outcome = RewardOutcome.NO_ACTIVE_RULE
    else:
        points = points_for(payment.amount_minor_units, payment.currency, rule.config)
        if points > 0:
            outcome = RewardOutcome.CREDITED
        elif payment.amount_minor_units < rule.config.min_spend_minor_units:
            outcome = RewardOutcome.BELOW_MIN_SPEND
        else:
            outcome = RewardOutcome.ZERO_POINTS
    repository.insert_earn_event(
        tenant_id=raw.tenant_id,
        wallet_id=wallet.id,
        transaction_id=transaction.id,
        rule_id=rule.id if rule else None,
        outcome=outcome.value,
        points=points,
        description=f"{payment.provider} payment {payment.provider_transaction_id}",
    )
    processing = ProcessingOutcome.CREDITED if points > 0 else ProcessingOutcome.NOT_CREDITED
    return ProcessingResult(raw.id, processing, transaction_id=transaction.id, points_earned=points)
