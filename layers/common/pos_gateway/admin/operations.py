"""Operations: what the pipeline did (transactions, reward events, raw webhook events), and the
levers operators pull when it stalls (replaying raw events, redriving the dead-letter queue).

Lists are read under row-level security in the caller's scope. A replay is bookkept in the
database (one SECURITY DEFINER function, see migration 0019) together with its audit row; the
``CreditRequest`` messages go to the ingest queue only after that commit. A send that fails
leaves its event unprocessed and unparked, so the outbox sweeper sends it again after its grace
period: the worst case is a delay, never a lost event (and crediting is idempotent).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field

from pos_gateway.admin.inputs import Reason, RequestBody
from pos_gateway.admin.listing import fetch_page
from pos_gateway.admin.session import Change
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider
from pos_gateway.recovery.redrive import SQS_BATCH_LIMIT, redrive
from pos_gateway.recovery.sweeper import CreditRequestQueue

_SQL = queries.load(__file__, "operations.sql")
logger = Logger(child=True)

ProviderName = Literal["square", "clover"]
RewardKind = Literal["earn", "redeem", "reversal"]
WebhookState = Literal["pending", "processed", "parked", "quarantined"]
ReplayOutcome = Literal["queued", "already_processed", "released", "still_quarantined", "not_found"]

MAX_REPLAY_IDS = 100
MAX_REDRIVE_MESSAGES = 1000
DEFAULT_REDRIVE_MESSAGES = 100
# Outcomes after which a CreditRequest goes to the ingest queue.
_SENT = frozenset({"queued", "released"})


# ---------------------------------------------------------------- filters


class InvalidTimeRange(ApiError):
    status_code = 422
    code = "invalid_request"


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """``[from_time, to_time)``; either end may be open."""

    from_time: datetime | None
    to_time: datetime | None

    def __post_init__(self) -> None:
        if self.from_time is not None and self.to_time is not None and self.to_time < self.from_time:
            raise InvalidTimeRange(
                "the time range ends before it starts",
                [{"loc": "query.to", "type": "time_range", "msg": "must not be before from"}],
            )

    def parameters(self) -> dict[str, Any]:
        return {"from_time": self.from_time, "to_time": self.to_time}


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    """The filters of the transaction and reward event lists."""

    tenant_id: UUID | None
    user_id: UUID | None
    provider: ProviderName | None
    window: TimeWindow

    def parameters(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "user_id": self.user_id,
            "provider": self.provider,
            **self.window.parameters(),
        }


# ---------------------------------------------------------------- lists


class Transaction(BaseModel):
    id: UUID
    tenant_id: UUID
    user_id: UUID | None
    provider: ProviderName
    provider_transaction_id: str
    amount_minor_units: int
    currency: str
    transaction_at: datetime
    raw_event_id: UUID | None
    created_at: datetime


class TransactionPage(BaseModel):
    items: list[Transaction]
    next_cursor: str | None


class RewardEvent(BaseModel):
    id: UUID
    tenant_id: UUID
    wallet_id: UUID
    user_id: UUID
    kind: RewardKind
    outcome: str
    transaction_id: UUID | None
    provider: ProviderName | None
    refund_id: UUID | None
    rule_version_id: UUID | None
    points_earned: int
    points_redeemed: int
    points_reversed: int
    points_shortfall: int
    created_at: datetime


class RewardEventPage(BaseModel):
    items: list[RewardEvent]
    next_cursor: str | None


class WebhookEvent(BaseModel):
    """A raw webhook event's metadata: never its body or signature."""

    id: UUID
    tenant_id: UUID | None
    provider: ProviderName
    event_type: str
    provider_event_id: str
    merchant_account_id: str
    state: WebhookState
    processing_outcome: str | None
    sweep_count: int
    parked_at: datetime | None
    last_error: str | None
    quarantine_reason: str | None
    released_at: datetime | None
    created_at: datetime
    processed_at: datetime | None


class WebhookEventPage(BaseModel):
    items: list[WebhookEvent]
    next_cursor: str | None


