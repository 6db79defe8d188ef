"""Square webhook ingest: the cheap, never-lose-an-event front door."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pos_gateway.http import ApiError, validation_fields
from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.ingest.repository import RawEventStore, VerifiedEvent
from pos_gateway.json_documents import UnstorableJson, load_storable
from pos_gateway.messages import CreditRequest
from pos_gateway.providers import square
from pos_gateway.providers.models import Provider

logger = Logger(child=True)

SQUARE_SIGNATURE_HEADER = "x-square-hmacsha256-signature"


class WebhookRejected(ApiError):
    """A delivery we refuse; nothing has been written."""

    code = "rejected"
    metric_prefix = "Rejected"


class InvalidSignature(WebhookRejected):
    status_code = 401
    code = "invalid_signature"


class StaleEvent(WebhookRejected):
    status_code = 401
    code = "stale_event"


class MalformedEvent(WebhookRejected):
    status_code = 400
    code = "malformed_event"


class IngestOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: IngestOutcome
    raw_event_id: UUID | None
    # False when the queue refused the message: the row stays unprocessed for the sweeper.
    enqueued: bool = False


class WebhookAck(BaseModel):
    """The 200 answer to a provider: what became of its delivery."""

    model_config = ConfigDict(populate_by_name=True)

    status: IngestOutcome
    raw_event_id: UUID | None = Field(default=None, alias="rawEventId")

    @classmethod
    def of(cls, result: IngestResult) -> "WebhookAck":
        return cls(status=result.outcome, raw_event_id=result.raw_event_id)


@dataclass(frozen=True, slots=True)
class SquareWebhookConfig:
    signature_key: str = field(repr=False)
    notification_url: str
    max_event_age: timedelta

    @classmethod
    def from_secret(cls, secret: dict[str, Any], max_event_age: timedelta) -> "SquareWebhookConfig":
        return cls(
            signature_key=str(secret["signatureKey"]),
            notification_url=str(secret["notificationUrl"]),
            max_event_age=max_event_age,
        )


def _now() -> datetime:
    return datetime.now(UTC)


class SquareWebhookIngest:
    def __init__(
        self,
        config: Callable[[], SquareWebhookConfig],
        store: RawEventStore,
        queue: IngestQueue,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._config = config
        self._store = store
        self._queue = queue
        self._clock = clock

    def receive(self, body: bytes, signature: str | None) -> IngestResult:
        config = self._config()
        if not square.is_valid_signature(config.signature_key, config.notification_url, body, signature):
            raise InvalidSignature("missing or invalid x-square-hmacsha256-signature")
        event, text = _parse(body)
        if self._clock() - event.created_at > config.max_event_age:
            raise StaleEvent(f"event created at {event.created_at.isoformat()} is older than accepted")

        stored = self._store.store(
            VerifiedEvent(
                provider=Provider.SQUARE,
                provider_event_id=event.event_id,
                event_type=event.type,
                merchant_account_id=event.merchant_id,
                raw_body=text,
                signature_header=signature or "",
            )
        )
        if stored.raw_event_id is None:
            return IngestResult(IngestOutcome.DUPLICATE, None)
        if stored.tenant_id is None:
            logger.warning(
                "quarantined event of an unknown merchant",
                extra={"merchant_id": event.merchant_id, "raw_event_id": str(stored.raw_event_id)},
            )
            return IngestResult(IngestOutcome.QUARANTINED, stored.raw_event_id)
        enqueued = self._enqueue(
            CreditRequest(
                raw_event_id=stored.raw_event_id, tenant_id=stored.tenant_id, provider=Provider.SQUARE
            )
        )
        return IngestResult(IngestOutcome.ACCEPTED, stored.raw_event_id, enqueued=enqueued)

    def _enqueue(self, request: CreditRequest) -> bool:
        return self._queue.enqueue_or_leave(request)


def _parse(body: bytes) -> tuple[square.SquareEvent, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedEvent("body is not UTF-8") from exc
    try:
        event = square.parse_event(body)
    except ValidationError as exc:
        raise MalformedEvent("body is not a valid Square event", validation_fields(exc)) from exc
    try:
        load_storable(text)  # a valid event may still hold what jsonb refuses (NaN, U+0000, ...)
    except UnstorableJson as exc:
        raise MalformedEvent(str(exc)) from exc
    return event, text
