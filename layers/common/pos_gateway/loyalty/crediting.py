"""Crediting: one stored raw event → its effect on the loyalty ledger, in one DB transaction."""

from aws_lambda_powertools import Logger

from pos_gateway.db import ConnectionFactory, NotFound, tenant_transaction
from pos_gateway.db.connection import Connection
from pos_gateway.field import loyalty_feed
from pos_gateway.loyalty.clover_crediting import CloverCrediting
from pos_gateway.loyalty.earning import earn
from pos_gateway.loyalty.models import ProcessingOutcome, ProcessingResult
from pos_gateway.loyalty.repository import CreditingRepository, RawEvent
from pos_gateway.loyalty.reversal import reverse
from pos_gateway.messages import CreditRequest
from pos_gateway.providers import square
from pos_gateway.providers.models import Provider

logger = Logger(child=True)


class CreditingService:
    def __init__(self, connections: ConnectionFactory, clover: CloverCrediting | None = None) -> None:
        self._connections = connections
        self._clover = clover
        # Powertools' idempotency runners for provider keys, built once for the service.

    def process(self, request: CreditRequest) -> ProcessingResult:
        """Idempotent: a processed event, a recorded transaction or refund changes nothing."""
        connection = self._connections.get()
        with tenant_transaction(connection, request.tenant_id, pipeline=True):
            repository = CreditingRepository(connection)
            raw = repository.lock_raw_event(request.raw_event_id)
            if raw is None:
                raise NotFound(f"raw event {request.raw_event_id} not found in tenant {request.tenant_id}")
            if raw.processed:
                return ProcessingResult(raw.id, ProcessingOutcome.ALREADY_PROCESSED)
            result = self._apply(repository, raw, connection)
            repository.mark_processed(raw.id, result.outcome.value)
        logger.info(
            "raw event processed",
            extra={
                "raw_event_id": str(raw.id),
                "outcome": result.outcome,
                "points_earned": result.points_earned,
                "points_reversed": result.points_reversed,
                "points_shortfall": result.points_shortfall,
            },
        )
        return result

    def _apply(
        self, repository: CreditingRepository, raw: RawEvent, connection: Connection
    ) -> ProcessingResult:
        if raw.provider == Provider.CLOVER:
            if self._clover is None:
                raise RuntimeError("Clover crediting is not configured (ENCRYPTION_KEYS_SECRET_ARN)")
            return self._clover.apply(connection, raw)
        if raw.provider == Provider.FIELD:
            return _apply_field(repository, raw)
        return _apply_square(repository, raw)


def _apply_field(repository: CreditingRepository, raw: RawEvent) -> ProcessingResult:
    """A field sale earns like a payment; its void reverses like a full refund."""
    event = loyalty_feed.event_of(raw.raw_payload)
    if isinstance(event, loyalty_feed.FieldVoidEvent):
        return reverse(repository, raw.tenant_id, raw.id, event.refund())
    return earn(repository, raw.tenant_id, raw.id, event.payment())


def _apply_square(repository: CreditingRepository, raw: RawEvent) -> ProcessingResult:
    if raw.provider == Provider.SQUARE:
        event = square.SquareEvent.model_validate(raw.raw_payload)
        if event.is_payment:
            return earn(repository, raw.tenant_id, raw.id, square.payment_record(event))
        if event.is_refund:
            return reverse(repository, raw.tenant_id, raw.id, square.refund_record(event))
    return ProcessingResult(raw.id, ProcessingOutcome.IGNORED_EVENT_TYPE)