def list_transactions(
    connection: Connection, filters: ActivityFilter, *, limit: int, cursor: str | None
) -> TransactionPage:
    rows, following = fetch_page(
        connection,
        _SQL.list_transactions.sql,
        filters.parameters(),
        limit=limit,
        cursor=cursor,
        at="transaction_at",
    )
    return TransactionPage(items=[Transaction(**row) for row in rows], next_cursor=following)


def list_reward_events(
    connection: Connection,
    filters: ActivityFilter,
    *,
    kind: RewardKind | None,
    limit: int,
    cursor: str | None,
) -> RewardEventPage:
    rows, following = fetch_page(
        connection,
        _SQL.list_reward_events.sql,
        {**filters.parameters(), "kind": kind},
        limit=limit,
        cursor=cursor,
    )
    return RewardEventPage(items=[RewardEvent(**row) for row in rows], next_cursor=following)


def list_webhook_events(
    connection: Connection,
    *,
    tenant_id: UUID | None,
    provider: ProviderName | None,
    state: WebhookState | None,
    window: TimeWindow,
    limit: int,
    cursor: str | None,
) -> WebhookEventPage:
    rows, following = fetch_page(
        connection,
        _SQL.list_webhook_events.sql,
        {"tenant_id": tenant_id, "provider": provider, "state": state, **window.parameters()},
        limit=limit,
        cursor=cursor,
    )
    return WebhookEventPage(items=[WebhookEvent(**row) for row in rows], next_cursor=following)


# ---------------------------------------------------------------- replay


class ReplayRequest(RequestBody):
    event_ids: list[UUID] = Field(min_length=1, max_length=MAX_REPLAY_IDS)
    reason: Reason | None = None


class ReplayResult(BaseModel):
    event_id: UUID
    outcome: ReplayOutcome
    tenant_id: UUID | None = Field(description="The tenant the event belongs to (after a release)")
    enqueued: bool = Field(
        description="A CreditRequest was accepted by the ingest queue now. False after queued or "
        "released means the send failed: the outbox sweeper sends it after its grace period."
    )


class ReplayAnswer(BaseModel):
    results: list[ReplayResult]


@dataclass(frozen=True, slots=True)
class Replayed:
    event_id: UUID
    outcome: ReplayOutcome
    tenant_id: UUID | None
    provider: Provider | None

    @property
    def credit_request(self) -> CreditRequest | None:
        if self.outcome not in _SENT or self.tenant_id is None or self.provider is None:
            return None
        return CreditRequest(raw_event_id=self.event_id, tenant_id=self.tenant_id, provider=self.provider)


def replay(change: Change, request: ReplayRequest) -> list[Replayed]:
    """The bookkeeping and its one audit row, in the change's transaction (nothing sent yet).

    One result per distinct id, in the order first given.
    """
    event_ids = list(dict.fromkeys(request.event_ids))
    rows = change.connection.execute(_SQL.replay_raw_events.sql, {"event_ids": event_ids}).fetchall()
    replayed = [
        Replayed(
            event_id=row["event_id"],
            outcome=row["outcome"],
            tenant_id=row["tenant_id"],
            provider=None if row["provider"] is None else Provider(row["provider"]),
        )
        for row in rows
    ]
    change.audit(
        "webhook_event.replay",
        target_type="webhook_event",
        target_id=event_ids[0] if len(event_ids) == 1 else None,
        before=None,
        after={
            "results": [
                {"event_id": r.event_id, "outcome": r.outcome, "tenant_id": r.tenant_id} for r in replayed
            ]
        },
        reason=request.reason,
    )
    return replayed


def enqueue_replayed(sqs_client: Any, ingest_queue_url: str, replayed: list[Replayed]) -> ReplayAnswer:
    """Send the CreditRequests of a committed replay. Never raises: a send that fails leaves its
    event (unprocessed, unparked) to the outbox sweeper, which sends it after its grace period."""
    requests = [request for request in (r.credit_request for r in replayed) if request is not None]
    failed = {
        request.raw_event_id for request in CreditRequestQueue(ingest_queue_url, sqs_client).send(requests)
    }
    return ReplayAnswer(
        results=[
            ReplayResult(
                event_id=r.event_id,
                outcome=r.outcome,
                tenant_id=r.tenant_id,
                enqueued=r.credit_request is not None and r.event_id not in failed,
            )
            for r in replayed
        ]
    )


# ---------------------------------------------------------------- queues


class QueueUnavailable(ApiError):
    status_code = 503
    code = "queue_unavailable"


class QueueDepth(BaseModel):
    visible: int = Field(description="ApproximateNumberOfMessages: waiting to be received")
    in_flight: int = Field(description="ApproximateNumberOfMessagesNotVisible: received, not deleted yet")
    delayed: int = Field(description="ApproximateNumberOfMessagesDelayed: not visible yet")

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


class QueueDepths(BaseModel):
    dead_letter_queue: QueueDepth
    ingest_queue: QueueDepth


class RedriveRequest(RequestBody):
    max_messages: int = Field(default=DEFAULT_REDRIVE_MESSAGES, strict=True, ge=1, le=MAX_REDRIVE_MESSAGES)
    reason: Reason | None = None


class RedriveResult(BaseModel):
    moved: int = Field(description="Messages moved from the dead-letter queue to the ingest queue")
    remaining: int | None = Field(
        description="Messages still in the dead-letter queue (approximate); null if it could not be read"
    )
    interrupted: bool = Field(
        default=False, description="The queue service failed midway: the move stopped early, retry"
    )


_DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def queue_depth(sqs_client: Any, queue_url: str) -> QueueDepth:
    try:
        attributes = sqs_client.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=list(_DEPTH_ATTRIBUTES)
        ).get("Attributes", {})
    except (BotoCoreError, ClientError) as exc:
        raise QueueUnavailable("the queue service did not answer; try again later") from exc
    visible, in_flight, delayed = (int(attributes.get(name, 0)) for name in _DEPTH_ATTRIBUTES)
    return QueueDepth(visible=visible, in_flight=in_flight, delayed=delayed)


def queue_depths(sqs_client: Any, *, dead_letter_queue_url: str, ingest_queue_url: str) -> QueueDepths:
    return QueueDepths(
        dead_letter_queue=queue_depth(sqs_client, dead_letter_queue_url),
        ingest_queue=queue_depth(sqs_client, ingest_queue_url),
    )


def redrive_dead_letters(
    change: Change,
    sqs_client: Any,
    *,
    dead_letter_queue_url: str,
    ingest_queue_url: str,
    request: RedriveRequest,
) -> RedriveResult:
    """Move up to ``max_messages`` from the dead-letter queue back to the ingest queue, then write
    the audit row with the count.

    Short polls, a batch at a time: the move stops at the first receive that comes back short.
    A message leaves the dead-letter queue only once the ingest queue accepted its copy. When
    the queue service fails midway, what moved before stays moved and is audited (the answer
    says ``interrupted``); when it fails before anything moved, the answer is 503 and nothing is
    written.
    """
    moved = 0
    interrupted = False
    while moved < request.max_messages:
        wanted = min(SQS_BATCH_LIMIT, request.max_messages - moved)
        try:
            batch = redrive(
                sqs_client,
                dead_letter_queue_url=dead_letter_queue_url,
                source_queue_url=ingest_queue_url,
                max_messages=wanted,
                wait_seconds=0,
            )
        except (BotoCoreError, ClientError) as exc:
            if moved == 0:
                raise QueueUnavailable("the queue service did not answer; nothing moved, try again") from exc
            logger.exception("the redrive stopped midway", extra={"moved": moved})
            interrupted = True
            break
        moved += batch
        if batch < wanted:
            break
    try:
        remaining: int | None = queue_depth(sqs_client, dead_letter_queue_url).total
    except QueueUnavailable:
        remaining = None
    change.audit(
        "dlq.redrive",
        target_type="queue",
        target_id=dead_letter_queue_url.rsplit("/", 1)[-1],
        before=None,
        after={
            "moved": moved,
            "remaining": remaining,
            "max_messages": request.max_messages,
            "interrupted": interrupted,
        },
        reason=request.reason,
    )
    return RedriveResult(moved=moved, remaining=remaining, interrupted=interrupted)
